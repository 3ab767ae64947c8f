"""Simulate a germline normal and a tumor with known variants, as paired-end FASTQ plus truth VCFs.

Germline SNVs and small indels are planted on two haplotypes (het or hom); the tumor carries the
normal's haplotypes plus somatic SNVs and indels, each on one haplotype of a clonal fraction so
that the expected fraction of tumor reads carrying it equals its VAF. Reads are drawn from the
haplotypes with a normal fragment-size distribution and uniform substitution errors whose rate
matches the (constant) base quality. A fixed seed gives byte-identical output.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import pysam

from snakemake_executor_awsbatch.errors import UserError
from workflows.tools.sim_genome import (
    DEFAULT_REFERENCE,
    Planted,
    SimParams,
    build_haplotypes,
    load_contigs,
    plant_variants,
)
from workflows.tools.sim_reads import base_quality, simulate_reads
from workflows.tools.vcf_utils import contig_header_lines, write_vcf_gz

__all__ = ["DEFAULT_REFERENCE", "SimParams", "base_quality", "main", "simulate"]


def _write_reference(contigs: list[tuple[str, str]], path: Path) -> None:
    """Write the simulated reference FASTA (60 columns) and its .fai."""
    with path.open("w") as handle:
        for name, seq in contigs:
            handle.write(f">{name}\n")
            for i in range(0, len(seq), 60):
                handle.write(seq[i : i + 60] + "\n")
    pysam.faidx(str(path))


def _gt(haps: tuple[int, ...]) -> str:
    """Phased genotype of a germline variant from the haplotypes that carry it."""
    return "1|1" if len(haps) == 2 else ("1|0" if haps == (0,) else "0|1")


def write_truth(
    outdir: Path,
    contigs: list[tuple[str, str]],
    germline: list[Planted],
    somatic: list[Planted],
    tumor: bool,
) -> None:
    """Write truth/germline.vcf.gz (sample 'normal') and truth/somatic.vcf.gz (INFO/VAF)."""
    header = ["##fileformat=VCFv4.2", "##source=workflows.tools.simulate"]
    header += contig_header_lines((name, len(seq)) for name, seq in contigs)
    germ_header = [
        *header,
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Phased genotype">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tnormal",
    ]
    germ_body = (
        f"{v.chrom}\t{v.pos0 + 1}\t.\t{v.ref}\t{v.alt}\t.\tPASS\t.\tGT\t{_gt(v.haps)}"
        for v in germline
    )
    write_vcf_gz(outdir / "truth" / "germline.vcf.gz", germ_header, germ_body)
    if not tumor:
        return
    som_header = [
        *header,
        '##INFO=<ID=VAF,Number=1,Type=Float,Description="Expected tumor read fraction">',
        '##INFO=<ID=HAP,Number=1,Type=Integer,Description="Haplotype (0 or 1) carrying it">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ]
    som_body = (
        f"{v.chrom}\t{v.pos0 + 1}\t.\t{v.ref}\t{v.alt}\t.\tPASS\tVAF={v.vaf:g};HAP={v.haps[0]}"
        for v in somatic
    )
    write_vcf_gz(outdir / "truth" / "somatic.vcf.gz", som_header, som_body)


def _counts(variants: list[Planted]) -> dict[str, object]:
    """Summary counts of planted variants by type, zygosity and VAF."""
    by_vaf: dict[str, int] = {}
    for v in variants:
        by_vaf[f"{v.vaf:g}"] = by_vaf.get(f"{v.vaf:g}", 0) + 1
    return {
        "snv": sum(v.is_snv for v in variants),
        "indel": sum(not v.is_snv for v in variants),
        "hom": sum(len(v.haps) == 2 for v in variants),
        "by_vaf": dict(sorted(by_vaf.items())),
    }


def validate(params: SimParams) -> None:
    """Reject impossible parameters with one clear sentence each."""
    if params.read_length < 30 or params.read_length > 1000:
        raise UserError("--read-length must be between 30 and 1000; pass a value in that range.")
    if params.normal_depth <= 0 or params.tumor_depth <= 0:
        raise UserError("--normal-depth and --tumor-depth must be positive; pass depths above 0.")
    if not 0 <= params.error_rate < 0.1:
        raise UserError("--error-rate must be in [0, 0.1); pass a smaller rate.")
    if not params.vafs or any(not 0 < v <= 0.5 for v in params.vafs):
        raise UserError(
            "--vafs must be a comma-separated list of fractions in (0, 0.5] (a somatic allele "
            "sits on one of two haplotypes); fix the list."
        )
    for rate in (params.germline_snv_rate, params.germline_indel_rate):
        if not 0 <= rate <= 0.02:
            raise UserError("Germline variant rates must be in [0, 0.02]; pass a smaller rate.")
    if params.region_length is not None and params.region_length < 2 * params.fragment_mean:
        raise UserError(
            f"--region-length must be at least {2 * params.fragment_mean} bp; pass a longer region."
        )


def simulate(params: SimParams) -> dict[str, object]:
    """Run the whole simulation into `params.outdir`; returns the simulation.json content."""
    validate(params)
    contigs = load_contigs(params.reference, params.region_length)
    out = params.outdir
    (out / "reads").mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    _write_reference(contigs, out / "reference.fa")
    germline, somatic = plant_variants(params, contigs)
    write_truth(out, contigs, germline, somatic, params.tumor)
    haps = build_haplotypes(contigs, germline, somatic)
    pairs = {
        "normal": simulate_reads(
            params,
            haps,
            "normal",
            params.normal_depth,
            out / "reads" / "normal_R1.fastq.gz",
            out / "reads" / "normal_R2.fastq.gz",
        )
    }
    (out / "samples.tsv").write_text(
        "sample\tfq1\tfq2\nnormal\treads/normal_R1.fastq.gz\treads/normal_R2.fastq.gz\n"
    )
    if params.tumor:
        pairs["tumor"] = simulate_reads(
            params,
            haps,
            "tumor",
            params.tumor_depth,
            out / "reads" / "tumor_R1.fastq.gz",
            out / "reads" / "tumor_R2.fastq.gz",
        )
        (out / "pairs.tsv").write_text(
            "pair\ttumor_fq1\ttumor_fq2\tnormal_fq1\tnormal_fq2\n"
            "tumor_vs_normal\treads/tumor_R1.fastq.gz\treads/tumor_R2.fastq.gz\t"
            "reads/normal_R1.fastq.gz\treads/normal_R2.fastq.gz\n"
        )
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(params).items()}
    settings.pop("outdir")
    report: dict[str, object] = {
        "parameters": settings,
        "base_quality": base_quality(params.error_rate),
        "contigs": [{"name": n, "length": len(s)} for n, s in contigs],
        "germline": _counts(germline),
        "somatic": _counts(somatic),
        "read_pairs": pairs,
    }
    (out / "simulation.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report


def _vafs(text: str) -> tuple[float, ...]:
    """Parse a comma-separated VAF list."""
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of numbers"
        ) from None


def parse_args(argv: Sequence[str] | None) -> SimParams:
    """Parse the command line into SimParams."""
    ap = argparse.ArgumentParser(prog="python -m workflows.tools.simulate", description=__doc__)
    ap.add_argument("--outdir", required=True, type=Path, help="output directory")
    ap.add_argument(
        "--reference",
        type=Path,
        default=DEFAULT_REFERENCE,
        help="FASTA to simulate from (default: ce.fa from Debian htslib-test)",
    )
    ap.add_argument(
        "--region-length",
        type=int,
        default=None,
        help="use only the first BP bases of the first contig (default: everything)",
    )
    ap.add_argument("--normal-depth", type=float, default=30.0)
    ap.add_argument("--tumor-depth", type=float, default=60.0)
    ap.add_argument("--read-length", type=int, default=150)
    ap.add_argument("--fragment-mean", type=int, default=350)
    ap.add_argument("--fragment-sd", type=int, default=50)
    ap.add_argument(
        "--error-rate",
        type=float,
        default=0.001,
        help="substitution error rate per base; base quality matches it (default 0.001, Q30)",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--germline-snv-rate", type=float, default=0.001)
    ap.add_argument("--germline-indel-rate", type=float, default=0.0001)
    ap.add_argument("--somatic-snvs", type=int, default=None, help="default: one per 2 kbp")
    ap.add_argument("--somatic-indels", type=int, default=None, help="default: one per 10 kbp")
    ap.add_argument(
        "--vafs",
        type=_vafs,
        default=(0.05, 0.1, 0.2, 0.3, 0.5),
        help="somatic VAFs, assigned round-robin (default 0.05,0.1,0.2,0.3,0.5)",
    )
    ap.add_argument("--no-tumor", action="store_true", help="simulate only the normal sample")
    ns = ap.parse_args(argv)
    return SimParams(
        outdir=ns.outdir,
        reference=ns.reference,
        region_length=ns.region_length,
        normal_depth=ns.normal_depth,
        tumor_depth=ns.tumor_depth,
        read_length=ns.read_length,
        fragment_mean=ns.fragment_mean,
        fragment_sd=ns.fragment_sd,
        error_rate=ns.error_rate,
        seed=ns.seed,
        germline_snv_rate=ns.germline_snv_rate,
        germline_indel_rate=ns.germline_indel_rate,
        somatic_snvs=ns.somatic_snvs,
        somatic_indels=ns.somatic_indels,
        vafs=ns.vafs,
        tumor=not ns.no_tumor,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    try:
        report = simulate(parse_args(argv))
    except UserError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "germline": report["germline"],
                "somatic": report["somatic"],
                "read_pairs": report["read_pairs"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
