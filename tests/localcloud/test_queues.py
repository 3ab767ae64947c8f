"""The local cloud's two queues: `local-queue` on a SPOT environment, `local-queue-ondemand` on an
EC2 (on-demand) one, sharing the host's capacity; chaos reclaims only spot hosts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localcloud.helpers import client, log_lines, register, wait
from localcloud.test_response_shapes import RawBodies, check
from snakemake_executor_awsbatch.batch import BatchClient
from snakemake_executor_awsbatch.capacity import CapacityChecker
from snakemake_executor_awsbatch.localcloud import LocalCloud


@pytest.fixture(scope="module")
def batch(local_cloud: LocalCloud) -> Any:
    return client(local_cloud, "batch")


def test_both_queues_are_listed_valid_and_bound_to_their_environment(
    local_cloud: LocalCloud, batch: Any
) -> None:
    raw = RawBodies(batch)
    queues = batch.describe_job_queues()["jobQueues"]
    check(raw, "DescribeJobQueues", batch.describe_job_queues())
    envs = batch.describe_compute_environments()["computeEnvironments"]
    check(raw, "DescribeComputeEnvironments", batch.describe_compute_environments())
    assert [q["jobQueueName"] for q in queues] == ["local-queue", "local-queue-ondemand"]
    assert local_cloud.ondemand_queue_name == "local-queue-ondemand"
    by_arn = {e["computeEnvironmentArn"]: e for e in envs}
    kinds = {}
    for queue in queues:
        assert (queue["state"], queue["status"]) == ("ENABLED", "VALID")
        assert queue["jobQueueArn"].endswith(f":job-queue/{queue['jobQueueName']}")
        (order,) = queue["computeEnvironmentOrder"]
        env = by_arn[order["computeEnvironment"]]
        assert (env["state"], env["status"]) == ("ENABLED", "VALID")
        kinds[queue["jobQueueName"]] = env["computeResources"]["type"]
        # Both environments are the one host: the same declared shape.
        tags = dict(env["tags"])
        assert int(tags.pop("localcloud:diskMiB")) > 0  # free space where jobs write
        assert tags == {"localcloud:vcpus": "16", "localcloud:memoryMiB": "32768"}
    assert kinds == {"local-queue": "SPOT", "local-queue-ondemand": "EC2"}


def test_queues_and_environments_are_found_by_name_or_arn(
    local_cloud: LocalCloud, batch: Any
) -> None:
    ondemand = batch.describe_job_queues(jobQueues=[local_cloud.ondemand_queue_name])["jobQueues"]
    assert [q["jobQueueName"] for q in ondemand] == ["local-queue-ondemand"]
    by_arn = batch.describe_job_queues(jobQueues=[ondemand[0]["jobQueueArn"]])["jobQueues"]
    assert by_arn == ondemand
    ce_arn = ondemand[0]["computeEnvironmentOrder"][0]["computeEnvironment"]
    envs = batch.describe_compute_environments(computeEnvironments=[ce_arn])["computeEnvironments"]
    assert [e["computeEnvironmentName"] for e in envs] == ["local-ce-ondemand"]
    envs = batch.describe_compute_environments(computeEnvironments=["local-ce"])[
        "computeEnvironments"
    ]
    assert [e["computeResources"]["type"] for e in envs] == ["SPOT"]
    assert (
        batch.describe_compute_environments(computeEnvironments=["nope"])["computeEnvironments"]
        == []
    )


def test_preflight_reads_the_host_shape_through_either_queue(local_cloud: LocalCloud) -> None:
    checker = CapacityChecker(BatchClient(client(local_cloud, "batch")))
    for queue in (local_cloud.queue_name, local_cloud.ondemand_queue_name):
        limits = checker.limits(queue)
        assert (limits.max_vcpus, limits.max_memory_mib, limits.platforms) == (
            16.0,
            32768,
            ("EC2",),
        )


def test_a_job_on_the_ondemand_queue_runs_there_and_is_listed_only_there(
    local_cloud: LocalCloud, batch: Any
) -> None:
    arn = register(batch, "where", ["sh", "-c", 'echo "$AWS_BATCH_JQ_NAME $AWS_BATCH_CE_NAME"'])
    queue_arn = batch.describe_job_queues(jobQueues=["local-queue-ondemand"])["jobQueues"][0][
        "jobQueueArn"
    ]
    job_id = batch.submit_job(jobName="where-od", jobQueue=queue_arn, jobDefinition=arn)["jobId"]
    done = wait(batch, job_id)
    assert done["status"] == "SUCCEEDED" and done["jobQueue"] == queue_arn
    stream = done["container"]["logStreamName"]
    assert log_lines(client(local_cloud, "logs"), stream) == [
        "local-queue-ondemand local-ce-ondemand"
    ]
    listed = {
        name: [
            s["jobId"]
            for s in batch.list_jobs(jobQueue=name, jobStatus="SUCCEEDED")["jobSummaryList"]
        ]
        for name in ("local-queue", "local-queue-ondemand")
    }
    assert job_id in listed["local-queue-ondemand"]
    assert job_id not in listed["local-queue"]
    with pytest.raises(ClientError, match="JobQueue local-queue-nope not found"):
        batch.submit_job(jobName="x", jobQueue="local-queue-nope", jobDefinition=arn)


def test_chaos_reclaims_spot_hosts_only(local_cloud_factory: Any) -> None:
    cloud = local_cloud_factory(chaos="spot=1.0,spot_window=0.5,seed=5")
    batch = client(cloud, "batch")
    # Each on-demand job outlives the reclaim window three times over: a reclaim would hit it.
    ondemand_def = register(batch, "od-sleep", ["sleep", "1.5"])
    spot_def = register(batch, "spot-sleep", ["sleep", "30"])
    ondemand = [
        batch.submit_job(
            jobName=f"od-{i}", jobQueue=cloud.ondemand_queue_name, jobDefinition=ondemand_def
        )["jobId"]
        for i in range(3)
    ]
    spot = batch.submit_job(jobName="spot", jobQueue=cloud.queue_name, jobDefinition=spot_def)[
        "jobId"
    ]
    for job_id in ondemand:
        done = wait(batch, job_id, timeout=60)
        assert done["status"] == "SUCCEEDED", done
        assert [a["statusReason"] for a in done["attempts"]] == [
            "Essential container in task exited"
        ]
    reclaimed = wait(batch, spot, timeout=60)
    assert reclaimed["status"] == "FAILED"
    assert reclaimed["statusReason"].startswith("Host EC2 (instance i-")


def test_ondemand_and_spot_jobs_share_the_host(local_cloud_factory: Any, tmp_path: Path) -> None:
    cloud = local_cloud_factory(vcpus=1, memory_mib=1024)
    batch = client(cloud, "batch")
    gate = tmp_path / "open"
    hold = register(
        batch, "hold", ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done"], vcpus="1"
    )
    first = batch.submit_job(jobName="first", jobQueue=cloud.queue_name, jobDefinition=hold)
    wait(batch, first["jobId"], statuses=("RUNNING",))
    second = batch.submit_job(
        jobName="second", jobQueue=cloud.ondemand_queue_name, jobDefinition=hold
    )
    # The host's one vCPU is taken by the spot job, so the on-demand job waits for it.
    assert wait(batch, second["jobId"], statuses=("RUNNABLE",))["status"] == "RUNNABLE"
    gate.touch()
    a, b = wait(batch, first["jobId"]), wait(batch, second["jobId"])
    assert (a["status"], b["status"]) == ("SUCCEEDED", "SUCCEEDED")
    assert b["startedAt"] >= a["stoppedAt"]


def test_listing_by_queue_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with LocalCloud(state_dir=state, vcpus=2, memory_mib=1024) as cloud:
        batch = client(cloud, "batch")
        arn = register(batch, "kept", ["true"])
        ids = {
            queue: batch.submit_job(jobName="kept", jobQueue=queue, jobDefinition=arn)["jobId"]
            for queue in (cloud.queue_name, cloud.ondemand_queue_name)
        }
        for job_id in ids.values():
            assert wait(batch, job_id)["status"] == "SUCCEEDED"
    with LocalCloud(state_dir=state, vcpus=2, memory_mib=1024) as cloud:
        batch = client(cloud, "batch")
        for queue, job_id in ids.items():
            listed = batch.list_jobs(jobQueue=queue, jobStatus="SUCCEEDED")["jobSummaryList"]
            assert [s["jobId"] for s in listed] == [job_id]
