"""Likelihood scores and tests used by the somatic classifier.

Each read supporting REF or ALT has an error probability e (from its base quality for SNVs, a
fixed rate for indels) and a chance c that an error produces exactly this ALT (1/3 for an SNV,
1 for an indel). Under allele fraction f a read shows ALT with probability f(1-e) + (1-f)ec
and REF with probability (1-f)(1-e) + fe/3.
"""

from __future__ import annotations

import math

from workflows.tools.read_support import Evidence


def _log10_likelihood(evidence: Evidence, f: float, c: float) -> float:
    """log10 P(reads | allele fraction f)."""
    total = 0.0
    for e in evidence.alt_errors:
        total += math.log10(f * (1 - e) + (1 - f) * e * c)
    for e in evidence.ref_errors:
        total += math.log10((1 - f) * (1 - e) + f * e / 3)
    return total


def tumor_lod(evidence: Evidence, is_snv: bool) -> float:
    """log10 odds of the ALT being present at its observed fraction versus only errors."""
    if not evidence.alt:
        return 0.0
    c = 1 / 3 if is_snv else 1.0
    f = evidence.alt / (evidence.alt + evidence.ref)
    return _log10_likelihood(evidence, f, c) - _log10_likelihood(evidence, 0.0, c)


def normal_lod(evidence: Evidence, is_snv: bool) -> float:
    """log10 odds of the normal being reference (f=0) versus heterozygous (f=0.5)."""
    c = 1 / 3 if is_snv else 1.0
    return _log10_likelihood(evidence, 0.0, c) - _log10_likelihood(evidence, 0.5, c)


def fisher_exact(a: int, b: int, c: int, d: int) -> float:
    """Two-sided Fisher exact test p-value for the 2x2 table [[a, b], [c, d]]."""
    row1, col1, n = a + b, a + c, a + b + c + d
    if n == 0:
        return 1.0
    denom = math.comb(n, col1)

    def prob(x: int) -> float:
        """Hypergeometric probability of x in the top-left cell, margins fixed."""
        return math.comb(row1, x) * math.comb(n - row1, col1 - x) / denom

    observed = prob(a)
    low, high = max(0, col1 - (n - row1)), min(row1, col1)
    # Relative tolerance so that tables as likely as the observed one are included.
    return min(1.0, sum(p for x in range(low, high + 1) if (p := prob(x)) <= observed * (1 + 1e-7)))


def strand_bias_p(evidence: Evidence) -> float:
    """Fisher p-value that ALT reads' strands differ from REF reads' strands."""
    return fisher_exact(evidence.ref_fwd, evidence.ref_rev, evidence.alt_fwd, evidence.alt_rev)


def median(values: list[int]) -> float:
    """Median of a non-empty list."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
