"""Overhead of running the germline workflow through the executor on the local cloud.

Simulates one data set, runs the germline workflow on it twice in one invocation, plainly
(`snakemake -c 2`) and through `snakemake --executor awsbatch --awsbatch-local`, checks that both
produce the same calls, and prints one JSON line last:
  {"plain_seconds": p, "executor_seconds": e, "ratio": e / p, "batch_jobs": n, ...}

    python tests/benchmarks/bench_overhead.py [--region-length 200000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pysam

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from workflows.demo import (  # noqa: E402
    BATCH_JOBS_IN_FLIGHT,
    LOCAL_STATUS_INTERVAL_SECONDS,
    RunResult,
    result_vcf,
    run_workflow,
    simulate_data,
)


def _records(vcf: Path) -> list[tuple[str, int, str, str]]:
    with pysam.VariantFile(str(vcf)) as handle:
        return [(r.chrom, r.pos, r.ref or "", ",".join(r.alts or ())) for r in handle]


def _checked(run: RunResult) -> RunResult:
    if not run.ok:
        raise SystemExit(f"the {run.workflow} run failed (exit {run.returncode}); see {run.log}")
    return run


def main() -> int:
    """Run the benchmark; the last stdout line is the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region-length", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=BATCH_JOBS_IN_FLIGHT)
    parser.add_argument("--scatter", type=int, default=4)
    parser.add_argument("--workdir", type=Path, help="keep everything here (default: temp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        root = (args.workdir or Path(tmp)).resolve()
        data = simulate_data(
            root / "data", region_length=args.region_length, seed=args.seed, tumor=False
        )
        config = {"scatter": args.scatter}
        plain = _checked(
            run_workflow("germline", root / "plain", data, executor=False, extra_config=config)
        )
        batch = _checked(
            run_workflow(
                "germline", root / "executor", data, executor=True, jobs=args.jobs,
                extra_config=config,
            )
        )  # fmt: skip
        same = _records(result_vcf("germline", plain.workdir, "normal")) == _records(
            result_vcf("germline", batch.workdir, "normal")
        )
    print(
        json.dumps(
            {
                "region_length": args.region_length,
                "scatter": args.scatter,
                "plain_seconds": round(plain.wall_seconds, 1),
                "executor_seconds": round(batch.wall_seconds, 1),
                "ratio": round(batch.wall_seconds / plain.wall_seconds, 2),
                "batch_jobs": batch.batch_jobs,
                "same_calls": same,
                "seconds_between_status_checks": LOCAL_STATUS_INTERVAL_SECONDS,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
