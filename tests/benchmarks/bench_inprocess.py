"""Per-call cost of the local cloud for a client on the loopback socket and one served in-process.

The calls are the ones Snakemake's S3 storage plugin makes between jobs (HeadObject of an object
and of a missing key, HeadBucket of a missing bucket, ListObjects of a prefix, a small
GetObject) and the executor's DescribeJobs. Each is timed `--calls` times per client after a
warm-up, alternating the two clients by round. Prints one JSON line last:
  {"http_ms": {op: median}, "in_process_ms": {op: median}, "speedup": {op: http / in-process}}

    .venv/bin/python tests/benchmarks/bench_inprocess.py [--calls 300] [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from snakemake_executor_awsbatch.localcloud import LocalCloud
from tests.localcloud.helpers import client as _client

BUCKET = "bench-inprocess"


def _missing(call: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        with contextlib.suppress(ClientError):
            call()

    return run


def _operations(s3: Any, batch: Any) -> dict[str, Callable[[], Any]]:
    return {
        "head_object": lambda: s3.head_object(Bucket=BUCKET, Key="runs/f3"),
        "head_object_missing": _missing(lambda: s3.head_object(Bucket=BUCKET, Key="runs/none")),
        "head_bucket_missing": _missing(lambda: s3.head_bucket(Bucket="bench-inprocess-none")),
        "list_objects": lambda: s3.list_objects(Bucket=BUCKET, Prefix="runs/f3/"),
        "get_object": lambda: s3.get_object(Bucket=BUCKET, Key="runs/f3")["Body"].read(),
        "describe_jobs": lambda: batch.describe_jobs(jobs=["none"]),
    }


def _time(operation: Callable[[], Any], calls: int) -> list[float]:
    for _ in range(20):
        operation()
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        operation()
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with LocalCloud(vcpus=2, memory_mib=2048) as cloud:
        over_http = _operations(_client(cloud, "s3"), _client(cloud, "batch"))
        cloud.serve_in_process()  # clients made from here on skip the socket
        in_process = _operations(_client(cloud, "s3"), _client(cloud, "batch"))
        setup = _client(cloud, "s3")
        setup.create_bucket(Bucket=BUCKET)
        for i in range(80):  # the size of the germline demo's bucket
            setup.put_object(Bucket=BUCKET, Key=f"runs/f{i}", Body=b"x" * 100)
        samples: dict[str, dict[str, list[float]]] = {"http": {}, "in_process": {}}
        for round_ in range(args.rounds):
            order = [("http", over_http), ("in_process", in_process)]
            for label, operations in order if round_ % 2 == 0 else order[::-1]:
                for name, operation in operations.items():
                    samples[label].setdefault(name, []).extend(_time(operation, args.calls))
        served = cloud.in_process_calls
    medians = {
        label: {name: round(statistics.median(s) * 1000, 3) for name, s in by_op.items()}
        for label, by_op in samples.items()
    }
    speedup = {
        name: round(medians["http"][name] / medians["in_process"][name], 2)
        for name in medians["http"]
    }
    print(f"in-process requests served: {served}")
    print(
        json.dumps(
            {
                "http_ms": medians["http"],
                "in_process_ms": medians["in_process"],
                "speedup": speedup,
                "calls": args.calls,
                "rounds": args.rounds,
            }
        )
    )


if __name__ == "__main__":
    main()
