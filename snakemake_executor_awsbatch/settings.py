"""Settings of the Snakemake executor: `--awsbatch-*` flags and `SNAKEMAKE_AWSBATCH_*` env vars.

`ExecutorSettings` is what Snakemake's plugin registry fills from the command line; it cannot be
frozen because Snakemake's `ExecutorSettingsBase` is a plain dataclass. `resolve()` turns it into a
frozen, validated `BatchConfig` that the executor uses, so every malformed value is reported in one
sentence before anything is submitted.

This module deliberately does not use `from __future__ import annotations`: Snakemake's settings
machinery inspects `field.type` at runtime and needs real types (`Optional[X]`, not strings or
`X | None`).
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import List, Optional  # noqa: UP035

from snakemake_interface_executor_plugins.settings import ExecutorSettingsBase

from snakemake_executor_awsbatch.efs_spec import parse_efs_mounts
from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.taskspec import EfsMount, Platform

MAX_TAGS = 50
DEFAULT_LOCAL_IMAGE = "localcloud/host:latest"
_TAG_KEY = re.compile(r"^[\w .:/=+\-@]{1,128}$")


def _meta(help_text: str, **extra: object) -> dict[str, object]:
    return {"help": help_text, "env_var": True, "required": False, **extra}


def _as_list(value: object) -> list[str]:
    # Repeatable options arrive as a list from the command line and as one string from an
    # environment variable or a profile; Snakemake needs a parse function to keep them lists.
    if isinstance(value, str):
        return value.split()
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


@dataclass
class ExecutorSettings(ExecutorSettingsBase):  # type: ignore[misc]
    """The `--awsbatch-*` settings (each also readable from `SNAKEMAKE_AWSBATCH_<NAME>`)."""

    region: Optional[str] = field(  # noqa: UP045
        default=None,
        metadata=_meta("AWS region of the Batch queue (default: the AWS SDK's region)."),
    )
    queue: Optional[str] = field(  # noqa: UP045
        default=None,
        metadata=_meta(
            "Batch job queue for every job; a rule can override it with the resource "
            "awsbatch_queue."
        ),
    )
    image: Optional[str] = field(  # noqa: UP045
        default=None,
        metadata=_meta(
            "Container image for every job; it must contain Python, Snakemake and "
            "snakemake-storage-plugin-s3. A rule can override it with awsbatch_image."
        ),
    )
    platform: Optional[str] = field(  # noqa: UP045
        default="EC2",
        metadata=_meta(
            "Platform of the queue's compute environments, EC2 (also spot) or FARGATE; a "
            "rule can override it with awsbatch_platform.",
            choices=["EC2", "FARGATE"],
        ),
    )
    job_role_arn: Optional[str] = field(  # noqa: UP045
        default=None,
        metadata=_meta(
            "IAM role the job's containers assume; jobs get their S3 credentials from it "
            "(no secret is ever put in the job environment)."
        ),
    )
    execution_role_arn: Optional[str] = field(  # noqa: UP045
        default=None,
        metadata=_meta("ECS execution role, required on Fargate (pulls images, writes logs)."),
    )
    efs: Optional[List[str]] = field(  # noqa: UP006, UP045
        default=None,
        metadata=_meta(
            "EFS file system mounted into every job, as "
            "fs-id[:rootDirectory]:containerPath[:ro|rw][:accessPoint] (read-only unless rw); "
            "repeat for several mounts.",
            nargs="+",
            parse_func=_as_list,
            unparse_func=_as_list,
        ),
    )
    tags: Optional[List[str]] = field(  # noqa: UP006, UP045
        default=None,
        metadata=_meta(
            "Tags put on every job, as key=value; repeatable (at most 50).",
            nargs="+",
            parse_func=_as_list,
            unparse_func=_as_list,
        ),
    )
    spot_retries: int = field(
        default=2,
        metadata=_meta(
            "Times Batch retries a job whose spot instance was reclaimed, for rules that are "
            "not named by --preemptible-rules (those use --preemptible-retries)."
        ),
    )
    fallback_queue: Optional[str] = field(  # noqa: UP045
        default=None,
        metadata=_meta(
            "On-demand job queue a job moves to once its spot retries are used up by reclaims."
        ),
    )
    staging_prefix: Optional[str] = field(  # noqa: UP045
        default=None,
        metadata=_meta(
            "S3 prefix for each job's spec, log and report (default: "
            "<default-storage-prefix>/.awsbatch)."
        ),
    )
    min_memory_mib: int = field(
        default=1024,
        metadata=_meta(
            "Smallest memory a job gets, in MiB: the container also runs Snakemake and the "
            "launcher (a few hundred MiB), so a rule asking for less still gets this much."
        ),
    )
    log_lines: int = field(
        default=30,
        metadata=_meta(
            "Lines of a failed job's log shown in the error; the full log is always saved "
            "under .snakemake/awsbatch_logs/."
        ),
    )
    endpoint_url: Optional[str] = field(  # noqa: UP045
        default=None,
        metadata=_meta(
            "Endpoint for the Batch, Logs and S3 APIs (e.g. a local cloud started with "
            "'awsbatch local'); default: AWS."
        ),
    )
    local: bool = field(
        default=False,
        metadata=_meta(
            "Start the embedded local cloud for this run and point Batch and Snakemake's S3 "
            "storage at it; final outputs are also copied into the working directory."
        ),
    )
    local_chaos: Optional[str] = field(  # noqa: UP045
        default=None,
        metadata=_meta(
            "Fault injection for --awsbatch-local, e.g. 'spot=0.2,seed=1' (see 'awsbatch "
            "local --help')."
        ),
    )
    max_calls_per_second: float = field(
        default=20.0,
        metadata=_meta("Upper bound on Batch API calls per second from this run."),
    )
    no_direct_shell: bool = field(
        default=False,
        metadata=_meta(
            "Run every job through Snakemake inside the container. By default a plain shell: "
            "rule (no conda, container, shadow or benchmark; a group of such rules too) runs its "
            "command directly, with the launcher staging its files, which saves Snakemake's "
            "start-up (seconds) per job; a rule can opt out with the resource "
            "awsbatch_direct_shell=0."
        ),
    )

    def __post_init__(self) -> None:
        # The local cloud must be running before Snakemake creates its S3 storage provider,
        # which happens right after the executor settings are parsed and before the executor
        # exists; this is the earliest hook Snakemake offers a plugin.
        if self.local:
            from snakemake_executor_awsbatch.local_mode import activate

            activate(self.local_chaos)


@dataclass(frozen=True)
class BatchConfig:
    """Validated executor settings."""

    queue: str
    image: str
    region: str | None = None
    endpoint_url: str | None = None
    platform: Platform = Platform.EC2
    job_role_arn: str | None = None
    execution_role_arn: str | None = None
    mounts: tuple[EfsMount, ...] = ()
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    spot_retries: int = 2
    fallback_queue: str | None = None
    staging_prefix: str | None = None
    min_memory_mib: int = 1024
    log_lines: int = 30
    local: bool = False
    max_calls_per_second: float = 20.0
    direct_shell: bool = True


def parse_platform(value: str | None) -> Platform:
    """`EC2` or `FARGATE` (any case) as a `Platform`."""
    text = (value or "EC2").strip().upper()
    try:
        return Platform(text)
    except ValueError:
        raise UserError(
            f"platform {value!r} is not known; use EC2 (also for spot) or FARGATE."
        ) from None


def parse_platform_and_role(
    value: str | None, execution_role_arn: str | None, local: bool
) -> Platform:
    """`parse_platform`, refusing Fargate without an execution role (the local cloud needs none)."""
    platform = parse_platform(value)
    if platform is Platform.FARGATE and not execution_role_arn and not local:
        raise UserError(
            "Fargate jobs need an execution role; pass --awsbatch-execution-role-arn ARN."
        )
    return platform


def parse_tags(items: Sequence[str] | None) -> Mapping[str, str]:
    """`key=value` items as a mapping, within Batch's tag limits."""
    tags: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(
                f"tag {item!r} is not key=value; write it as --awsbatch-tags key=value."
            )
        if not _TAG_KEY.match(key) or key.lower().startswith("aws:"):
            raise UserError(
                f"tag key {key!r} is not allowed; use 1-128 letters, digits, spaces or "
                "_.:/=+-@, not starting with aws:."
            )
        if len(value) > 256:
            raise UserError(f"tag {key} has a value over 256 characters; shorten it.")
        tags[key] = value
    if len(tags) > MAX_TAGS:
        raise UserError(f"{len(tags)} tags were given; Batch allows at most {MAX_TAGS}, drop some.")
    return MappingProxyType(tags)


def resolve(settings: ExecutorSettings) -> BatchConfig:
    """Validate the settings into a `BatchConfig`, filling local-cloud defaults in local mode."""
    queue, image = settings.queue, settings.image
    region, endpoint = settings.region, settings.endpoint_url
    if settings.local:
        from snakemake_executor_awsbatch.local_mode import active_cloud

        cloud = active_cloud()
        queue = queue or cloud.queue_name
        image = image or DEFAULT_LOCAL_IMAGE
        region = region or cloud.region
        endpoint = endpoint or cloud.endpoint_url
    if not queue:
        raise UserError(
            "no Batch job queue is set; pass --awsbatch-queue NAME "
            "(or SNAKEMAKE_AWSBATCH_QUEUE), or --awsbatch-local to run on the local cloud."
        )
    if not image:
        raise UserError(
            "no container image is set; pass --awsbatch-image IMAGE (an image with Python, "
            "Snakemake and snakemake-storage-plugin-s3)."
        )
    if settings.spot_retries < 0 or settings.spot_retries > 9:
        raise UserError(
            f"--awsbatch-spot-retries {settings.spot_retries} is outside 0..9 "
            "(Batch allows 10 attempts); pick a value in that range."
        )
    if settings.min_memory_mib < 4:
        raise UserError("--awsbatch-min-memory-mib is below Batch's 4 MiB; give e.g. 1024.")
    if settings.log_lines < 0:
        raise UserError("--awsbatch-log-lines is negative; give 0 or more.")
    if settings.max_calls_per_second <= 0:
        raise UserError("--awsbatch-max-calls-per-second must be positive; give e.g. 20.")
    if settings.staging_prefix is not None and not settings.staging_prefix.startswith("s3://"):
        raise UserError(
            f"--awsbatch-staging-prefix {settings.staging_prefix!r} is not an S3 URI; "
            "write it as s3://bucket/prefix."
        )
    platform = parse_platform_and_role(
        settings.platform, settings.execution_role_arn, settings.local
    )
    return BatchConfig(
        queue=queue,
        image=image,
        region=region,
        endpoint_url=endpoint,
        platform=platform,
        job_role_arn=settings.job_role_arn,
        execution_role_arn=settings.execution_role_arn,
        mounts=parse_efs_mounts(settings.efs or ()),
        tags=parse_tags(settings.tags),
        spot_retries=settings.spot_retries,
        fallback_queue=settings.fallback_queue,
        staging_prefix=settings.staging_prefix,
        min_memory_mib=settings.min_memory_mib,
        log_lines=settings.log_lines,
        local=settings.local,
        max_calls_per_second=settings.max_calls_per_second,
        direct_shell=not settings.no_direct_shell,
    )
