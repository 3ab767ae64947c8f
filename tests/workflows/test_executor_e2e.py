"""The germline workflow on the local cloud: Snakemake through `--executor awsbatch
--awsbatch-local`, CWL through `cwl-awsbatch --local`."""

from __future__ import annotations

from pathlib import Path

import pytest
from wf_helpers import REPO, file_job, records, run_cwltool

from workflows.demo import executor_available, result_vcf, run_workflow

CONFIG = {"scatter": 1}


@pytest.mark.e2e
def test_germline_on_the_local_cloud_matches_the_plain_run(sim_dir: Path, tmp_path: Path) -> None:
    assert executor_available(), "Snakemake cannot load the awsbatch executor plugin"
    batch = run_workflow(
        "germline", tmp_path / "batch", sim_dir, executor=True, extra_config=CONFIG
    )
    assert batch.ok, batch.log.read_text()[-4000:]
    # Every workflow step except those Snakemake keeps local ran as a Batch job.
    assert batch.batch_jobs is not None and batch.batch_jobs >= 10
    plain = run_workflow(
        "germline", tmp_path / "plain", sim_dir, executor=False, extra_config=CONFIG
    )
    assert plain.ok, plain.log.read_text()[-4000:]
    batch_vcf = result_vcf("germline", batch.workdir, "normal")
    assert Path(f"{batch_vcf}.tbi").exists()
    assert records(batch_vcf) == records(result_vcf("germline", plain.workdir, "normal"))
    assert (batch.workdir / "results" / "normal" / "normal.qc.tsv").exists()


@pytest.mark.e2e
def test_germline_cwl_through_cwl_awsbatch_matches_cwltool(sim_dir: Path, tmp_path: Path) -> None:
    job: dict[str, object] = {
        "sample": "normal",
        "fq1": file_job(sim_dir / "reads/normal_R1.fastq.gz"),
        "fq2": file_job(sim_dir / "reads/normal_R2.fastq.gz"),
        "reference": file_job(sim_dir / "reference.fa"),
        "scatter": 1,
    }
    workflow = REPO / "workflows/germline/cwl/germline.cwl"
    batch = run_cwltool(workflow, job, tmp_path / "batch", awsbatch=True)
    plain = run_cwltool(workflow, job, tmp_path / "plain")
    batch_vcf, plain_vcf = batch["vcf"], plain["vcf"]
    assert isinstance(batch_vcf, dict) and isinstance(plain_vcf, dict)
    assert records(Path(batch_vcf["path"]))
    assert records(Path(batch_vcf["path"])) == records(Path(plain_vcf["path"]))
