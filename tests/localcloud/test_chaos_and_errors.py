"""Fault injection (spot reclaims, 429 throttling, S3 SlowDown) and ClientExceptions."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from localcloud.helpers import client, register, wait
from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.localcloud import LocalCloud
from snakemake_executor_awsbatch.localcloud.chaos import ChaosSpec


def test_spot_reclaim_is_retried_by_evaluate_on_exit(local_cloud_factory: Any) -> None:
    cloud = local_cloud_factory(chaos="spot=1.0,spot_max=1,spot_window=0.2,seed=3")
    batch = client(cloud, "batch")
    arn = register(batch, "spotty", ["sh", "-c", 'test "$AWS_BATCH_JOB_ATTEMPT" = 2 || sleep 30'])
    job = batch.submit_job(
        jobName="spotty",
        jobQueue=cloud.queue_name,
        jobDefinition=arn,
        retryStrategy={
            "attempts": 2,
            "evaluateOnExit": [
                {"onStatusReason": "Host EC2*", "action": "RETRY"},
                {"onReason": "*", "action": "EXIT"},
            ],
        },
    )
    done = wait(batch, job["jobId"], timeout=30)
    assert done["status"] == "SUCCEEDED"
    first, second = done["attempts"]
    assert first["statusReason"].startswith("Host EC2 (instance i-")
    assert first["statusReason"].endswith(") terminated.")
    assert "exitCode" not in first["container"]
    assert second["container"]["exitCode"] == 0


def test_spot_reclaim_without_retry_rule_fails(local_cloud_factory: Any) -> None:
    cloud = local_cloud_factory(chaos="spot=1.0,spot_max=1,spot_window=0.1")
    batch = client(cloud, "batch")
    arn = register(batch, "spot-once", ["sleep", "30"])
    job = batch.submit_job(jobName="s", jobQueue=cloud.queue_name, jobDefinition=arn)
    done = wait(batch, job["jobId"], timeout=30)
    assert done["status"] == "FAILED"
    assert done["statusReason"].startswith("Host EC2 (instance")


def test_throttling_reaches_the_client_as_429(local_cloud_factory: Any) -> None:
    cloud = local_cloud_factory(chaos="throttle=1.0,throttle_max=1")
    batch = client(cloud, "batch", retries={"total_max_attempts": 1, "mode": "standard"})
    with pytest.raises(ClientError) as caught:
        batch.describe_job_queues()
    assert caught.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert batch.describe_job_queues()["jobQueues"]
    lines = cloud.api_calls_path.read_text().splitlines()
    assert '"status": 429' in lines[0]


def test_s3_slowdown_reaches_the_client_and_retries_recover(local_cloud_factory: Any) -> None:
    cloud = local_cloud_factory(chaos="s3_slowdown=1.0,s3_slowdown_max=2")
    s3_once = client(cloud, "s3", retries={"total_max_attempts": 1, "mode": "standard"})
    with pytest.raises(ClientError) as caught:
        s3_once.create_bucket(Bucket="localcloud-slowdown")
    assert caught.value.response["Error"]["Code"] == "SlowDown"
    s3 = client(cloud, "s3", retries={"max_attempts": 5, "mode": "standard"})
    s3.create_bucket(Bucket="localcloud-slowdown")
    s3.put_object(Bucket="localcloud-slowdown", Key="k", Body=b"data")
    assert s3.get_object(Bucket="localcloud-slowdown", Key="k")["Body"].read() == b"data"


def test_chaos_spec_grammar() -> None:
    spec = ChaosSpec.parse("spot=0.1, throttle=0.05,s3_slowdown=0.02,seed=7,spot_max=3")
    assert (spec.spot, spec.throttle, spec.s3_slowdown, spec.seed, spec.spot_max) == (
        0.1,
        0.05,
        0.02,
        7,
        3,
    )
    assert not ChaosSpec.parse(None).enabled
    for bad in ("spot=2", "bogus=1", "spot", "seed=x"):
        with pytest.raises(UserError):
            ChaosSpec.parse(bad)


@pytest.fixture(scope="module")
def batch(local_cloud: LocalCloud) -> Any:
    return client(local_cloud, "batch")


def client_error(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "ClientException"
    return str(error["Error"]["Message"])


def test_bad_submissions_are_client_exceptions(local_cloud: LocalCloud, batch: Any) -> None:
    arn = register(batch, "valid", ["true"])
    queue = local_cloud.queue_name
    assert (
        client_error(batch.submit_job, jobName="x", jobQueue="nope", jobDefinition=arn)
        == "JobQueue nope not found."
    )
    assert client_error(batch.submit_job, jobName="x", jobQueue=queue, jobDefinition="missing") == (
        "JobDefinition name missing does not exist or is not in ACTIVE status."
    )
    assert "not found" in client_error(
        batch.submit_job, jobName="x", jobQueue=queue, jobDefinition="valid:99"
    )
    message = client_error(
        batch.submit_job,
        jobName="x",
        jobQueue=queue,
        jobDefinition=arn,
        containerOverrides={"resourceRequirements": [{"type": "MEMORY", "value": "lots"}]},
    )
    assert "MEMORY" in message
    assert "VCPU" in client_error(
        batch.submit_job,
        jobName="x",
        jobQueue=queue,
        jobDefinition=arn,
        containerOverrides={"resourceRequirements": [{"type": "VCPU", "value": "-1"}]},
    )
    assert "not found" in client_error(
        batch.submit_job,
        jobName="x",
        jobQueue=queue,
        jobDefinition=arn,
        dependsOn=[{"jobId": "no-such-job"}],
    )
    done = batch.submit_job(jobName="dep", jobQueue=queue, jobDefinition=arn)["jobId"]
    assert "20" in client_error(
        batch.submit_job,
        jobName="x",
        jobQueue=queue,
        jobDefinition=arn,
        dependsOn=[{"jobId": done}] * 21,
    )
    assert "valid pattern" in client_error(
        batch.submit_job, jobName="bad name!", jobQueue=queue, jobDefinition=arn
    )
    assert "valid pattern" in client_error(
        batch.submit_job, jobName="_leading", jobQueue=queue, jobDefinition=arn
    )
    assert "AWS_BATCH" in client_error(
        batch.submit_job,
        jobName="x",
        jobQueue=queue,
        jobDefinition=arn,
        containerOverrides={"environment": [{"name": "AWS_BATCH_JOB_ID", "value": "1"}]},
    )
    assert "8192" in client_error(
        batch.submit_job,
        jobName="x",
        jobQueue=queue,
        jobDefinition=arn,
        containerOverrides={"command": ["echo", "y" * 9000]},
    )
    assert "size" in client_error(
        batch.submit_job,
        jobName="x",
        jobQueue=queue,
        jobDefinition=arn,
        arrayProperties={"size": 1},
    )
    assert "N_TO_N" in client_error(
        batch.submit_job,
        jobName="x",
        jobQueue=queue,
        jobDefinition=arn,
        arrayProperties={"size": 2},
        dependsOn=[{"jobId": done, "type": "N_TO_N"}],
    )
    assert "30 KiB" in client_error(
        batch.submit_job,
        jobName="x",
        jobQueue=queue,
        jobDefinition=arn,
        parameters={"p": "v" * 31_000},
    )
    assert "24 KiB" in client_error(
        batch.register_job_definition,
        jobDefinitionName="big",
        type="container",
        containerProperties={"image": "x", "command": ["echo", "y" * 25_000]},
    )
    assert "pattern" in client_error(
        batch.register_job_definition,
        jobDefinitionName="a b",
        type="container",
        containerProperties={"image": "x"},
    )
    # The engine keeps serving after every refusal.
    assert wait(batch, done)["status"] == "SUCCEEDED"


def test_short_timeout_refused_like_batch(local_cloud_factory: Any) -> None:
    cloud = local_cloud_factory(min_timeout_seconds=60)
    batch = client(cloud, "batch")
    arn = register(batch, "t", ["true"])
    message = client_error(
        batch.submit_job,
        jobName="t",
        jobQueue=cloud.queue_name,
        jobDefinition=arn,
        timeout={"attemptDurationSeconds": 5},
    )
    assert "60" in message


def test_unimplemented_batch_operation_is_a_clear_client_exception(batch: Any) -> None:
    message = client_error(
        batch.create_job_queue,
        jobQueueName="q",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "ce"}],
    )
    assert "CreateJobQueue" in message


def test_same_seed_repeats_the_same_faults() -> None:
    from snakemake_executor_awsbatch.localcloud.chaos import Chaos

    def decisions(seed: int) -> list[bool]:
        chaos = Chaos(ChaosSpec.parse(f"throttle=0.3,s3_slowdown=0.3,seed={seed}"))
        return [f() for _ in range(50) for f in (chaos.throttle_api_call, chaos.slow_down_s3_call)]

    assert decisions(7) == decisions(7)
    assert decisions(7) != decisions(8)
    assert 0 < sum(decisions(7)) < 100


def test_throttle_max_caps_the_faults() -> None:
    from snakemake_executor_awsbatch.localcloud.chaos import Chaos

    chaos = Chaos(ChaosSpec.parse("throttle=1.0,throttle_max=3"))
    assert [chaos.throttle_api_call() for _ in range(6)] == [True] * 3 + [False] * 3


def test_malformed_body_is_a_400_and_the_engine_keeps_serving(
    local_cloud: LocalCloud, batch: Any
) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{local_cloud.endpoint_url}/v1/submitjob", data=b"{not json", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 400
    assert caught.value.headers["x-amzn-ErrorType"] == "SerializationException"
    assert batch.describe_job_queues()["jobQueues"]
