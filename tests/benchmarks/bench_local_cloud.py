"""Benchmark of the local cloud: submit N trivial jobs (`true`) and drain them.

Prints one JSON line last: submits_per_second, jobs_per_second (first submit to last job done),
latency_p50_s and latency_p95_s (createdAt to startedAt, i.e. submit to RUNNING).

    .venv/bin/python tests/benchmarks/bench_local_cloud.py [--jobs 1000] [--vcpus 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import boto3

from snakemake_executor_awsbatch.localcloud import LocalCloud


def percentile(values: list[float], fraction: float) -> float:
    """The `fraction` quantile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--vcpus", type=int, default=8)
    args = parser.parse_args()
    with LocalCloud(vcpus=args.vcpus, memory_mib=args.vcpus * 1024) as cloud:
        batch: Any = boto3.client(
            "batch",
            endpoint_url=cloud.endpoint_url,
            region_name=cloud.region,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        arn = batch.register_job_definition(
            jobDefinitionName="bench-true",
            type="container",
            containerProperties={
                "image": "busybox",
                "command": ["true"],
                "resourceRequirements": [
                    {"type": "VCPU", "value": "1"},
                    {"type": "MEMORY", "value": "64"},
                ],
            },
        )["jobDefinitionArn"]
        start = time.monotonic()
        ids = [
            batch.submit_job(jobName=f"b{i}", jobQueue=cloud.queue_name, jobDefinition=arn)["jobId"]
            for i in range(args.jobs)
        ]
        submitted = time.monotonic()
        records: dict[str, dict[str, Any]] = {}
        pending = list(ids)
        while pending:
            still = []
            for chunk in range(0, len(pending), 100):
                for job in batch.describe_jobs(jobs=pending[chunk : chunk + 100])["jobs"]:
                    if job["status"] in ("SUCCEEDED", "FAILED"):
                        records[job["jobId"]] = job
                    else:
                        still.append(job["jobId"])
            pending = still
            if pending:
                time.sleep(0.1)
        drained = time.monotonic()
    failed = sum(1 for r in records.values() if r["status"] != "SUCCEEDED")
    latencies = [(r["startedAt"] - r["createdAt"]) / 1000 for r in records.values()]
    print(
        json.dumps(
            {
                "jobs": args.jobs,
                "vcpus": args.vcpus,
                "failed": failed,
                "submits_per_second": round(args.jobs / (submitted - start), 1),
                "jobs_per_second": round(args.jobs / (drained - start), 1),
                "latency_p50_s": round(statistics.median(latencies), 3),
                "latency_p95_s": round(percentile(latencies, 0.95), 3),
            }
        )
    )


if __name__ == "__main__":
    main()
