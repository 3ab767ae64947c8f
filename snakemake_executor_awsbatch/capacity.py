"""What a job queue can run: refusing jobs that no compute environment can fit, before
submission, and spotting jobs that sit RUNNABLE for a MISCONFIGURATION or CAPACITY reason.

A queue's limits come from DescribeJobQueues -> DescribeComputeEnvironments (maxvCpus and the
instance types; the disk from `instance_disk.py`), cached per queue for the life of the process.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from snakemake_executor_awsbatch.batch import BatchClient
from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.instance_disk import ce_disk_mib
from snakemake_executor_awsbatch.jobstate import JobState
from snakemake_executor_awsbatch.resources import FARGATE_SIZES

# GiB of memory per vCPU by instance family letter (AWS's published shapes for current families).
_GIB_PER_VCPU = {"c": 2, "m": 4, "t": 4, "r": 8, "x": 16, "z": 8, "i": 8, "d": 8}
_SIZE = re.compile(r"^([a-z]+)(\d*)[a-z-]*\.(\d*)(nano|micro|small|medium|large|xlarge)$")
_SIZE_VCPUS = {"nano": 2, "micro": 2, "small": 2, "medium": 1, "large": 2, "xlarge": 4}
STUCK_PREFIXES = ("MISCONFIGURATION", "CAPACITY")
# The local cloud has one "instance", the host share it was started with; it declares that shape
# in its compute environment's tags because no EC2 instance type describes it.
LOCAL_HOST_VCPUS_TAG = "localcloud:vcpus"
LOCAL_HOST_MEMORY_TAG = "localcloud:memoryMiB"


def local_host_shape(ce: dict[str, Any]) -> tuple[float, int] | None:
    """(vCPUs, memory MiB) of a local-cloud compute environment's host, None on real AWS."""
    tags = ce.get("tags") or {}
    if LOCAL_HOST_MEMORY_TAG not in tags:
        return None
    return float(tags.get(LOCAL_HOST_VCPUS_TAG, 0)), int(tags[LOCAL_HOST_MEMORY_TAG])


def instance_shape(instance_type: str) -> tuple[int, int | None] | None:
    """(vCPUs, memory MiB or None) of an EC2 instance type named like `m5.2xlarge`."""
    match = _SIZE.match(instance_type)
    if not match:
        return None
    family, _, mult, size = match.groups()
    vcpus = _SIZE_VCPUS[size] * (int(mult) if mult else 1)
    per_vcpu = _GIB_PER_VCPU.get(family[0]) if len(family) <= 3 else None
    return vcpus, (vcpus * per_vcpu * 1024 if per_vcpu else None)


class TooLargeForQueue(UserError):
    """A job asks for more vCPUs or memory than the queue's largest instance has."""


@dataclass(frozen=True)
class QueueLimits:
    """The largest job a queue's compute environments can place (None: unknown, not checked)."""

    queue: str
    max_vcpus: float | None
    max_memory_mib: int | None
    platforms: tuple[str, ...]
    max_disk_mib: int | None = None


def _ce_limits(ce: dict[str, Any]) -> tuple[float | None, int | None, str]:
    resources = ce.get("computeResources") or {}
    kind = str(resources.get("type", "EC2"))
    if ce.get("type") == "UNMANAGED" or not resources:
        return None, None, "EC2"
    local = local_host_shape(ce)
    if local is not None:
        return local[0], local[1], "EC2"
    max_vcpus = float(resources.get("maxvCpus", 0)) or None
    if kind.startswith("FARGATE"):
        cap_vcpu, cap_mem = FARGATE_SIZES[-1][0], FARGATE_SIZES[-1][1][-1]
        return min(max_vcpus or cap_vcpu, cap_vcpu), cap_mem, "FARGATE"
    shapes = [instance_shape(t) for t in resources.get("instanceTypes", [])]
    if not shapes or any(s is None for s in shapes):
        return max_vcpus, None, "EC2"  # "optimal" or unknown names: only maxvCpus is known
    known = [s for s in shapes if s is not None]
    vcpus = float(max(v for v, _ in known))
    mems = [m for _, m in known]
    memory = max(m for m in mems if m is not None) if all(m is not None for m in mems) else None
    return (min(vcpus, max_vcpus) if max_vcpus else vcpus), memory, "EC2"


class CapacityChecker:
    """Looks up and caches what each queue can run, and refuses jobs that cannot fit."""

    def __init__(self, batch: BatchClient, ec2: Callable[[], Any] | None = None) -> None:
        self.batch = batch
        self._ec2 = ec2  # makes an EC2 client, for launch templates (disk sizes) only
        self._cache: dict[str, QueueLimits] = {}
        self._lock = threading.Lock()

    def limits(self, queue: str) -> QueueLimits:
        """The queue's limits; UserError when it is missing, disabled or invalid."""
        with self._lock:
            if queue in self._cache:
                return self._cache[queue]
        found = self.batch.describe_job_queues([queue])
        if not found:
            raise UserError(
                f"job queue '{queue}' does not exist in this account and region; "
                "create it or name an existing queue."
            )
        q = found[0]
        if q.get("state") != "ENABLED" or q.get("status") == "INVALID":
            raise UserError(
                f"job queue '{queue}' is {q.get('state')}/{q.get('status')} "
                f"({q.get('statusReason', 'no reason given')}); enable it or use another queue."
            )
        order = [c["computeEnvironment"] for c in q.get("computeEnvironmentOrder", [])]
        ces = self.batch.describe_compute_environments(order) if order else []
        per_ce = [_ce_limits(ce) for ce in ces if ce.get("state", "ENABLED") == "ENABLED"]
        if not per_ce:
            raise UserError(
                f"job queue '{queue}' has no enabled compute environment; attach or enable one."
            )
        vcpus = [v for v, _, _ in per_ce]
        mems = [m for _, m, _ in per_ce]
        disks = [
            ce_disk_mib(ce, self._ec2) for ce in ces if ce.get("state", "ENABLED") == "ENABLED"
        ]
        limits = QueueLimits(
            queue=queue,
            max_vcpus=None if any(v is None for v in vcpus) else max(v for v in vcpus if v),
            max_memory_mib=None if any(m is None for m in mems) else max(m for m in mems if m),
            platforms=tuple(sorted({p for _, _, p in per_ce})),
            max_disk_mib=None if any(d is None for d in disks) else max(d for d in disks if d),
        )
        with self._lock:
            self._cache[queue] = limits
        return limits

    def check_fits(
        self,
        name: str,
        queue: str,
        vcpus: float,
        memory_mib: int,
        disk_mib: int | None = None,
        platform: str | None = None,
    ) -> None:
        """Refuse a job the queue's compute environments cannot place: too large, or (when
        `platform` is given) of a platform none of them runs."""
        limits = self.limits(queue)
        if platform is not None and limits.platforms and platform not in limits.platforms:
            runs = "/".join(sorted(set(limits.platforms)))
            raise UserError(
                f"task {name} is a {platform} job but the compute environments of queue "
                f"'{queue}' run {runs}; set the platform to {runs} or use a {platform} queue."
            )
        max_disk = limits.max_disk_mib
        if disk_mib is not None and max_disk is not None and disk_mib > max_disk:
            raise UserError(
                f"task {name} asks for {disk_mib} MiB of disk but the instances of queue "
                f"'{queue}' have {max_disk} MiB volumes; lower disk_mb, or give the compute "
                "environment a launch template with a larger volume."
            )
        if limits.max_vcpus is not None and vcpus > limits.max_vcpus:
            raise TooLargeForQueue(
                f"task {name} asks for {vcpus:g} vCPUs but queue '{queue}' can give at most "
                f"{limits.max_vcpus:g}; lower the request or use a larger queue."
            )
        if limits.max_memory_mib is not None and memory_mib > limits.max_memory_mib:
            raise TooLargeForQueue(
                f"task {name} asks for {memory_mib} MiB but queue '{queue}' can give at most "
                f"{limits.max_memory_mib} MiB; lower the request or use a larger queue."
            )


class StuckTracker:
    """Marks jobs that stay RUNNABLE with a MISCONFIGURATION/CAPACITY reason past a dwell time
    (such reasons can appear briefly while a compute environment scales)."""

    def __init__(self, dwell_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.dwell_seconds = dwell_seconds
        self._clock = clock
        self._since: dict[str, float] = {}

    def observe(self, state: JobState) -> JobState:
        """The state, with `stuck_seconds` set once the dwell time has passed."""
        reason = state.status_reason or ""
        if state.status != "RUNNABLE" or not reason.startswith(STUCK_PREFIXES):
            self._since.pop(state.job_id, None)
            return state
        now = self._clock()
        since = self._since.setdefault(state.job_id, now)
        if now - since < self.dwell_seconds:
            return state
        return dataclasses.replace(state, stuck_seconds=now - since)
