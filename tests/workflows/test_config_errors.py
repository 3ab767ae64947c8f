"""Configuration mistakes stop the workflows before any job runs, with one clear sentence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from wf_helpers import REPO


def _dry_run(workflow: str, workdir: Path, *config: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "snakemake", "-n", "-s",
            str(REPO / "workflows" / workflow / "Snakefile"), "-d", str(workdir)]  # fmt: skip
    if config:
        argv += ["--config", *config]
    return subprocess.run(argv, capture_output=True, text=True, check=False)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A reference and a well-formed samples table (reads need not exist for a dry run)."""
    (tmp_path / "ref.fa").write_text(">chr1\nACGTACGTAC\n")
    (tmp_path / "samples.tsv").write_text("sample\tfq1\tfq2\ns1\ta_1.fq.gz\ta_2.fq.gz\n")
    return tmp_path


def test_missing_reference_names_the_key(data: Path) -> None:
    done = _dry_run("germline", data, "samples=samples.tsv")
    assert done.returncode != 0
    assert "config key 'reference' is missing" in done.stderr + done.stdout


def test_missing_table_names_the_path(data: Path) -> None:
    done = _dry_run("germline", data, "reference=ref.fa", "samples=nope.tsv")
    assert done.returncode != 0
    assert "table nope.tsv (config key 'samples') does not exist" in done.stderr + done.stdout


def test_table_without_a_column_names_it(data: Path) -> None:
    (data / "bad.tsv").write_text("sample\tfq1\ns1\ta_1.fq.gz\n")
    done = _dry_run("germline", data, "reference=ref.fa", "samples=bad.tsv")
    assert done.returncode != 0
    assert "lacks fq2 for 's1'" in done.stderr + done.stdout


def test_unknown_combine_mode_lists_the_choices(data: Path) -> None:
    done = _dry_run("germline", data, "reference=ref.fa", "samples=samples.tsv", "combine=vote")
    assert done.returncode != 0
    assert "set it to union, consensus, bcftools or freebayes" in done.stderr + done.stdout


def test_pairs_table_needs_every_column(data: Path) -> None:
    (data / "pairs.tsv").write_text("pair\ttumor_fq1\ttumor_fq2\np1\tt1.fq\tt2.fq\n")
    done = _dry_run("somatic", data, "reference=ref.fa", "pairs=pairs.tsv")
    assert done.returncode != 0
    assert "lacks normal_fq1, normal_fq2 for 'p1'" in done.stderr + done.stdout


def test_well_formed_config_plans_every_step(data: Path) -> None:
    for name in ("a_1.fq.gz", "a_2.fq.gz"):
        (data / name).write_bytes(b"")
    done = _dry_run("germline", data, "reference=ref.fa", "samples=samples.tsv", "scatter=3")
    assert done.returncode == 0, done.stderr
    plan = done.stdout
    for rule in ("reference_index", "fastp", "bwa_mem", "bam_qc", "final_calls", "qc_summary"):
        assert rule in plan
    assert plan.count("rule call_freebayes:") == 3
