"""A read-only view of one Batch job as DescribeJobs reports it, with a one-sentence `explain()`.

The launcher's own exit codes (spec unreadable, staging failed) are named here too, so that the
explanation says which side failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from snakemake_executor_awsbatch.retry import is_spot_reclaim

FINISHED = frozenset({"SUCCEEDED", "FAILED"})
QUEUED = frozenset({"SUBMITTED", "PENDING", "RUNNABLE"})

# Exit codes of the launcher itself (kept apart from the usual payload codes 0-2, 126-127, 128+N).
EXIT_SPEC_UNREADABLE = 97
EXIT_STAGE_IN_FAILED = 98
EXIT_STAGE_OUT_FAILED = 99

LAUNCHER_EXITS = {
    EXIT_SPEC_UNREADABLE: "the launcher could not read its task spec from S3",
    EXIT_STAGE_IN_FAILED: "the launcher could not stage the inputs in from S3",
    EXIT_STAGE_OUT_FAILED: "the launcher could not stage the outputs out to S3",
}


@dataclass(frozen=True)
class AttemptState:
    """One attempt of a job: how its container ended and where its log is."""

    exit_code: int | None
    container_reason: str | None
    status_reason: str | None
    log_stream_name: str | None
    started_at: int | None = None
    stopped_at: int | None = None


@dataclass(frozen=True)
class JobState:
    """The state of one Batch job. Times are epoch milliseconds, as Batch gives them."""

    job_id: str
    status: str
    exit_code: int | None = None
    status_reason: str | None = None
    container_reason: str | None = None
    attempts: tuple[AttemptState, ...] = ()
    log_stream_name: str | None = None
    job_name: str = ""
    created_at: int | None = None
    started_at: int | None = None
    stopped_at: int | None = None
    stuck_seconds: float | None = None

    @property
    def is_finished(self) -> bool:
        """Whether the job has reached SUCCEEDED or FAILED."""
        return self.status in FINISHED

    @property
    def is_failed(self) -> bool:
        """Whether the job ended FAILED."""
        return self.status == "FAILED"

    @property
    def is_stuck(self) -> bool:
        """Whether the job sat RUNNABLE with a MISCONFIGURATION/CAPACITY reason past the dwell."""
        return self.stuck_seconds is not None

    @property
    def spot_reclaims(self) -> int:
        """How many attempts ended with a lost host (spot reclaim)."""
        return sum(1 for a in self.attempts if is_spot_reclaim(a.status_reason))

    def explain(self) -> str:
        """One sentence saying what happened to the job, naming Batch's reason."""
        name = f"Batch job {self.job_name or self.job_id} ({self.job_id})"
        reason = self.status_reason or ""
        container = self.container_reason or ""
        tries = f" after {len(self.attempts)} attempt(s)" if len(self.attempts) > 1 else ""
        if self.status == "SUCCEEDED":
            return f"{name} succeeded{tries}."
        if self.is_stuck:
            return (
                f"{name} has been RUNNABLE for {self.stuck_seconds:.0f}s with '{reason}': "
                + _stuck_hint(reason)
            )
        if not self.is_failed:
            return f"{name} is {self.status}" + (f" ({reason})." if reason else ".")
        if "OutOfMemory" in container or "OutOfMemory" in reason:
            return (
                f"{name} ran out of memory{tries} ({container or reason}); "
                "raise its memory request."
            )
        if is_spot_reclaim(reason):
            return (
                f"{name} lost its host (spot reclaim or instance termination: '{reason}') "
                f"on each of its {len(self.attempts) or 1} attempt(s); allow more spot retries "
                "or use an on-demand queue."
            )
        if "timeout" in reason.lower():
            return f"{name} exceeded its runtime limit ({reason}); raise its timeout."
        if "Dependent Job" in reason or "dependency" in reason.lower():
            return f"{name} did not run because a job it depends on failed ({reason})."
        if "CannotPullContainer" in container or "CannotPullContainer" in reason:
            return f"{name} could not pull its image ({container or reason}); check the image name."
        if self.exit_code is not None:
            what = LAUNCHER_EXITS.get(self.exit_code)
            detail = f"{what}; see the job log" if what else "see the job log"
            extra = f" [{reason}]" if reason and "Essential container" not in reason else ""
            return f"{name} failed with exit code {self.exit_code}{tries}: {detail}{extra}."
        return f"{name} failed: {reason or container or 'Batch gave no reason'}."


def _stuck_hint(reason: str) -> str:
    if "JOB_RESOURCE_REQUIREMENT" in reason or "MAX_RESOURCE" in reason:
        return (
            "no compute environment of the queue can give this job its vCPUs/memory; "
            "lower the request or raise the compute environment's limits."
        )
    if reason.startswith("CAPACITY"):
        return "EC2 has no capacity for the instance types; allow more instance types or wait."
    return "the queue's compute environments cannot run it; check their state and limits."


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, (int, float)) else None


def _container_of(job: Mapping[str, Any]) -> Mapping[str, Any]:
    """The container detail that explains the job (multi-container jobs: the failed one)."""
    if "container" in job:
        return dict(job["container"])
    tasks = job.get("ecsProperties", {}).get("taskProperties", [])
    containers = [dict(c) for t in tasks for c in t.get("containers", [])]
    if not containers:
        return {}
    failed = [c for c in containers if c.get("exitCode") not in (None, 0)]
    essential = [c for c in containers if c.get("essential", True)]
    # The essential container decides the job's exit code and (in the companion layout) carries
    # the payload's log; a non-essential one may hold the reason (e.g. out of memory).
    pool = [c for c in failed if c in essential] or failed or essential or containers
    chosen = dict(pool[0])
    if not chosen.get("reason"):
        reason = next((c["reason"] for c in failed if c.get("reason")), None)
        if reason:
            chosen["reason"] = reason
    streams = [c.get("logStreamName") for c in essential if c.get("logStreamName")]
    if not chosen.get("logStreamName") and streams:
        chosen["logStreamName"] = streams[0]
    return chosen


def from_description(job: Mapping[str, Any]) -> JobState:
    """Build a JobState from one entry of DescribeJobs' `jobs`."""
    container = _container_of(job)
    attempts = tuple(
        AttemptState(
            exit_code=_int(a.get("container", {}).get("exitCode")),
            container_reason=a.get("container", {}).get("reason"),
            status_reason=a.get("statusReason"),
            log_stream_name=a.get("container", {}).get("logStreamName"),
            started_at=_int(a.get("startedAt")),
            stopped_at=_int(a.get("stoppedAt")),
        )
        for a in job.get("attempts", [])
    )
    log_stream = container.get("logStreamName")
    if log_stream is None and attempts:
        log_stream = attempts[-1].log_stream_name
    return JobState(
        job_id=str(job["jobId"]),
        status=str(job["status"]),
        exit_code=_int(container.get("exitCode")),
        status_reason=job.get("statusReason"),
        container_reason=container.get("reason"),
        attempts=attempts,
        log_stream_name=log_stream,
        job_name=str(job.get("jobName", "")),
        created_at=_int(job.get("createdAt")),
        started_at=_int(job.get("startedAt")),
        stopped_at=_int(job.get("stoppedAt")),
    )


def missing(job_id: str, seconds: float) -> JobState:
    """The FAILED state reported for a job DescribeJobs stopped knowing about."""
    return JobState(
        job_id=job_id,
        status="FAILED",
        status_reason=(
            f"job is missing from DescribeJobs for {seconds:.0f}s (deleted, expired or never "
            "accepted by AWS Batch)"
        ),
    )
