"""The result type of the doctor's checks, shared by its check modules."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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
