"""The CWL v1.2 conformance suite's `required` tests through cwl-awsbatch on the local cloud, and
how its results are read (cwltest's junit, timeouts, tests that never ran, merged chunks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conformance import (
    SuiteResult,
    _parse_junit,
    known_failures,
    merge_outcomes,
    reconcile_with_log,
    run_suite,
    save_outcomes,
    selected_tests,
)


@pytest.mark.e2e
@pytest.mark.timeout(1500)
def test_required_conformance_failures_are_all_known() -> None:
    result = run_suite("required", jobs=2, timeout=300)
    known = known_failures()
    assert result.total > 50, result.output[-3000:]
    unexplained = sorted(set(result.failed) - set(known))
    assert not unexplained, f"new conformance failures: {unexplained}\n{result.output[-5000:]}"
    assert all(reason.strip() for reason in known.values())


# What cwltest writes for `-n 3-5`: three results named after the suite's tests 1-3 (its bug).
JUNIT = """<?xml version="1.0" ?>
<testsuites><testsuite name="conformance_tests" tests="3">
<testcase name="a" file="cl_basic_generation"/>
<testcase name="b" file="nested_prefixes_arrays"><failure type="failure">Test timed out</failure>
</testcase>
<testcase name="c" file="nested_cl_bindings"><skipped/></testcase>
</testsuite></testsuites>
"""


def test_results_are_named_by_position_and_missing_ones_are_not_run(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT)
    result = _parse_junit(junit, ["t3", "t4", "t5", "t6"])
    assert result.passed == ["t3"]
    assert result.timed_out == ["t4"]
    assert result.unsupported == ["t5"]
    assert result.not_run == ["t6"]
    assert result.failed == ["t4", "t6"]
    assert result.total == 4


def test_no_junit_means_nothing_ran(tmp_path: Path) -> None:
    result = _parse_junit(tmp_path / "absent.xml", ["t1", "t2"])
    assert result.not_run == ["t1", "t2"] and result.failed == ["t1", "t2"]


def test_merge_counts_every_expected_test(tmp_path: Path) -> None:
    first = SuiteResult(passed=["t1"], failed=["t2"], timed_out=["t2"], seconds=2.0)
    second = SuiteResult(unsupported=["t3"], seconds=3.0)
    save_outcomes(first, tmp_path / "a.json")
    save_outcomes(second, tmp_path / "b.json")
    merged = merge_outcomes([tmp_path / "a.json", tmp_path / "b.json"], ["t1", "t2", "t3", "t4"])
    assert (merged.passed, merged.unsupported) == (["t1"], ["t3"])
    assert (merged.failed, merged.timed_out, merged.not_run) == (["t2", "t4"], ["t2"], ["t4"])
    assert merged.total == 4 and merged.seconds == 5.0


def test_selection_follows_cwltest_numbering() -> None:
    everything = selected_tests()
    assert len(everything) == 378
    assert selected_tests(numbers="2-3,378") == [everything[1], everything[2], everything[377]]
    assert set(selected_tests(tags="required")) < set(everything)


def test_a_failure_only_the_log_names_is_a_failure() -> None:
    suite = selected_tests()
    result = SuiteResult(passed=[suite[234], suite[0]])
    log = f"Test 235 failed: cwl-awsbatch x.cwl\nTest [1/378] {suite[0]}: ok\n"
    reconcile_with_log(result, log, None)
    assert (result.passed, result.failed) == ([suite[0]], [suite[234]])
