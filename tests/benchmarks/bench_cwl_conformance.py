"""Benchmark: the whole CWL v1.2 conformance suite through `cwl-awsbatch --local`.

Prints a summary per failure, then ONE JSON line last:
{"passed": N, "failed": N, "unsupported": N, "total": N, "seconds": S, ...}.
Usage: .venv/bin/python tests/benchmarks/bench_cwl_conformance.py [--tags TAGS] [-j N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.cwl.conformance import known_failures, run_suite


def main() -> int:
    """Run the suite and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tags", default=None, help="only tests with these tags (cwltest --tags)")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=180, help="seconds per test")
    parser.add_argument("--log", type=Path, default=None, help="write cwltest's progress here")
    parser.add_argument("-n", "--numbers", default=None, help="only these tests (cwltest -n)")
    args = parser.parse_args()
    result = run_suite(
        args.tags, jobs=args.jobs, timeout=args.timeout, log_path=args.log, numbers=args.numbers
    )
    known = known_failures()
    for name in sorted(result.failed):
        print(f"FAILED {name}: {known.get(name, 'NOT IN tests/cwl/known_failures.yaml')}")
    for name in sorted(result.unsupported):
        print(f"UNSUPPORTED {name}")
    summary = {
        "passed": len(result.passed),
        "failed": len(result.failed),
        "unsupported": len(result.unsupported),
        "total": result.total,
        "seconds": round(result.seconds, 1),
        "unexplained_failures": sorted(set(result.failed) - set(known)),
        "tags": args.tags or "all",
        "numbers": args.numbers or "all",
        "jobs": args.jobs,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
