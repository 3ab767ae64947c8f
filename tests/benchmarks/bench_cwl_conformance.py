"""Benchmark: the whole CWL v1.2 conformance suite through `cwl-awsbatch --local`.

Prints one line per failure with its reason (timeouts and tests that never ran say so), then ONE
JSON line last: {"passed": N, "failed": N, "unsupported": N, "total": N, "seconds": S, ...}.
"total" counts every selected test (378 for the whole suite), whether it ran or not.

Usage:
  .venv/bin/python tests/benchmarks/bench_cwl_conformance.py [--tags T] [-n 1-100] [-j N]
      [--log run.log] [--save chunk.json]
  .venv/bin/python tests/benchmarks/bench_cwl_conformance.py --merge chunk1.json chunk2.json ...
(--merge combines chunked runs' saved outcomes into one result for the whole suite.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.cwl.conformance import (
    SuiteResult,
    known_failures,
    merge_outcomes,
    run_suite,
    save_outcomes,
    selected_tests,
)


def _report(result: SuiteResult, args: argparse.Namespace) -> None:
    known = known_failures()
    timed_out, not_run = set(result.timed_out), set(result.not_run)
    for name in sorted(result.failed):
        if name in timed_out:
            why = "timeout"
        elif name in not_run:
            why = "not run (cwltest never reported it)"
        else:
            why = known.get(name, "NOT IN tests/cwl/known_failures.yaml")
        print(f"FAILED {name}: {why}")
    for name in sorted(result.unsupported):
        print(f"UNSUPPORTED {name}")
    summary = {
        "passed": len(result.passed),
        "failed": len(result.failed),
        "unsupported": len(result.unsupported),
        "total": result.total,
        "seconds": round(result.seconds, 1),
        "timed_out": sorted(timed_out),
        "not_run": sorted(not_run),
        "unexplained_failures": sorted(set(result.failed) - set(known) - timed_out - not_run),
        "tags": args.tags or "all",
        "numbers": args.numbers or "all",
        "jobs": args.jobs,
        "timeout": args.timeout,
    }
    print(json.dumps(summary))


def main() -> int:
    """Run the suite (or merge saved chunks) and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tags", default=None, help="only tests with these tags (cwltest --tags)")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=180, help="seconds per test")
    parser.add_argument("--log", type=Path, default=None, help="write cwltest's progress here")
    parser.add_argument("-n", "--numbers", default=None, help="only these tests (cwltest -n)")
    parser.add_argument("--save", type=Path, default=None, help="write per-test outcomes here")
    parser.add_argument(
        "--merge", type=Path, nargs="+", default=None, help="combine --save files, run nothing"
    )
    args = parser.parse_args()
    if args.merge:
        result = merge_outcomes(args.merge, selected_tests(args.tags, args.numbers))
    else:
        result = run_suite(
            args.tags, jobs=args.jobs, timeout=args.timeout, log_path=args.log, numbers=args.numbers
        )
        if args.save:
            save_outcomes(result, args.save)
    _report(result, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
