"""BatchClient against botocore's Stubber (request and response shapes checked against the Batch
service model): throttling and 5xx retried with backoff, other errors raised at once, batching."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from snakemake_executor_awsbatch.batch import BatchClient
from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.ratelimit import BackoffPolicy, Pacer, RateLimiter, is_retryable


class FakeClock:
    """A clock that only moves when something sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def stubbed(aws_env: None, clock: FakeClock) -> Iterator[tuple[BatchClient, Stubber]]:
    raw = boto3.client("batch", region_name="us-east-1")
    limiter = RateLimiter(1000.0, clock=clock, sleep=clock.sleep)
    pacer = Pacer(limiter, BackoffPolicy(max_attempts=4), sleep=clock.sleep, rng=random.Random(1))
    with Stubber(raw) as stubber:
        yield BatchClient(raw, pacer), stubber
        stubber.assert_no_pending_responses()


def _job(job_id: str, status: str = "RUNNING") -> dict[str, Any]:
    return {
        "jobId": job_id,
        "jobName": f"n{job_id}",
        "jobQueue": "q",
        "status": status,
        "startedAt": 1,
        "jobDefinition": "d:1",
    }


SUBMIT = {"jobName": "a", "jobQueue": "q", "jobDefinition": "d:1"}
SUBMITTED = {"jobName": "a", "jobId": "id-1"}


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("TooManyRequestsException", 429),
        ("ThrottlingException", 400),
        ("ServerException", 500),
        ("ServiceUnavailable", 503),
    ],
)
def test_throttling_and_5xx_are_retried_with_backoff(
    stubbed: tuple[BatchClient, Stubber], clock: FakeClock, code: str, status: int
) -> None:
    client, stubber = stubbed
    stubber.add_client_error("submit_job", service_error_code=code, http_status_code=status)
    stubber.add_client_error("submit_job", service_error_code=code, http_status_code=status)
    stubber.add_response("submit_job", SUBMITTED, SUBMIT)
    assert client.submit_job(dict(SUBMIT)) == "id-1"
    assert client.pacer.retries == 2
    backoffs = [s for s in clock.sleeps if s > 0.01]
    assert len(backoffs) >= 1 and all(s <= 0.25 * 2**1 for s in backoffs)


def test_retries_stop_at_the_bound(stubbed: tuple[BatchClient, Stubber]) -> None:
    client, stubber = stubbed
    for _ in range(4):
        stubber.add_client_error(
            "describe_jobs", service_error_code="TooManyRequestsException", http_status_code=429
        )
    with pytest.raises(ClientError, match="TooManyRequestsException"):
        client.describe_jobs(["a"])


def test_client_exception_is_a_user_error_at_once(stubbed: tuple[BatchClient, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_client_error(
        "submit_job",
        service_error_code="ClientException",
        service_message="Job queue nosuchqueue not found.",
        http_status_code=400,
    )
    with pytest.raises(UserError, match="nosuchqueue not found"):
        client.submit_job(dict(SUBMIT))
    assert client.pacer.retries == 0


def test_other_4xx_is_raised_at_once(stubbed: tuple[BatchClient, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_client_error(
        "describe_jobs", service_error_code="AccessDeniedException", http_status_code=403
    )
    with pytest.raises(ClientError, match="AccessDenied"):
        client.describe_jobs(["a"])
    assert client.pacer.retries == 0


def test_describe_jobs_goes_100_a_call(stubbed: tuple[BatchClient, Stubber]) -> None:
    client, stubber = stubbed
    ids = [f"job-{i}" for i in range(250)]
    for start in (0, 100, 200):
        chunk = ids[start : start + 100]
        stubber.add_response("describe_jobs", {"jobs": [_job(j) for j in chunk]}, {"jobs": chunk})
    assert [j["jobId"] for j in client.describe_jobs(ids + ids[:5])] == ids


def test_terminate_jobs_goes_50_a_call(stubbed: tuple[BatchClient, Stubber]) -> None:
    client, stubber = stubbed
    ids = [f"job-{i}" for i in range(120)]
    for start in (0, 50, 100):
        chunk = ids[start : start + 50]
        stubber.add_response(
            "terminate_jobs", {"successful": chunk, "errors": []}, {"jobs": chunk, "reason": "r"}
        )
    client.terminate_jobs(ids, "r")


class _NoBatchTerminate:
    """A Batch client from a botocore that has no TerminateJobs/CancelJobs."""

    def __init__(self, raw: Any) -> None:
        self.terminate_job = raw.terminate_job
        self.cancel_job = raw.cancel_job


def test_terminate_falls_back_to_one_call_per_job(stubbed: tuple[BatchClient, Stubber]) -> None:
    client, stubber = stubbed
    fallback = BatchClient(_NoBatchTerminate(client.client), client.pacer)
    for job_id in ("a", "b", "c"):
        stubber.add_response("terminate_job", {}, {"jobId": job_id, "reason": "stop"})
    fallback.terminate_jobs(["a", "b", "c", "a"], "stop")
    stubber.add_response("cancel_job", {}, {"jobId": "d", "reason": "stop"})
    fallback.cancel_jobs(["d"], "stop")


def test_job_definition_lookup_is_paged(stubbed: tuple[BatchClient, Stubber]) -> None:
    client, stubber = stubbed
    base = {"jobDefinitionName": "jd", "type": "container", "status": "ACTIVE"}
    first = {**base, "jobDefinitionArn": "arn:1", "revision": 1}
    second = {**base, "jobDefinitionArn": "arn:2", "revision": 2}
    query = {"jobDefinitionName": "jd", "status": "ACTIVE"}
    stubber.add_response(
        "describe_job_definitions", {"jobDefinitions": [first], "nextToken": "t"}, query
    )
    stubber.add_response(
        "describe_job_definitions", {"jobDefinitions": [second]}, {**query, "nextToken": "t"}
    )
    assert [d["revision"] for d in client.active_job_definitions("jd")] == [1, 2]


def test_rate_limiter_paces_calls(clock: FakeClock) -> None:
    limiter = RateLimiter(10.0, burst=2, clock=clock, sleep=clock.sleep)
    for _ in range(12):
        limiter.acquire()
    # 2 calls ride the burst, the other 10 are spaced 0.1 s apart.
    assert clock.now == pytest.approx(1.0)


def test_only_throttling_and_server_errors_are_retryable() -> None:
    def err(code: str, status: int) -> ClientError:
        response: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return ClientError(response, "Op")

    assert is_retryable(err("SlowDown", 503))
    assert is_retryable(err("Whatever", 502))
    assert is_retryable(err("TooManyRequestsException", 429))
    assert not is_retryable(err("ClientException", 400))
    assert not is_retryable(ValueError("no"))
