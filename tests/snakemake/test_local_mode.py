"""`--awsbatch-local`: a local-cloud run's outputs come back into the working directory, its
long-lived objects leave the garbage collector's reach, and its jobs and groups are sized for
this machine's vCPUs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from smk_helpers import run_snakemake
from snakemake.resources import Resources

from snakemake_executor_awsbatch import local_mode

BUCKET = "outputs-test"
SIZING = Path(__file__).parent / "workflows" / "sizing"


@pytest.fixture
def s3(moto_s3: Any) -> Any:
    """A moto S3 client with one bucket."""
    moto_s3.create_bucket(Bucket=BUCKET)
    return moto_s3


def test_small_and_large_objects_are_copied_byte_for_byte(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Down to 1 KiB, so that the large-object path (download_file, in parts) runs too.
    monkeypatch.setattr(local_mode, "SINGLE_GET_BYTES", 1024)
    objects = {
        "results/s/s.vcf.gz": bytes(range(256)) * 40,  # 10 KiB: the large path
        "logs/a.log": b"small\n",
        "qc/s/empty.txt": b"",
    }
    for key, body in objects.items():
        s3.put_object(Bucket=BUCKET, Key=f"runs/{key}", Body=body)
    written = local_mode.copy_outputs(f"s3://{BUCKET}/runs", tmp_path, s3=s3)
    assert sorted(written) == sorted(tmp_path / key for key in objects)
    for key, body in objects.items():
        assert (tmp_path / key).read_bytes() == body


def test_machinery_folder_markers_and_escaping_keys_are_not_copied(s3: Any, tmp_path: Path) -> None:
    keys = [
        "runs/.awsbatch/job/report.json",
        "runs/.snakemake/metadata/x",
        "runs/snakemake-workflow-sources.abc.tar.xz",
        "runs/dir/",
        "runs/../escape.txt",
        "runs/kept.txt",
    ]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    work = tmp_path / "work"
    work.mkdir()
    assert local_mode.copy_outputs(f"s3://{BUCKET}/runs/", work, s3=s3) == [work / "kept.txt"]
    assert not (tmp_path / "escape.txt").exists()


def test_activating_the_local_cloud_freezes_the_objects_made_so_far() -> None:
    # In a child interpreter: freezing would keep this test process's objects out of the
    # collector for the rest of the suite.
    probe = (
        "import gc, sys\n"
        "from snakemake_executor_awsbatch import local_mode\n"
        "before = gc.get_freeze_count()\n"
        "local_mode.activate()\n"
        "frozen = gc.get_freeze_count()\n"
        "local_mode.deactivate()\n"
        "print(before, frozen)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    before, frozen = map(int, done.stdout.split())
    # Everything imported for the cloud (moto, botocore, werkzeug) is now out of full collections.
    assert before == 0 and frozen > 10_000


def test_without_cores_jobs_are_sized_for_the_machine_and_with_cores_as_given() -> None:
    unset = SimpleNamespace(global_resources=Resources())
    unset.global_resources["_cores"] = None
    assert local_mode.size_jobs_for_this_machine(unset, 6.0) == 6
    assert unset.global_resources["_cores"].value == 6
    given = SimpleNamespace(global_resources=Resources())
    given.global_resources["_cores"] = 3
    assert local_mode.size_jobs_for_this_machine(given, 6.0) is None
    assert given.global_resources["_cores"].value == 3


@pytest.mark.e2e
def test_local_mode_runs_a_group_wider_than_the_machine_within_its_vcpus(tmp_path: Path) -> None:
    # One member more than the machine has vCPUs, in one group, and a rule with as many threads:
    # without a core limit Snakemake asks for `width` vCPUs for both, which the local queue
    # cannot give, and the executor refused them.
    vcpus = os.cpu_count() or 1
    width = vcpus + 1
    work = tmp_path / "sizing"
    shutil.copytree(SIZING, work)
    args = [
        "--executor",
        "awsbatch",
        "--awsbatch-local",
        "--default-storage-provider",
        "s3",
        "--default-storage-prefix",
        "s3://smk-sizing/run",
        "--seconds-between-status-checks",
        "1",
        "-j",
        "4",
        "--group-components",
        f"calls={width}",
        "--config",
        f"width={width}",
    ]
    # Given --cores, the group keeps its width and is refused before any job is submitted,
    # with the way out.
    refused = run_snakemake(work, [*args, "--cores", str(width)], None)
    assert refused.returncode != 0
    assert f"but queue 'local-queue' can give at most {vcpus}" in refused.stdout
    assert "pass --cores N (and --resources mem_mb=M) to have Snakemake size groups" in (
        refused.stdout
    )
    assert "sized within this machine's" not in refused.stdout
    assert not (work / ".snakemake" / "awsbatch_run.json").exists()  # no job was submitted

    result = run_snakemake(work, args, None)
    assert result.returncode == 0, result.stdout[-6000:]
    assert f"sized within this machine's {vcpus} vCPUs, as with --cores {vcpus}" in result.stdout
    assert (work / "out" / "wide.txt").read_text() == f"{vcpus}\n"  # threads capped, as -c
    # every member ran, in one Batch job, never more of them at once than there are vCPUs
    running = [int((work / "out" / f"member_{i}.txt").read_text()) for i in range(width)]
    assert 1 <= max(running) <= vcpus
    totals = json.loads((work / ".snakemake" / "awsbatch_run.json").read_text())
    assert totals["jobs"] == 2
