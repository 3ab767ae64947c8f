"""The germline workflow on the local cloud: Snakemake through `--executor awsbatch
--awsbatch-local`, CWL through `cwl-awsbatch --local`."""

from __future__ import annotations

from pathlib import Path

import pytest
from wf_helpers import REPO, file_job, records, run_cwltool

from workflows.demo import executor_available, result_vcf, run_workflow
from workflows.tools.compare import compare_vcfs

CONFIG = {"scatter": 1}


@pytest.mark.e2e
def test_germline_on_the_local_cloud_matches_the_plain_run(sim_dir: Path, tmp_path: Path) -> None:
    assert executor_available(), "Snakemake cannot load the awsbatch executor plugin"
    batch = run_workflow(
        "germline", tmp_path / "batch", sim_dir, executor=True, extra_config=CONFIG
    )
    assert batch.ok, batch.log.read_text()[-4000:]
    # Every step ran on Batch except those Snakemake keeps local (fastp and the reference index
    # read local inputs; split_regions is a localrule), the groups as one job each: align
    # (bwa_mem, which also marks duplicates) and call (call_bcftools + call_freebayes, one chunk
    # here, bam_qc, final_calls and qc_summary: every step of the sample after alignment).
    assert batch.batch_jobs == 2
    # Every step is a plain shell: rule, so every job (the groups too) ran its commands directly,
    # its files staged by the launcher (no Snakemake start-up in any job).
    totals = batch.totals
    assert totals is not None and totals["jobs"] == batch.batch_jobs
    assert totals["direct_shell_jobs"] == batch.batch_jobs
    assert totals["bytes_out"] > 100_000 and totals["files_out"] >= totals["direct_shell_jobs"]
    # The reference and its six indexes, written by the local reference_index job, are read only
    # by Batch jobs: their copies on this host went before the first of those was submitted.
    assert totals["local_copies_dropped"] >= 7
    # Every job, the first included, was forked from the launcher interpreter that the local
    # mode started with the cloud.
    assert totals["warm_starts"] == batch.batch_jobs
    plain = run_workflow(
        "germline", tmp_path / "plain", sim_dir, executor=False, extra_config=CONFIG
    )
    assert plain.ok, plain.log.read_text()[-4000:]
    batch_vcf = result_vcf("germline", batch.workdir, "normal")
    assert Path(f"{batch_vcf}.tbi").exists()
    assert records(batch_vcf) == records(result_vcf("germline", plain.workdir, "normal"))
    assert (batch.workdir / "results" / "normal" / "normal.qc.tsv").exists()


@pytest.mark.e2e
def test_germline_layout_for_large_scatters_splits_the_calling_job(
    sim_dir: Path, tmp_path: Path
) -> None:
    # The override docs/workflows.md and rules/call.smk give for large scatters: the gathering
    # and summary in a job of their own, the calls (two chunks here, so four) and the BAM QC
    # batched nine to a job.
    layout = ["--groups", "final_calls=finish", "qc_summary=finish"]
    layout += ["--group-components", "call=9"]
    batch = run_workflow(
        "germline",
        tmp_path / "split",
        sim_dir,
        executor=True,
        extra_config={"scatter": 2},
        extra_args=layout,
    )
    assert batch.ok, batch.log.read_text()[-4000:]
    text = batch.log.read_text()
    assert batch.batch_jobs == 3
    for group in ("align", "call", "finish"):
        assert f"Group job {group} " in text
    assert Path(f"{result_vcf('germline', batch.workdir, 'normal')}.tbi").exists()
    assert (batch.workdir / "results" / "normal" / "normal.qc.tsv").exists()


@pytest.mark.e2e
def test_germline_cwl_through_cwl_awsbatch_finds_the_planted_variants(
    sim_dir: Path, tmp_path: Path
) -> None:
    # Equality with plain cwltool and Snakemake is tested in test_germline.py; here the point is
    # that every tool runs as a Batch job and the result is still right.
    job: dict[str, object] = {
        "sample": "normal",
        "fq1": file_job(sim_dir / "reads/normal_R1.fastq.gz"),
        "fq2": file_job(sim_dir / "reads/normal_R2.fastq.gz"),
        "reference": file_job(sim_dir / "reference.fa"),
        "scatter": 1,
    }
    out = run_cwltool(
        REPO / "workflows/germline/cwl/germline.cwl", job, tmp_path / "batch", awsbatch=True
    )
    vcf = out["vcf"]
    assert isinstance(vcf, dict)
    acc = compare_vcfs(sim_dir / "truth/germline.vcf.gz", vcf["path"], sim_dir / "reference.fa")
    snv, indel = acc["snv"], acc["indel"]
    assert isinstance(snv, dict) and isinstance(indel, dict)
    assert snv["tp"] >= 20 and snv["recall"] >= 0.95 and snv["precision"] >= 0.95
    assert indel["recall"] >= 0.75 and indel["precision"] >= 0.75
