"""Helpers for the workflows.tools tests: crafted references and VCFs."""

from __future__ import annotations

import random
from pathlib import Path

import pysam

CONTIG = "chrT"


def random_sequence(length: int, seed: int) -> str:
    """A reproducible random DNA sequence."""
    rng = random.Random(seed)
    return "".join(rng.choice("ACGT") for _ in range(length))


def write_fasta(path: Path, seq: str, name: str = CONTIG) -> Path:
    """Write a one-contig FASTA with its .fai."""
    path.write_text(
        f">{name}\n" + "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60)) + "\n"
    )
    pysam.faidx(str(path))
    return path


def other_base(base: str) -> str:
    """A base different from `base`."""
    return "ACGT"[("ACGT".index(base) + 1) % 4]


def write_vcf(
    path: Path,
    records: list[str],
    length: int,
    samples: tuple[str, ...] = ("s1",),
    info: tuple[str, ...] = (),
) -> Path:
    """Write a plain VCF with the given tab-separated body lines."""
    header = [
        "##fileformat=VCFv4.2",
        f"##contig=<ID={CONTIG},length={length}>",
        '##FILTER=<ID=LowQual,Description="low quality">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        *info,
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"
        + ("\tFORMAT\t" + "\t".join(samples) if samples else ""),
    ]
    path.write_text("\n".join(header + records) + "\n")
    return path
