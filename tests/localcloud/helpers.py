"""Plain-boto3 helpers for the local cloud tests (no project code on the client side)."""

from __future__ import annotations

import time
from typing import Any

import boto3.session
from botocore.config import Config

TERMINAL = ("SUCCEEDED", "FAILED")


def client(cloud: Any, service: str, **config: Any) -> Any:
    """A boto3 client for `service` pointed at the cloud with throwaway credentials."""
    session: Any = boto3.session.Session()
    return session.client(
        service,
        endpoint_url=cloud.endpoint_url,
        region_name=cloud.region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(**config) if config else None,
    )


# Response headers that differ between any two answers to the same request.
VOLATILE_HEADERS = frozenset({"date", "x-amzn-requestid"})


def steady_headers(metadata: Any) -> dict[str, str]:
    """The HTTP headers of a response's `ResponseMetadata`, those that vary per answer left out."""
    return {k: v for k, v in metadata["HTTPHeaders"].items() if k not in VOLATILE_HEADERS}


def register(
    batch: Any, name: str, command: list[str], vcpus: str = "1", memory: str = "128", **extra: Any
) -> str:
    """Register a container job definition; returns its ARN."""
    props: dict[str, Any] = {
        "image": "public.ecr.aws/docker/library/busybox:latest",
        "command": command,
        "resourceRequirements": [
            {"type": "VCPU", "value": vcpus},
            {"type": "MEMORY", "value": memory},
        ],
    }
    props.update(extra.pop("containerProperties", {}))
    response = batch.register_job_definition(
        jobDefinitionName=name, type="container", containerProperties=props, **extra
    )
    return str(response["jobDefinitionArn"])


def wait(
    batch: Any, job_id: str, statuses: tuple[str, ...] = TERMINAL, timeout: float = 60.0
) -> dict[str, Any]:
    """Poll DescribeJobs until the job reaches one of `statuses`; returns its record."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = batch.describe_jobs(jobs=[job_id])["jobs"]
        if jobs and jobs[0]["status"] in statuses:
            return dict(jobs[0])
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} not in {statuses} after {timeout}s: {jobs}")
        time.sleep(0.05)


def log_lines(logs: Any, stream: str) -> list[str]:
    """Every message of a stream in /aws/batch/job."""
    events = logs.get_log_events(
        logGroupName="/aws/batch/job", logStreamName=stream, startFromHead=True
    )["events"]
    return [str(e["message"]) for e in events]
