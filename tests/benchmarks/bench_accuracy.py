"""Accuracy of the reference workflows on fresh simulated data, run through the executor.

Simulates a region of C. elegans chromosome I (normal 30x, tumor 60x), runs the germline and
the somatic workflows with `snakemake --executor awsbatch --awsbatch-local`, compares the results
with the planted truth, and prints one JSON line last:
  {"germline": {"snv": {precision, recall, f1}, "indel": {...}},
   "somatic": {"snv": {...}, "indel": {...}, "snv_recall_by_vaf": {"0.05": r, ...}}, ...}
`--plain` runs the workflows with plain `snakemake -c 2` instead; `--combine-study` also
scores every way of combining the two germline callers (plain runs) to back the default.

    python tests/benchmarks/bench_accuracy.py [--region-length 500000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from workflows.demo import (  # noqa: E402
    BATCH_JOBS_IN_FLIGHT,
    RunResult,
    result_vcf,
    run_workflow,
    simulate_data,
)
from workflows.tools.compare import compare_vcfs  # noqa: E402

COMBINE_MODES = ("union", "consensus", "bcftools", "freebayes")


def _scores(result: dict[str, Any], somatic: bool) -> dict[str, Any]:
    """The benchmark's shape: precision/recall/F1 (+ counts) per type, VAF recall for somatic."""
    out: dict[str, Any] = {}
    for kind in ("snv", "indel"):
        stats = result[kind]
        out[kind] = {k: stats[k] for k in ("precision", "recall", "f1", "tp", "fp", "fn")}
    if somatic:
        out["snv_recall_by_vaf"] = result["snv_recall_by_vaf"]
        out["indel_recall_by_vaf"] = result["indel_recall_by_vaf"]
    return out


def _checked(run: RunResult) -> RunResult:
    if not run.ok:
        tail = "\n".join(run.log.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"{run.workflow} failed (exit {run.returncode}), log {run.log}:\n{tail}")
    return run


def main() -> int:
    """Run the benchmark; the last stdout line is the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region-length", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=BATCH_JOBS_IN_FLIGHT)
    parser.add_argument("--plain", action="store_true", help="plain snakemake -c 2")
    parser.add_argument("--combine-study", action="store_true")
    parser.add_argument("--workdir", type=Path, help="keep everything here (default: temp)")
    args = parser.parse_args()
    executor = not args.plain
    with tempfile.TemporaryDirectory(prefix="bench-accuracy-") as tmp:
        root = (args.workdir or Path(tmp)).resolve()
        data = simulate_data(root / "data", region_length=args.region_length, seed=args.seed)
        truth_g, truth_s = data / "truth/germline.vcf.gz", data / "truth/somatic.vcf.gz"
        ref = data / "reference.fa"
        report: dict[str, Any] = {
            "region_length": args.region_length,
            "seed": args.seed,
            "executor": "awsbatch-local" if executor else "plain",
        }
        germ = _checked(
            run_workflow("germline", root / "germline", data, executor=executor, jobs=args.jobs)
        )
        vcf = result_vcf("germline", germ.workdir, "normal")
        report["germline"] = _scores(compare_vcfs(truth_g, vcf, ref), somatic=False)
        print(f"germline: {json.dumps(report['germline'])}", file=sys.stderr)
        som = _checked(
            run_workflow("somatic", root / "somatic", data, executor=executor, jobs=args.jobs)
        )
        vcf = result_vcf("somatic", som.workdir, "tumor_vs_normal")
        report["somatic"] = _scores(compare_vcfs(truth_s, vcf, ref, somatic=True), somatic=True)
        report["wall_seconds"] = {
            "germline": round(germ.wall_seconds, 1),
            "somatic": round(som.wall_seconds, 1),
        }
        report["batch_jobs"] = {"germline": germ.batch_jobs, "somatic": som.batch_jobs}
        if args.combine_study:
            study: dict[str, Any] = {}
            for mode in COMBINE_MODES:
                run = _checked(
                    run_workflow(
                        "germline", root / "combine-study", data, executor=False,
                        extra_config={"combine": mode},
                    )
                )  # fmt: skip
                vcf = result_vcf("germline", run.workdir, "normal")
                study[mode] = _scores(compare_vcfs(truth_g, vcf, ref), somatic=False)
                print(f"combine={mode}: {json.dumps(study[mode])}", file=sys.stderr)
            report["germline_combine_study"] = study
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
