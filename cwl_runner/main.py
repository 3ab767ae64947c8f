"""`cwl-awsbatch`: cwltool's command line and output contract, with every CommandLineTool run as
one AWS Batch job. `--local` runs on the embedded local cloud (or reuses a running one named by
`CWL_AWSBATCH_LOCAL_ENDPOINT`, `CWL_AWSBATCH_LOCAL_REGION` and `CWL_AWSBATCH_LOCAL_QUEUE`)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

import boto3
from cwltool import main as cwlmain
from cwltool.argparser import arg_parser
from cwltool.context import LoadingContext, RuntimeContext

from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.settings import parse_platform_and_role
from snakemake_executor_awsbatch.taskspec import EfsMount

from .deliver import check_s3_outdir
from .efs import EfsLayout, local_on_demand
from .executor import AwsBatchExecutor
from .fetcher import StorageFetcher
from .fsaccess import S3FsAccess, is_s3, valid_efs_id
from .pathmapper import S3PathMapper
from .preflight import check_efs_inputs
from .s3store import S3Store, parse_s3_uri
from .session import BatchBackend, RunnerSettings, RunSession
from .tool import make_tool_factory

LOCAL_BUCKET = "cwl-awsbatch-local"


def _own_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    env = os.environ.get
    parser.add_argument("--local", action="store_true")
    parser.add_argument("--awsbatch-queue", default=env("CWL_AWSBATCH_QUEUE"))
    parser.add_argument("--awsbatch-s3-root", default=env("CWL_AWSBATCH_S3_ROOT"))
    parser.add_argument("--awsbatch-region", default=env("AWS_REGION", env("AWS_DEFAULT_REGION")))
    parser.add_argument("--awsbatch-endpoint-url", default=env("CWL_AWSBATCH_ENDPOINT_URL"))
    parser.add_argument("--awsbatch-default-image", default=env("CWL_AWSBATCH_DEFAULT_IMAGE"))
    parser.add_argument(
        "--awsbatch-companion-image", default=env("CWL_AWSBATCH_COMPANION_IMAGE") or None
    )
    parser.add_argument(
        "--awsbatch-platform",
        default=env("CWL_AWSBATCH_PLATFORM", "EC2"),
        help="EC2 (also spot) or FARGATE: the platform of the queue's compute environments",
    )
    parser.add_argument(
        "--awsbatch-job-role-arn",
        default=env("CWL_AWSBATCH_JOB_ROLE_ARN"),
        help="IAM role the jobs assume (their S3 access)",
    )
    parser.add_argument(
        "--awsbatch-execution-role-arn",
        default=env("CWL_AWSBATCH_EXECUTION_ROLE_ARN"),
        help="ECS execution role (image pulls, logs); required with FARGATE",
    )
    parser.add_argument("--awsbatch-poll-seconds", type=float, default=None)
    parser.add_argument("--awsbatch-efs", action="append", default=[])
    parser.add_argument("--awsbatch-no-call-cache", action="store_true")
    return parser


def parse_efs(text: str) -> EfsMount:
    """`fs-id:/container/path[:rw]` -> EfsMount (read-only unless `:rw`)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not valid_efs_id(parts[0]) or not parts[1].startswith("/"):
        raise UserError(
            f"--awsbatch-efs {text!r} is not fs-ID:/container/path[:rw]; "
            "write it as, e.g., fs-12345678:/refs."
        )
    return EfsMount(
        file_system_id=parts[0],
        container_path=parts[1],
        read_only=not (len(parts) == 3 and parts[2] == "rw"),
    )


@contextlib.contextmanager
def _cloud(own: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """Where to run: the given endpoint, a reused local cloud, or a new in-process one."""
    if not own.local:
        yield {"endpoint_url": own.awsbatch_endpoint_url, "region": own.awsbatch_region}
        return
    reuse = os.environ.get("CWL_AWSBATCH_LOCAL_ENDPOINT")
    if reuse:
        yield {
            "endpoint_url": reuse,
            "region": os.environ.get("CWL_AWSBATCH_LOCAL_REGION", "us-east-1"),
            "queue": os.environ.get("CWL_AWSBATCH_LOCAL_QUEUE"),
            "efs": os.environ.get("CWL_AWSBATCH_LOCAL_EFS"),
        }
        return
    from snakemake_executor_awsbatch.localcloud import LocalCloud

    with LocalCloud() as cloud:
        # Every step runs the launcher: its interpreter's imports overlap cwltool's loading.
        cloud.prewarm_launchers()
        # cwl-awsbatch's own calls skip the loopback socket; its steps' jobs use the endpoint.
        cloud.serve_in_process()
        saved = dict(os.environ)
        os.environ.update(cloud.client_env())
        try:
            yield {
                "endpoint_url": cloud.endpoint_url,
                "region": cloud.region,
                "queue": cloud.queue_name,
                "efs": cloud.efs_file_system_id,
            }
        finally:
            os.environ.clear()
            os.environ.update(saved)


def _settings(own: argparse.Namespace, where: dict[str, Any]) -> RunnerSettings:
    queue = own.awsbatch_queue or where.get("queue")
    if not queue:
        raise UserError("no Batch job queue is set; pass --awsbatch-queue NAME (or use --local).")
    s3_root = own.awsbatch_s3_root or (f"s3://{LOCAL_BUCKET}/cwl" if own.local else None)
    if not s3_root:
        raise UserError(
            "no S3 location for staging is set; pass --awsbatch-s3-root s3://bucket/prefix."
        )
    parse_s3_uri(s3_root)
    region = where.get("region") or "us-east-1"
    poll = own.awsbatch_poll_seconds or (0.3 if own.local else 5.0)
    kwargs: dict[str, Any] = {}
    if own.awsbatch_default_image:
        kwargs["default_image"] = own.awsbatch_default_image
    if own.awsbatch_companion_image:
        kwargs["companion_image"] = own.awsbatch_companion_image
    platform = parse_platform_and_role(
        own.awsbatch_platform, own.awsbatch_execution_role_arn, own.local
    )
    mounts = tuple(parse_efs(e) for e in own.awsbatch_efs)
    if own.local:
        kwargs["efs_on_demand"] = local_on_demand(_local_file_systems(where), mounts)
        # Local jobs run on this machine, so its temporary disk is all a job can have.
        kwargs["host_disk_mib"] = shutil.disk_usage(tempfile.gettempdir()).total // (1 << 20)
    return RunnerSettings(
        queue=str(queue),
        s3_root=s3_root.rstrip("/"),
        region=str(region),
        endpoint_url=where.get("endpoint_url"),
        poll_seconds=poll,
        efs_mounts=mounts,
        call_cache=not own.awsbatch_no_call_cache,
        platform=platform,
        job_role_arn=own.awsbatch_job_role_arn,
        execution_role_arn=own.awsbatch_execution_role_arn,
        **kwargs,
    )


def _local_file_systems(where: dict[str, Any]) -> list[str]:
    """The local cloud's EFS file systems: named by the caller, or asked of its EFS API."""
    if where.get("efs"):
        return [str(where["efs"])]
    client = boto3.client(
        "efs", region_name=where.get("region") or "us-east-1", endpoint_url=where["endpoint_url"]
    )
    pages = client.get_paginator("describe_file_systems").paginate()
    return [str(fs["FileSystemId"]) for page in pages for fs in page.get("FileSystems", [])]


def _backend(settings: RunnerSettings) -> BatchBackend:
    from snakemake_executor_awsbatch.submitter import BatchSubmitter

    backend: BatchBackend = BatchSubmitter.create(
        region=settings.region, endpoint_url=settings.endpoint_url, max_calls_per_second=20.0
    )
    return backend


def run(
    argv: Sequence[str],
    stdout: Any = None,
    stderr: Any = None,
    backend_factory: Callable[[RunnerSettings], BatchBackend] | None = None,
) -> int:
    """Run cwl-awsbatch with `argv` (without the program name); return the exit code.

    `backend_factory` replaces the Batch submitter (tests use it to observe submissions)."""
    err = stderr or sys.stderr
    own, rest = _own_parser().parse_known_args(list(argv))
    cwl_args = arg_parser().parse_args(rest)
    cwl_args.use_container = False
    try:
        with _cloud(own) as where:
            settings = _settings(own, where)
            client = boto3.client(
                "s3", region_name=settings.region, endpoint_url=settings.endpoint_url
            )
            store = S3Store(client, settings.s3_root)
            if own.local:
                store.ensure_bucket(parse_s3_uri(settings.s3_root)[0], settings.region)
            layout = EfsLayout(settings.efs_mounts, settings.efs_on_demand)
            check_efs_inputs(list(cwl_args.job_order or []), layout)
            if isinstance(cwl_args.outdir, str) and is_s3(cwl_args.outdir):
                check_s3_outdir(store, cwl_args.outdir)
            session = RunSession(settings, store, (backend_factory or _backend)(settings))
            loading = LoadingContext(vars(cwl_args))
            loading.construct_tool_object = make_tool_factory(session)
            loading.fetcher_constructor = StorageFetcher
            runtime = RuntimeContext(vars(cwl_args))
            runtime.make_fs_access = cast(
                Any, functools.partial(S3FsAccess, store=store, efs_paths=layout.mount_paths)
            )
            runtime.path_mapper = S3PathMapper.for_layout(layout)
            code: int = cwlmain.main(
                args=cwl_args,
                executor=AwsBatchExecutor(session),
                loadingContext=loading,
                runtimeContext=runtime,
                stdout=stdout,
                stderr=err,
            )
            return code
    except UserError as problem:
        print(f"cwl-awsbatch: {problem}", file=err)
        return 1


def main() -> int:
    """Console entry point."""
    return run(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
