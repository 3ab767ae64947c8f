"""The end-of-run summary of a germline workflow run: VCF, counts, accuracy, time, Batch jobs."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pysam

from workflows.demo import RunResult, result_vcf
from workflows.tools.compare import compare_vcfs


def count_variants(vcf: Path) -> dict[str, int]:
    """PASS SNV and indel alleles of a VCF, and the records that did not pass."""
    counts = {"pass_snvs": 0, "pass_indels": 0, "filtered_records": 0}
    with pysam.VariantFile(str(vcf)) as handle:
        for rec in handle:
            if list(rec.filter.keys()) not in ([], ["PASS"]):
                counts["filtered_records"] += 1
                continue
            for alt in rec.alts or ():
                kind = "pass_snvs" if len(rec.ref or "") == len(alt) == 1 else "pass_indels"
                counts[kind] += 1
    return counts


def read_qc(path: Path) -> dict[str, str]:
    """The QC summary TSV the workflow writes (metric -> value)."""
    with path.open(newline="") as handle:
        return {row["metric"]: row["value"] for row in csv.DictReader(handle, delimiter="\t")}


def germline_summary(run: RunResult, data_dir: Path, sample: str) -> dict[str, Any]:
    """Everything the demo reports about one germline run, as JSON-ready data."""
    vcf = result_vcf("germline", run.workdir, sample)
    accuracy = compare_vcfs(
        data_dir / "truth" / "germline.vcf.gz", vcf, data_dir / "reference.fa", somatic=False
    )
    qc_path = vcf.parent / f"{sample}.qc.tsv"
    return {
        "vcf": str(vcf),
        "counts": count_variants(vcf),
        "accuracy": {k: accuracy[k] for k in ("snv", "indel")},
        "qc": read_qc(qc_path) if qc_path.exists() else {},
        "wall_seconds": round(run.wall_seconds, 1),
        "executor": "awsbatch (local cloud)" if run.executor else "local (snakemake -c)",
        "batch_jobs": run.batch_jobs,
        "staging": _staging(run.totals),
    }


def _staging(totals: dict[str, Any] | None) -> dict[str, Any] | None:
    if not totals:
        return None
    keys = ("bytes_in", "bytes_out", "files_in", "files_out", "direct_shell_jobs", "jobs")
    return {key: totals.get(key, 0) for key in keys}


def _num(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def format_summary(summary: dict[str, Any]) -> str:
    """A short human-readable block for the terminal."""
    counts = summary["counts"]
    lines = [
        "",
        "== germline workflow summary",
        f"VCF:          {summary['vcf']}",
        f"variants:     {counts['pass_snvs']} SNVs, {counts['pass_indels']} indels PASS "
        f"({counts['filtered_records']} records filtered)",
    ]
    qc = summary.get("qc") or {}
    if qc:
        lines.append(
            f"QC:           {qc.get('mean_depth', 'NA')}x mean depth, "
            f"{qc.get('mapped_percent', 'NA')}% mapped, "
            f"{qc.get('duplicate_fraction', 'NA')} duplicates"
        )
    lines.append("accuracy:     type   precision  recall     F1         (tp/fp/fn)")
    for kind in ("snv", "indel"):
        acc = summary["accuracy"][kind]
        lines.append(
            f"              {kind:<6} {_num(acc['precision']):<10} {_num(acc['recall']):<10} "
            f"{_num(acc['f1']):<10} ({acc['tp']}/{acc['fp']}/{acc['fn']})"
        )
    lines.append(f"wall time:    {summary['wall_seconds']} s ({summary['executor']})")
    if summary["batch_jobs"] is not None:
        lines.append(f"Batch jobs:   {summary['batch_jobs']}")
    staging = summary.get("staging")
    if staging:
        mib_in, mib_out = staging["bytes_in"] / 2**20, staging["bytes_out"] / 2**20
        lines.append(
            f"staged:       {mib_in:.1f} MiB in ({staging['files_in']} files), "
            f"{mib_out:.1f} MiB out ({staging['files_out']} files) through S3; "
            f"{staging['direct_shell_jobs']} of {staging['jobs']} jobs ran their command directly"
        )
    return "\n".join(lines)
