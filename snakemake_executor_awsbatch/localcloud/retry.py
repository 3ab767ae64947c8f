"""Batch's retry rules: which `evaluateOnExit` rule applies to a failed attempt."""

from __future__ import annotations

import fnmatch


def _matches(pattern: str | None, value: str | None) -> bool:
    # An absent value (no container reason, no exit code after a reclaim) is matched as "", so
    # that the catch-all `"*"` of AWS's examples matches it.
    if pattern is None:
        return True
    return fnmatch.fnmatchcase(value or "", pattern)


def retry_action(
    rules: list[dict[str, str]],
    exit_code: int | None,
    reason: str | None,
    status_reason: str | None,
) -> str:
    """RETRY or EXIT for a failed attempt, by Batch's `evaluateOnExit` rules (first match wins)."""
    code = None if exit_code is None else str(exit_code)
    for rule in rules:
        if (
            _matches(rule.get("onExitCode"), code)
            and _matches(rule.get("onReason"), reason)
            and _matches(rule.get("onStatusReason"), status_reason)
        ):
            return str(rule["action"]).upper()
    return "RETRY"
