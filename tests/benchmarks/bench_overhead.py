"""Overhead of running the germline workflow through the executor on the local cloud.

Simulates one data set (by default the accuracy benchmark's 500 kbp), runs the germline workflow
on it plainly (`snakemake -c 2`) and through `snakemake --executor awsbatch --awsbatch-local`,
`--rounds` times each in alternating order, checks that every run produces the same calls, and
prints one JSON line last with the medians (and each round, and the load average):
  {"plain_seconds": p, "executor_seconds": e, "ratio": e / p, "batch_jobs": n, ...}

    python tests/benchmarks/bench_overhead.py [--region-length 500000] [--rounds 3] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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
    # The accuracy benchmark's data size by default: the overhead is measured on the same data.
    parser.add_argument("--region-length", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=BATCH_JOBS_IN_FLIGHT)
    parser.add_argument("--scatter", type=int, default=4)
    parser.add_argument(
        "--rounds", type=int, default=3, help="runs of each, alternating which goes first"
    )
    parser.add_argument("--workdir", type=Path, help="keep everything here (default: temp)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    plain_times: list[float] = []
    batch_times: list[float] = []
    same = True
    batch_jobs: int | None = None
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        root = (args.workdir or Path(tmp)).resolve()
        data = simulate_data(
            root / "data", region_length=args.region_length, seed=args.seed, tumor=False
        )
        config = {"scatter": args.scatter}
        for number in range(args.rounds):
            # Alternate the order, so that neither side always meets a warmer page cache.
            runs: dict[bool, RunResult] = {}
            for executor in (False, True) if number % 2 == 0 else (True, False):
                workdir = root / f"{'executor' if executor else 'plain'}-{number}"
                runs[executor] = _checked(
                    run_workflow(
                        "germline", workdir, data, executor=executor, jobs=args.jobs,
                        extra_config=config,
                    )
                )  # fmt: skip
            plain, batch = runs[False], runs[True]
            plain_times.append(plain.wall_seconds)
            batch_times.append(batch.wall_seconds)
            batch_jobs = batch.batch_jobs
            same = same and _records(result_vcf("germline", plain.workdir, "normal")) == _records(
                result_vcf("germline", batch.workdir, "normal")
            )
            print(
                f"round {number + 1}: plain {plain.wall_seconds:.1f} s, "
                f"executor {batch.wall_seconds:.1f} s",
                flush=True,
            )
    plain_median = statistics.median(plain_times)
    batch_median = statistics.median(batch_times)
    print(
        json.dumps(
            {
                "region_length": args.region_length,
                "scatter": args.scatter,
                "rounds": args.rounds,
                "plain_seconds": round(plain_median, 1),
                "executor_seconds": round(batch_median, 1),
                "ratio": round(batch_median / plain_median, 2),
                "plain_rounds": [round(t, 1) for t in plain_times],
                "executor_rounds": [round(t, 1) for t in batch_times],
                "batch_jobs": batch_jobs,
                "same_calls": same,
                "seconds_between_status_checks": LOCAL_STATUS_INTERVAL_SECONDS,
                "load_average_before": round(load_before, 2),
                "load_average_after": round(os.getloadavg()[0], 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
