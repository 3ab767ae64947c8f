"""The local cloud's environment, job definitions, a simple job, its log, and its environment."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from localcloud.helpers import client, log_lines, register, wait
from snakemake_executor_awsbatch.localcloud import LocalCloud


@pytest.fixture(scope="module")
def batch(local_cloud: LocalCloud) -> Any:
    return client(local_cloud, "batch")


def test_environment_is_described(local_cloud: LocalCloud, batch: Any) -> None:
    ces = batch.describe_compute_environments()["computeEnvironments"]
    assert [ce["computeEnvironmentName"] for ce in ces] == [
        local_cloud.compute_environment_name,
        local_cloud.ondemand_compute_environment_name,
    ]
    assert ces[0]["computeResources"]["maxvCpus"] == 16
    assert ces[0]["tags"]["localcloud:memoryMiB"] == "32768"
    queues = batch.describe_job_queues(jobQueues=[local_cloud.queue_name])["jobQueues"]
    assert queues[0]["state"] == "ENABLED"
    assert (
        queues[0]["computeEnvironmentOrder"][0]["computeEnvironment"]
        == (ces[0]["computeEnvironmentArn"])
    )
    assert batch.describe_job_queues(jobQueues=["nope"])["jobQueues"] == []
    efs = client(local_cloud, "efs").describe_file_systems()["FileSystems"]
    assert local_cloud.efs_file_system_id in [fs["FileSystemId"] for fs in efs]
    assert local_cloud.efs_root(local_cloud.efs_file_system_id).is_dir()


def test_job_definitions_register_page_filter_deregister(batch: Any) -> None:
    arns = [register(batch, "paged", ["true"]) for _ in range(3)]
    assert [a.rsplit(":", 1)[1] for a in arns] == ["1", "2", "3"]
    register(batch, "other-def", ["true"])
    first = batch.describe_job_definitions(jobDefinitionName="paged", maxResults=2)
    assert len(first["jobDefinitions"]) == 2
    second = batch.describe_job_definitions(
        jobDefinitionName="paged", maxResults=2, nextToken=first["nextToken"]
    )
    assert [d["revision"] for d in second["jobDefinitions"]] == [3]
    assert "nextToken" not in second
    batch.deregister_job_definition(jobDefinition="paged:3")
    active = batch.describe_job_definitions(jobDefinitionName="paged", status="ACTIVE")
    assert [d["revision"] for d in active["jobDefinitions"]] == [1, 2]
    by_arn = batch.describe_job_definitions(jobDefinitions=[arns[2]])["jobDefinitions"]
    assert by_arn[0]["status"] == "INACTIVE"


def test_job_runs_with_parameters_overrides_environment_and_log(
    local_cloud: LocalCloud, batch: Any
) -> None:
    script = (
        'echo "hello Ref::who"; echo "id=$AWS_BATCH_JOB_ID attempt=$AWS_BATCH_JOB_ATTEMPT '
        'queue=$AWS_BATCH_JQ_NAME ce=$AWS_BATCH_CE_NAME"; echo "endpoint=$AWS_ENDPOINT_URL"; '
        'echo "color=$COLOR"; echo "python=$(command -v python)"; pwd; '
        'echo "no_imds=$AWSBATCH_NO_IMDS"'
    )
    arn = register(batch, "hello", ["sh", "-c", script], parameters={"who": "nobody"})
    job = batch.submit_job(
        jobName="hello-1",
        jobQueue=local_cloud.queue_name,
        jobDefinition=arn,
        parameters={"who": "world"},
        containerOverrides={
            "environment": [{"name": "COLOR", "value": "blue"}],
            "resourceRequirements": [{"type": "MEMORY", "value": "64"}],
        },
    )
    done = wait(batch, job["jobId"])
    assert done["status"] == "SUCCEEDED", done
    assert done["container"]["exitCode"] == 0
    assert {"type": "MEMORY", "value": "64"} in done["container"]["resourceRequirements"]
    assert done["createdAt"] <= done["startedAt"] <= done["stoppedAt"]
    assert len(done["attempts"]) == 1
    lines = log_lines(client(local_cloud, "logs"), done["container"]["logStreamName"])
    assert lines[0] == "hello world"
    assert lines[1] == (
        f"id={job['jobId']} attempt=1 queue={local_cloud.queue_name} "
        f"ce={local_cloud.compute_environment_name}"
    )
    assert lines[2] == f"endpoint={local_cloud.endpoint_url}"
    assert lines[3] == "color=blue"
    assert lines[4] == f"python={Path(sys.executable).parent / 'python'}"
    assert Path(lines[5]).parent == local_cloud.state_dir / "work"
    # No instance of its own: the launcher is told not to ask EC2's instance metadata.
    assert lines[6] == "no_imds=1"


def test_list_jobs_by_status_and_name(local_cloud: LocalCloud, batch: Any) -> None:
    arn = register(batch, "listed", ["true"])
    ids = [
        batch.submit_job(jobName=f"listed-{i}", jobQueue=local_cloud.queue_name, jobDefinition=arn)[
            "jobId"
        ]
        for i in range(3)
    ]
    for job_id in ids:
        wait(batch, job_id)
    succeeded = batch.list_jobs(jobQueue=local_cloud.queue_name, jobStatus="SUCCEEDED")
    assert set(ids) <= {s["jobId"] for s in succeeded["jobSummaryList"]}
    named = batch.list_jobs(
        jobQueue=local_cloud.queue_name, filters=[{"name": "JOB_NAME", "values": ["listed-*"]}]
    )["jobSummaryList"]
    assert sorted(s["jobId"] for s in named) == sorted(ids)
    paged = batch.list_jobs(
        jobQueue=local_cloud.queue_name,
        filters=[{"name": "JOB_NAME", "values": ["listed-*"]}],
        maxResults=2,
    )
    assert len(paged["jobSummaryList"]) == 2 and "nextToken" in paged


def test_every_call_is_logged(local_cloud: LocalCloud, batch: Any) -> None:
    batch.describe_job_queues()
    client(local_cloud, "efs").describe_file_systems()
    client(local_cloud, "logs").describe_log_groups()
    client(local_cloud, "s3").list_buckets()
    records = [json.loads(line) for line in local_cloud.api_calls_path.read_text().splitlines()]
    assert {"service", "operation", "status", "time"} <= set(records[-1])
    pairs = [(r["service"], r["operation"], r["status"]) for r in records]
    assert ("batch", "DescribeJobQueues", 200) in pairs
    assert ("elasticfilesystem", "DescribeFileSystems", 200) in pairs
    assert ("logs", "DescribeLogGroups", 200) in pairs
    assert pairs[-1] == ("s3", "ListBuckets", 200)


def test_list_jobs_filters_by_definition_and_creation_time(
    local_cloud: LocalCloud, batch: Any
) -> None:
    arn = register(batch, "filtered-def", ["true"])
    job_id = batch.submit_job(
        jobName="filtered", jobQueue=local_cloud.queue_name, jobDefinition=arn
    )["jobId"]
    created = wait(batch, job_id)["createdAt"]
    by_def = batch.list_jobs(
        jobQueue=local_cloud.queue_name,
        filters=[{"name": "JOB_DEFINITION", "values": ["filtered-def"]}],
    )
    assert [s["jobId"] for s in by_def["jobSummaryList"]] == [job_id]
    after = batch.list_jobs(
        jobQueue=local_cloud.queue_name,
        filters=[{"name": "AFTER_CREATED_AT", "values": [str(created - 1)]}],
    )
    assert job_id in [s["jobId"] for s in after["jobSummaryList"]]
    before = batch.list_jobs(
        jobQueue=local_cloud.queue_name,
        filters=[{"name": "BEFORE_CREATED_AT", "values": [str(created)]}],
    )
    assert job_id not in [s["jobId"] for s in before["jobSummaryList"]]
