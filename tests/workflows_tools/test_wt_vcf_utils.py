"""Allele normalisation: trimming, left-alignment, MNP splitting, symbolic alleles."""

from __future__ import annotations

from workflows.tools.vcf_utils import Allele, normalize_allele, revcomp

# 1-based POS:   1234567890123456789
SEQ = "TTGCAAAAAGCTCACACAG"


def test_deletion_in_homopolymer_is_left_aligned() -> None:
    # Deleting the last A of the run (POS 8, REF AA: the A at 9 goes) is the same as deleting
    # the first one; the leftmost representation pads with the C at POS 4.
    assert normalize_allele("c", 8, "AA", "A", SEQ) == [Allele("c", 4, "CA", "C")]


def test_insertion_in_dinucleotide_repeat_is_left_aligned() -> None:
    # Inserting CA after POS 16 (A, inside CACACA at 13-18) equals inserting it after the T at
    # POS 12, just before the repeat.
    assert normalize_allele("c", 16, "A", "ACA", SEQ) == [Allele("c", 12, "T", "TCA")]


def test_shared_suffix_is_trimmed_and_snv_stays() -> None:
    assert normalize_allele("c", 3, "GCA", "TCA", SEQ) == [Allele("c", 3, "G", "T")]


def test_mnp_is_split_into_snvs() -> None:
    assert normalize_allele("c", 2, "TGC", "AGT", SEQ) == [
        Allele("c", 2, "T", "A"),
        Allele("c", 4, "C", "T"),
    ]


def test_symbolic_and_reference_alleles_are_dropped() -> None:
    assert normalize_allele("c", 2, "T", "<DEL>", SEQ) == []
    assert normalize_allele("c", 2, "T", "*", SEQ) == []
    assert normalize_allele("c", 2, "T", "T", SEQ) == []


def test_complex_allele_is_trimmed_but_kept_whole() -> None:
    result = normalize_allele("c", 3, "GCAA", "GTT", SEQ)
    assert result == [Allele("c", 4, "CAA", "TT")]
    assert result[0].is_indel and not result[0].is_snv


def test_revcomp() -> None:
    assert revcomp("AACGTN") == "NACGTT"
