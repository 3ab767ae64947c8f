"""The germline workflow through `snakemake --executor awsbatch --awsbatch-local`."""

from __future__ import annotations

from pathlib import Path

import pytest
from wf_helpers import records

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
