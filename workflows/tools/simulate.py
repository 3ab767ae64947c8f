"""Simulate a germline normal and a tumor with known variants, as paired-end FASTQ plus truth VCFs.

Germline SNVs and small indels are planted on two haplotypes (het or hom); the tumor carries the
normal's haplotypes plus somatic SNVs and indels, each on one haplotype of a clonal fraction so
that the expected fraction of tumor reads carrying it equals its VAF. Reads are drawn from the
haplotypes with a normal fragment-size distribution and uniform substitution errors whose rate
matches the (constant) base quality. A fixed seed gives byte-identical output.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import json
import math
import random
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO

import pysam

from snakemake_executor_awsbatch.errors import UserError
from workflows.tools.vcf_utils import Reference, contig_header_lines, revcomp, write_vcf_gz

DEFAULT_REFERENCE = Path("/usr/share/htslib-test/test/ce.fa")
_SUBSTITUTES = {"A": "CGT", "C": "AGT", "G": "ACT", "T": "ACG", "N": "NNN"}
_MAX_INDEL = 10
_CHUNK_PAIRS = 20000


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


def load_contigs(reference: Path, region_length: int | None) -> list[tuple[str, str]]:
    """Read the contigs to simulate: all, or the first `region_length` bases of the first."""
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
        self._contigs = contigs
        self._rng = rng
        self._occ = occ
        self._margin = margin
        self._cum: list[int] = []
        total = 0
        for _, seq in contigs:
            total += max(0, len(seq) - 2 * margin - _MAX_INDEL)
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
            alt = rng.choice(_SUBSTITUTES[ref]) if ref != "N" else "N"
        else:
            size = rng.randint(1, _MAX_INDEL)
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
class _Somatic:
    """A somatic variant in haplotype coordinates with its per-fragment mutation probability."""

    hap_pos0: int
    ref: str
    alt: str
    p_mutated: float


@dataclass(frozen=True)
class _Haplotypes:
    """Per contig: the two haplotype sequences and the somatic variants on each."""

    names: list[str]
    lengths: list[int]
    seqs: list[tuple[str, str]]
    somatic: list[tuple[list[_Somatic], list[_Somatic]]]


def build_haplotypes(
    contigs: list[tuple[str, str]], germline: list[Planted], somatic: list[Planted]
) -> _Haplotypes:
    """Apply germline variants to each haplotype and place somatic ones in haplotype coordinates."""
    seqs: list[tuple[str, str]] = []
    soms: list[tuple[list[_Somatic], list[_Somatic]]] = []
    for name, seq in contigs:
        pair: list[str] = []
        som_pair: list[list[_Somatic]] = []
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
            on_hap: list[_Somatic] = []
            for v in somatic:
                if v.chrom != name or hap not in v.haps:
                    continue
                i = bisect.bisect_left(shifts, (v.pos0, -(10**12)))
                hap_pos = v.pos0 + (shifts[i - 1][1] if i else 0)
                if hap_seq[hap_pos : hap_pos + len(v.ref)] != v.ref:
                    raise RuntimeError(f"somatic {v} does not match haplotype {hap} sequence")
                on_hap.append(_Somatic(hap_pos, v.ref, v.alt, min(1.0, 2 * v.vaf)))
            pair.append(hap_seq)
            som_pair.append(on_hap)
        seqs.append((pair[0], pair[1]))
        soms.append((som_pair[0], som_pair[1]))
    return _Haplotypes([n for n, _ in contigs], [len(s) for _, s in contigs], seqs, soms)


class _ReadMaker:
    """Draws read pairs from haplotypes, with fragments, somatic draws and substitution errors."""

    def __init__(self, params: SimParams, haps: _Haplotypes, rng: random.Random, somatic: bool):
        self._p = params
        self._haps = haps
        self._rng = rng
        self._somatic = somatic
        self._keys = [tuple([s.hap_pos0 for s in pair[h]] for h in (0, 1)) for pair in haps.somatic]
        self._cum: list[int] = []
        total = 0
        for h0, _ in haps.seqs:
            total += len(h0)
            self._cum.append(total)
        self._total = total
        self._log1mp = math.log1p(-params.error_rate) if params.error_rate > 0 else 0.0

    def fragment(self) -> str:
        """Draw one fragment (forward strand of its haplotype, somatic alleles applied)."""
        rng = self._rng
        p = self._p
        c = bisect.bisect_right(self._cum, rng.randrange(self._total))
        h = 0 if rng.random() < 0.5 else 1
        hap = self._haps.seqs[c][h]
        flen = int(rng.gauss(p.fragment_mean, p.fragment_sd))
        flen = max(p.read_length, min(flen, len(hap)))
        start = rng.randrange(len(hap) - flen + 1)
        # Extra bases so a deletion inside the fragment still leaves `flen` bases.
        frag = hap[start : start + flen + _MAX_INDEL]
        if self._somatic:
            keys = self._keys[c][h]
            variants = self._haps.somatic[c][h]
            i = bisect.bisect_left(keys, start)
            chosen: list[_Somatic] = []
            while i < len(keys) and keys[i] < start + flen:
                if rng.random() < variants[i].p_mutated:
                    chosen.append(variants[i])
                i += 1
            for v in reversed(chosen):
                o = v.hap_pos0 - start
                frag = frag[:o] + v.alt + frag[o + len(v.ref) :]
        return frag[:flen]

    def errors(self, seq: str) -> str:
        """Apply substitution errors at `error_rate` using geometric gaps between errors."""
        if self._log1mp == 0.0:
            return seq
        rng = self._rng
        i = int(math.log(1.0 - rng.random()) / self._log1mp)
        if i >= len(seq):
            return seq
        chars = list(seq)
        while i < len(chars):
            chars[i] = _SUBSTITUTES[chars[i]][rng.randrange(3)]
            i += 1 + int(math.log(1.0 - rng.random()) / self._log1mp)
        return "".join(chars)

    def pair(self) -> tuple[str, str]:
        """Draw one read pair (R1, R2), strand chosen at random."""
        frag = self.fragment()
        if self._rng.random() < 0.5:
            frag = revcomp(frag)
        rl = self._p.read_length
        return self.errors(frag[:rl]), self.errors(revcomp(frag)[:rl])


def base_quality(error_rate: float) -> int:
    """Phred quality matching a substitution error rate (capped at 41)."""
    if error_rate <= 0:
        return 41
    return min(41, round(-10 * math.log10(error_rate)))


def _gzip_writer(path: Path, level: int) -> tuple[BinaryIO, gzip.GzipFile]:
    """A gzip stream with no name or time in its header, so output is byte-identical."""
    raw = path.open("wb")
    return raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=level, mtime=0)


def simulate_reads(
    params: SimParams, haps: _Haplotypes, sample: str, depth: float, r1: Path, r2: Path
) -> int:
    """Write `depth`-fold paired FASTQ for one sample; returns the number of pairs."""
    rng = random.Random(f"{params.seed}:{sample}")
    maker = _ReadMaker(params, haps, rng, somatic=sample == "tumor")
    n_pairs = round(depth * sum(haps.lengths) / (2 * params.read_length))
    qual = chr(33 + base_quality(params.error_rate)) * params.read_length
    raw1, gz1 = _gzip_writer(r1, params.gzip_level)
    raw2, gz2 = _gzip_writer(r2, params.gzip_level)
    try:
        done = 0
        while done < n_pairs:
            lines1: list[str] = []
            lines2: list[str] = []
            for i in range(done, min(n_pairs, done + _CHUNK_PAIRS)):
                s1, s2 = maker.pair()
                name = f"@{sample}.{i + 1}"
                lines1.append(f"{name}\n{s1}\n+\n{qual[: len(s1)]}\n")
                lines2.append(f"{name}\n{s2}\n+\n{qual[: len(s2)]}\n")
            gz1.write("".join(lines1).encode())
            gz2.write("".join(lines2).encode())
            done += len(lines1)
    finally:
        gz1.close()
        gz2.close()
        raw1.close()
        raw2.close()
    return n_pairs


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
