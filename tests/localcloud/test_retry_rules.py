"""Batch's evaluateOnExit matching (first matching rule wins; no match means retry)."""

from __future__ import annotations

from snakemake_executor_awsbatch.localcloud.retry import retry_action

SPOT = "Host EC2 (instance i-0abc) terminated."
RULES = [
    {"onStatusReason": "Host EC2*", "action": "RETRY"},
    {"onExitCode": "13*", "onReason": "OutOfMemory*", "action": "retry"},
    {"onReason": "*", "action": "EXIT"},
]


def test_first_matching_rule_wins() -> None:
    assert retry_action(RULES, None, None, SPOT) == "RETRY"
    assert retry_action(RULES, 137, "OutOfMemoryError: Container killed", "x") == "RETRY"
    assert retry_action(RULES, 1, None, "Essential container in task exited") == "EXIT"


def test_all_fields_of_a_rule_must_match() -> None:
    assert retry_action(RULES, 1, "OutOfMemoryError: Container killed", "x") == "EXIT"


def test_no_rules_or_no_match_means_retry() -> None:
    assert retry_action([], 3, None, "Essential container in task exited") == "RETRY"
    assert retry_action([{"onExitCode": "2", "action": "EXIT"}], 3, None, "x") == "RETRY"
