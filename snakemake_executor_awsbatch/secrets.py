"""Keeping credentials out of job definitions, overrides, task specs and log lines.

Jobs get their AWS access from the job role, never from values we pass; anything that looks like
a credential in what we send is refused before submission.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from snakemake_executor_awsbatch.errors import UserError

SECRET_NAME = re.compile(
    r"(SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE_KEY|ACCESS_KEY|API_KEY)", re.IGNORECASE
)
ACCESS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")
_CREDENTIAL_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")


def _known_secrets() -> list[str]:
    # Values long enough to be real credentials; short test values would match everywhere.
    return [v for k in _CREDENTIAL_ENV if len(v := os.environ.get(k, "")) >= 16]


def check_env_names(env: Mapping[str, str], where: str) -> None:
    """Refuse environment entries that carry credentials or use Batch's reserved prefix."""
    for name, value in env.items():
        if name.upper().startswith("AWS_BATCH"):
            raise UserError(
                f"environment variable {name} in {where} uses the reserved AWS_BATCH prefix; "
                "rename it."
            )
        if SECRET_NAME.search(name) or ACCESS_KEY_ID.search(str(value)):
            raise UserError(
                f"environment variable {name} in {where} looks like a credential; give the job "
                "its access through the job role (or AWS Secrets Manager), not the environment."
            )


def check_no_secrets(document: Any, where: str) -> None:
    """Refuse a request whose JSON holds an access key or a known secret value."""
    text = json.dumps(document, default=str)
    if ACCESS_KEY_ID.search(text) or any(secret in text for secret in _known_secrets()):
        raise UserError(
            f"{where} contains an AWS credential; remove it and give the job its access through "
            "the job role."
        )
    for env in _environments(document):
        check_env_names(env, where)


def _environments(document: Any) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    if isinstance(document, Mapping):
        for key, value in document.items():
            if key == "environment" and isinstance(value, list):
                found.append({str(e.get("name")): str(e.get("value")) for e in value})
            else:
                found.extend(_environments(value))
    elif isinstance(document, list):
        for item in document:
            found.extend(_environments(item))
    return found


def redact(text: str) -> str:
    """The text with access key ids and known secret values masked."""
    out = ACCESS_KEY_ID.sub("<redacted-key-id>", text)
    for secret in _known_secrets():
        out = out.replace(secret, "<redacted>")
    return out


class RedactingFilter(logging.Filter):
    """A logging filter that masks credentials in every record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message with credentials masked."""
        record.msg = redact(record.getMessage())
        record.args = ()
        return True
