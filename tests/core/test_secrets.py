"""No credential ever reaches a job definition, overrides or a log line."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.jobdef import job_definition_request, submit_request
from snakemake_executor_awsbatch.secrets import RedactingFilter, check_env_names
from snakemake_executor_awsbatch.taskspec import LaunchSpec, StagingManifest, TaskSpec

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)


def spec(**kw: Any) -> TaskSpec:
    launch = LaunchSpec(staging=StagingManifest(prefix="s3://bkt/t"), command=("true",))
    return TaskSpec(**{"name": "t", "image": "img", "queue": "q", "launch": launch, **kw})


def test_requests_built_with_credentials_in_the_process_hold_none(creds: None) -> None:
    text = json.dumps([job_definition_request(spec()), submit_request(spec(), "d:1")])
    assert KEY_ID not in text and SECRET not in text


@pytest.mark.parametrize(
    "env",
    [
        {"AWS_SECRET_ACCESS_KEY": "abc"},
        {"MY_API_TOKEN": "abc"},
        {"DB_PASSWORD": "abc"},
        {"HARMLESS": KEY_ID},
        {"AWS_BATCH_X": "1"},
    ],
)
def test_credential_like_environment_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(UserError):
        submit_request(spec(), "d:1", environment=env)


def test_known_secret_value_anywhere_is_refused(creds: None) -> None:
    with pytest.raises(UserError, match="contains an AWS credential"):
        submit_request(spec(tags={"note": SECRET}), "d:1")
    with pytest.raises(UserError, match="contains an AWS credential"):
        job_definition_request(spec(image=f"img-{KEY_ID}"))


def test_task_environment_is_checked() -> None:
    check_env_names({"THREADS": "4"}, "x")
    with pytest.raises(UserError, match="looks like a credential"):
        check_env_names({"GITHUB_TOKEN": "t"}, "the environment of task t")


def test_log_lines_are_redacted(creds: None, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redact")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="test.redact"):
        logger.info("using %s and %s", KEY_ID, SECRET)
    assert KEY_ID not in caplog.text and SECRET not in caplog.text
    assert "<redacted" in caplog.text
