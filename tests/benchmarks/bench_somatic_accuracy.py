"""Somatic accuracy benchmark: simulate, align, call candidates, classify, compare to the truth.

Usage: .venv/bin/python tests/benchmarks/bench_somatic_accuracy.py [--region-length BP]
       [--workdir DIR] [--threads N] [--seed N]
Prints progress on stderr and ONE JSON line last on stdout with accuracy and timings.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workflows.tools.compare import compare_vcfs
from workflows.tools.simulate import SimParams, simulate
from workflows.tools.somatic_classify import main as classify_main


def _sh(cmd: str, cwd: Path) -> None:
    """Run a shell pipeline, failing loudly."""
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=cwd, check=True)


def run(workdir: Path, region_length: int | None, threads: int, seed: int) -> dict[str, object]:
    """Run every step in `workdir`; returns the figures."""
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    simulate(SimParams(outdir=workdir, region_length=region_length, seed=seed))
    timings["simulate_s"] = time.monotonic() - t0
    t0 = time.monotonic()
    _sh("bwa index reference.fa 2>/dev/null", workdir)
    for s in ("normal", "tumor"):
        _sh(
            f"bwa mem -t {threads} -R '@RG\\tID:{s}\\tSM:{s}' reference.fa "
            f"reads/{s}_R1.fastq.gz reads/{s}_R2.fastq.gz 2>/dev/null "
            f"| samtools sort -@ {threads} -o {s}.bam - && samtools index {s}.bam",
            workdir,
        )
    timings["align_s"] = time.monotonic() - t0
    t0 = time.monotonic()
    _sh(
        "freebayes -f reference.fa --min-alternate-fraction 0.02 --min-alternate-count 2 "
        "--pooled-continuous tumor.bam normal.bam | bgzip > candidates.vcf.gz",
        workdir,
    )
    timings["candidates_s"] = time.monotonic() - t0
    t0 = time.monotonic()
    code = classify_main(
        [
            "--candidates", str(workdir / "candidates.vcf.gz"),
            "--tumor-bam", str(workdir / "tumor.bam"),
            "--normal-bam", str(workdir / "normal.bam"),
            "--reference", str(workdir / "reference.fa"),
            "--out", str(workdir / "somatic.vcf.gz"),
        ]
    )  # fmt: skip
    if code:
        raise SystemExit(code)
    timings["classify_s"] = time.monotonic() - t0
    result = compare_vcfs(
        workdir / "truth/somatic.vcf.gz",
        workdir / "somatic.vcf.gz",
        workdir / "reference.fa",
        somatic=True,
    )
    figures: dict[str, object] = {
        "benchmark": "somatic_accuracy",
        "region_length": region_length,
        "seed": seed,
    }
    figures.update(result)
    figures.update({k: round(v, 2) for k, v in timings.items()})
    return figures


def main() -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--region-length", type=int, default=None, help="default: all of ce.fa")
    ap.add_argument("--workdir", type=Path, default=None, help="default: a temporary directory")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ns = ap.parse_args()
    if ns.workdir is not None:
        ns.workdir.mkdir(parents=True, exist_ok=True)
        figures = run(ns.workdir, ns.region_length, ns.threads, ns.seed)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            figures = run(Path(tmp), ns.region_length, ns.threads, ns.seed)
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
