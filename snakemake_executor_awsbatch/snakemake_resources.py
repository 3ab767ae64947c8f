"""Turning a Snakemake job's resources into the per-job parts of a `TaskSpec`.

threads -> vCPUs, mem_mib/mem_mb -> memory, gpu -> GPUs, runtime (minutes) -> Batch timeout,
disk_mb -> Fargate ephemeral storage (on EC2: a request checked against the instances' volume),
and the per-rule overrides awsbatch_queue, awsbatch_image and awsbatch_platform. Everything here
is pure (no I/O) so it is cheap to test.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.resources import gpus_from, memory_mib, normalise
from snakemake_executor_awsbatch.settings import BatchConfig, parse_platform
from snakemake_executor_awsbatch.taskspec import LaunchSpec, Platform, RetryPolicy, TaskSpec

MIN_TIMEOUT_SECONDS = 60  # Batch refuses shorter attempt durations
FARGATE_MIN_DISK_GIB = 21
FARGATE_MAX_DISK_GIB = 200
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@\-]{0,254}$")
_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class JobResources:
    """The resource-related facts of one Snakemake job, decoupled from Snakemake's classes."""

    rule: str
    jobid: int | str
    threads: int
    resources: Mapping[str, object]
    preemptible: bool = False


def batch_job_name(rule: str, jobid: int | str) -> str:
    """A Batch job name (<= 128 of [A-Za-z0-9_-], alphanumeric first) for a Snakemake job."""
    cleaned = _NAME_BAD.sub("-", rule).strip("-_") or "job"
    return f"smk-{cleaned}"[:110] + f"-{jobid}"


def _number(resources: Mapping[str, object], name: str) -> float | None:
    raw = resources.get(name)
    if raw is None or raw == "":
        return None
    try:
        return float(str(raw))
    except ValueError:
        raise UserError(f"resource {name}={raw!r} is not a number; give a plain number.") from None


def _text(resources: Mapping[str, object], name: str) -> str | None:
    raw = resources.get(name)
    return None if raw is None or str(raw).strip() == "" else str(raw).strip()


def timeout_seconds(resources: Mapping[str, object]) -> int | None:
    """Batch attempt timeout from `runtime` (minutes), at least Batch's 60 s minimum."""
    minutes = _number(resources, "runtime")
    if minutes is None:
        return None
    if minutes <= 0:
        raise UserError(f"resource runtime={minutes:g} is not positive; give minutes, e.g. 30.")
    return max(MIN_TIMEOUT_SECONDS, math.ceil(minutes * 60))


def disk_request_mib(resources: Mapping[str, object]) -> int | None:
    """The job's disk request in MiB from `disk_mib`, else `disk_mb` (Snakemake's MB)."""
    disk_mib = _number(resources, "disk_mib")
    if disk_mib is None:
        disk_mb = _number(resources, "disk_mb")
        disk_mib = None if disk_mb is None else disk_mb * 1_000_000 / (1 << 20)
    return None if disk_mib is None else math.ceil(disk_mib)


def ephemeral_storage_gib(resources: Mapping[str, object], platform: Platform) -> int | None:
    """Fargate ephemeral storage from `disk_mib`/`disk_mb`; EC2 jobs share the instance disk."""
    disk_mib = disk_request_mib(resources)
    if disk_mib is None or platform is not Platform.FARGATE:
        return None
    gib = math.ceil(disk_mib / 1024)
    if gib > FARGATE_MAX_DISK_GIB:
        raise UserError(
            f"disk request of {gib} GiB exceeds Fargate's {FARGATE_MAX_DISK_GIB} GiB of "
            "ephemeral storage; lower disk_mb or use an EC2 queue with larger instance volumes."
        )
    return gib if gib > FARGATE_MIN_DISK_GIB - 1 else None


def check_image(image: str) -> str:
    """Refuse an image reference that cannot be valid (spaces, empty, over 255 characters)."""
    if not _IMAGE.match(image):
        raise UserError(
            f"container image {image!r} is not a valid image reference; give one such as "
            "public.ecr.aws/org/image:tag."
        )
    return image


def task_spec(
    job: JobResources,
    config: BatchConfig,
    launch: LaunchSpec,
    *,
    preemptible_retries: int | None = None,
    queue_override: str | None = None,
) -> TaskSpec:
    """The TaskSpec for one Snakemake job under the given configuration."""
    res = job.resources
    platform = parse_platform(_text(res, "awsbatch_platform") or config.platform.value)
    image = check_image(_text(res, "awsbatch_image") or config.image)
    queue = queue_override or _text(res, "awsbatch_queue") or config.queue
    cores = _number(res, "_cores")
    vcpus = max(float(job.threads), cores or 0.0, 1.0)
    mem_mib = _number(res, "mem_mib")
    mem_mb = _number(res, "mem_mb")
    memory = max(memory_mib(mem_mb=mem_mb, mem_mib=mem_mib), config.min_memory_mib)
    sized = normalise(vcpus, memory, gpus_from(res), platform)
    spot_retries = config.spot_retries
    if job.preemptible and preemptible_retries is not None:
        spot_retries = preemptible_retries
    tags = dict(config.tags)
    if len(tags) < 50:
        tags.setdefault("snakemake-rule", job.rule[:256])
    return TaskSpec(
        name=batch_job_name(job.rule, job.jobid),
        image=image,
        launch=launch,
        queue=queue,
        vcpus=sized.vcpus,
        memory_mib=sized.memory_mib,
        gpus=sized.gpus,
        timeout_seconds=timeout_seconds(res),
        mounts=config.mounts,
        retry=RetryPolicy(spot_retries=min(max(spot_retries, 0), 9)),
        tags=MappingProxyType(tags),
        platform=platform,
        job_role_arn=config.job_role_arn,
        execution_role_arn=config.execution_role_arn,
        ephemeral_storage_gib=ephemeral_storage_gib(res, platform),
        disk_mib=disk_request_mib(res) if platform is Platform.EC2 else None,
    )
