"""`--awsbatch-fallback-queue` end to end: every spot attempt reclaimed, the jobs move to the
on-demand queue and the run succeeds; without the fallback the run fails naming the reclaim."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from smk_helpers import batch_args, run_snakemake

from snakemake_executor_awsbatch.localcloud import LocalCloud

pytestmark = pytest.mark.e2e

# Three independent jobs and one that joins them; each sleeps past the reclaim window (0.5 s
# after start) so that every attempt on a spot host is reclaimed before it can finish.
SNAKEFILE = """
PARTS = ["p1", "p2", "p3"]

rule all:
    input:
        "out/all.txt",

rule part:
    output:
        "out/{part}.txt",
    shell:
        "sleep 1.5 && echo {wildcards.part} > {output}"

rule join:
    input:
        expand("out/{part}.txt", part=PARTS),
    output:
        "out/all.txt",
    shell:
        "sleep 1.5 && cat {input} > {output}"
"""
CHAOS = "spot=1.0,spot_window=0.5,seed=11"
RULE_JOBS = 4
MOVED = re.compile(
    r"(\S+) lost its spot host on every attempt; resubmitted to on-demand queue "
    r"local-queue-ondemand as ([0-9a-f-]{36})\."
)


def _workflow(tmp_path: Path) -> Path:
    work = tmp_path / "wf"
    work.mkdir()
    (work / "Snakefile").write_text(SNAKEFILE)
    return work


def _client(cloud: LocalCloud, service: str) -> Any:
    env = cloud.client_env()
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=cloud.endpoint_url,
        region_name=cloud.region,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def _batch(cloud: LocalCloud) -> Any:
    return _client(cloud, "batch")


def _outputs(cloud: LocalCloud, bucket: str, prefix: str) -> dict[str, str]:
    """The workflow's outputs in S3 under `prefix`, by name relative to it."""
    s3 = _client(cloud, "s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    return {
        k[len(prefix) :]: s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode() for k in keys
    }


def _jobs(batch: Any, queue: str, status: str) -> list[dict[str, Any]]:
    """DescribeJobs records of every job in `queue` with `status`."""
    ids = [s["jobId"] for s in batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]]
    return list(batch.describe_jobs(jobs=ids)["jobs"]) if ids else []


def test_jobs_reclaimed_on_every_spot_attempt_finish_on_the_ondemand_queue(
    local_cloud_factory: Callable[..., LocalCloud], tmp_path: Path
) -> None:
    cloud = local_cloud_factory(chaos=CHAOS)
    work = _workflow(tmp_path)
    args = batch_args(
        cloud,
        "s3://smk-fallback-on/run",
        "-j",
        "4",
        "--awsbatch-spot-retries",
        "1",
        "--awsbatch-fallback-queue",
        cloud.ondemand_queue_name,
    )
    result = run_snakemake(work, args, cloud)
    assert result.returncode == 0, result.stdout[-6000:]
    outputs = _outputs(cloud, "smk-fallback-on", "run/out/")
    assert outputs == {
        "p1.txt": "p1\n",
        "p2.txt": "p2\n",
        "p3.txt": "p3\n",
        "all.txt": "p1\np2\np3\n",
    }

    moved = MOVED.findall(result.stdout)
    assert len(moved) == RULE_JOBS, result.stdout[-6000:]
    batch = _batch(cloud)
    ondemand_arn = batch.describe_job_queues(jobQueues=[cloud.ondemand_queue_name])["jobQueues"][0][
        "jobQueueArn"
    ]
    finished = _jobs(batch, cloud.ondemand_queue_name, "SUCCEEDED")
    # Each job's last attempt ran, once and unreclaimed, on the on-demand queue.
    assert sorted(j["jobId"] for j in finished) == sorted(job_id for _, job_id in moved)
    for job in finished:
        assert job["jobQueue"] == ondemand_arn
        assert [a["statusReason"] for a in job["attempts"]] == [
            "Essential container in task exited"
        ]
    assert _jobs(batch, cloud.ondemand_queue_name, "FAILED") == []
    # On the spot queue every job used its two attempts (1 + 1 spot retry), both reclaimed.
    reclaimed = _jobs(batch, cloud.queue_name, "FAILED")
    assert _jobs(batch, cloud.queue_name, "SUCCEEDED") == []
    assert sorted(j["jobName"] for j in reclaimed) == sorted(j["jobName"] for j in finished)
    for job in reclaimed:
        assert job["statusReason"].startswith("Host EC2 (instance i-")
        assert len(job["attempts"]) == 2
        assert all(a["statusReason"].startswith("Host EC2") for a in job["attempts"])


def test_without_a_fallback_queue_the_run_fails_naming_the_reclaim(
    local_cloud_factory: Callable[..., LocalCloud], tmp_path: Path
) -> None:
    cloud = local_cloud_factory(chaos=CHAOS)
    work = _workflow(tmp_path)
    args = batch_args(cloud, "s3://smk-fallback-off/run", "-j", "4", "--awsbatch-spot-retries", "1")
    result = run_snakemake(work, args, cloud)
    assert result.returncode != 0
    assert "lost its host (spot reclaim or instance termination: 'Host EC2 (instance i-" in (
        result.stdout
    ), result.stdout[-6000:]
    assert "on each of its 2 attempt(s)" in result.stdout
    assert "resubmitted to on-demand queue" not in result.stdout
    assert "all.txt" not in _outputs(cloud, "smk-fallback-off", "run/out/")
    batch = _batch(cloud)
    assert (
        batch.list_jobs(jobQueue=cloud.ondemand_queue_name, jobStatus="SUCCEEDED")["jobSummaryList"]
        == []
    )
