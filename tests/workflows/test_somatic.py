"""The somatic workflow end to end on tiny simulated data: Snakemake (plain) and CWL."""

from __future__ import annotations

from pathlib import Path

import pysam
import pytest
from wf_helpers import REPO, file_job, records, run_cwltool

from workflows.demo import RunResult, result_vcf, run_workflow
from workflows.tools.compare import compare_vcfs

PAIR = "tumor_vs_normal"


@pytest.fixture(scope="module")
def somatic_run(sim_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """One plain `snakemake -c 2` run of the somatic workflow."""
    run = run_workflow("somatic", tmp_path_factory.mktemp("somatic"), sim_dir, executor=False)
    assert run.ok, run.log.read_text()[-4000:]
    return run


def test_snakemake_finds_the_planted_somatic_variants(
    somatic_run: RunResult, sim_dir: Path
) -> None:
    vcf = result_vcf("somatic", somatic_run.workdir, PAIR)
    acc = compare_vcfs(
        sim_dir / "truth/somatic.vcf.gz", vcf, sim_dir / "reference.fa", somatic=True
    )
    snv = acc["snv"]
    assert isinstance(snv, dict)
    assert snv["tp"] >= 5
    assert snv["precision"] >= 0.9
    assert snv["recall"] >= 0.6
    by_vaf = acc["snv_recall_by_vaf"]
    assert isinstance(by_vaf, dict)
    high = [r for vaf, r in by_vaf.items() if float(vaf) >= 0.2 and r is not None]
    assert high and min(high) >= 0.9


def test_germline_sites_are_rejected_with_their_evidence(somatic_run: RunResult) -> None:
    vcf = result_vcf("somatic", somatic_run.workdir, PAIR)
    with pysam.VariantFile(str(vcf)) as handle:
        samples = list(handle.header.samples)
        assert samples == [f"{PAIR}.tumor", f"{PAIR}.normal"]
        filters = [list(rec.filter.keys()) for rec in handle]
    assert any(f == ["PASS"] for f in filters)
    # The normal's own (germline) variants are candidates too and must not pass.
    assert sum("NormalEvidence" in f for f in filters) >= 10
    with pysam.VariantFile(str(vcf)) as handle:
        rec = next(iter(handle))
        assert "TLOD" in rec.info and "AD" in rec.samples[0]


def test_cwl_gives_the_same_calls_as_snakemake(
    somatic_run: RunResult, sim_dir: Path, tmp_path: Path
) -> None:
    reads = sim_dir / "reads"
    out = run_cwltool(
        REPO / "workflows/somatic/cwl/somatic.cwl",
        {
            "pair": PAIR,
            "tumor_fq1": file_job(reads / "tumor_R1.fastq.gz"),
            "tumor_fq2": file_job(reads / "tumor_R2.fastq.gz"),
            "normal_fq1": file_job(reads / "normal_R1.fastq.gz"),
            "normal_fq2": file_job(reads / "normal_R2.fastq.gz"),
            "reference": file_job(sim_dir / "reference.fa"),
        },
        tmp_path / "out",
    )
    vcf = out["somatic_vcf"]
    assert isinstance(vcf, dict)
    cwl_records = records(Path(vcf["path"]))
    assert cwl_records
    assert cwl_records == records(result_vcf("somatic", somatic_run.workdir, PAIR))


@pytest.mark.e2e
def test_snakemake_on_the_local_cloud_matches_the_plain_run(
    somatic_run: RunResult, sim_dir: Path, tmp_path: Path
) -> None:
    batch = run_workflow("somatic", tmp_path / "batch", sim_dir, executor=True)
    assert batch.ok, batch.log.read_text()[-4000:]
    # One job per BAM (group align: bwa_mem and its QC) and one for the pair (group call: the
    # candidate chunks, their gathering and the classifier); the chunk VCFs never left it.
    assert batch.batch_jobs == 3
    totals = batch.totals
    assert totals is not None and totals["direct_shell_jobs"] == batch.batch_jobs
    vcf = result_vcf("somatic", batch.workdir, PAIR)
    assert Path(f"{vcf}.tbi").exists()
    assert records(vcf) == records(result_vcf("somatic", somatic_run.workdir, PAIR))
