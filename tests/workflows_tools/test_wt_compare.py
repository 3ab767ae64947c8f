"""compare_vcfs on crafted truth and call sets, with P/R/F1 worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snakemake_executor_awsbatch.errors import UserError
from workflows.tools.compare import compare_vcfs, main

from .helpers import CONTIG, other_base, random_sequence, write_fasta, write_vcf

# A random sequence with a homopolymer run at 0-based 100..106 ("G" then six "A"), "C" after.
SEQ = random_sequence(100, 11) + "GAAAAAAC" + random_sequence(300, 12)


@pytest.fixture()
def reference(tmp_path: Path) -> Path:
    return write_fasta(tmp_path / "ref.fa", SEQ)


def _snv(pos: int, filt: str = "PASS", gt: str = "0/1", alt: str | None = None) -> str:
    ref = SEQ[pos - 1]
    return f"{CONTIG}\t{pos}\t.\t{ref}\t{alt or other_base(ref)}\t50\t{filt}\t.\tGT\t{gt}"


def _ins(pos: int, inserted: str) -> str:
    ref = SEQ[pos - 1]
    return f"{CONTIG}\t{pos}\t.\t{ref}\t{ref + inserted}\t50\tPASS\t.\tGT\t0/1"


def test_counts_precision_recall_f1(tmp_path: Path, reference: Path) -> None:
    # Truth: SNVs at 20, 40, 60, 80; a one-A deletion in the run (left-aligned: POS 101 GA>G);
    # an insertion at 300.
    truth = write_vcf(
        tmp_path / "truth.vcf",
        [
            _snv(20),
            _snv(40),
            _snv(60),
            _snv(80),
            f"{CONTIG}\t101\t.\tGA\tG\t50\tPASS\t.\tGT\t0/1",
            _ins(300, "TTG"),
        ],
        len(SEQ),
    )
    r40 = SEQ[39]
    alt40 = other_base(r40)
    fp40 = other_base(alt40)
    calls = write_vcf(
        tmp_path / "calls.vcf",
        [
            _snv(20),
            # multiallelic: the true allele plus a false one at the same site
            f"{CONTIG}\t40\t.\t{r40}\t{alt40},{fp40}\t50\tPASS\t.\tGT\t1/2",
            _snv(60, filt="LowQual"),  # filtered: not a call
            _snv(80, gt="0/0"),  # genotype without the allele: not a call
            # the same deletion written at the right end of the run
            f"{CONTIG}\t106\t.\tAA\tA\t50\tPASS\t.\tGT\t0/1",
            _ins(200, "GG"),  # false indel
        ],
        len(SEQ),
    )
    result = compare_vcfs(truth, calls, reference)
    # SNV: truth 4, calls {20, 40, 40-false} -> TP 2, FP 1, FN 2.
    snv = result["snv"]
    assert isinstance(snv, dict)
    assert (snv["tp"], snv["fp"], snv["fn"]) == (2, 1, 2)
    assert snv["precision"] == pytest.approx(2 / 3)
    assert snv["recall"] == pytest.approx(0.5)
    assert snv["f1"] == pytest.approx(4 / 7)
    # Indels: truth 2, calls {deletion (matches after left-alignment), false insertion}.
    indel = result["indel"]
    assert isinstance(indel, dict)
    assert (indel["tp"], indel["fp"], indel["fn"]) == (1, 1, 1)
    assert (indel["precision"], indel["recall"], indel["f1"]) == (0.5, 0.5, 0.5)


def test_haplotype_equivalent_representation_matches(tmp_path: Path, reference: Path) -> None:
    # Truth: SNV at 250 and deletion of base 252 (pad 251). Calls: one complex allele spelling
    # the same sequence. Both truth alleles and the call count as true positives.
    p = 250
    seq = SEQ
    assert seq[p] != seq[p + 1] and seq[p + 1] != seq[p + 2]  # the deletion cannot slide
    snv_alt = other_base(seq[p - 1])
    truth = write_vcf(
        tmp_path / "truth.vcf",
        [
            f"{CONTIG}\t{p}\t.\t{seq[p - 1]}\t{snv_alt}\t50\tPASS\t.\tGT\t0/1",
            f"{CONTIG}\t{p + 1}\t.\t{seq[p : p + 2]}\t{seq[p]}\t50\tPASS\t.\tGT\t0/1",
        ],
        len(seq),
    )
    complex_ref = seq[p - 1 : p + 2]
    complex_alt = snv_alt + seq[p]
    calls = write_vcf(
        tmp_path / "calls.vcf",
        [f"{CONTIG}\t{p}\t.\t{complex_ref}\t{complex_alt}\t50\tPASS\t.\tGT\t0/1"],
        len(seq),
    )
    result = compare_vcfs(truth, calls, reference)
    assert result["snv"] == {
        "truth": 1,
        "calls": 0,
        "tp": 1,
        "tp_calls": 0,
        "fp": 0,
        "fn": 0,
        "precision": None,
        "recall": 1.0,
        "f1": None,
    }
    indel = result["indel"]
    assert isinstance(indel, dict)
    assert (indel["tp"], indel["tp_calls"], indel["fp"], indel["fn"]) == (1, 1, 0, 0)


def test_somatic_recall_by_vaf_and_regions(tmp_path: Path, reference: Path) -> None:
    vaf_info = ('##INFO=<ID=VAF,Number=1,Type=Float,Description="VAF">',)
    body = []
    for pos, vaf in ((20, 0.1), (40, 0.1), (60, 0.5), (80, 0.5), (300, 0.5)):
        ref = SEQ[pos - 1]
        body.append(f"{CONTIG}\t{pos}\t.\t{ref}\t{other_base(ref)}\t.\tPASS\tVAF={vaf}")
    truth = write_vcf(tmp_path / "truth.vcf", body, len(SEQ), samples=(), info=vaf_info)
    calls = write_vcf(tmp_path / "calls.vcf", [_snv(20), _snv(60), _snv(80), _snv(350)], len(SEQ))
    result = compare_vcfs(truth, calls, reference, somatic=True)
    # 0.1: 20 found, 40 missed -> 1/2; 0.5: 60, 80 found, 300 missed -> 2/3.
    assert result["snv_recall_by_vaf"] == {"0.1": 0.5, "0.5": pytest.approx(2 / 3)}
    assert result["indel_recall_by_vaf"] == {}
    bed = tmp_path / "r.bed"
    bed.write_text(f"{CONTIG}\t0\t100\n")
    # Only positions 1..100 count: truth {20, 40, 60, 80}, calls {20, 60, 80}.
    limited = compare_vcfs(truth, calls, reference, somatic=True, regions=bed)
    snv = limited["snv"]
    assert isinstance(snv, dict)
    assert (snv["tp"], snv["fp"], snv["fn"]) == (3, 0, 1)


def test_cli_writes_json_and_table(
    tmp_path: Path, reference: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = write_vcf(tmp_path / "t.vcf", [_snv(20), _snv(40)], len(SEQ))
    calls = write_vcf(tmp_path / "c.vcf", [_snv(20)], len(SEQ))
    out = tmp_path / "m.json"
    args = ["--truth", str(truth), "--calls", str(calls), "--reference", str(reference)]
    assert main([*args, "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["snv"]["recall"] == 0.5 and data["snv"]["precision"] == 1.0
    assert "snv" in capsys.readouterr().out


def test_missing_file_is_a_user_error(tmp_path: Path, reference: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        compare_vcfs(tmp_path / "nope.vcf", tmp_path / "nope2.vcf", reference)
