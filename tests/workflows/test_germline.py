"""The germline workflow end to end on tiny simulated data: Snakemake (plain) and CWL."""

from __future__ import annotations

from pathlib import Path

import pytest
from wf_helpers import REPO, file_job, records, run_cwltool

from workflows.demo import RunResult, result_vcf, run_workflow
from workflows.summary import count_variants, read_qc
from workflows.tools.compare import compare_vcfs


@pytest.fixture(scope="module")
def germline_run(sim_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """One plain `snakemake -c 2` run of the germline workflow."""
    run = run_workflow("germline", tmp_path_factory.mktemp("germline"), sim_dir, executor=False)
    assert run.ok, run.log.read_text()[-4000:]
    return run


def test_snakemake_finds_the_planted_variants(germline_run: RunResult, sim_dir: Path) -> None:
    vcf = result_vcf("germline", germline_run.workdir, "normal")
    assert Path(f"{vcf}.tbi").exists()
    acc = compare_vcfs(sim_dir / "truth/germline.vcf.gz", vcf, sim_dir / "reference.fa")
    snv, indel = acc["snv"], acc["indel"]
    assert isinstance(snv, dict) and isinstance(indel, dict)
    assert snv["tp"] >= 20
    assert snv["recall"] >= 0.95 and snv["precision"] >= 0.95
    assert indel["recall"] >= 0.75 and indel["precision"] >= 0.75


def test_qc_summary_matches_the_simulation(germline_run: RunResult) -> None:
    results = germline_run.workdir / "results" / "normal"
    qc = read_qc(results / "normal.qc.tsv")
    assert 25.0 <= float(qc["mean_depth"]) <= 35.0
    assert float(qc["mapped_percent"]) >= 99.0
    counts = count_variants(results / "normal.vcf.gz")
    assert int(qc["pass_snvs"]) == counts["pass_snvs"] > 0
    assert int(qc["pass_indels"]) == counts["pass_indels"]
    for report in ("flagstat.txt", "stats.txt", "markdup.txt", "fastp.json"):
        assert (germline_run.workdir / "qc" / "normal" / f"normal.{report}").stat().st_size > 0


def test_cwl_gives_the_same_calls_as_snakemake(
    germline_run: RunResult, sim_dir: Path, tmp_path: Path
) -> None:
    out = run_cwltool(
        REPO / "workflows/germline/cwl/germline.cwl",
        {
            "sample": "normal",
            "fq1": file_job(sim_dir / "reads/normal_R1.fastq.gz"),
            "fq2": file_job(sim_dir / "reads/normal_R2.fastq.gz"),
            "reference": file_job(sim_dir / "reference.fa"),
        },
        tmp_path / "out",
    )
    vcf = out["vcf"]
    assert isinstance(vcf, dict)
    cwl_records = records(Path(vcf["path"]))
    assert cwl_records
    assert cwl_records == records(result_vcf("germline", germline_run.workdir, "normal"))
    assert (tmp_path / "out" / "normal.qc.tsv").exists()


@pytest.mark.parametrize("mode", ["consensus"])
def test_combine_modes_are_subsets_of_the_union(
    germline_run: RunResult, sim_dir: Path, tmp_path: Path, mode: str
) -> None:
    run = run_workflow(
        "germline", tmp_path / mode, sim_dir, executor=False, extra_config={"combine": mode}
    )
    assert run.ok, run.log.read_text()[-4000:]
    union = records(result_vcf("germline", germline_run.workdir, "normal"))
    other = records(result_vcf("germline", run.workdir, "normal"))
    keys = {r[:4] for r in union}
    assert other and all(r[:4] in keys for r in other)
