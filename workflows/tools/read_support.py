"""Count reads supporting the reference or an alternate allele at one site of a BAM.

Each fragment is counted once (overlapping mates would otherwise double-count). A read supports
an SNV when its base at the site, of base quality at least the minimum, is the ALT base. A read
supports an indel when it carries an insertion or deletion that produces the same haplotype:
the candidate is slid across the repeat it sits in, and any read event of the same length at an
equivalent position (with, for insertions, the matching rotated sequence) counts. For an indel a
read only counts as reference when it spans the whole repeat with a few anchoring bases and has
no indel inside it; reads ending inside the repeat are uninformative.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pysam

from workflows.tools.vcf_utils import Allele

_SKIP_FLAGS = 0x4 | 0x100 | 0x200 | 0x400 | 0x800
_ANCHOR = 3
_RANK = {"alt": 3, "ref": 2, "other": 1}


@dataclass(frozen=True)
class ReadFilters:
    """Read-level minimums."""

    min_base_quality: int = 20
    min_mapping_quality: int = 20
    indel_error_rate: float = 3e-4


@dataclass
class Evidence:
    """Reads at a site: per-read error probabilities for ref/alt reads, strands and MQs."""

    ref_errors: list[float] = field(default_factory=list)
    alt_errors: list[float] = field(default_factory=list)
    other: int = 0
    ref_fwd: int = 0
    ref_rev: int = 0
    alt_fwd: int = 0
    alt_rev: int = 0
    alt_mqs_unfiltered: list[int] = field(default_factory=list)

    @property
    def ref(self) -> int:
        """Reads supporting the reference allele."""
        return len(self.ref_errors)

    @property
    def alt(self) -> int:
        """Reads supporting the alternate allele."""
        return len(self.alt_errors)

    @property
    def depth(self) -> int:
        """Informative reads passing filters (ref, alt or another allele)."""
        return self.ref + self.alt + self.other

    @property
    def af(self) -> float:
        """Alternate allele fraction among informative reads."""
        return self.alt / self.depth if self.depth else 0.0


@dataclass(frozen=True)
class IndelSpan:
    """All equivalent placements of an indel: 0-based first event positions and sequences."""

    is_insertion: bool
    length: int
    placements: dict[int, str]
    lo: int
    hi: int


def indel_span(allele: Allele, seq: str) -> IndelSpan:
    """Slide a left-aligned indel right across its repeat, listing every equivalent placement."""
    if len(allele.alt) > len(allele.ref):
        inserted = allele.alt[1:]
        start = allele.pos  # 0-based index of the base the insertion precedes
        placements = {start: inserted}
        while start < len(seq) and seq[start] == inserted[0]:
            inserted = inserted[1:] + inserted[0]
            start += 1
            placements[start] = inserted
        lo, hi = allele.pos - 1, start
        return IndelSpan(True, len(allele.alt) - 1, placements, lo, hi)
    k = len(allele.ref) - 1
    start = allele.pos  # 0-based index of the first deleted base
    placements = {start: allele.ref[1:]}
    while start + k < len(seq) and seq[start] == seq[start + k]:
        start += 1
        placements[start] = seq[start : start + k]
    return IndelSpan(False, k, placements, allele.pos - 1, start + k)


def _usable(read: pysam.AlignedSegment) -> bool:
    """Mapped primary non-duplicate reads only."""
    return not read.flag & _SKIP_FLAGS and read.cigartuples is not None


def _snv_state(
    read: pysam.AlignedSegment, pos0: int, allele: Allele, min_bq: int
) -> tuple[str, float] | None:
    """('ref'|'alt'|'other', error probability) for the read's base at pos0, or None."""
    rpos = read.reference_start
    qpos = 0
    for op, n in read.cigartuples or ():
        if op in (0, 7, 8):
            if rpos <= pos0 < rpos + n:
                q = qpos + pos0 - rpos
                qual = read.query_qualities[q] if read.query_qualities is not None else 30
                if qual < min_bq:
                    return None
                base = (read.query_sequence or "")[q].upper()
                state = "alt" if base == allele.alt else "ref" if base == allele.ref else "other"
                return state, 10 ** (-qual / 10)
            rpos += n
            qpos += n
        elif op in (2, 3):
            if rpos <= pos0 < rpos + n:
                return None
            rpos += n
        elif op in (1, 4):
            qpos += n
    return None


def _indel_state(read: pysam.AlignedSegment, span: IndelSpan) -> str | None:
    """'alt' for an equivalent event, 'other' for another indel, 'ref' for none, or None."""
    if read.reference_start > span.lo - _ANCHOR or (read.reference_end or 0) < span.hi + _ANCHOR:
        return None
    rpos = read.reference_start
    qpos = 0
    for op, n in read.cigartuples or ():
        if op in (0, 7, 8, 3):
            rpos += n
            qpos += n if op != 3 else 0
        elif op == 4:
            qpos += n
        elif op == 1:
            if span.lo < rpos <= span.hi:
                seq = (read.query_sequence or "")[qpos : qpos + n].upper()
                ok = span.is_insertion and n == span.length and span.placements.get(rpos) == seq
                return "alt" if ok else "other"
            qpos += n
        elif op == 2:
            if rpos <= span.hi and rpos + n > span.lo + 1:
                ok = not span.is_insertion and n == span.length and rpos in span.placements
                return "alt" if ok else "other"
            rpos += n
    return "ref"


def count_support(
    bam: pysam.AlignmentFile, allele: Allele, seq: str, filters: ReadFilters
) -> Evidence:
    """Count fragments supporting REF or ALT of `allele` (seq: the contig's sequence)."""
    span = None if allele.is_snv else indel_span(allele, seq)
    fetch_lo = allele.pos - 1 if span is None else span.lo
    fetch_hi = allele.pos if span is None else span.hi + 1
    best: dict[str, tuple[str, float, bool]] = {}
    evidence = Evidence()
    for read in bam.fetch(allele.chrom, fetch_lo, fetch_hi):
        if not _usable(read):
            continue
        if span is None:
            found = _snv_state(read, allele.pos - 1, allele, filters.min_base_quality)
        else:
            state = _indel_state(read, span)
            found = None if state is None else (state, filters.indel_error_rate)
        if found is None:
            continue
        if found[0] == "alt":
            evidence.alt_mqs_unfiltered.append(read.mapping_quality)
        if read.mapping_quality < filters.min_mapping_quality:
            continue
        name = read.query_name or ""
        previous = best.get(name)
        candidate = (found[0], found[1], read.is_reverse)
        if previous is None or (_RANK[found[0]], -found[1]) > (_RANK[previous[0]], -previous[1]):
            best[name] = candidate
    for state, error, reverse in best.values():
        if state == "alt":
            evidence.alt_errors.append(error)
            evidence.alt_fwd += not reverse
            evidence.alt_rev += reverse
        elif state == "ref":
            evidence.ref_errors.append(error)
            evidence.ref_fwd += not reverse
            evidence.ref_rev += reverse
        else:
            evidence.other += 1
    return evidence
