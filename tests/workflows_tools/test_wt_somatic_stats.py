"""Scores of the somatic classifier: TLOD, NLOD, Fisher strand test, and the filter logic."""

from __future__ import annotations

import pytest

from workflows.tools.read_support import Evidence
from workflows.tools.somatic_classify import Thresholds, classify_allele
from workflows.tools.somatic_stats import fisher_exact, median, normal_lod, tumor_lod
from workflows.tools.vcf_utils import Allele

SNV = Allele("c", 100, "A", "G")
DEL = Allele("c", 100, "AT", "A")


def _ev(
    ref: int,
    alt: int,
    q: int = 30,
    alt_fwd: int | None = None,
    ref_fwd: int | None = None,
    alt_mq: int = 60,
) -> Evidence:
    """Evidence with `ref`/`alt` reads of quality q; strands split evenly unless given."""
    e = 10 ** (-q / 10)
    fwd = alt // 2 if alt_fwd is None else alt_fwd
    rfwd = ref // 2 if ref_fwd is None else ref_fwd
    return Evidence(
        ref_errors=[e] * ref,
        alt_errors=[e] * alt,
        ref_fwd=rfwd,
        ref_rev=ref - rfwd,
        alt_fwd=fwd,
        alt_rev=alt - fwd,
        alt_mqs_unfiltered=[alt_mq] * alt,
    )


def test_fisher_exact_matches_the_textbook_example() -> None:
    # The dieting example of Fisher's test: [[1, 9], [11, 3]] has two-sided p = 0.002759.
    assert fisher_exact(1, 9, 11, 3) == pytest.approx(0.002759, abs=1e-6)
    assert fisher_exact(5, 5, 5, 5) == pytest.approx(1.0)
    assert fisher_exact(0, 0, 0, 0) == 1.0


def test_tumor_lod_by_hand() -> None:
    # 3 ALT and 17 REF reads at Q30 (e = 0.001), f = 0.15:
    # 3*[log10(0.15*0.999 + 0.85*0.001/3) - log10(0.001/3)] = 3 * 2.6536 = 7.9608
    # 17*[log10(0.85*0.999 + 0.15*0.001/3) - log10(0.999)] = 17 * -0.07056 = -1.1995
    assert tumor_lod(_ev(17, 3), is_snv=True) == pytest.approx(6.7613, abs=1e-3)
    assert tumor_lod(_ev(20, 0), is_snv=True) == 0.0
    # An indel error is specific (c = 1 instead of 1/3), so the same counts score lower.
    assert tumor_lod(_ev(17, 3), is_snv=False) < tumor_lod(_ev(17, 3), is_snv=True)


def test_normal_lod_by_hand() -> None:
    # 10 REF reads at Q30: 10 * log10(0.999 / (0.5*0.999 + 0.5*0.001/3)) = 3.0089
    assert normal_lod(_ev(10, 0), is_snv=True) == pytest.approx(3.0089, abs=1e-3)
    assert normal_lod(_ev(15, 15), is_snv=True) < -10


def test_median() -> None:
    assert median([3, 1, 2]) == 2.0 and median([4, 1, 2, 3]) == 2.5


def test_classifier_passes_a_clear_somatic_snv() -> None:
    result = classify_allele(SNV, _ev(40, 20), _ev(30, 0), Thresholds())
    assert result.filters == ()
    assert result.tlod > 30 and result.nlod > 8


def test_classifier_reasons() -> None:
    t = Thresholds()
    assert classify_allele(SNV, _ev(57, 3), _ev(30, 0), t).filters == ("LowTumorLOD",)
    assert classify_allele(SNV, _ev(30, 30), _ev(15, 15), t).filters == ("NormalEvidence",)
    # Normal VAF guard: 3 of 30 normal reads show the ALT, NLOD alone would still pass.
    guard = classify_allele(SNV, _ev(40, 20), _ev(60, 3), t)
    assert guard.nlod > t.min_normal_lod and guard.filters == ("NormalEvidence",)
    biased = classify_allele(SNV, _ev(40, 20, alt_fwd=20), _ev(30, 0), t)
    assert biased.filters == ("StrandBias",)
    assert classify_allele(SNV, _ev(40, 20, alt_mq=10), _ev(30, 0), t).filters == ("LowMQ",)
    assert classify_allele(SNV, _ev(40, 20), _ev(5, 0), t).filters == ("NormalEvidence", "LowDepth")
    assert classify_allele(DEL, _ev(40, 20), _ev(30, 0), t).filters == ()


def test_thresholds_are_configurable() -> None:
    lenient = Thresholds(min_tumor_lod=3.0)
    assert classify_allele(SNV, _ev(57, 3), _ev(30, 0), lenient).filters == ()
