"""A small two-rule run written to a moto bucket, with the DescribeJobs answers that go with it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

RUN = "s3://runs-bucket/work/.awsbatch/abc123def456"
T0 = 1_700_000_000_000  # epoch ms


def _job(
    job_id: str, rule: str, attempts: list[tuple[int, int, int, str | None]], memory: int
) -> dict[str, Any]:
    status = "SUCCEEDED" if attempts[-1][2] == 0 else "FAILED"
    return {
        "jobId": job_id,
        "jobName": f"{rule}-x",
        "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/gx-spot",
        "status": status,
        "statusReason": attempts[-1][3] or "Essential container in task exited",
        "createdAt": T0,
        "startedAt": T0 + attempts[0][0],
        "stoppedAt": T0 + attempts[-1][1],
        "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/d:1",
        "tags": {"snakemake-rule": rule},
        "attempts": [
            {
                "startedAt": T0 + start,
                "stoppedAt": T0 + stop,
                "statusReason": reason,
                "container": {"exitCode": code},
            }
            for start, stop, code, reason in attempts
        ],
        "container": {
            "resourceRequirements": [
                {"type": "VCPU", "value": "2"},
                {"type": "MEMORY", "value": str(memory)},
            ]
        },
    }


JOBS = {
    "job-map-1": _job("job-map-1", "bwa_map", [(5_000, 125_000, 0, None)], 4096),
    "job-map-2": _job(
        "job-map-2",
        "bwa_map",
        [
            (6_000, 60_000, 137, "Host EC2 (instance i-0abc) terminated."),
            (70_000, 190_000, 0, None),
        ],
        4096,
    ),
    "job-call-1": _job("job-call-1", "call", [(200_000, 260_000, 1, None)], 8192),
}


def describe(ids: Sequence[str]) -> list[dict[str, Any]]:
    """What DescribeJobs returns for these ids (unknown ids are left out, as Batch does)."""
    return [JOBS[i] for i in ids if i in JOBS]


def _report(job_id: str, peak: float, bytes_in: int, exit_code: int = 0) -> dict[str, Any]:
    return {
        "status": "succeeded" if exit_code == 0 else "payload_failed",
        "exit_code": exit_code,
        "started_at": T0 / 1000,
        "wall_seconds": 100.0,
        "cpu_user_seconds": 150.0,
        "cpu_system_seconds": 10.0,
        "peak_memory_mib": peak,
        "bytes_in": bytes_in,
        "bytes_out": bytes_in // 2,
        "batch_job_id": job_id,
        "instance": {"instance_type": "r6i.large", "lifecycle": "spot"},
    }


def write_run(s3: Any) -> None:
    """Put the run's task prefixes into the (mocked) bucket."""
    bucket, _, key = RUN[len("s3://") :].partition("/")
    s3.create_bucket(Bucket=bucket)
    tasks = {
        "bwa_map-1-0a1b2c3d": _report("job-map-1", 1200.0, 50_000_000),
        "bwa_map-2-1a1b2c3d": _report("job-map-2", 1800.0, 70_000_000),
        "call-3-2a1b2c3d": _report("job-call-1", 300.0, 10_000_000, exit_code=1),
        "never-ran-4-3a1b2c3d": None,
    }
    for name, report in tasks.items():
        s3.put_object(Bucket=bucket, Key=f"{key}/{name}/spec.json", Body=b"{}")
        if report is not None:
            s3.put_object(
                Bucket=bucket, Key=f"{key}/{name}/report.json", Body=json.dumps(report).encode()
            )
            s3.put_object(Bucket=bucket, Key=f"{key}/{name}/log.txt", Body=b"log\n")
    # A user output that looks like a task must not be taken for one.
    s3.put_object(Bucket=bucket, Key=f"{key}/call-3-2a1b2c3d/outdir/x/spec.json", Body=b"{}")
