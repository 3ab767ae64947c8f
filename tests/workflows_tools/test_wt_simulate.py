"""The read simulator: determinism, file layout, and truth consistency with the reads."""

from __future__ import annotations

import gzip
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pysam
import pytest

from snakemake_executor_awsbatch.errors import UserError
from workflows.tools import sim_genome
from workflows.tools.simulate import DEFAULT_REFERENCE, SimParams, base_quality, main, simulate
from workflows.tools.vcf_utils import revcomp

from .helpers import random_sequence

FLANK = 12


def _read_fastq(path: Path) -> Iterator[tuple[str, str, str]]:
    """(name, sequence, quality) of each record."""
    with gzip.open(path, "rt") as handle:
        while True:
            name = handle.readline().rstrip()
            if not name:
                return
            seq = handle.readline().rstrip()
            handle.readline()
            yield name, seq, handle.readline().rstrip()


def _records(path: Path) -> list[pysam.VariantRecord]:
    with pysam.VariantFile(str(path)) as vcf:
        return list(vcf)


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_is_byte_identical_and_other_seed_differs(tmp_path: Path) -> None:
    args = ["--region-length", "5000", "--normal-depth", "5", "--tumor-depth", "8"]
    assert main(["--outdir", str(tmp_path / "a"), *args]) == 0
    assert main(["--outdir", str(tmp_path / "b"), *args]) == 0
    assert main(["--outdir", str(tmp_path / "c"), *args, "--seed", "2"]) == 0
    a, b, c = (_tree_bytes(tmp_path / x) for x in "abc")
    assert a == b
    assert set(a) == set(c)
    for name in ("reads/normal_R1.fastq.gz", "reads/tumor_R2.fastq.gz", "truth/germline.vcf.gz"):
        assert a[name] != c[name]
    assert a["reference.fa"] == c["reference.fa"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    simulate(
        SimParams(
            outdir=out,
            region_length=20000,
            normal_depth=30,
            tumor_depth=200,
            germline_indel_rate=0.001,
            somatic_snvs=30,
            somatic_indels=9,
            vafs=(0.05, 0.2, 0.5),
        )
    )
    return out


def test_layout_tables_and_counts(sim: Path) -> None:
    assert (sim / "samples.tsv").read_text().splitlines() == [
        "sample\tfq1\tfq2",
        "normal\treads/normal_R1.fastq.gz\treads/normal_R2.fastq.gz",
    ]
    assert (sim / "pairs.tsv").read_text().splitlines()[1].split("\t") == [
        "tumor_vs_normal",
        "reads/tumor_R1.fastq.gz",
        "reads/tumor_R2.fastq.gz",
        "reads/normal_R1.fastq.gz",
        "reads/normal_R2.fastq.gz",
    ]
    for name in ("germline", "somatic"):
        assert (sim / "truth" / f"{name}.vcf.gz.tbi").is_file()
    report = json.loads((sim / "simulation.json").read_text())
    germline = _records(sim / "truth" / "germline.vcf.gz")
    somatic = _records(sim / "truth" / "somatic.vcf.gz")
    snv = sum(len(r.ref) == 1 and len(r.alts[0]) == 1 for r in germline)
    assert (report["germline"]["snv"], report["germline"]["indel"]) == (snv, len(germline) - snv)
    assert (report["germline"]["snv"], report["germline"]["indel"]) == (20, 20)
    assert (report["somatic"]["snv"], report["somatic"]["indel"]) == (30, 9)
    assert report["somatic"]["by_vaf"] == {"0.05": 13, "0.2": 13, "0.5": 13}
    assert {str(r.samples["normal"]["GT"]) for r in germline} <= {"(0, 1)", "(1, 0)", "(1, 1)"}
    assert all(r.samples["normal"].phased for r in germline)
    with pysam.FastaFile(str(sim / "reference.fa")) as fa:
        assert list(fa.references) == ["CHROMOSOME_I"] and list(fa.lengths) == [20000]
    spans = sorted((r.pos, r.pos + len(r.ref)) for r in germline + somatic)
    assert all(nxt[0] - cur[1] >= 20 for cur, nxt in itertools.pairwise(spans))


def test_reads_have_length_quality_and_pair_counts(sim: Path) -> None:
    report = json.loads((sim / "simulation.json").read_text())
    qual = chr(33 + base_quality(0.001))
    for sample, depth in (("normal", 30), ("tumor", 200)):
        r1 = list(_read_fastq(sim / "reads" / f"{sample}_R1.fastq.gz"))
        r2 = list(_read_fastq(sim / "reads" / f"{sample}_R2.fastq.gz"))
        assert len(r1) == len(r2) == report["read_pairs"][sample] == round(depth * 20000 / 300)
        assert [n for n, _, _ in r1] == [n for n, _, _ in r2]
        assert all(len(s) == 150 and q == qual * 150 for _, s, q in r1 + r2)


def _kmer_text(path_r1: Path, path_r2: Path) -> str:
    """All reads of a sample, both orientations, separated so contexts cannot span reads."""
    seqs = [s for p in (path_r1, path_r2) for _, s, _ in _read_fastq(p)]
    return "|".join(seqs) + "|" + "|".join(revcomp(s) for s in seqs)


def _contexts(seq: str, rec: pysam.VariantRecord) -> tuple[str, str]:
    """Reference and alternate sequence around a variant, FLANK bases each side."""
    p0 = rec.pos - 1
    left = seq[p0 - FLANK : p0]
    right = seq[p0 + len(rec.ref) : p0 + len(rec.ref) + FLANK]
    return left + rec.ref + right, left + rec.alts[0] + right


def _unique(seq: str, recs: list[pysam.VariantRecord]) -> list[pysam.VariantRecord]:
    """Variants whose contexts occur nowhere else in the reference (not in a repeat)."""
    both = seq + "|" + revcomp(seq)
    kept = []
    for rec in recs:
        ref_ctx, alt_ctx = _contexts(seq, rec)
        if both.count(ref_ctx) == 1 and both.count(alt_ctx) == 0:
            kept.append(rec)
    return kept


def _alt_fraction(text: str, seq: str, recs: list[pysam.VariantRecord]) -> float:
    """Pooled fraction of reads spanning the variants that carry the ALT context."""
    ref_n = alt_n = 0
    for rec in _unique(seq, recs):
        ref_ctx, alt_ctx = _contexts(seq, rec)
        ref_n += text.count(ref_ctx)
        alt_n += text.count(alt_ctx)
    return alt_n / (ref_n + alt_n)


def test_planted_variants_are_in_the_reads(sim: Path) -> None:
    with pysam.FastaFile(str(sim / "reference.fa")) as fa:
        seq = fa.fetch("CHROMOSOME_I")
    normal = _kmer_text(sim / "reads" / "normal_R1.fastq.gz", sim / "reads" / "normal_R2.fastq.gz")
    tumor = _kmer_text(sim / "reads" / "tumor_R1.fastq.gz", sim / "reads" / "tumor_R2.fastq.gz")
    germline = _records(sim / "truth" / "germline.vcf.gz")
    het = [r for r in germline if r.samples["normal"]["GT"] != (1, 1)]
    hom = [r for r in germline if r.samples["normal"]["GT"] == (1, 1)]
    assert len(_unique(seq, het)) >= 10 and len(_unique(seq, hom)) >= 5
    # Every germline allele is seen in the normal; hets at about half the reads, homs at all.
    for rec in germline:
        assert normal.count(_contexts(seq, rec)[1]) >= 3, rec
    assert 0.4 < _alt_fraction(normal, seq, het) < 0.6
    assert _alt_fraction(normal, seq, hom) > 0.97
    assert 0.4 < _alt_fraction(tumor, seq, het) < 0.6
    # Somatic alleles: absent from the normal, in the tumor at their VAF.
    somatic = _records(sim / "truth" / "somatic.vcf.gz")
    assert _alt_fraction(normal, seq, somatic) < 0.01
    for vaf in (0.05, 0.2, 0.5):
        recs = [r for r in somatic if r.info["VAF"] == pytest.approx(vaf)]
        assert abs(_alt_fraction(tumor, seq, recs) - vaf) < 0.05, vaf
        if vaf >= 0.2:
            assert all(tumor.count(_contexts(seq, r)[1]) >= 3 for r in recs)


def test_no_tumor_writes_only_the_normal(tmp_path: Path) -> None:
    simulate(SimParams(outdir=tmp_path, region_length=3000, normal_depth=3, tumor=False))
    assert (tmp_path / "reads" / "normal_R1.fastq.gz").is_file()
    assert not (tmp_path / "reads" / "tumor_R1.fastq.gz").exists()
    assert not (tmp_path / "pairs.tsv").exists()
    assert not (tmp_path / "truth" / "somatic.vcf.gz").exists()


def test_bad_parameters_are_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UserError, match="--region-length"):
        simulate(SimParams(outdir=tmp_path, region_length=10**9))
    with pytest.raises(UserError, match="--vafs"):
        simulate(SimParams(outdir=tmp_path, region_length=5000, vafs=(0.7,)))
    with pytest.raises(UserError, match="minimum spacing"):
        simulate(
            SimParams(outdir=tmp_path, region_length=2000, germline_snv_rate=0.02, somatic_snvs=500)
        )
    assert main(["--outdir", str(tmp_path), "--reference", str(tmp_path / "missing.fa")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert DEFAULT_REFERENCE.is_file()


def test_every_contig_is_simulated_without_region_length(tmp_path: Path) -> None:
    fasta = tmp_path / "two.fa"
    fasta.write_text(
        ">first\n" + random_sequence(6000, 1) + "\n>second\n" + random_sequence(3000, 2) + "\n"
    )
    out = tmp_path / "out"
    report = simulate(
        SimParams(
            outdir=out, reference=fasta, normal_depth=10, tumor_depth=10,
            germline_snv_rate=0.005, somatic_snvs=20, somatic_indels=4,
        )
    )  # fmt: skip
    assert report["contigs"] == [
        {"name": "first", "length": 6000},
        {"name": "second", "length": 3000},
    ]
    chroms = {r.chrom for r in _records(out / "truth" / "germline.vcf.gz")}
    chroms |= {r.chrom for r in _records(out / "truth" / "somatic.vcf.gz")}
    assert chroms == {"first", "second"}
    assert report["read_pairs"] == {"normal": 300, "tumor": 300}


def test_default_reference_is_found_through_dpkg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sim_genome, "DEFAULT_REFERENCE", tmp_path / "moved" / "ce.fa")
    found = sim_genome.find_default_reference()
    assert found.name == "ce.fa" and found.is_file()
    monkeypatch.setenv("PATH", str(tmp_path))  # no dpkg to ask
    with pytest.raises(UserError, match="htslib-test"):
        sim_genome.find_default_reference()
