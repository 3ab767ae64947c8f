"""Sessions made by `shared_session` parse botocore's models once per process (botosession)."""

from __future__ import annotations

import boto3
import pytest

from snakemake_executor_awsbatch import botosession


def _loader(session: boto3.session.Session) -> object:
    return session._session.get_component("data_loader")


def test_sessions_share_one_loader_and_keep_their_own_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(botosession, "_model_loader", None)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    first = botosession.shared_session("eu-west-1")
    second = botosession.shared_session("us-east-2")
    assert _loader(first) is _loader(second)
    assert (first.region_name, second.region_name) == ("eu-west-1", "us-east-2")
    # A model parsed through one session is there for the other.
    model = _loader(first).load_service_model("batch", "service-2")  # type: ignore[attr-defined]
    assert _loader(second).load_service_model("batch", "service-2") is model  # type: ignore[attr-defined]


def test_the_loader_of_boto3s_default_session_is_taken_up_when_it_exists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Snakemake's S3 storage plugin builds its client on boto3's default session.
    monkeypatch.setattr(botosession, "_model_loader", None)
    default = boto3.session.Session(region_name="us-east-1")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", default)
    assert _loader(botosession.shared_session()) is _loader(default)
