"""Run the CWL v1.2 conformance suite through `cwl-awsbatch --local` on one shared local cloud.

Used by the pytest test (the `required` tag) and by the benchmark (the whole suite). One local
cloud serves every cwltest invocation: `--local` reuses it through CWL_AWSBATCH_LOCAL_* variables.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml import YAML

from snakemake_executor_awsbatch.localcloud import LocalCloud

REPO = Path(__file__).resolve().parents[2]
SUITE_CANDIDATES = (REPO.parent / "shared" / "cwl-v1.2", Path("/work/shared/cwl-v1.2"))
KNOWN_FAILURES = Path(__file__).with_name("known_failures.yaml")


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


@dataclass
class SuiteResult:
    """What one cwltest run reported."""

    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    seconds: float = 0.0
    output: str = ""

    @property
    def total(self) -> int:
        """Tests run."""
        return len(self.passed) + len(self.failed) + len(self.unsupported)


def _parse_junit(path: Path) -> SuiteResult:
    result = SuiteResult()
    for case in ET.parse(path).getroot().iter("testcase"):
        # cwltest names a case by its doc string and puts the test id in `file`.
        name = str(case.get("file") or case.get("name") or "")
        skipped = case.find("skipped")
        if case.find("failure") is not None or case.find("error") is not None:
            result.failed.append(name)
        elif skipped is not None:
            result.unsupported.append(name)
        else:
            result.passed.append(name)
    return result


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
        result = _parse_junit(junit)
        result.output = log.read_text(encoding="utf-8", errors="replace")
    result.seconds = seconds
    return result
