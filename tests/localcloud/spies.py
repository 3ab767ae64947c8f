"""Spies on the S3 requests the local cloud answers itself instead of moto."""

from __future__ import annotations

from typing import Any

import pytest

from snakemake_executor_awsbatch.localcloud import server


def watch_direct_answers(monkeypatch: pytest.MonkeyPatch, name: str) -> list[bool]:
    """Wrap the server's `name` (e.g. "answer_head"); the list gets, per request it was asked,
    whether it answered (True) or left the request to moto (False)."""
    answer = getattr(server, name)
    served: list[bool] = []

    def spy(environ: dict[str, Any], account_id: str) -> Any:
        result = answer(environ, account_id)
        served.append(result is not None)
        return result

    monkeypatch.setattr(server, name, spy)
    return served


def leave_to_moto(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make the server's `name` answer nothing, so that moto answers every request."""
    monkeypatch.setattr(server, name, lambda environ, account_id: None)
