"""Everything one `cwl-awsbatch` run shares: settings, the S3 store and the Batch backend."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from snakemake_executor_awsbatch.taskspec import EfsMount, Platform, TaskSpec

from .s3store import S3Store


class JobStateLike(Protocol):
    """The part of the core's JobState the runner reads."""

    job_id: str
    status: str
    exit_code: int | None
    status_reason: str | None

    @property
    def is_finished(self) -> bool:
        """True once the job is SUCCEEDED or FAILED."""

    @property
    def is_failed(self) -> bool:
        """True for FAILED."""

    def explain(self) -> str:
        """One line on why the job is where it is."""


class BatchBackend(Protocol):
    """The core facade's BatchSubmitter, as the runner uses it."""

    def preflight(self, specs: Sequence[TaskSpec]) -> None:
        """Raise UserError if a spec cannot run on its queue."""

    def submit(self, spec: TaskSpec) -> str:
        """Submit one job; return its Batch job id."""

    def poll(self, job_ids: Sequence[str]) -> Mapping[str, Any]:
        """Current state of each job id."""

    def cancel(self, job_ids: Sequence[str], reason: str) -> None:
        """Cancel or terminate jobs."""

    def fetch_log(self, state: Any, max_lines: int | None = None) -> list[str]:
        """The job's log lines."""

    def fetch_report(self, spec: TaskSpec) -> dict[str, Any] | None:
        """The launcher's report.json, if it wrote one."""


@dataclass(frozen=True)
class RunnerSettings:
    """The `--awsbatch-*` settings of one run."""

    queue: str
    s3_root: str
    region: str
    endpoint_url: str | None = None
    default_image: str = "public.ecr.aws/docker/library/debian:bookworm-slim"
    poll_seconds: float = 1.0
    efs_mounts: tuple[EfsMount, ...] = ()
    # Mounted only in jobs whose inputs name them (the local cloud's file systems).
    efs_on_demand: tuple[EfsMount, ...] = ()
    call_cache: bool = True
    extra_tags: Mapping[str, str] = field(default_factory=dict)
    # The local cloud runs jobs on this machine: its disk is what a job can have.
    host_disk_mib: int | None = None
    # Set: tools whose image is not `default_image` stage in companion containers of their job.
    companion_image: str | None = None
    # The queue's platform; Fargate jobs have their vCPU/memory snapped to Fargate's sizes and
    # need an execution role (image pulls, logs). The job role gives jobs their S3 access.
    platform: Platform = Platform.EC2
    job_role_arn: str | None = None
    execution_role_arn: str | None = None


_NAME_RE = re.compile(r"[^A-Za-z0-9_-]")


def batch_job_name(name: str) -> str:
    """A Batch-valid job name (<= 128 chars of [A-Za-z0-9_-], alphanumeric first)."""
    cleaned = _NAME_RE.sub("_", name).lstrip("_-") or "cwl"
    if not cleaned[0].isalnum():
        cleaned = "j" + cleaned
    return cleaned[:128]


class RunSession:
    """Shared per-run state handed to every tool and job object of one cwl-awsbatch run."""

    def __init__(self, settings: RunnerSettings, store: S3Store, backend: BatchBackend) -> None:
        """Bind settings, store and backend; a fresh run id names this run's S3 prefix."""
        self.settings = settings
        self.store = store
        self.backend = backend
        self.run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        self.jobs_submitted = 0
        self.cache_hits = 0
        self.disk_warning_given = False

    def job_prefix(self, job_name: str) -> str:
        """S3 prefix owned by one job of this run."""
        unique = f"{batch_job_name(job_name)}-{uuid.uuid4().hex[:8]}"
        return f"{self.settings.s3_root}/runs/{self.run_id}/{unique}"

    def wait(self, job_id: str) -> Any:
        """Poll one job until it finishes and return its final state."""
        while True:
            state = self.backend.poll([job_id]).get(job_id)
            if state is not None and state.is_finished:
                return state
            time.sleep(self.settings.poll_seconds)
