"""Read counting on a hand-built BAM: SNV bases, indel placements in repeats, read filters."""

from __future__ import annotations

from pathlib import Path

import pysam
import pytest

from workflows.tools.read_support import ReadFilters, count_support, indel_span
from workflows.tools.vcf_utils import Allele

from .helpers import CONTIG, other_base, random_sequence, write_fasta

# 0-based: random 0..199, then G at 200, A at 201..206, C at 207, then random.
SEQ = random_sequence(200, 21) + "GAAAAAAC" + random_sequence(200, 22)
SNV_POS0 = 100
READ_LEN = 60


def _read(
    header: pysam.AlignmentHeader,
    name: str,
    start: int,
    cigar: list[tuple[int, int]],
    seq: str,
    *,
    reverse: bool = False,
    mq: int = 60,
    qual: int = 30,
    flag: int = 0,
) -> pysam.AlignedSegment:
    read = pysam.AlignedSegment(header)
    read.query_name = name
    read.reference_id = 0
    read.reference_start = start
    read.cigartuples = cigar
    read.query_sequence = seq
    read.query_qualities = pysam.qualitystring_to_array(chr(33 + qual) * len(seq))
    read.mapping_quality = mq
    read.flag = flag | (0x10 if reverse else 0)
    return read


def _snv_read(
    header: pysam.AlignmentHeader, name: str, base: str, **kw: object
) -> pysam.AlignedSegment:
    start = SNV_POS0 - 20
    seq = SEQ[start:SNV_POS0] + base + SEQ[SNV_POS0 + 1 : start + READ_LEN]
    return _read(header, name, start, [(0, READ_LEN)], seq, **kw)  # type: ignore[arg-type]


def _del_read(
    header: pysam.AlignmentHeader, name: str, at: int, size: int, start: int
) -> pysam.AlignedSegment:
    """A read with `size` bases deleted at 0-based `at`."""
    left = at - start
    seq = SEQ[start:at] + SEQ[at + size : start + READ_LEN + size]
    return _read(header, name, start, [(0, left), (2, size), (0, READ_LEN - left)], seq)


@pytest.fixture(scope="module")
def bam(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("bam")
    write_fasta(tmp / "ref.fa", SEQ)
    header = pysam.AlignmentHeader.from_dict({"SQ": [{"SN": CONTIG, "LN": len(SEQ)}]})
    ref_base = SEQ[SNV_POS0]
    alt = other_base(ref_base)
    reads = [
        _snv_read(header, "alt1", alt),
        _snv_read(header, "alt2", alt),
        _snv_read(header, "alt3", alt, reverse=True),
        *[_snv_read(header, f"ref{i}", ref_base, reverse=i % 2 == 0) for i in range(5)],
        _snv_read(header, "lowbq", alt, qual=10),
        _snv_read(header, "lowmq", alt, mq=5),
        _snv_read(header, "dup", alt, flag=0x400),
        _snv_read(header, "other", other_base(alt) if other_base(alt) != ref_base else "N"),
        # two overlapping mates of one fragment, both showing the ALT: one fragment
        _snv_read(header, "pair", alt, flag=0x1 | 0x40),
        _snv_read(header, "pair", alt, flag=0x1 | 0x80, reverse=True),
        # one A deleted from the run, placed leftmost (201) or rightmost (206) by the aligner
        _del_read(header, "delL", 201, 1, 170),
        _del_read(header, "delR", 206, 1, 180),
        _del_read(header, "del2", 201, 2, 175),  # a different (2-base) deletion
        _read(header, "spanref", 160, [(0, READ_LEN)], SEQ[160 : 160 + READ_LEN]),
        _read(header, "endsinrun", 150, [(0, 55)], SEQ[150:205]),  # stops inside the run
    ]
    unsorted = tmp / "unsorted.bam"
    with pysam.AlignmentFile(str(unsorted), "wb", header=header) as out:
        for read in reads:
            out.write(read)
    path = tmp / "crafted.bam"
    pysam.sort("-o", str(path), str(unsorted))
    pysam.index(str(path))
    return path


def test_snv_counts_honour_filters_and_fragments(bam: Path) -> None:
    ref_base = SEQ[SNV_POS0]
    allele = Allele(CONTIG, SNV_POS0 + 1, ref_base, other_base(ref_base))
    with pysam.AlignmentFile(str(bam)) as handle:
        ev = count_support(handle, allele, SEQ, ReadFilters())
    # ALT: alt1, alt2, alt3 and the pair once; low BQ, low MQ and duplicate excluded.
    assert (ev.alt, ev.ref, ev.other) == (4, 5, 1)
    assert (ev.alt_fwd + ev.alt_rev, ev.ref_fwd, ev.ref_rev) == (4, 2, 3)
    assert ev.alt_fwd >= 2 and ev.alt_rev >= 1
    # The low-MQ ALT read is remembered for the LowMQ filter (5 = its MQ).
    assert sorted(ev.alt_mqs_unfiltered) == [5, 60, 60, 60, 60, 60]
    assert ev.alt_errors == [pytest.approx(0.001)] * 4


def test_deletion_in_repeat_counts_every_placement(bam: Path) -> None:
    allele = Allele(CONTIG, 201, "GA", "G")  # left-aligned: pad G at 0-based 200
    with pysam.AlignmentFile(str(bam)) as handle:
        ev = count_support(handle, allele, SEQ, ReadFilters())
    # delL and delR are the same event; del2 is another allele; spanref is the only REF read
    # spanning the run with anchors; endsinrun and the SNV reads (ending at 140) do not count.
    assert (ev.alt, ev.other, ev.ref) == (2, 1, 1)
    assert ev.alt_errors == [pytest.approx(3e-4)] * 2


def test_indel_span_lists_equivalent_placements() -> None:
    seq = "TTGCACACAGT"  # CA repeat at 0-based 3..8
    span = indel_span(Allele("c", 3, "G", "GCA"), seq)  # insert CA after the G at 0-based 2
    assert span.is_insertion and span.length == 2
    assert span.placements == {3: "CA", 4: "AC", 5: "CA", 6: "AC", 7: "CA", 8: "AC", 9: "CA"}
    deletion = indel_span(Allele("c", 3, "GCA", "G"), seq)
    assert not deletion.is_insertion
    assert deletion.placements == {3: "CA", 4: "AC", 5: "CA", 6: "AC", 7: "CA"}
