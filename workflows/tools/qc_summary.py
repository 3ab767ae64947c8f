"""One sample's QC summary as a two-column TSV (metric, value) from the reports of fastp,
samtools markdup, samtools flagstat, mosdepth and the final VCF.

A command line of the project (installed in the job image), used by both the Snakemake and the CWL
workflow:
    python3 -m workflows.tools.qc_summary SAMPLE FASTP MARKDUP FLAGSTAT MOSDEPTH VCF OUT_TSV
A shell command rather than a Snakemake `script:`, so that on Batch the step runs directly,
without Snakemake starting in its job.
"""

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pysam


def fastp_reads(path: Path) -> tuple[int, int]:
    """Reads before and after fastp's filtering."""
    summary = json.loads(path.read_text())["summary"]
    return int(summary["before_filtering"]["total_reads"]), int(
        summary["after_filtering"]["total_reads"]
    )


def mapped_percent(path: Path) -> float | None:
    """The percentage of mapped reads from `samtools flagstat`."""
    for line in path.read_text().splitlines():
        match = re.search(r" mapped \(([0-9.]+)%", line)
        if match:
            return float(match.group(1))
    return None


def duplicate_fraction(path: Path) -> float | None:
    """Duplicate reads over examined reads from `samtools markdup -f`."""
    fields: dict[str, int] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        if value.strip().isdigit():
            fields[key.strip()] = int(value)
    reads = fields.get("READ", 0)
    return fields.get("DUPLICATE TOTAL", 0) / reads if reads else None


def mean_depth(path: Path) -> float | None:
    """The genome-wide mean depth from a mosdepth summary."""
    for line in path.read_text().splitlines():
        cols = line.split("\t")
        if cols[0] == "total" and len(cols) >= 4:
            return float(cols[3])
    return None


def variant_counts(path: Path) -> dict[str, int]:
    """PASS SNV and indel alleles, and records that did not pass."""
    counts = {"pass_snvs": 0, "pass_indels": 0, "filtered_records": 0}
    with pysam.VariantFile(str(path)) as vcf:
        for rec in vcf:
            if list(rec.filter.keys()) not in ([], ["PASS"]):
                counts["filtered_records"] += 1
                continue
            for alt in rec.alts or ():
                key = "pass_snvs" if len(rec.ref or "") == len(alt) == 1 else "pass_indels"
                counts[key] += 1
    return counts


def summarise(sample: str, reports: Sequence[Path]) -> list[tuple[str, str]]:
    """The summary rows from the five reports (fastp, markdup, flagstat, mosdepth, VCF)."""
    fastp, markdup, flagstat, mosdepth, vcf = reports
    reads_in, reads_kept = fastp_reads(fastp)
    rows: list[tuple[str, Any]] = [
        ("sample", sample),
        ("reads_in", reads_in),
        ("reads_after_trimming", reads_kept),
        ("mapped_percent", mapped_percent(flagstat)),
        ("duplicate_fraction", duplicate_fraction(markdup)),
        ("mean_depth", mean_depth(mosdepth)),
        *variant_counts(vcf).items(),
    ]
    return [(key, "NA" if value is None else _fmt(value)) for key, value in rows]


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_tsv(rows: Sequence[tuple[str, str]], out: Path) -> None:
    """Write the rows under a `metric value` header."""
    out.write_text("".join(f"{k}\t{v}\n" for k, v in [("metric", "value"), *rows]))


def main(argv: Sequence[str]) -> int:
    """Command-line entry: SAMPLE FASTP MARKDUP FLAGSTAT MOSDEPTH VCF OUT."""
    if len(argv) != 7:
        print(__doc__, file=sys.stderr)
        return 2
    write_tsv(summarise(argv[0], [Path(p) for p in argv[1:6]]), Path(argv[6]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
