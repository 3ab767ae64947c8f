"""`awsbatch local`: run the local cloud in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from snakemake_executor_awsbatch.errors import UserError


def add_parser(subparsers: Any) -> None:
    """Register the `local` subcommand."""
    parser = subparsers.add_parser(
        "local",
        help="run the local cloud (Batch, S3, CloudWatch Logs, EFS) on 127.0.0.1",
        description=(
            "Serve the Batch API (jobs run as host processes), S3, CloudWatch Logs and EFS on one "
            "loopback endpoint. Point clients at it with the printed export lines."
        ),
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".awsbatch-local"),
        help="where S3 objects, job definitions, job records and EFS live (default: %(default)s)",
    )
    parser.add_argument("--vcpus", type=int, default=None, help="vCPUs of the compute environment")
    parser.add_argument(
        "--memory", type=int, default=None, help="memory of the compute environment in MiB"
    )
    parser.add_argument(
        "--chaos",
        default=None,
        metavar="SPEC",
        help="fault injection, e.g. spot=0.1,throttle=0.05,s3_slowdown=0.02,seed=7",
    )
    parser.add_argument(
        "--min-timeout",
        type=int,
        default=60,
        help="smallest timeout.attemptDurationSeconds accepted (Batch: 60)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Start the local cloud, print how to reach it, and serve until interrupted."""
    from snakemake_executor_awsbatch.localcloud.cloud import LocalCloud

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    try:
        cloud = LocalCloud(
            state_dir=args.state_dir,
            port=args.port,
            vcpus=args.vcpus,
            memory_mib=args.memory,
            chaos=args.chaos,
            min_timeout_seconds=args.min_timeout,
        )
        cloud.start()
    except UserError as exc:
        print(f"awsbatch local: {exc}", file=sys.stderr)
        return 2
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"Local cloud listening on {cloud.endpoint_url}")
        print(
            f"  job queue:           {cloud.queue_name} -> {cloud.compute_environment_name} (SPOT)"
        )
        print(
            f"  on-demand queue:     {cloud.ondemand_queue_name} -> "
            f"{cloud.ondemand_compute_environment_name} (EC2)"
        )
        print(f"  host capacity:       {cloud.vcpus:g} vCPUs, {cloud.memory_mib} MiB (shared)")
        print(
            f"  EFS file system:     {cloud.efs_file_system_id} -> "
            f"{cloud.efs_root(cloud.efs_file_system_id)}"
        )
        print(f"  state dir:           {cloud.state_dir}")
        print("Point clients at it with:")
        for key, value in cloud.client_env().items():
            print(f"export {key}={value}")
        # `cwl-awsbatch --local` reuses this cloud instead of starting its own.
        cwl_env = {
            "CWL_AWSBATCH_LOCAL_ENDPOINT": cloud.endpoint_url,
            "CWL_AWSBATCH_LOCAL_REGION": cloud.region,
            "CWL_AWSBATCH_LOCAL_QUEUE": cloud.queue_name,
            "CWL_AWSBATCH_LOCAL_EFS": cloud.efs_file_system_id,
        }
        for key, value in cwl_env.items():
            print(f"export {key}={value}")
        sys.stdout.flush()
        stop.wait()
    finally:
        print("Stopping the local cloud...", file=sys.stderr)
        cloud.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
