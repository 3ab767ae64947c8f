"""`awsbatch doctor`, `awsbatch refs publish|list`, `awsbatch report` and `awsbatch tier`.

Defaults come from the executor's environment variables (SNAKEMAKE_AWSBATCH_QUEUE, _REGION,
_ENDPOINT_URL, _JOB_ROLE_ARN, _EFS, _IMAGE), so the doctor checks what a run would use.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from snakemake_executor_awsbatch.errors import UserError

ENV = "SNAKEMAKE_AWSBATCH_"


def _env(name: str) -> str | None:
    return os.environ.get(ENV + name) or None


def _add_connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--region", default=_env("REGION"), help="AWS region")
    parser.add_argument(
        "--endpoint-url",
        default=_env("ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL"),
        help="endpoint of every API (the local cloud's URL); default: AWS",
    )


def add_parser(subparsers: Any) -> None:
    """Register `doctor`, `refs`, `report` and `tier`."""
    add_doctor_parser(subparsers)
    add_refs_parser(subparsers)
    add_report_parser(subparsers)
    add_tier_parser(subparsers)


def add_doctor_parser(subparsers: Any) -> None:
    """`awsbatch doctor`."""
    parser = subparsers.add_parser(
        "doctor",
        help="check an account (or the local cloud) before a run",
        description="Preflight checks with a fix for every failure; exit status 1 if any fails.",
    )
    _add_connection(parser)
    parser.add_argument("--profile", default=None, help="AWS profile")
    parser.add_argument("--queue", default=_env("QUEUE"), help="Batch job queue")
    parser.add_argument("--bucket", default=None, help="S3 bucket the run stages through")
    parser.add_argument(
        "--efs",
        default=None,
        help="EFS file system id (default: the first SNAKEMAKE_AWSBATCH_EFS mount)",
    )
    parser.add_argument("--access-point", default=None, help="EFS access point id")
    parser.add_argument("--job-role-arn", default=_env("JOB_ROLE_ARN"), help="job role ARN")
    parser.add_argument(
        "--image", default=_env("IMAGE"), help="job image (ECR images are looked up)"
    )
    parser.add_argument("--max-vcpus", type=float, default=None, help="largest vCPU request")
    parser.add_argument("--max-memory", type=int, default=None, help="largest request, MiB")
    parser.add_argument("--workflow", type=Path, default=None, help="Snakefile or .cwl to scan")
    parser.add_argument(
        "--no-write-probe", action="store_true", help="do not write a probe object to the bucket"
    )
    parser.set_defaults(run=run_doctor_command)


def _efs_default(args: argparse.Namespace) -> tuple[str | None, str | None]:
    if args.efs:
        return args.efs, args.access_point
    raw = _env("EFS")
    if not raw:
        return None, args.access_point
    from snakemake_executor_awsbatch.efs_spec import parse_efs_mount

    mount = parse_efs_mount(raw.split()[0])
    return mount.file_system_id, args.access_point or mount.access_point_id


def run_doctor_command(args: argparse.Namespace) -> int:
    """Run the checks and print the table."""
    from snakemake_executor_awsbatch.ops.capacity import Request, request_from_workflow
    from snakemake_executor_awsbatch.ops.checks import Status
    from snakemake_executor_awsbatch.ops.doctor import (
        Clients,
        DoctorTarget,
        render_table,
        run_doctor,
    )

    try:
        request = None
        if args.workflow is not None:
            request = request_from_workflow(args.workflow)
        if args.max_vcpus is not None or args.max_memory is not None:
            base = request or Request(1.0, 1024, source="command line")
            request = Request(
                args.max_vcpus if args.max_vcpus is not None else base.vcpus,
                args.max_memory if args.max_memory is not None else base.memory_mib,
                source="command line" if request is None else f"{base.source} + command line",
            )
        fs_id, access_point = _efs_default(args)
        target = DoctorTarget(
            queue=args.queue,
            bucket=args.bucket,
            efs_file_system_id=fs_id,
            efs_access_point_id=access_point,
            job_role_arn=args.job_role_arn,
            request=request,
            write_probe=not args.no_write_probe,
            image=args.image,
        )
        clients = Clients.create(
            region=args.region, endpoint_url=args.endpoint_url, profile=args.profile
        )
    except UserError as err:
        print(f"awsbatch doctor: {err}", file=sys.stderr)
        return 2
    checks = run_doctor(clients, target)
    print(render_table(checks))
    return 1 if any(c.status is Status.FAIL for c in checks) else 0


def add_refs_parser(subparsers: Any) -> None:
    """`awsbatch refs publish|list`."""
    parser = subparsers.add_parser("refs", help="publish reference genomes to EFS")
    sub = parser.add_subparsers(dest="refs_command", required=True)
    pub = sub.add_parser(
        "publish",
        help="copy a FASTA and its indexes (or a directory) to EFS through a Batch job",
        description="Content-hashed: publishing the same data again does nothing.",
    )
    pub.add_argument("source", type=Path, help="FASTA file (indexes next to it) or directory")
    pub.add_argument("--efs", required=True, help="target, fs-id:/refs/<name>")
    pub.add_argument("--access-point", default=None, help="EFS access point to mount through")
    pub.add_argument("--staging", required=True, help="S3 prefix for the upload and records")
    pub.add_argument("--queue", default=_env("QUEUE"), help="Batch job queue")
    pub.add_argument("--image", default=_env("IMAGE"), help="image with bash, tar, sha256sum")
    pub.add_argument("--job-role-arn", default=_env("JOB_ROLE_ARN"), help="job role ARN")
    pub.add_argument(
        "--build-indexes", action="store_true", help="create missing faidx/dict/bwa indexes"
    )
    pub.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the job")
    _add_connection(pub)
    pub.set_defaults(run=run_refs_publish)
    lst = sub.add_parser("list", help="list published references")
    lst.add_argument("--staging", required=True, help="S3 prefix given to publish")
    lst.add_argument("--efs", default=None, help="only this file system id")
    _add_connection(lst)
    lst.set_defaults(run=run_refs_list)


def _s3(args: argparse.Namespace) -> Any:
    import boto3

    return boto3.session.Session(region_name=args.region).client(
        "s3", endpoint_url=args.endpoint_url
    )


def run_refs_publish(args: argparse.Namespace) -> int:
    """Publish one reference."""
    from snakemake_executor_awsbatch.ops.refs import EfsTarget, PublishRequest, publish
    from snakemake_executor_awsbatch.submitter import BatchSubmitter

    try:
        if not args.queue or not args.image:
            raise UserError("refs publish needs --queue and --image (or SNAKEMAKE_AWSBATCH_*).")
        request = PublishRequest(
            source=args.source,
            target=EfsTarget.parse(args.efs, args.access_point),
            staging=args.staging,
            queue=args.queue,
            image=args.image,
            job_role_arn=args.job_role_arn,
            build=args.build_indexes,
            timeout_seconds=args.timeout,
        )
        submitter = BatchSubmitter.create(region=args.region, endpoint_url=args.endpoint_url)
        publish(request, _s3(args), submitter)
    except UserError as err:
        print(f"awsbatch refs publish: {err}", file=sys.stderr)
        return 2
    return 0


def run_refs_list(args: argparse.Namespace) -> int:
    """Print the published references."""
    from snakemake_executor_awsbatch.ops.refs import list_published, render_list

    try:
        print(render_list(list_published(_s3(args), args.staging, args.efs)))
    except UserError as err:
        print(f"awsbatch refs list: {err}", file=sys.stderr)
        return 2
    return 0


def add_report_parser(subparsers: Any) -> None:
    """`awsbatch report`."""
    parser = subparsers.add_parser(
        "report",
        help="summarise a run: timeline, retries, memory, bytes staged, estimated cost",
        description="RUN is the run's S3 prefix, e.g. s3://bucket/prefix/.awsbatch/<run-id>.",
    )
    parser.add_argument("run_uri", metavar="RUN", help="S3 prefix of the run")
    parser.add_argument(
        "--html", type=Path, default=Path("awsbatch-report.html"), help="HTML report to write"
    )
    parser.add_argument(
        "--no-describe", action="store_true", help="do not call DescribeJobs (reports only)"
    )
    _add_connection(parser)
    parser.set_defaults(run=run_report_command)


def run_report_command(args: argparse.Namespace) -> int:
    """Load the run, print the summary and write the HTML report."""
    from snakemake_executor_awsbatch.ops.report import render_text
    from snakemake_executor_awsbatch.ops.report_html import render_html
    from snakemake_executor_awsbatch.ops.runload import load_run

    try:
        describe = None
        if not args.no_describe:
            from snakemake_executor_awsbatch.submitter import BatchSubmitter

            submitter = BatchSubmitter.create(region=args.region, endpoint_url=args.endpoint_url)
            describe = submitter.batch.describe_jobs
        report = load_run(_s3(args), args.run_uri, describe)
    except UserError as err:
        print(f"awsbatch report: {err}", file=sys.stderr)
        return 2
    print(render_text(report))
    args.html.write_text(render_html(report))
    print(f"HTML report: {args.html}")
    return 0


def add_tier_parser(subparsers: Any) -> None:
    """`awsbatch tier`."""
    parser = subparsers.add_parser(
        "tier",
        help="tag objects with their genomics data type for the bucket's lifecycle rules",
        description="Sets the tag genomics-data-type (fastq, alignment, variants) from each "
        "object's extension, which the template's lifecycle rules select on.",
    )
    parser.add_argument("prefix", help="S3 prefix, e.g. s3://bucket/results/")
    parser.add_argument("--dry-run", action="store_true", help="only print what would be tagged")
    _add_connection(parser)
    parser.set_defaults(run=run_tier_command)


def run_tier_command(args: argparse.Namespace) -> int:
    """Tag the objects under a prefix."""
    from snakemake_executor_awsbatch.ops.tiering import tag_prefix

    try:
        result = tag_prefix(_s3(args), args.prefix, dry_run=args.dry_run)
    except UserError as err:
        print(f"awsbatch tier: {err}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(result.tagged.items())) or "nothing"
    verb = "would tag" if args.dry_run else "tagged"
    print(f"{verb} {counts}; {result.unchanged} already tagged, {result.skipped} other files")
    return 0
