"""Classify candidate variants as somatic from tumor and normal read evidence.

Every candidate allele (multiallelic records split, alleles normalised) is re-counted in both
BAMs, ignoring the caller's genotypes and filters, and gets FILTER PASS or every reason it fails:

  LowTumorLOD     TLOD < --min-tumor-lod: ALT not clearly above the sequencing-error level.
  NormalEvidence  NLOD < --min-normal-lod (normal not confidently reference), or the normal has
                  more than --max-normal-alt-count ALT reads and ALT fraction > --max-normal-af.
  StrandBias      Fisher p < --strand-bias-p and ALT reads on one strand beyond
                  --strand-bias-fraction, while REF reads are not.
  LowMQ           median mapping quality of ALT reads (before the MQ filter) < --min-alt-median-mq.
  LowDepth        tumor depth < --min-tumor-depth or normal depth < --min-normal-depth.
  Complex         a complex allele (not an SNV, insertion or deletion); not evaluated.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pysam

from snakemake_executor_awsbatch.errors import UserError
from workflows.tools.read_support import Evidence, ReadFilters, count_support
from workflows.tools.somatic_stats import median, normal_lod, strand_bias_p, tumor_lod
from workflows.tools.vcf_utils import (
    Allele,
    Reference,
    contig_header_lines,
    normalize_allele,
    sort_key,
    write_vcf_gz,
)


@dataclass(frozen=True)
class Thresholds:
    """Classifier thresholds (see the module docstring and docs/accuracy.md)."""

    reads: ReadFilters = field(default_factory=ReadFilters)
    min_tumor_lod: float = 6.3
    min_normal_lod: float = 2.2
    max_normal_af: float = 0.03
    max_normal_alt_count: int = 1
    strand_bias_p: float = 0.001
    strand_bias_fraction: float = 0.9
    min_alt_median_mq: float = 30.0
    min_tumor_depth: int = 10
    min_normal_depth: int = 8


@dataclass(frozen=True)
class Classified:
    """One candidate allele with its evidence, scores and filters."""

    allele: Allele
    tumor: Evidence
    normal: Evidence
    tlod: float
    nlod: float
    sb_p: float
    filters: tuple[str, ...]


def _strand_biased(ev: Evidence, t: Thresholds, p: float) -> bool:
    """ALT strongly one-stranded while REF reads are balanced enough for that to be odd."""
    if p >= t.strand_bias_p or not ev.alt:
        return False
    frac = ev.alt_fwd / ev.alt
    return max(frac, 1 - frac) >= t.strand_bias_fraction


def classify_allele(allele: Allele, tumor: Evidence, normal: Evidence, t: Thresholds) -> Classified:
    """Score one allele and list the filters it fails (empty when it passes)."""
    snv = allele.is_snv
    tlod = tumor_lod(tumor, snv)
    nlod = normal_lod(normal, snv)
    sb_p = strand_bias_p(tumor)
    reasons: list[str] = []
    if tlod < t.min_tumor_lod:
        reasons.append("LowTumorLOD")
    if nlod < t.min_normal_lod or (
        normal.alt > t.max_normal_alt_count and normal.af > t.max_normal_af
    ):
        reasons.append("NormalEvidence")
    if _strand_biased(tumor, t, sb_p):
        reasons.append("StrandBias")
    if tumor.alt_mqs_unfiltered and median(tumor.alt_mqs_unfiltered) < t.min_alt_median_mq:
        reasons.append("LowMQ")
    if tumor.depth < t.min_tumor_depth or normal.depth < t.min_normal_depth:
        reasons.append("LowDepth")
    return Classified(allele, tumor, normal, tlod, nlod, sb_p, tuple(reasons))


def read_candidates(path: str | Path, reference: Reference) -> list[Allele]:
    """All candidate alleles of a VCF, split and normalised, whatever their FILTER or GT."""
    if not Path(path).is_file():
        raise UserError(f"Candidates VCF {path} does not exist; pass an existing --candidates.")
    alleles: set[Allele] = set()
    with pysam.VariantFile(str(path)) as vcf:
        for record in vcf:
            seq = reference.sequence(record.chrom)
            for alt in record.alts or ():
                alleles.update(
                    normalize_allele(record.chrom, record.pos, record.ref or "", alt, seq)
                )
    order = {name: i for i, (name, _) in enumerate(reference.contigs)}
    return sorted(alleles, key=lambda a: sort_key(a, order))


def _open_bam(path: str | Path, reference: str | Path) -> pysam.AlignmentFile:
    """Open an indexed BAM/CRAM, with a clear message when the file or index is missing."""
    if not Path(path).is_file():
        raise UserError(f"Alignment file {path} does not exist; pass an existing BAM.")
    bam = pysam.AlignmentFile(str(path), reference_filename=str(reference))
    if not bam.has_index():
        bam.close()
        raise UserError(f"Alignment file {path} has no index; run `samtools index {path}`.")
    return bam


def _sample_name(bam: pysam.AlignmentFile, fallback: str) -> str:
    """The SM tag of the first read group, else `fallback`."""
    groups = bam.header.to_dict().get("RG", [])
    return str(groups[0]["SM"]) if groups and "SM" in groups[0] else fallback


def _is_complex(allele: Allele) -> bool:
    """Neither an SNV nor a simple insertion/deletion with one padding base."""
    return not allele.is_snv and min(len(allele.ref), len(allele.alt)) != 1


def classify(
    candidates: str | Path,
    tumor_bam: str | Path,
    normal_bam: str | Path,
    reference: str | Path,
    thresholds: Thresholds = Thresholds(),
) -> tuple[list[Classified], str, str]:
    """Classify every candidate; returns the results and the tumor and normal sample names."""
    ref = Reference(reference)
    tumor = _open_bam(tumor_bam, reference)
    normal = _open_bam(normal_bam, reference)
    try:
        results = []
        for allele in read_candidates(candidates, ref):
            if _is_complex(allele):
                results.append(
                    Classified(allele, Evidence(), Evidence(), 0.0, 0.0, 1.0, ("Complex",))
                )
                continue
            for bam, path in ((tumor, tumor_bam), (normal, normal_bam)):
                if allele.chrom not in bam.references:
                    raise UserError(
                        f"Contig {allele.chrom!r} of the candidates is not in {path}; align the "
                        "reads to the same reference the candidates were called against."
                    )
            seq = ref.sequence(allele.chrom)
            t_ev = count_support(tumor, allele, seq, thresholds.reads)
            n_ev = count_support(normal, allele, seq, thresholds.reads)
            results.append(classify_allele(allele, t_ev, n_ev, thresholds))
        return results, _sample_name(tumor, "tumor"), _sample_name(normal, "normal")
    finally:
        tumor.close()
        normal.close()
        ref.close()


_FILTER_DESCRIPTIONS = {
    "LowTumorLOD": "Tumor log-odds of the ALT below the minimum",
    "NormalEvidence": "The normal shows the ALT (germline or contamination)",
    "StrandBias": "ALT reads come from one strand only",
    "LowMQ": "Median mapping quality of ALT reads below the minimum",
    "LowDepth": "Too few informative reads in the tumor or the normal",
    "Complex": "Complex allele, not evaluated",
}


def _header(reference: Reference, tumor: str, normal: str, command: str) -> list[str]:
    """VCF header lines for the classifier output."""
    lines = ["##fileformat=VCFv4.2", f"##source=workflows.tools.somatic_classify {command}"]
    lines += contig_header_lines(reference.contigs)
    lines += [f'##FILTER=<ID={k},Description="{v}">' for k, v in _FILTER_DESCRIPTIONS.items()]
    lines += [
        '##INFO=<ID=SOMATIC,Number=0,Type=Flag,Description="Classified as somatic (PASS)">',
        '##INFO=<ID=TLOD,Number=A,Type=Float,Description="Tumor log10 odds ALT vs error">',
        '##INFO=<ID=NLOD,Number=A,Type=Float,Description="Normal log10 odds ref vs het">',
        '##INFO=<ID=SBP,Number=A,Type=Float,Description="Tumor strand-bias Fisher p-value">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Reads supporting REF and ALT">',
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Informative reads">',
        '##FORMAT=<ID=AF,Number=A,Type=Float,Description="ALT fraction among informative reads">',
        '##FORMAT=<ID=SB,Number=4,Type=Integer,Description="REF fwd, REF rev, ALT fwd, ALT rev">',
        f"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{tumor}\t{normal}",
    ]
    return lines


def _sample(ev: Evidence, gt: str) -> str:
    """FORMAT values for one sample."""
    sb = f"{ev.ref_fwd},{ev.ref_rev},{ev.alt_fwd},{ev.alt_rev}"
    return f"{gt}:{ev.ref},{ev.alt}:{ev.depth}:{ev.af:.4f}:{sb}"


def vcf_line(c: Classified) -> str:
    """One VCF body line for a classified allele."""
    a = c.allele
    filt = ";".join(c.filters) or "PASS"
    info = f"TLOD={c.tlod:.2f};NLOD={c.nlod:.2f};SBP={c.sb_p:.3g}"
    if not c.filters:
        info = "SOMATIC;" + info
    return (
        f"{a.chrom}\t{a.pos}\t.\t{a.ref}\t{a.alt}\t.\t{filt}\t{info}\tGT:AD:DP:AF:SB\t"
        f"{_sample(c.tumor, '0/1')}\t{_sample(c.normal, '0/0')}"
    )


def _parser() -> argparse.ArgumentParser:
    """The command-line parser, thresholds with their defaults."""
    d = Thresholds()
    ap = argparse.ArgumentParser(
        prog="python -m workflows.tools.somatic_classify",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--candidates", required=True, help="candidate VCF (any caller, any genotype)")
    ap.add_argument("--tumor-bam", required=True, help="indexed tumor BAM")
    ap.add_argument("--normal-bam", required=True, help="indexed normal BAM")
    ap.add_argument("--reference", required=True, help="reference FASTA")
    ap.add_argument("--out", required=True, help="output VCF, must end in .vcf.gz (indexed)")
    ap.add_argument("--tumor-sample", default=None, help="default: SM of the tumor BAM, or tumor")
    ap.add_argument(
        "--normal-sample", default=None, help="default: SM of the normal BAM, or normal"
    )
    num = ap.add_argument_group("thresholds")
    for name, kind, default, text in (
        ("min-base-quality", int, d.reads.min_base_quality, "ignore bases below this quality"),
        ("min-mapping-quality", int, d.reads.min_mapping_quality, "ignore reads below this MQ"),
        ("indel-error-rate", float, d.reads.indel_error_rate, "per-read indel error rate"),
        ("min-tumor-lod", float, d.min_tumor_lod, "LowTumorLOD below this TLOD"),
        ("min-normal-lod", float, d.min_normal_lod, "NormalEvidence below this NLOD"),
        ("max-normal-af", float, d.max_normal_af, "NormalEvidence above this normal ALT fraction"),
        ("max-normal-alt-count", int, d.max_normal_alt_count, "... and above this many reads"),
        ("strand-bias-p", float, d.strand_bias_p, "StrandBias below this Fisher p-value"),
        ("strand-bias-fraction", float, d.strand_bias_fraction, "... and this one-strand share"),
        ("min-alt-median-mq", float, d.min_alt_median_mq, "LowMQ below this median ALT MQ"),
        ("min-tumor-depth", int, d.min_tumor_depth, "LowDepth below this tumor depth"),
        ("min-normal-depth", int, d.min_normal_depth, "LowDepth below this normal depth"),
    ):
        num.add_argument(
            f"--{name}", type=kind, default=default, help=f"{text} (default {default})"
        )
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    ns = _parser().parse_args(argv)
    t = Thresholds(
        reads=ReadFilters(ns.min_base_quality, ns.min_mapping_quality, ns.indel_error_rate),
        min_tumor_lod=ns.min_tumor_lod,
        min_normal_lod=ns.min_normal_lod,
        max_normal_af=ns.max_normal_af,
        max_normal_alt_count=ns.max_normal_alt_count,
        strand_bias_p=ns.strand_bias_p,
        strand_bias_fraction=ns.strand_bias_fraction,
        min_alt_median_mq=ns.min_alt_median_mq,
        min_tumor_depth=ns.min_tumor_depth,
        min_normal_depth=ns.min_normal_depth,
    )
    try:
        results, tumor, normal = classify(
            ns.candidates, ns.tumor_bam, ns.normal_bam, ns.reference, t
        )
        ref = Reference(ns.reference)
        header = _header(
            ref,
            ns.tumor_sample or tumor,
            ns.normal_sample or normal,
            " ".join(argv or sys.argv[1:]),
        )
        ref.close()
        write_vcf_gz(ns.out, header, (vcf_line(c) for c in results))
    except UserError as exc:
        print(f"somatic_classify: {exc}", file=sys.stderr)
        return 2
    passed = sum(not c.filters for c in results)
    print(f"somatic_classify: {len(results)} candidate alleles, {passed} PASS -> {ns.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
