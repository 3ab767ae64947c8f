"""Run the CWL v1.2 conformance suite through `cwl-awsbatch --local` on one shared local cloud.

Used by the pytest test (the `required` tag) and by the benchmark (the whole suite). One local
cloud serves every cwltest invocation: `--local` reuses it through CWL_AWSBATCH_LOCAL_* variables.
Every selected test is accounted for: one cwltest never reported (it crashed or was killed) is
counted as failed and listed in `not_run`, and one that hit the time limit is in `timed_out`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from cwltest.utils import load_and_validate_tests, shortname
from ruamel.yaml import YAML

from snakemake_executor_awsbatch.localcloud import LocalCloud

REPO = Path(__file__).resolve().parents[2]
SUITE_CANDIDATES = (REPO.parent / "shared" / "cwl-v1.2", Path("/work/shared/cwl-v1.2"))
KNOWN_FAILURES = Path(__file__).with_name("known_failures.yaml")
# cwltest's junit failure message for a test killed at --timeout.
TIMEOUT_MESSAGE = "Test timed out"
# cwltest logs every failure with the test's number in the (tag-filtered) suite.
_LOGGED_FAILURE = re.compile(r"^Test (\d+) (failed|timed out): ", re.MULTILINE)


def suite_dir() -> Path:
    """Where the CWL v1.2 conformance suite lives (shared/ beside the repository)."""
    for candidate in SUITE_CANDIDATES:
        if (candidate / "conformance_tests.yaml").is_file():
            return candidate
    raise FileNotFoundError("the CWL v1.2 conformance suite (shared/cwl-v1.2) is not present")


def known_failures() -> dict[str, str]:
    """Test id -> the written reason it fails with cwl-awsbatch."""
    loaded = YAML(typ="safe").load(KNOWN_FAILURES.read_text())
    return {str(k): str(v) for k, v in (loaded or {}).items()}


def _expand_numbers(numbers: str) -> list[int]:
    # Same syntax and 1-based numbering as cwltest -n: "1-100,150".
    picked: list[int] = []
    for part in numbers.split(","):
        low, _, high = part.partition("-")
        picked.extend(range(int(low), int(high or low) + 1))
    return picked


@cache
def _suite_tests() -> list[tuple[str, frozenset[str]]]:
    # Loading validates the whole suite against cwltest's schema: slow, so once per process.
    cwd = os.getcwd()
    os.chdir(suite_dir())  # the suite's $import paths are relative to it
    try:
        tests: list[dict[str, Any]] = load_and_validate_tests("conformance_tests.yaml")[0]
    finally:
        os.chdir(cwd)
    return [
        (shortname(str(t.get("id", t.get("label", "")))), frozenset(t.get("tags", [])))
        for t in tests
    ]


def selected_tests(tags: str | None = None, numbers: str | None = None) -> list[str]:
    """The ids of the tests cwltest will run for `tags` and `numbers`, in suite order."""
    tests = _suite_tests()
    if tags:
        wanted = set(tags.split(","))
        tests = [t for t in tests if wanted.intersection(t[1])]
    ids = [name for name, _ in tests]
    if numbers:
        ids = [ids[n - 1] for n in _expand_numbers(numbers) if 0 < n <= len(ids)]
    return ids


@dataclass
class SuiteResult:
    """What one cwltest run reported, with every selected test accounted for."""

    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)
    seconds: float = 0.0
    output: str = ""

    @property
    def total(self) -> int:
        """Tests selected (timed out and never-run tests are among the failed)."""
        return len(self.passed) + len(self.failed) + len(self.unsupported)

    def outcomes(self) -> dict[str, str]:
        """Test id -> passed, failed, timeout, not run or unsupported."""
        found = {name: "passed" for name in self.passed}
        found.update({name: "unsupported" for name in self.unsupported})
        found.update({name: "failed" for name in self.failed})
        found.update({name: "timeout" for name in self.timed_out})
        found.update({name: "not run" for name in self.not_run})
        return found


def _parse_junit(path: Path, expected: list[str]) -> SuiteResult:
    result = SuiteResult()
    cases = list(ET.parse(path).getroot().iter("testcase")) if path.is_file() else []
    # cwltest writes results in the order it was asked to run them (`expected`), but names the
    # i-th result after the suite's i-th test, which is wrong under -n: so name them by position.
    for name, case in zip(expected, cases, strict=False):
        failure = case.find("failure")
        if failure is not None or case.find("error") is not None:
            result.failed.append(name)
            said = "" if failure is None else f"{failure.get('message')} {failure.text}"
            if TIMEOUT_MESSAGE in said:
                result.timed_out.append(name)
        elif case.find("skipped") is not None:
            result.unsupported.append(name)
        else:
            result.passed.append(name)
    result.not_run = expected[len(cases) :]
    result.failed.extend(result.not_run)
    return result


def reconcile_with_log(result: SuiteResult, log_text: str, tags: str | None) -> None:
    """Count as failed every test cwltest's log says failed or timed out.

    cwltest's junit shows a `should_fail` test that wrongly succeeded as passed (its failure has
    no message, so no <failure> element is written); its log names it."""
    suite = selected_tests(tags)
    for number, how in _LOGGED_FAILURE.findall(log_text):
        name = suite[int(number) - 1]
        if name in result.passed:
            result.passed.remove(name)
            result.failed.append(name)
        if how == "timed out" and name not in result.timed_out:
            result.timed_out.append(name)


def run_suite(
    tags: str | None,
    jobs: int = 2,
    timeout: int = 120,
    log_path: Path | None = None,
    numbers: str | None = None,
) -> SuiteResult:
    """Run cwltest (optionally only `tags`) with cwl-awsbatch --local on one local cloud;
    cwltest's progress goes to `log_path` as it runs (a temporary file when None)."""
    tool = shutil.which("cwl-awsbatch", path=str(Path(sys.executable).parent))
    if tool is None:
        raise FileNotFoundError("cwl-awsbatch is not installed; run pip install -e . --no-deps")
    cwltest = str(Path(sys.executable).parent / "cwltest")
    expected = selected_tests(tags, numbers)
    with tempfile.TemporaryDirectory(prefix="cwl-conformance-") as scratch:
        junit = Path(scratch) / "junit.xml"
        # Generous vCPUs: jobs run as host processes, and some tests ask for several cores.
        with LocalCloud(state_dir=Path(scratch) / "cloud", vcpus=16) as cloud:
            env = dict(os.environ)
            env.update(cloud.client_env())
            env.update(
                {
                    "CWL_AWSBATCH_LOCAL_ENDPOINT": cloud.endpoint_url,
                    "CWL_AWSBATCH_LOCAL_REGION": cloud.region,
                    "CWL_AWSBATCH_LOCAL_QUEUE": cloud.queue_name,
                    "TMPDIR": scratch,
                }
            )
            argv = [
                cwltest,
                "--test",
                "conformance_tests.yaml",
                "--tool",
                tool,
                "-j",
                str(jobs),
                "--timeout",
                str(timeout),
                "--junit-xml",
                str(junit),
            ]
            if tags:
                argv += ["--tags", tags]
            if numbers:
                argv += ["-n", numbers]
            argv += ["--", "--local", "--relax-path-checks"]
            start = time.monotonic()
            log = log_path or Path(scratch) / "cwltest.log"
            with open(log, "w", encoding="utf-8") as sink:
                subprocess.run(
                    argv,
                    cwd=suite_dir(),
                    env=env,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
            seconds = time.monotonic() - start
        result = _parse_junit(junit, expected)
        result.output = log.read_text(encoding="utf-8", errors="replace")
        reconcile_with_log(result, result.output, tags)
    result.seconds = seconds
    return result


def save_outcomes(result: SuiteResult, path: Path) -> None:
    """Write one run's per-test outcomes and seconds as JSON, for merging chunked runs."""
    path.write_text(json.dumps({"seconds": result.seconds, "outcomes": result.outcomes()}))


def merge_outcomes(paths: list[Path], expected: list[str]) -> SuiteResult:
    """Combine saved chunk outcomes; an expected test no chunk ran counts as failed, not run."""
    outcomes: dict[str, str] = {}
    merged = SuiteResult()
    for path in paths:
        saved = json.loads(path.read_text())
        outcomes.update({str(k): str(v) for k, v in saved["outcomes"].items()})
        merged.seconds += float(saved["seconds"])
    for name in expected:
        outcome = outcomes.get(name, "not run")
        if outcome == "passed":
            merged.passed.append(name)
        elif outcome == "unsupported":
            merged.unsupported.append(name)
        else:
            merged.failed.append(name)
            if outcome == "timeout":
                merged.timed_out.append(name)
            elif outcome == "not run":
                merged.not_run.append(name)
    return merged
