"""Compare a call set with a truth VCF: precision, recall and F1 for SNVs and indels.

Both sets are normalised the same way (multiallelics split, alleles trimmed and left-aligned,
MNPs split into SNVs), only PASS or '.' records whose genotype carries the allele are kept, and
alleles are matched by (chrom, pos, ref, alt). Alleles left unmatched are then grouped into small
clusters; a cluster whose truth alleles and call alleles spell the same local sequence counts as
matched (a different representation of the same haplotype). Genotypes are not compared.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from snakemake_executor_awsbatch.errors import UserError
from workflows.tools.vcf_utils import Allele, Reference, VcfAllele, iter_bed, read_alleles

_CLUSTER_SLOP = 10


@dataclass(frozen=True)
class Match:
    """Which truth and call alleles were matched."""

    truth_tp: frozenset[Allele]
    calls_tp: frozenset[Allele]


def _in_regions(
    alleles: list[VcfAllele], regions: dict[str, list[tuple[int, int]]]
) -> list[VcfAllele]:
    """Keep alleles whose POS lies inside one of the BED intervals."""
    kept = []
    for item in alleles:
        a = item.allele
        if any(start < a.pos <= end for start, end in regions.get(a.chrom, ())):
            kept.append(item)
    return kept


def _apply(window_start: int, window: str, alleles: list[Allele]) -> str | None:
    """Spell `window` (1-based start) with `alleles` applied; None when alleles overlap."""
    out = []
    cursor = window_start
    for a in sorted(alleles):
        if a.pos < cursor:
            return None
        out.append(window[cursor - window_start : a.pos - window_start])
        out.append(a.alt)
        cursor = a.pos + len(a.ref)
    out.append(window[cursor - window_start :])
    return "".join(out)


def _equivalent_clusters(truth: list[Allele], calls: list[Allele], reference: Reference) -> Match:
    """Match leftover alleles whose clusters spell the same haplotype sequence."""
    tagged = sorted([(a, True) for a in truth] + [(a, False) for a in calls])
    truth_tp: set[Allele] = set()
    calls_tp: set[Allele] = set()
    clusters: list[list[tuple[Allele, bool]]] = []
    for item in tagged:
        last = clusters[-1] if clusters else None
        if (
            last
            and last[-1][0].chrom == item[0].chrom
            and item[0].pos <= max(a.end for a, _ in last) + _CLUSTER_SLOP
        ):
            last.append(item)
        else:
            clusters.append([item])
    for cluster in clusters:
        t = [a for a, is_truth in cluster if is_truth]
        c = [a for a, is_truth in cluster if not is_truth]
        if not t or not c:
            continue
        chrom = cluster[0][0].chrom
        start = max(1, min(a.pos for a, _ in cluster) - 1)
        end = max(a.end for a, _ in cluster) + 1
        window = reference.sequence(chrom)[start - 1 : end]
        spelled_t = _apply(start, window, t)
        if spelled_t is not None and spelled_t == _apply(start, window, c):
            truth_tp.update(t)
            calls_tp.update(c)
    return Match(frozenset(truth_tp), frozenset(calls_tp))


def match_alleles(truth: list[Allele], calls: list[Allele], reference: Reference) -> Match:
    """Exact matching first, then haplotype-equivalent clusters among the leftovers."""
    exact = set(truth) & set(calls)
    extra = _equivalent_clusters(
        [a for a in truth if a not in exact], [a for a in calls if a not in exact], reference
    )
    return Match(frozenset(exact | extra.truth_tp), frozenset(exact | extra.calls_tp))


def _ratio(num: int, den: int) -> float | None:
    """num/den, or None when den is zero (undefined)."""
    return num / den if den else None


def _stats(truth: list[Allele], calls: list[Allele], match: Match) -> dict[str, object]:
    """TP/FP/FN with precision (call side), recall (truth side) and F1."""
    tp = sum(a in match.truth_tp for a in truth)
    tp_calls = sum(a in match.calls_tp for a in calls)
    fn = len(truth) - tp
    fp = len(calls) - tp_calls
    precision = _ratio(tp_calls, tp_calls + fp)
    recall = _ratio(tp, tp + fn)
    f1 = None
    if precision is not None and recall is not None:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "truth": len(truth),
        "calls": len(calls),
        "tp": tp,
        "tp_calls": tp_calls,
        "fp": fp,
        "fn": fn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def _recall_by_vaf(
    truth: list[VcfAllele], match: Match
) -> tuple[dict[str, float | None], dict[str, dict[str, int]]]:
    """Recall per truth INFO/VAF value, with the counts behind it."""
    counts: dict[str, dict[str, int]] = {}
    for item in truth:
        key = f"{item.vaf:g}" if item.vaf is not None else "unknown"
        bucket = counts.setdefault(key, {"tp": 0, "fn": 0})
        bucket["tp" if item.allele in match.truth_tp else "fn"] += 1
    ordered = dict(
        sorted(
            counts.items(),
            key=lambda kv: (kv[0] == "unknown", kv[0] if kv[0] == "unknown" else float(kv[0])),
        )
    )
    return {k: _ratio(v["tp"], v["tp"] + v["fn"]) for k, v in ordered.items()}, ordered


def compare_vcfs(
    truth: str | Path,
    calls: str | Path,
    reference: str | Path,
    somatic: bool = False,
    regions: str | Path | None = None,
) -> dict[str, object]:
    """Compare `calls` with `truth`; returns {"snv": {...}, "indel": {...}} (+ by-VAF recall)."""
    ref = Reference(reference)
    try:
        truth_items = read_alleles(truth, ref)
        call_items = read_alleles(calls, ref)
        if regions is not None:
            intervals: dict[str, list[tuple[int, int]]] = {}
            for chrom, start, end in iter_bed(regions):
                intervals.setdefault(chrom, []).append((start, end))
            truth_items = _in_regions(truth_items, intervals)
            call_items = _in_regions(call_items, intervals)
        match = match_alleles([t.allele for t in truth_items], [c.allele for c in call_items], ref)
    finally:
        ref.close()
    result: dict[str, object] = {}
    for kind in ("snv", "indel"):
        want_snv = kind == "snv"
        t = [x.allele for x in truth_items if x.allele.is_snv == want_snv]
        c = [x.allele for x in call_items if x.allele.is_snv == want_snv]
        result[kind] = _stats(t, c, match)
        if somatic:
            kept = [x for x in truth_items if x.allele.is_snv == want_snv]
            recall, counts = _recall_by_vaf(kept, match)
            result[f"{kind}_recall_by_vaf"] = recall
            result[f"{kind}_counts_by_vaf"] = counts
    return result


def _fmt(value: object) -> str:
    """Format a metric for the text table."""
    return "n/a" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def format_table(result: dict[str, object]) -> str:
    """A small text table of the comparison."""
    cols = ["truth", "calls", "tp", "fp", "fn", "precision", "recall", "f1"]
    lines = ["type   " + "".join(f"{c:>10}" for c in cols)]
    for kind in ("snv", "indel"):
        stats = result[kind]
        assert isinstance(stats, dict)
        lines.append(f"{kind:<7}" + "".join(f"{_fmt(stats[c]):>10}" for c in cols))
    for kind in ("snv", "indel"):
        by_vaf = result.get(f"{kind}_recall_by_vaf")
        if isinstance(by_vaf, dict):
            cells = ", ".join(f"{k}: {_fmt(v)}" for k, v in by_vaf.items())
            lines.append(f"{kind} recall by VAF: {cells}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(prog="python -m workflows.tools.compare", description=__doc__)
    ap.add_argument("--truth", required=True, help="truth VCF (bgzipped or plain)")
    ap.add_argument("--calls", required=True, help="call set VCF to evaluate")
    ap.add_argument("--reference", required=True, help="reference FASTA both VCFs refer to")
    ap.add_argument("--json", type=Path, default=None, help="write the metrics as JSON here")
    ap.add_argument("--somatic", action="store_true", help="also report recall by truth INFO/VAF")
    ap.add_argument("--regions", default=None, help="BED file: only count variants inside it")
    ns = ap.parse_args(argv)
    try:
        result = compare_vcfs(ns.truth, ns.calls, ns.reference, ns.somatic, ns.regions)
    except UserError as exc:
        print(f"compare: {exc}", file=sys.stderr)
        return 2
    print(format_table(result))
    if ns.json is not None:
        ns.json.parent.mkdir(parents=True, exist_ok=True)
        ns.json.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
