"""End to end on a small simulated tumor/normal: bwa, freebayes, the classifier, compare."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pysam
import pytest

from workflows.tools.compare import compare_vcfs
from workflows.tools.simulate import SimParams, simulate
from workflows.tools.somatic_classify import main as classify_main
from workflows.tools.vcf_utils import Reference, read_alleles


def _sh(cmd: str, cwd: Path) -> None:
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("somatic")
    simulate(
        SimParams(
            outdir=out,
            region_length=40000,
            normal_depth=30,
            tumor_depth=60,
            seed=3,
            germline_indel_rate=0.0005,
            somatic_snvs=40,
            somatic_indels=10,
            vafs=(0.2, 0.3, 0.5),
        )
    )
    _sh("bwa index reference.fa", out)
    for s in ("normal", "tumor"):
        _sh(
            f"bwa mem -t 2 -R '@RG\\tID:{s}\\tSM:{s}' reference.fa reads/{s}_R1.fastq.gz "
            f"reads/{s}_R2.fastq.gz | samtools sort -o {s}.bam - && samtools index {s}.bam",
            out,
        )
    _sh(
        "freebayes -f reference.fa --min-alternate-fraction 0.02 --min-alternate-count 2 "
        "--pooled-continuous tumor.bam normal.bam | bgzip > candidates.vcf.gz",
        out,
    )
    _sh("freebayes -f reference.fa normal.bam | bgzip > germline_calls.vcf.gz", out)
    return out


def test_fragments_align_as_simulated(data: Path) -> None:
    with pysam.AlignmentFile(str(data / "normal.bam")) as bam:
        sizes = [r.template_length for r in bam if r.is_proper_pair and r.template_length > 0]
    mean = sum(sizes) / len(sizes)
    assert 330 < mean < 370


def test_germline_calls_match_the_truth(data: Path) -> None:
    result = compare_vcfs(
        data / "truth/germline.vcf.gz", data / "germline_calls.vcf.gz", data / "reference.fa"
    )
    for kind in ("snv", "indel"):
        stats = result[kind]
        assert isinstance(stats, dict) and stats["truth"] > 0
        assert stats["recall"] >= 0.9 and stats["precision"] >= 0.9, (kind, stats)


def test_classifier_finds_somatic_and_rejects_germline(data: Path) -> None:
    out = data / "somatic.vcf.gz"
    args = [
        "--candidates",
        str(data / "candidates.vcf.gz"),
        "--tumor-bam",
        str(data / "tumor.bam"),
        "--normal-bam",
        str(data / "normal.bam"),
        "--reference",
        str(data / "reference.fa"),
        "--out",
        str(out),
    ]
    assert classify_main(args) == 0
    assert Path(f"{out}.tbi").is_file()
    result = compare_vcfs(data / "truth/somatic.vcf.gz", out, data / "reference.fa", somatic=True)
    snv, indel = result["snv"], result["indel"]
    assert isinstance(snv, dict) and isinstance(indel, dict)
    assert snv["truth"] == 40 and indel["truth"] == 10
    assert snv["recall"] >= 0.95 and snv["precision"] >= 0.95, snv
    assert indel["recall"] >= 0.8 and indel["fp"] <= 1, indel
    # Every germline allele that became a candidate is rejected because the normal has it.
    ref = Reference(data / "reference.fa")
    germline = {a.allele for a in read_alleles(data / "truth/germline.vcf.gz", ref)}
    ref.close()
    seen = 0
    with pysam.VariantFile(str(out)) as vcf:
        assert list(vcf.header.samples) == ["tumor", "normal"]
        for rec in vcf:
            key = (rec.pos, rec.ref, rec.alts[0])
            if any((a.pos, a.ref, a.alt) == key for a in germline):
                seen += 1
                assert "NormalEvidence" in rec.filter, key
                assert rec.samples["normal"]["AF"][0] > 0.2
    assert seen >= 0.9 * len(germline)


def test_classifier_reports_a_missing_bam_index(data: Path, tmp_path: Path) -> None:
    bam = tmp_path / "noindex.bam"
    bam.write_bytes((data / "tumor.bam").read_bytes())
    args = [
        "--candidates", str(data / "candidates.vcf.gz"), "--tumor-bam", str(bam),
        "--normal-bam", str(data / "normal.bam"), "--reference", str(data / "reference.fa"),
        "--out", str(tmp_path / "x.vcf.gz"),
    ]  # fmt: skip
    assert classify_main(args) == 2
    assert not (tmp_path / "x.vcf.gz").exists()
