"""Checks before submission: outdirMin/tmpdirMin against the queue's disks, and EFS references
(well-formed, on a configured file system, mounted and never copied)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import boto3
import pytest

from cwl_runner.disk import DiskRequest, check_disk
from cwl_runner.main import run
from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.localcloud import LocalCloud

from .s3_helpers import local_env, run_cwl

__all__ = ["local_env"]  # the fixture used by this module's tests

CAT = Path(__file__).with_name("data") / "cat.cwl"
DISK_TOOL = """
cwlVersion: v1.2
class: CommandLineTool
requirements: {ResourceRequirement: {outdirMin: %d, tmpdirMin: 1024}}
baseCommand: [echo, ok]
inputs: []
outputs: []
"""
TWO_DISK_STEPS = """
cwlVersion: v1.2
class: Workflow
inputs: []
outputs: []
steps:
  one: {run: disk.cwl, in: {}, out: []}
  two: {run: disk.cwl, in: {}, out: []}
"""


def _request(gib: int) -> DiskRequest:
    return DiskRequest(name="align", outdir_mib=gib * 1024 - 1024, tmpdir_mib=1024, explicit=True)


def test_fargate_ephemeral_storage_is_sized_or_refused() -> None:
    assert check_disk(_request(10), ("FARGATE",), None) is None
    assert check_disk(_request(150), ("FARGATE",), None) == 150
    with pytest.raises(UserError, match="at most 200 GiB"):
        check_disk(_request(201), ("FARGATE",), None)
    # EC2 (or a mix with EC2): Batch does not describe the disks, nothing to refuse.
    assert check_disk(_request(5000), ("EC2",), None) is None
    assert check_disk(_request(5000), ("EC2", "FARGATE"), None) is None


def test_local_host_disk_is_the_limit() -> None:
    with pytest.raises(UserError, match="local cloud's disk holds 10 GiB"):
        check_disk(_request(11), ("EC2",), 10 * 1024)
    assert check_disk(_request(9), ("EC2",), 10 * 1024) is None


@pytest.mark.e2e
def test_impossible_outdir_min_fails_before_submission(
    local_env: LocalCloud, tmp_path: Path
) -> None:
    (tmp_path / "disk.cwl").write_text(DISK_TOOL % (1 << 40))
    code, _, err, rec = run_cwl(["--outdir", str(tmp_path / "o"), str(tmp_path / "disk.cwl")])
    assert code == 1
    assert "outdirMin+tmpdirMin" in err and "lower outdirMin/tmpdirMin" in err, err
    assert rec.submitted == []


@pytest.mark.e2e
def test_unknown_ec2_disk_is_one_warning(local_env: LocalCloud, tmp_path: Path) -> None:
    (tmp_path / "disk.cwl").write_text(DISK_TOOL % 2048)
    (tmp_path / "wf.cwl").write_text(TWO_DISK_STEPS)
    s3 = boto3.client("s3", endpoint_url=local_env.endpoint_url, region_name=local_env.region)
    s3.create_bucket(Bucket="cwl-remote")
    out, err = io.StringIO(), io.StringIO()
    args = [
        "--awsbatch-endpoint-url",
        local_env.endpoint_url,
        "--awsbatch-region",
        local_env.region,
        "--awsbatch-queue",
        local_env.queue_name,
        "--awsbatch-s3-root",
        "s3://cwl-remote/cwl",
        "--outdir",
        str(tmp_path / "o"),
        str(tmp_path / "wf.cwl"),
    ]
    code = run(args, out, err)
    assert code == 0, err.getvalue()
    assert err.getvalue().count("outdirMin/tmpdirMin of step") == 1
    assert "instance storage" in err.getvalue()


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("efs://fs-nothex/refs/a.fa", "names no valid EFS file system id"),
        ("efs://fs-0123abcd/refs/a.fa", "add --awsbatch-efs fs-0123abcd:/mnt/efs/fs-0123abcd"),
    ],
)
def test_bad_efs_reference_fails_before_submission(
    local_env: LocalCloud, tmp_path: Path, location: str, message: str
) -> None:
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"f": {"class": "File", "location": location}}))
    code, _, err, rec = run_cwl(["--outdir", str(tmp_path / "o"), str(CAT), str(job)])
    assert code == 1
    assert message in err, err
    assert "Traceback" not in err
    assert rec.submitted == []


@pytest.mark.e2e
def test_input_under_configured_mount_is_mounted_not_copied(
    local_env: LocalCloud, tmp_path: Path
) -> None:
    fs_id = local_env.efs_file_system_id
    refs = local_env.efs_root(fs_id) / "genomes"
    refs.mkdir(parents=True, exist_ok=True)
    (refs / "chrM.fa").write_text(">chrM\nGATTACA\n")
    # The controller has nothing at the mount path: the file is read on EFS in the job only.
    mount = tmp_path / "mnt" / "refs"
    assert not mount.exists()
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"f": {"class": "File", "path": f"{mount}/genomes/chrM.fa"}}))
    efs = f"{fs_id}:{mount}"
    args = ["--awsbatch-efs", efs, "--outdir", str(tmp_path / "o"), str(CAT), str(job)]
    code, result, err, rec = run_cwl(args)
    assert code == 0, err
    assert Path(result["out"]["path"]).read_text() == ">chrM\nGATTACA\n"
    (spec,) = rec.submitted
    assert spec.launch.staging.inputs == ()
    assert [(m.file_system_id, m.container_path) for m in spec.mounts] == [(fs_id, str(mount))]
