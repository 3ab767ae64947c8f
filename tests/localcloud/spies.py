"""Spies on the S3 requests the local cloud answers itself instead of moto."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from snakemake_executor_awsbatch.localcloud import server

# The operations each answering function serves, read from the table before any test
# replaces an entry.
_OPERATIONS: dict[str, list[str]] = {}
for _operation, _answer in server.DIRECT_S3_ANSWERS.items():
    _OPERATIONS.setdefault(_answer.__name__, []).append(_operation)


def _replace(monkeypatch: pytest.MonkeyPatch, name: str, stand_in: Callable[..., Any]) -> None:
    """Put `stand_in` wherever the server's table of direct answers has the function `name`."""
    assert name in _OPERATIONS, f"{name} answers no S3 operation"
    for operation in _OPERATIONS[name]:
        monkeypatch.setitem(server.DIRECT_S3_ANSWERS, operation, stand_in)


def watch_direct_answers(monkeypatch: pytest.MonkeyPatch, name: str) -> list[bool]:
    """Wrap the server's `name` (e.g. "answer_head"); the list gets, per request it was asked,
    whether it answered (True) or left the request to moto (False)."""
    answer = getattr(server, name)
    served: list[bool] = []

    def spy(environ: dict[str, Any], account_id: str) -> Any:
        result = answer(environ, account_id)
        served.append(result is not None)
        return result

    _replace(monkeypatch, name, spy)
    return served


def leave_to_moto(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make the server's `name` answer nothing, so that moto answers every request."""
    _replace(monkeypatch, name, lambda environ, account_id: None)
