"""The result type of the doctor's checks and the error handling its check modules share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from botocore.exceptions import BotoCoreError, ClientError


class Status(StrEnum):
    """Outcome of one check."""

    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class Check:
    """One line of the doctor's table; `fix` says what to do when it did not pass."""

    name: str
    status: Status
    detail: str
    fix: str = ""


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError ("" when absent)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_denied(exc: ClientError) -> bool:
    code = error_code(exc)
    return code in ("AccessDenied", "AccessDeniedException", "403", "UnauthorizedOperation")


def guard(name: str, actions: str, body: Callable[[], list[Check]]) -> list[Check]:
    """Run a group of checks, turning access and connection errors into FAIL lines with a fix."""
    try:
        return body()
    except ClientError as exc:
        if is_denied(exc):
            return [
                Check(
                    name,
                    Status.FAIL,
                    f"access denied: {exc}",
                    f"allow {actions} for the identity running the workflow.",
                )
            ]
        return [Check(name, Status.FAIL, str(exc), "see the error above; docs/troubleshooting.md")]
    except BotoCoreError as exc:
        return [
            Check(name, Status.FAIL, str(exc), "check the region, endpoint URL and network access.")
        ]
