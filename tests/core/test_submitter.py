"""BatchSubmitter with a stubbed Batch client (shapes checked by botocore) and moto S3:
preflight refusals, job definitions registered once, the spec uploaded before SubmitJob,
eventual consistency, vanished jobs, stuck jobs, logs and reports."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from snakemake_executor_awsbatch.batch import BatchClient
from snakemake_executor_awsbatch.capacity import instance_shape
from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.jobstate import JobState
from snakemake_executor_awsbatch.ratelimit import BackoffPolicy, Pacer, RateLimiter
from snakemake_executor_awsbatch.submitter import BatchSubmitter, SubmitterSettings
from snakemake_executor_awsbatch.taskspec import LaunchSpec, Platform, StagingManifest, TaskSpec

EXEC_ROLE = "arn:aws:iam::123456789012:role/ecsTaskExecution"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def env(s3: Any, clock: Clock) -> Iterator[tuple[BatchSubmitter, Stubber, Stubber]]:
    raw = boto3.client("batch", region_name="us-east-1")
    logs = boto3.client("logs", region_name="us-east-1")
    pacer = Pacer(RateLimiter(1e6), BackoffPolicy(), sleep=lambda _s: None, rng=random.Random(0))
    settings = SubmitterSettings(missing_grace_seconds=60, stuck_dwell_seconds=300)
    sub = BatchSubmitter(BatchClient(raw, pacer), s3, logs, settings, logs_pacer=pacer, clock=clock)
    with Stubber(raw) as batch_stub, Stubber(logs) as logs_stub:
        yield sub, batch_stub, logs_stub
        batch_stub.assert_no_pending_responses()
        logs_stub.assert_no_pending_responses()


def spec(bucket: str, name: str = "t1", **kw: Any) -> TaskSpec:
    launch = LaunchSpec(
        staging=StagingManifest(prefix=f"s3://{bucket}/run/{name}"), command=("true",)
    )
    return TaskSpec(**{"name": name, "image": "img:1", "queue": "q", "launch": launch, **kw})


def _queue(stub: Stubber, instance_types: list[str], max_vcpus: int = 256) -> None:
    stub.add_response(
        "describe_job_queues",
        {
            "jobQueues": [
                {
                    "jobQueueName": "q",
                    "jobQueueArn": "arn:q",
                    "state": "ENABLED",
                    "status": "VALID",
                    "priority": 1,
                    "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "arn:ce"}],
                }
            ]
        },
        {"jobQueues": ["q"]},
    )
    stub.add_response(
        "describe_compute_environments",
        {
            "computeEnvironments": [
                {
                    "computeEnvironmentName": "ce",
                    "computeEnvironmentArn": "arn:ce",
                    "state": "ENABLED",
                    "type": "MANAGED",
                    "computeResources": {
                        "type": "SPOT",
                        "maxvCpus": max_vcpus,
                        "instanceTypes": instance_types,
                        "subnets": ["s"],
                    },
                }
            ]
        },
        {"computeEnvironments": ["arn:ce"]},
    )


def test_preflight_refuses_a_job_larger_than_the_queue(env: Any, bucket: str) -> None:
    sub, stub, _ = env
    _queue(stub, ["m5.4xlarge", "c5.9xlarge"])
    sub.preflight([spec(bucket, vcpus=16, memory_mib=60000)])  # c5.9xlarge has 72 GiB
    with pytest.raises(UserError, match="at most 36"):
        sub.preflight([spec(bucket, vcpus=48)])
    with pytest.raises(UserError, match="at most 73728 MiB"):
        sub.preflight([spec(bucket, memory_mib=100_000)])


def test_preflight_refuses_a_platform_the_queue_does_not_run(env: Any, bucket: str) -> None:
    sub, stub, _ = env
    _queue(stub, ["m5.4xlarge"])
    with pytest.raises(
        UserError, match="FARGATE job but the compute environments of queue 'q' run EC2"
    ):
        sub.preflight([spec(bucket, platform=Platform.FARGATE, execution_role_arn=EXEC_ROLE)])
    sub.preflight([spec(bucket)])  # an EC2 job fits the same (cached) queue


def test_preflight_refuses_a_missing_or_disabled_queue(env: Any, bucket: str) -> None:
    sub, stub, _ = env
    stub.add_response("describe_job_queues", {"jobQueues": []}, {"jobQueues": ["q"]})
    with pytest.raises(UserError, match="job queue 'q' does not exist"):
        sub.preflight([spec(bucket)])
    stub.add_response(
        "describe_job_queues",
        {
            "jobQueues": [
                {
                    "jobQueueName": "q",
                    "jobQueueArn": "arn:q",
                    "state": "DISABLED",
                    "status": "VALID",
                    "priority": 1,
                    "computeEnvironmentOrder": [],
                }
            ]
        },
        {"jobQueues": ["q"]},
    )
    with pytest.raises(UserError, match="enable it"):
        sub.preflight([spec(bucket)])


def test_submit_uploads_spec_and_registers_once(env: Any, bucket: str, s3: Any) -> None:
    sub, stub, _ = env
    stub.add_response(
        "describe_job_definitions",
        {"jobDefinitions": []},
        {"jobDefinitionName": ANY, "status": "ACTIVE"},
    )
    stub.add_response(
        "register_job_definition",
        {"jobDefinitionName": "n", "jobDefinitionArn": "arn:jd", "revision": 4},
        None,  # botocore still validates the request against the service model
    )
    for i in range(3):
        stub.add_response(
            "submit_job",
            {"jobName": f"t{i}", "jobId": f"id-{i}"},
            {
                "jobName": f"t{i}",
                "jobQueue": "q",
                "jobDefinition": ANY,
                "parameters": {"taskspec": f"s3://{bucket}/run/t{i}/spec.json"},
                "containerOverrides": ANY,
            },
        )
    ids = [sub.submit(spec(bucket, f"t{i}")) for i in range(3)]
    assert ids == ["id-0", "id-1", "id-2"] and sub.job_definitions.registered == 1
    body = s3.get_object(Bucket=bucket, Key="run/t2/spec.json")["Body"].read()
    assert LaunchSpec.from_json(body.decode()) == spec(bucket, "t2").launch


def test_existing_active_definition_is_reused(env: Any, bucket: str) -> None:
    sub, stub, _ = env
    jd = {
        "jobDefinitionName": "n",
        "jobDefinitionArn": "a",
        "type": "container",
        "status": "ACTIVE",
    }
    stub.add_response(
        "describe_job_definitions",
        {"jobDefinitions": [{**jd, "revision": 2}, {**jd, "revision": 5}]},
        {"jobDefinitionName": ANY, "status": "ACTIVE"},
    )
    name = sub.job_definitions.ensure(spec(bucket))
    assert name.endswith(":5") and sub.job_definitions.registered == 0


def test_missing_job_waits_out_the_grace_period_then_fails(env: Any, clock: Clock) -> None:
    sub, stub, _ = env
    for _ in range(2):
        stub.add_response("describe_jobs", {"jobs": []}, {"jobs": ["gone"]})
    first = sub.poll(["gone"])["gone"]
    assert first.status == "SUBMITTED" and not first.is_finished
    clock.now += 61
    later = sub.poll(["gone"])["gone"]
    assert later.is_failed and "missing from DescribeJobs" in later.explain()


def test_misconfigured_job_stuck_runnable_is_ended_and_failed(env: Any, clock: Clock) -> None:
    sub, stub, _ = env
    job = {
        "jobId": "j",
        "jobName": "big",
        "jobQueue": "q",
        "jobDefinition": "d",
        "startedAt": 0,
        "status": "RUNNABLE",
        "statusReason": "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - requirement too high",
    }
    stub.add_response("describe_jobs", {"jobs": [job]}, {"jobs": ["j"]})
    assert not sub.poll(["j"])["j"].is_finished
    clock.now += 301
    stub.add_response("describe_jobs", {"jobs": [job]}, {"jobs": ["j"]})
    stub.add_response(
        "terminate_jobs", {"successful": ["j"], "errors": []}, {"jobs": ["j"], "reason": ANY}
    )
    state = sub.poll(["j"])["j"]
    assert state.is_failed and "JOB_RESOURCE_REQUIREMENT" in state.explain()


def test_capacity_stuck_job_is_reported_not_ended(env: Any, clock: Clock) -> None:
    sub, stub, _ = env
    job = {
        "jobId": "c",
        "jobName": "c",
        "jobQueue": "q",
        "jobDefinition": "d",
        "startedAt": 0,
        "status": "RUNNABLE",
        "statusReason": "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - no spot",
    }
    for _ in range(2):
        stub.add_response("describe_jobs", {"jobs": [job]}, {"jobs": ["c"]})
    sub.poll(["c"])
    clock.now += 400
    state = sub.poll(["c"])["c"]
    assert state.is_stuck and not state.is_finished and "EC2 has no capacity" in state.explain()


def test_fetch_log_pages_until_the_token_repeats(env: Any) -> None:
    sub, _, logs = env
    base = {"logGroupName": "/aws/batch/job", "logStreamName": "s/1", "startFromHead": True}
    logs.add_response(
        "get_log_events",
        {"events": [{"message": "a"}, {"message": "b"}], "nextForwardToken": "f1"},
        base,
    )
    logs.add_response(
        "get_log_events",
        {"events": [{"message": "c"}], "nextForwardToken": "f2"},
        {**base, "nextToken": "f1"},
    )
    logs.add_response(
        "get_log_events", {"events": [], "nextForwardToken": "f2"}, {**base, "nextToken": "f2"}
    )
    lines = sub.fetch_log(JobState(job_id="x", status="FAILED", log_stream_name="s/1"), max_lines=2)
    assert lines == ["b", "c"]


def test_fetch_log_without_stream_is_empty(env: Any) -> None:
    sub, _, logs = env
    assert sub.fetch_log(JobState(job_id="x", status="RUNNABLE")) == []
    logs.add_client_error(
        "get_log_events", service_error_code="ResourceNotFoundException", http_status_code=400
    )
    assert sub.fetch_log(JobState(job_id="x", status="FAILED", log_stream_name="gone")) == []


def test_fetch_report_and_task_log(env: Any, bucket: str, s3: Any) -> None:
    sub, _, _ = env
    s = spec(bucket)
    assert sub.fetch_report(s) is None
    s3.put_object(Bucket=bucket, Key="run/t1/report.json", Body=json.dumps({"exit_code": 3}))
    s3.put_object(Bucket=bucket, Key="run/t1/log.txt", Body=b"1\n2\n3\n")
    assert sub.fetch_report(s) == {"exit_code": 3}
    assert sub.fetch_task_log(s, max_lines=2) == ["2", "3"]


def test_instance_shapes() -> None:
    assert instance_shape("m5.2xlarge") == (8, 32768)
    assert instance_shape("c6i.large") == (2, 4096)
    assert instance_shape("r5.xlarge") == (4, 32768)
    assert instance_shape("optimal") is None


def test_spec_with_a_credential_is_never_uploaded(env: Any, bucket: str, s3: Any) -> None:
    sub, _, _ = env
    launch = LaunchSpec(
        staging=StagingManifest(prefix=f"s3://{bucket}/run/leak"),
        command=("tool", "--key", "AKIAIOSFODNN7EXAMPLE"),
    )
    leaky = TaskSpec(name="leak", image="img", queue="q", launch=launch)
    with pytest.raises(UserError, match="contains an AWS credential"):
        sub.submit(leaky)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="run/leak/")


def test_no_region_or_credentials_are_user_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(UserError, match="no AWS region"):
        BatchSubmitter.create()
    sub = BatchSubmitter.create(region="us-east-1")
    with pytest.raises(UserError, match="no AWS credentials"):
        sub.poll(["x"])
