"""The CWL v1.2 conformance suite's `required` tests through cwl-awsbatch on the local cloud."""

from __future__ import annotations

import pytest

from .conformance import known_failures, run_suite


@pytest.mark.e2e
@pytest.mark.timeout(1500)
def test_required_conformance_failures_are_all_known() -> None:
    result = run_suite("required", jobs=2, timeout=300)
    known = known_failures()
    assert result.total > 50, result.output[-3000:]
    unexplained = sorted(set(result.failed) - set(known))
    assert not unexplained, f"new conformance failures: {unexplained}\n{result.output[-5000:]}"
    assert all(reason.strip() for reason in known.values())
