"""Shared VCF helpers: reference access, allele normalisation, reading and writing VCFs."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pysam

from snakemake_executor_awsbatch.errors import UserError

_BASES = frozenset("ACGTN")
_COMPLEMENT = str.maketrans("ACGTNacgtn", "TGCANtgcan")


def revcomp(seq: str) -> str:
    """Return the reverse complement of a DNA sequence."""
    return seq.translate(_COMPLEMENT)[::-1]


@dataclass(frozen=True, order=True)
class Allele:
    """One normalised variant allele: 1-based POS, REF and one ALT, as in a split VCF record."""

    chrom: str
    pos: int
    ref: str
    alt: str

    @property
    def is_snv(self) -> bool:
        """True for a single-base substitution."""
        return len(self.ref) == 1 and len(self.alt) == 1

    @property
    def is_indel(self) -> bool:
        """True for anything that is not an SNV (insertions, deletions and complex alleles)."""
        return not self.is_snv

    @property
    def end(self) -> int:
        """1-based inclusive last reference base covered by REF."""
        return self.pos + len(self.ref) - 1


class Reference:
    """Random access to an indexed FASTA, caching one contig at a time (variants come sorted)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Open `path`, creating its .fai index when missing."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"Reference FASTA {path} does not exist; pass an existing --reference.")
        if not Path(f"{path}.fai").is_file():
            try:
                pysam.faidx(str(path))
            except (OSError, pysam.utils.SamtoolsError) as exc:
                raise UserError(
                    f"Reference FASTA {path} has no .fai index and none could be made ({exc}); "
                    f"run `samtools faidx {path}` where the file is writable."
                ) from exc
        self._fasta = pysam.FastaFile(str(path))
        self._name = ""
        self._seq = ""

    @property
    def contigs(self) -> list[tuple[str, int]]:
        """Contig names and lengths in FASTA order."""
        return list(zip(self._fasta.references, self._fasta.lengths, strict=True))

    def sequence(self, chrom: str) -> str:
        """Return the whole upper-case sequence of `chrom`."""
        if chrom != self._name:
            if chrom not in self._fasta.references:
                raise UserError(
                    f"Contig {chrom!r} is not in the reference FASTA; use the reference the VCF "
                    "was called against."
                )
            self._seq = self._fasta.fetch(chrom).upper()
            self._name = chrom
        return self._seq

    def close(self) -> None:
        """Close the FASTA handle."""
        self._fasta.close()


def _left_align(pos: int, ref: str, alt: str, seq: str) -> tuple[int, str, str]:
    """Left-align and trim an allele (the vt algorithm); `pos` is 1-based, `seq` the contig."""
    while True:
        changed = False
        if ref and alt and ref[-1] == alt[-1] and len(ref) + len(alt) > 2:
            ref, alt = ref[:-1], alt[:-1]
            changed = True
        if (not ref or not alt) and pos > 1:
            pos -= 1
            base = seq[pos - 1]
            ref, alt = base + ref, base + alt
            changed = True
        if not changed:
            break
    while len(ref) >= 2 and len(alt) >= 2 and ref[0] == alt[0]:
        ref, alt = ref[1:], alt[1:]
        pos += 1
    return pos, ref, alt


def normalize_allele(chrom: str, pos: int, ref: str, alt: str, seq: str) -> list[Allele]:
    """Normalise one REF/ALT pair: trim, left-align indels, split MNPs into SNVs.

    Returns no allele for symbolic or non-variant alleles. A complex allele (both sides longer
    than one base after trimming, unequal lengths) is trimmed but kept whole.
    """
    ref, alt = ref.upper(), alt.upper()
    if not ref or not alt or ref == alt or not set(ref) <= _BASES or not set(alt) <= _BASES:
        return []
    if len(ref) == len(alt):
        return [
            Allele(chrom, pos + i, r, a)
            for i, (r, a) in enumerate(zip(ref, alt, strict=True))
            if r != a
        ]
    npos, nref, nalt = _left_align(pos, ref, alt, seq)
    return [Allele(chrom, npos, nref, nalt)]


@dataclass(frozen=True)
class VcfAllele:
    """A normalised allele read from a VCF with the INFO/VAF of its record, if any."""

    allele: Allele
    vaf: float | None


def _has_alt_genotype(record: pysam.VariantRecord, alt_index: int) -> bool:
    """True unless every sample has a called GT that lacks allele `alt_index`."""
    if not record.samples or "GT" not in record.format:
        return True
    for sample in record.samples.values():
        gt = sample.get("GT")
        if gt is None or all(g is None for g in gt) or alt_index in gt:
            return True
    return False


def _record_vaf(record: pysam.VariantRecord, alt_index: int) -> float | None:
    """INFO/VAF of the record for one ALT (a per-allele list or one number)."""
    if "VAF" not in record.header.info:
        return None
    value = record.info.get("VAF")
    if value is None:
        return None
    if isinstance(value, tuple):
        return float(value[alt_index - 1]) if len(value) >= alt_index else None
    return float(value)


def read_alleles(
    path: str | os.PathLike[str], reference: Reference, pass_only: bool = True
) -> list[VcfAllele]:
    """Read a VCF, keep PASS/'.' records whose genotype carries the allele, normalise, dedupe."""
    if not Path(path).is_file():
        raise UserError(f"VCF {path} does not exist; pass an existing VCF file.")
    seen: dict[Allele, VcfAllele] = {}
    with pysam.VariantFile(str(path)) as vcf:
        for record in vcf:
            if pass_only and not _passes(record):
                continue
            for index, alt in enumerate(record.alts or (), start=1):
                if not _has_alt_genotype(record, index):
                    continue
                seq = reference.sequence(record.chrom)
                vaf = _record_vaf(record, index)
                for allele in normalize_allele(
                    record.chrom, record.pos, record.ref or "", alt, seq
                ):
                    seen.setdefault(allele, VcfAllele(allele, vaf))
    order = {name: i for i, (name, _) in enumerate(reference.contigs)}
    return sorted(seen.values(), key=lambda v: sort_key(v.allele, order))


def _passes(record: pysam.VariantRecord) -> bool:
    """True when FILTER is PASS or missing."""
    keys = list(record.filter.keys())
    return not keys or keys == ["PASS"]


def sort_key(allele: Allele, order: dict[str, int]) -> tuple[int, int, str, str]:
    """Sort by contig order (name -> index), then position and alleles."""
    return (order.get(allele.chrom, len(order)), allele.pos, allele.ref, allele.alt)


def contig_header_lines(contigs: Iterable[tuple[str, int]]) -> list[str]:
    """##contig header lines for (name, length) pairs."""
    return [f"##contig=<ID={name},length={length}>" for name, length in contigs]


def write_vcf_gz(path: str | os.PathLike[str], header: list[str], body: Iterable[str]) -> Path:
    """Write a VCF as BGZF with a tabix index; `path` must end in .vcf.gz."""
    out = Path(path)
    if not out.name.endswith(".vcf.gz"):
        raise UserError(f"Output {out} must end in .vcf.gz; rename the output path.")
    out.parent.mkdir(parents=True, exist_ok=True)
    plain = out.with_name(out.name[: -len(".gz")] + ".tmp")
    with plain.open("w") as handle:
        for line in header:
            handle.write(line + "\n")
        for line in body:
            handle.write(line + "\n")
    pysam.tabix_compress(str(plain), str(out), force=True)
    plain.unlink()
    pysam.tabix_index(str(out), preset="vcf", force=True)
    return out


def iter_bed(path: str | os.PathLike[str]) -> Iterator[tuple[str, int, int]]:
    """Yield (chrom, start, end) 0-based half-open intervals from a BED file."""
    if not Path(path).is_file():
        raise UserError(f"BED file {path} does not exist; pass an existing --regions file.")
    with open(path) as handle:
        for line in handle:
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            fields = line.split("\t")
            if len(fields) < 3:
                raise UserError(f"BED line {line.strip()!r} has fewer than 3 columns; fix {path}.")
            yield fields[0], int(fields[1]), int(fields[2])
