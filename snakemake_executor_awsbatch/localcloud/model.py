"""The local Batch engine's records: a job, its attempts and what one attempt runs.

A `Job` is mutable engine state guarded by the engine's lock; `to_detail()` renders it exactly in
the shape DescribeJobs returns on AWS (field names, epoch-millisecond timestamps, statuses).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUBMITTED = "SUBMITTED"
PENDING = "PENDING"
RUNNABLE = "RUNNABLE"
STARTING = "STARTING"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
STATUSES = (SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING, SUCCEEDED, FAILED)
TERMINAL = (SUCCEEDED, FAILED)

REASON_DEPENDENCY_FAILED = "Dependent Job failed"
REASON_ESSENTIAL_EXITED = "Essential container in task exited"
REASON_TIMEOUT = "Job attempt duration exceeded timeout"
REASON_OOM = "OutOfMemoryError: Container killed due to memory usage"
REASON_TOO_LARGE = (
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource requirement (vCPU/memory/GPU) is "
    "higher than that can be met by the CE(s) attached to the job queue."
)
REASON_ARRAY_CHILD_FAILED = "Array Child Job failed"


@dataclass(frozen=True)
class Bind:
    """A host directory bound at `target` inside the job's private mount namespace."""

    source: Path
    target: str
    read_only: bool


@dataclass(frozen=True)
class ContainerPlan:
    """One container of an attempt: what to run, where its output goes, what it waits for."""

    name: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    binds: tuple[Bind, ...]
    log_stream: str
    memory_mib: int
    essential: bool = True
    depends_on: tuple[tuple[str, str], ...] = ()


@dataclass
class ContainerResult:
    """How one container of an attempt ended."""

    name: str
    log_stream: str
    exit_code: int | None = None
    reason: str | None = None


@dataclass
class Attempt:
    """One attempt of a job, as DescribeJobs' `attempts[]` reports it once it has stopped."""

    task_arn: str
    instance_arn: str
    started_at: int | None = None
    stopped_at: int | None = None
    status_reason: str | None = None
    containers: list[ContainerResult] = field(default_factory=list)

    def primary(self) -> ContainerResult | None:
        """The container whose exit code stands for the attempt (first essential one)."""
        return self.containers[0] if self.containers else None

    def to_detail(self, multi_container: bool) -> dict[str, Any]:
        """Render as an AttemptDetail."""
        out: dict[str, Any] = {}
        if self.started_at is not None:
            out["startedAt"] = self.started_at
        if self.stopped_at is not None:
            out["stoppedAt"] = self.stopped_at
        if self.status_reason is not None:
            out["statusReason"] = self.status_reason
        if multi_container:
            out["taskProperties"] = [
                {
                    "containerInstanceArn": self.instance_arn,
                    "taskArn": self.task_arn,
                    "containers": [_container_result(c, named=True) for c in self.containers],
                }
            ]
        else:
            first = self.primary()
            detail: dict[str, Any] = {
                "containerInstanceArn": self.instance_arn,
                "taskArn": self.task_arn,
                "networkInterfaces": [],
            }
            if first is not None:
                detail.update(_container_result(first, named=False))
            out["container"] = detail
        return out


def _container_result(result: ContainerResult, named: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"logStreamName": result.log_stream}
    if named:
        out["name"] = result.name
    if result.exit_code is not None:
        out["exitCode"] = result.exit_code
    if result.reason is not None:
        out["reason"] = result.reason
    return out


@dataclass(frozen=True)
class QueueBinding:
    """A job queue and the one compute environment it places jobs on."""

    queue_name: str
    queue_arn: str
    ce_name: str
    ce_arn: str
    # Whether the compute environment is of type SPOT: only its hosts can be reclaimed.
    spot: bool

    def names(self) -> tuple[str, str]:
        """The two ways a request may name the queue: its name and its ARN."""
        return self.queue_name, self.queue_arn


@dataclass
class Job:
    """A submitted job (or array child) and everything the engine knows about it."""

    job_id: str
    name: str
    arn: str
    queue: QueueBinding
    jobdef: dict[str, Any]
    created_at: int
    vcpus: float
    memory_mib: int
    # The rendered `container` (single-container job) or `ecsProperties` (multi-container job).
    container: dict[str, Any] | None
    ecs: dict[str, Any] | None
    parameters: dict[str, str]
    depends_on: list[dict[str, str]]
    wait_for: list[str]
    retry_strategy: dict[str, Any]
    timeout_seconds: int | None
    tags: dict[str, str]
    propagate_tags: bool
    array_size: int | None = None
    array_index: int | None = None
    parent_id: str | None = None
    children: list[str] = field(default_factory=list)
    status: str = SUBMITTED
    status_reason: str | None = None
    started_at: int | None = None
    stopped_at: int | None = None
    attempts: list[Attempt] = field(default_factory=list)
    current: Attempt | None = None
    is_cancelled: bool = False
    is_terminated: bool = False
    work_dir: Path | None = None
    # For an array parent: counts of children by status.
    child_counts: dict[str, int] = field(default_factory=dict)

    @property
    def max_attempts(self) -> int:
        """Attempts allowed by the retry strategy (1..10)."""
        return int(self.retry_strategy.get("attempts", 1))

    @property
    def is_array_parent(self) -> bool:
        """True for the parent of an array job (it runs nothing itself)."""
        return self.array_size is not None and self.array_index is None

    def summary(self) -> dict[str, Any]:
        """Render as a ListJobs JobSummary."""
        out: dict[str, Any] = {
            "jobArn": self.arn,
            "jobId": self.job_id,
            "jobName": self.name,
            "createdAt": self.created_at,
            "status": self.status,
            "jobDefinition": self.jobdef["jobDefinitionArn"],
        }
        if self.status_reason is not None:
            out["statusReason"] = self.status_reason
        if self.started_at is not None:
            out["startedAt"] = self.started_at
        if self.stopped_at is not None:
            out["stoppedAt"] = self.stopped_at
        if self.array_size is not None:
            array: dict[str, Any] = {}
            if self.is_array_parent:
                array["size"] = self.array_size
            else:
                array["index"] = self.array_index
            out["arrayProperties"] = array
        last = self.attempts[-1] if self.attempts else None
        if self.container is not None and last is not None and last.primary() is not None:
            first = last.primary()
            assert first is not None
            summary: dict[str, Any] = {}
            if first.exit_code is not None:
                summary["exitCode"] = first.exit_code
            if first.reason is not None:
                summary["reason"] = first.reason
            out["container"] = summary
        return out

    def to_detail(self) -> dict[str, Any]:
        """Render as a DescribeJobs JobDetail."""
        out: dict[str, Any] = {
            "jobArn": self.arn,
            "jobName": self.name,
            "jobId": self.job_id,
            "jobQueue": self.queue.queue_arn,
            "status": self.status,
            "attempts": [a.to_detail(self.ecs is not None) for a in self.attempts],
            "createdAt": self.created_at,
            "retryStrategy": copy.deepcopy(self.retry_strategy),
            "dependsOn": copy.deepcopy(self.depends_on),
            "jobDefinition": self.jobdef["jobDefinitionArn"],
            "parameters": dict(self.parameters),
            "tags": dict(self.tags),
            "propagateTags": self.propagate_tags,
            "platformCapabilities": list(self.jobdef.get("platformCapabilities", ["EC2"])),
            "isCancelled": self.is_cancelled,
            "isTerminated": self.is_terminated,
        }
        if self.status_reason is not None:
            out["statusReason"] = self.status_reason
        if self.started_at is not None:
            out["startedAt"] = self.started_at
        if self.stopped_at is not None:
            out["stoppedAt"] = self.stopped_at
        if self.timeout_seconds is not None:
            out["timeout"] = {"attemptDurationSeconds": self.timeout_seconds}
        if self.array_size is not None:
            if self.is_array_parent:
                out["arrayProperties"] = {
                    "statusSummary": dict(self.child_counts),
                    "size": self.array_size,
                }
            else:
                out["arrayProperties"] = {"index": self.array_index}
        shown = self.current or (self.attempts[-1] if self.attempts else None)
        if self.container is not None:
            container = copy.deepcopy(self.container)
            if shown is not None:
                container["taskArn"] = shown.task_arn
                container["containerInstanceArn"] = shown.instance_arn
                first = shown.primary()
                if first is not None:
                    container["logStreamName"] = first.log_stream
                    if first.exit_code is not None:
                        container["exitCode"] = first.exit_code
                    if first.reason is not None:
                        container["reason"] = first.reason
            out["container"] = container
        if self.ecs is not None:
            ecs = copy.deepcopy(self.ecs)
            task = ecs["taskProperties"][0]
            if shown is not None:
                task["taskArn"] = shown.task_arn
                task["containerInstanceArn"] = shown.instance_arn
                by_name = {c.name: c for c in shown.containers}
                for container in task["containers"]:
                    result = by_name.get(container["name"])
                    if result is None:
                        continue
                    container["logStreamName"] = result.log_stream
                    if result.exit_code is not None:
                        container["exitCode"] = result.exit_code
                    if result.reason is not None:
                        container["reason"] = result.reason
            out["ecsProperties"] = ecs
        return out


def summary_from_detail(detail: dict[str, Any]) -> dict[str, Any]:
    """A ListJobs JobSummary from a stored DescribeJobs record."""
    keys = (
        "jobArn",
        "jobId",
        "jobName",
        "createdAt",
        "status",
        "statusReason",
        "startedAt",
        "stoppedAt",
        "jobDefinition",
        "arrayProperties",
    )
    out = {k: detail[k] for k in keys if k in detail}
    if "arrayProperties" in out:
        array = out["arrayProperties"]
        out["arrayProperties"] = (
            {"size": array["size"]} if "size" in array else {"index": array.get("index")}
        )
    container = detail.get("container") or {}
    summary = {k: container[k] for k in ("exitCode", "reason") if k in container}
    if "container" in detail:
        out["container"] = summary
    return out
