"""End to end on the local cloud: a Snakemake group of four plain shell rules runs as one Batch job
whose launcher runs the members directly (no Snakemake in the job), and leaves the same files as a
plain local `snakemake -c2` run. The group reads a directory() made by a job outside it, makes and
reads a temp() file inside it, runs two members side by side and writes a log. A member that
fails fails the group, and the job's log names it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest
from smk_helpers import batch_args, run_snakemake, tree

from snakemake_executor_awsbatch.local_mode import copy_outputs
from snakemake_executor_awsbatch.localcloud import LocalCloud

pytestmark = pytest.mark.e2e

WORKFLOW = Path(__file__).parent / "workflows" / "groups"
# One bucket per run: snakemake-storage-plugin-s3 (0.x) remembers that a directory() output was
# not a directory when its bucket already existed before the run, and then reports it missing.
BUCKET = "smk-groups-{run}"
# Under a global memory limit Snakemake sizes the group for one 1,000 MB member at a time, so the
# two side-by-side members run one after the other: their step is a pool within 1,500 MB.
LIMITED = ["--resources", "mem_mb=1500", "--default-resources", "mem_mb=1000"]
# tmp/sorted.txt, a temp() file only members read, stays in the job
UPLOADED = {"results/upper.txt", "results/count.txt", "results/report.txt"}


@pytest.mark.parametrize(("run", "limits", "pools"), [("free", [], 0), ("limited", LIMITED, 1)])
def test_a_group_of_shell_rules_runs_directly_as_one_batch_job(
    local_cloud: LocalCloud, tmp_path: Path, run: str, limits: list[str], pools: int
) -> None:
    bucket = BUCKET.format(run=run)
    prefix = f"s3://{bucket}/run"
    batch_dir = tmp_path / "batch"
    shutil.copytree(WORKFLOW, batch_dir)
    args = batch_args(local_cloud, prefix, "-j", "4", *limits)
    result = run_snakemake(batch_dir, args, local_cloud)
    assert result.returncode == 0, result.stdout[-6000:]
    assert "runs Snakemake inside its jobs" not in result.stdout

    s3 = _s3(local_cloud)
    workflow_keys = _keys(s3, bucket, "run/")
    # the temp() file made and read inside the group is not in storage (nor in the tree below)
    assert "run/tmp/sorted.txt" not in workflow_keys
    assert {"run/results/report.txt", "run/logs/upper.log"} <= set(workflow_keys)
    copy_outputs(prefix, batch_dir, s3=s3)

    local_dir = tmp_path / "local"
    shutil.copytree(WORKFLOW, local_dir)
    local = run_snakemake(local_dir, ["-c2"], None)
    assert local.returncode == 0, local.stdout[-4000:]
    on_batch, at_home = tree(batch_dir), tree(local_dir)
    assert sorted(on_batch) == sorted(at_home)
    for name, content in at_home.items():
        assert on_batch[name] == content, name
    assert on_batch["results/count.txt"] == b"3 words, threads=2\n"
    assert on_batch["logs/upper.log"] == b"upper: 3 lines\n"

    # two Batch jobs: `source`, and the whole group; both ran directly
    totals = json.loads((batch_dir / ".snakemake" / "awsbatch_run.json").read_text())
    assert (totals["jobs"], totals["direct_shell_jobs"]) == (2, 2)
    keys = _keys(s3, bucket, "run/.awsbatch/")
    specs = [_spec(s3, bucket, key) for key in keys if key.endswith("spec.json")]
    assert len(specs) == 2
    (group,) = [spec for spec in specs if len(spec["staging"]["outputs"]) > 1]
    assert "-m snakemake" not in group["shell"]  # no `python -m snakemake` job command
    assert group["shell"].count("# step ") == 3
    assert group["shell"].count(": a pool within ") == pools
    outputs = {_relative(f["path"], bucket) for f in group["staging"]["outputs"]}
    assert outputs == UPLOADED
    inputs = [(_relative(f["path"], bucket), f["is_directory"]) for f in group["staging"]["inputs"]]
    assert inputs == [("data/src", True)]

    # a second run finds everything up to date in storage
    again = run_snakemake(batch_dir, [*args, "-n"], local_cloud)
    assert again.returncode == 0, again.stdout[-4000:]
    assert "Nothing to be done" in again.stdout, again.stdout[-4000:]


def test_a_failing_member_fails_the_group_with_its_exit_code_and_log(
    local_cloud: LocalCloud, tmp_path: Path
) -> None:
    batch_dir = tmp_path / "batch"
    shutil.copytree(WORKFLOW, batch_dir)
    args = batch_args(local_cloud, "s3://smk-groups-failing/run", "-j", "4")
    result = run_snakemake(batch_dir, [*args, "--config", "upper_status=5"], local_cloud)
    assert result.returncode != 0
    assert "Error in group proc" in result.stdout
    # the job's log, saved by the executor, names the failing member and its exit code
    (saved,) = (batch_dir / ".snakemake" / "awsbatch_logs").glob("smk-proc_*.log")
    lines = saved.read_text().splitlines()
    assert [line for line in lines if "failed with exit code" in line] == [
        "awsbatch: rule upper (jobid 2) failed with exit code 5"
    ]
    assert "run/results/report.txt" not in _keys(_s3(local_cloud), "smk-groups-failing", "run/")


def _relative(path: str, bucket: str) -> str:
    # The launcher's paths are the storage plugin's local copies: .snakemake/storage/s3/<key>.
    return path.split(f"/{bucket}/run/", 1)[1]


def _spec(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _s3(cloud: LocalCloud) -> Any:
    env = cloud.client_env()
    return boto3.client(
        "s3",
        endpoint_url=cloud.endpoint_url,
        region_name=cloud.region,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [str(item["Key"]) for page in pages for item in page.get("Contents", [])]
