"""Simulated genomes: plant germline and somatic variants and build the two haplotypes."""

from __future__ import annotations

import bisect
import random
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from snakemake_executor_awsbatch.errors import UserError
from workflows.tools.vcf_utils import Reference

DEFAULT_REFERENCE = Path("/usr/share/htslib-test/test/ce.fa")
SUBSTITUTES = {"A": "CGT", "C": "AGT", "G": "ACT", "T": "ACG", "N": "NNN"}
MAX_INDEL = 10


@dataclass(frozen=True)
class SimParams:
    """Everything that determines a simulation; equal parameters give identical output."""

    outdir: Path
    reference: Path = DEFAULT_REFERENCE
    region_length: int | None = None
    normal_depth: float = 30.0
    tumor_depth: float = 60.0
    read_length: int = 150
    fragment_mean: int = 350
    fragment_sd: int = 50
    error_rate: float = 0.001
    seed: int = 1
    germline_snv_rate: float = 0.001
    germline_indel_rate: float = 0.0001
    somatic_snvs: int | None = None
    somatic_indels: int | None = None
    vafs: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5)
    tumor: bool = True
    min_spacing: int = 20
    gzip_level: int = 1


@dataclass(frozen=True)
class Planted:
    """A planted variant: 0-based start of REF (the padding base for indels), haplotypes, VAF."""

    chrom: str
    pos0: int
    ref: str
    alt: str
    haps: tuple[int, ...]
    vaf: float = 1.0

    @property
    def is_snv(self) -> bool:
        """True for a single-base substitution."""
        return len(self.ref) == 1 and len(self.alt) == 1


@dataclass
class _Occupancy:
    """Sorted, non-overlapping spans of planted variants per contig, to keep them apart."""

    spacing: int
    starts: dict[str, list[int]] = field(default_factory=dict)
    ends: dict[str, dict[int, int]] = field(default_factory=dict)

    def free(self, chrom: str, start: int, end: int) -> bool:
        """True when [start, end) is at least `spacing` bases from every occupied span."""
        starts = self.starts.setdefault(chrom, [])
        ends = self.ends.setdefault(chrom, {})
        i = bisect.bisect_left(starts, start)
        if i < len(starts) and starts[i] < end + self.spacing:
            return False
        return not (i > 0 and ends[starts[i - 1]] + self.spacing > start)

    def take(self, chrom: str, start: int, end: int) -> None:
        """Mark [start, end) occupied."""
        bisect.insort(self.starts.setdefault(chrom, []), start)
        self.ends.setdefault(chrom, {})[start] = end


def find_default_reference() -> Path:
    """Locate ce.fa of Debian's htslib-test (known path first, then `dpkg -L htslib-test`)."""
    if DEFAULT_REFERENCE.is_file():
        return DEFAULT_REFERENCE
    try:
        listing = subprocess.run(
            ["dpkg", "-L", "htslib-test"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        listing = ""
    for line in listing.splitlines():
        if line.endswith("/ce.fa") and Path(line).is_file():
            return Path(line)
    raise UserError(
        "The default reference ce.fa was not found; install the Debian package htslib-test "
        "or pass --reference FASTA."
    )


def load_contigs(reference: Path, region_length: int | None) -> list[tuple[str, str]]:
    """Read the contigs to simulate: all, or the first `region_length` bases of the first."""
    if reference == DEFAULT_REFERENCE:
        reference = find_default_reference()
    ref = Reference(reference)
    try:
        contigs = ref.contigs
        if region_length is None:
            return [(name, ref.sequence(name)) for name, _ in contigs]
        name, length = contigs[0]
        if region_length > length:
            raise UserError(
                f"--region-length {region_length} exceeds the {length} bp of contig {name}; "
                "pass a smaller --region-length."
            )
        return [(name, ref.sequence(name)[:region_length])]
    finally:
        ref.close()


class _Planter:
    """Draws variant positions and alleles with spacing, away from N bases and contig edges."""

    def __init__(
        self, contigs: list[tuple[str, str]], rng: random.Random, occ: _Occupancy, margin: int
    ):
        """Weight contigs by the length usable for variants (minus edges)."""
        self._contigs = contigs
        self._rng = rng
        self._occ = occ
        self._margin = margin
        self._cum: list[int] = []
        total = 0
        for _, seq in contigs:
            total += max(0, len(seq) - 2 * margin - MAX_INDEL)
            self._cum.append(total)
        self._total = total

    def _position(self) -> tuple[str, str, int]:
        """Pick a contig (weighted by usable length) and a position in it."""
        x = self._rng.randrange(self._total)
        index = bisect.bisect_right(self._cum, x)
        before = self._cum[index - 1] if index else 0
        name, seq = self._contigs[index]
        return name, seq, self._margin + x - before

    def plant(self, kind: str, haps: tuple[int, ...], vaf: float) -> Planted | None:
        """Try once to plant an SNV ('snv') or indel ('indel'); None when the spot is unusable."""
        if self._total <= 0:
            return None
        rng = self._rng
        chrom, seq, pos = self._position()
        if kind == "snv":
            ref = seq[pos]
            alt = rng.choice(SUBSTITUTES[ref]) if ref != "N" else "N"
        else:
            size = rng.randint(1, MAX_INDEL)
            if rng.random() < 0.5:
                ref = seq[pos : pos + size + 1]
                alt = seq[pos]
            else:
                ref = seq[pos]
                alt = seq[pos] + "".join(rng.choice("ACGT") for _ in range(size))
        if "N" in ref or not self._occ.free(chrom, pos, pos + len(ref)):
            return None
        self._occ.take(chrom, pos, pos + len(ref))
        return Planted(chrom, pos, ref, alt, haps, vaf)


def _plant_many(
    planter: _Planter, rng: random.Random, count: int, kind: str, vafs: Sequence[float] | None
) -> list[Planted]:
    """Plant `count` variants of one kind (germline when `vafs` is None), failing if crowded."""
    planted: list[Planted] = []
    attempts = 0
    while len(planted) < count:
        attempts += 1
        if attempts > 100 * count + 1000:
            raise UserError(
                f"Cannot place {count} {kind} variants at least the minimum spacing apart in the "
                "region; lower the variant rates or counts, or simulate a longer region."
            )
        if vafs is None:
            r = rng.random()
            haps: tuple[int, ...] = (0, 1) if r < 1 / 3 else ((0,) if r < 2 / 3 else (1,))
            vaf = 1.0 if len(haps) == 2 else 0.5
        else:
            haps = (rng.randrange(2),)
            vaf = vafs[len(planted) % len(vafs)]
        variant = planter.plant(kind, haps, vaf)
        if variant is not None:
            planted.append(variant)
    return planted


def plant_variants(
    params: SimParams, contigs: list[tuple[str, str]]
) -> tuple[list[Planted], list[Planted]]:
    """Plant germline then somatic variants; returns both lists sorted by position."""
    total = sum(len(seq) for _, seq in contigs)
    occ = _Occupancy(params.min_spacing)
    margin = params.read_length
    rng = random.Random(f"{params.seed}:germline")
    planter = _Planter(contigs, rng, occ, margin)
    germline = _plant_many(planter, rng, round(params.germline_snv_rate * total), "snv", None)
    germline += _plant_many(planter, rng, round(params.germline_indel_rate * total), "indel", None)
    somatic: list[Planted] = []
    if params.tumor:
        rng = random.Random(f"{params.seed}:somatic")
        planter = _Planter(contigs, rng, occ, margin)
        n_snv = params.somatic_snvs if params.somatic_snvs is not None else max(1, total // 2000)
        n_indel = (
            params.somatic_indels if params.somatic_indels is not None else max(1, total // 10000)
        )
        somatic = _plant_many(planter, rng, n_snv, "snv", params.vafs)
        somatic += _plant_many(planter, rng, n_indel, "indel", params.vafs)
    order = {name: i for i, (name, _) in enumerate(contigs)}
    key = lambda v: (order[v.chrom], v.pos0)  # noqa: E731
    return sorted(germline, key=key), sorted(somatic, key=key)


@dataclass(frozen=True)
class Somatic:
    """A somatic variant in haplotype coordinates with its per-fragment mutation probability."""

    hap_pos0: int
    ref: str
    alt: str
    p_mutated: float


@dataclass(frozen=True)
class Haplotypes:
    """Per contig: the two haplotype sequences and the somatic variants on each."""

    names: list[str]
    lengths: list[int]
    seqs: list[tuple[str, str]]
    somatic: list[tuple[list[Somatic], list[Somatic]]]


def build_haplotypes(
    contigs: list[tuple[str, str]], germline: list[Planted], somatic: list[Planted]
) -> Haplotypes:
    """Apply germline variants to each haplotype and place somatic ones in haplotype coordinates."""
    seqs: list[tuple[str, str]] = []
    soms: list[tuple[list[Somatic], list[Somatic]]] = []
    for name, seq in contigs:
        pair: list[str] = []
        som_pair: list[list[Somatic]] = []
        for hap in (0, 1):
            variants = [v for v in germline if v.chrom == name and hap in v.haps]
            pieces: list[str] = []
            shifts: list[tuple[int, int]] = []
            cursor = 0
            delta = 0
            for v in variants:
                pieces.append(seq[cursor : v.pos0])
                pieces.append(v.alt)
                cursor = v.pos0 + len(v.ref)
                delta += len(v.alt) - len(v.ref)
                shifts.append((v.pos0, delta))
            pieces.append(seq[cursor:])
            hap_seq = "".join(pieces)
            on_hap: list[Somatic] = []
            for v in somatic:
                if v.chrom != name or hap not in v.haps:
                    continue
                i = bisect.bisect_left(shifts, (v.pos0, -(10**12)))
                hap_pos = v.pos0 + (shifts[i - 1][1] if i else 0)
                if hap_seq[hap_pos : hap_pos + len(v.ref)] != v.ref:
                    raise RuntimeError(f"somatic {v} does not match haplotype {hap} sequence")
                on_hap.append(Somatic(hap_pos, v.ref, v.alt, min(1.0, 2 * v.vaf)))
            pair.append(hap_seq)
            som_pair.append(on_hap)
        seqs.append((pair[0], pair[1]))
        soms.append((som_pair[0], som_pair[1]))
    return Haplotypes([n for n, _ in contigs], [len(s) for _, s in contigs], seqs, soms)
