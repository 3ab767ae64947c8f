"""Batch's `retryStrategy` for a RetryPolicy: retry spot reclaims, exit on anything else.

Batch matches `evaluateOnExit` rules in order, and retries when no rule matches, so a policy that
retries only reclaims needs an explicit final EXIT rule.
"""

from __future__ import annotations

from typing import Any

from snakemake_executor_awsbatch.taskspec import RetryPolicy

# Batch words a spot reclaim (or any lost host) as "Host EC2 (instance i-...) terminated."
SPOT_RECLAIM_GLOB = "Host EC2*"
MAX_RULES = 5


def retry_strategy(policy: RetryPolicy) -> dict[str, Any] | None:
    """The SubmitJob `retryStrategy` for a policy, or None when Batch should not retry."""
    attempts = policy.total_attempts
    if attempts <= 1:
        return None
    if policy.retry_on_any_failure:
        return {"attempts": attempts}
    rules: list[dict[str, str]] = [
        {"onStatusReason": SPOT_RECLAIM_GLOB, "action": "RETRY"},
        {"onReason": "*", "action": "EXIT"},
    ]
    assert len(rules) <= MAX_RULES
    return {"attempts": attempts, "evaluateOnExit": rules}


def is_spot_reclaim(status_reason: str | None) -> bool:
    """Whether a Batch status reason is a lost host (spot reclaim)."""
    return bool(status_reason) and str(status_reason).startswith("Host EC2")
