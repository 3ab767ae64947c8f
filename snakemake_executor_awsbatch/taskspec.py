"""The engine-neutral description of one unit of work, shared by the Snakemake and CWL front-ends.

A `TaskSpec` says what to run and with which resources; the Batch layer (`jobdef.py`, `batch.py`)
turns it into a job definition plus a SubmitJob request, and the in-job launcher reads the
`LaunchSpec` part of it from S3. Everything here is frozen and JSON-serialisable so that a spec can
be hashed, compared and shipped to S3 without surprises.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum, StrEnum
from typing import Any


class Platform(StrEnum):
    """Where Batch runs the job: an EC2 (or spot) compute environment, or Fargate."""

    EC2 = "EC2"
    FARGATE = "FARGATE"


@dataclass(frozen=True)
class EfsMount:
    """An EFS file system bound into the job at `container_path`.

    `root_directory` is the directory of the file system that appears at `container_path`; with an
    access point it must be "/" (Batch's rule), and transit encryption is then required.
    """

    file_system_id: str
    container_path: str
    root_directory: str = "/"
    read_only: bool = True
    access_point_id: str | None = None
    iam_auth: bool = False

    @property
    def volume_name(self) -> str:
        """A volume name unique per (file system, root, access point), valid for Batch."""
        raw = f"{self.file_system_id}-{self.root_directory}-{self.access_point_id or ''}"
        cleaned = "".join(c if c.isalnum() else "-" for c in raw).strip("-")
        return f"efs-{cleaned}"[:255]


@dataclass(frozen=True)
class RetryPolicy:
    """How Batch retries a job.

    `spot_retries` extra attempts are allowed for spot reclaims (statusReason `Host EC2*`); every
    other failure exits at once unless `retry_on_any_failure` (then `attempts` bounds the total).
    Snakemake and cwltool do their own retries of real failures; Batch handles the reclaims so
    that a reclaimed job keeps its job id and its place in the dependency graph.
    """

    spot_retries: int = 0
    retry_on_any_failure: bool = False
    attempts: int = 1

    @property
    def total_attempts(self) -> int:
        """Attempts Batch may make, within Batch's 1..10 range."""
        wanted = max(self.attempts, 1 + self.spot_retries)
        return min(max(wanted, 1), 10)


@dataclass(frozen=True)
class StagedFile:
    """One file or directory moved between S3 and the job's working directory.

    `path` is relative to the job's working directory (or absolute inside the job). For outputs,
    `path` may be a glob; `optional` outputs that are absent are not an error. `secondary` lists
    index files carried with the primary (e.g. `.bai`, `.fai`), each an S3 URI / path pair.
    """

    s3_uri: str
    path: str
    is_directory: bool = False
    optional: bool = False
    secondary: tuple[tuple[str, str], ...] = ()
    # Outputs go up wave by wave, each after the previous one has finished: a group job's
    # members write files that later members read, and each file's S3 LastModified must not be
    # older than its inputs', or Snakemake would see the output as outdated on the next run.
    wave: int = 0


@dataclass(frozen=True)
class SourceArchive:
    """A tar archive (e.g. Snakemake's workflow sources) unpacked into the working directory
    before the payload runs; `sha256` is checked first, so a stale or corrupt archive is refused."""

    s3_uri: str
    sha256: str


@dataclass(frozen=True)
class StagingManifest:
    """Inputs to fetch before the payload runs and outputs to push after it, plus where the job's
    log and report go. `prefix` is the S3 prefix owned by this task (spec, log, report).

    `logs` are the payload's own log files (Snakemake's `log:`): pushed whatever the exit code,
    when present, because a failed command's explanation is usually in them.
    """

    prefix: str
    inputs: tuple[StagedFile, ...] = ()
    outputs: tuple[StagedFile, ...] = ()
    logs: tuple[StagedFile, ...] = ()
    checksum_algorithm: str = "CRC32C"
    sse_kms_key_id: str | None = None
    storage_class: str | None = None

    @property
    def spec_uri(self) -> str:
        """Where the launcher's spec lives."""
        return f"{self.prefix.rstrip('/')}/spec.json"

    @property
    def log_uri(self) -> str:
        """Where the launcher uploads the payload's combined stdout/stderr."""
        return f"{self.prefix.rstrip('/')}/log.txt"

    @property
    def job_uri(self) -> str:
        """Where the submitter records the Batch job id (`job.json`) after SubmitJob."""
        return f"{self.prefix.rstrip('/')}/job.json"

    @property
    def report_uri(self) -> str:
        """Where the launcher uploads its JSON report (exit code, timings, memory, bytes)."""
        return f"{self.prefix.rstrip('/')}/report.json"


@dataclass(frozen=True)
class LaunchSpec:
    """What the in-job launcher runs: the part of a TaskSpec that travels through S3.

    Exactly one of `command` (argv) and `shell` (a bash script) is set. `stdin`, `stdout`,
    `stderr` are paths relative to the working directory (CWL's capture). `env` is the payload's
    environment on top of the container's; it never holds credentials.
    """

    staging: StagingManifest
    command: tuple[str, ...] = ()
    shell: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str | None = None
    stdin: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    success_codes: tuple[int, ...] = (0,)
    archives: tuple[SourceArchive, ...] = ()

    def to_json(self) -> str:
        """Serialise for S3 (stable key order, so equal specs are equal bytes)."""
        return json.dumps(asdict(self), sort_keys=True, default=_json_default)

    @classmethod
    def from_json(cls, text: str) -> LaunchSpec:
        """Parse what `to_json` wrote."""
        raw: dict[str, Any] = json.loads(text)
        staging_raw = raw.pop("staging")
        staging = StagingManifest(
            prefix=staging_raw["prefix"],
            inputs=tuple(_staged(f) for f in staging_raw.get("inputs", ())),
            outputs=tuple(_staged(f) for f in staging_raw.get("outputs", ())),
            logs=tuple(_staged(f) for f in staging_raw.get("logs", ())),
            checksum_algorithm=staging_raw.get("checksum_algorithm", "CRC32C"),
            sse_kms_key_id=staging_raw.get("sse_kms_key_id"),
            storage_class=staging_raw.get("storage_class"),
        )
        return cls(
            staging=staging,
            command=tuple(raw.get("command", ())),
            shell=raw.get("shell"),
            env=dict(raw.get("env", {})),
            workdir=raw.get("workdir"),
            stdin=raw.get("stdin"),
            stdout=raw.get("stdout"),
            stderr=raw.get("stderr"),
            success_codes=tuple(raw.get("success_codes", (0,))),
            archives=tuple(
                SourceArchive(s3_uri=a["s3_uri"], sha256=a["sha256"])
                for a in raw.get("archives", ())
            ),
        )


def _staged(raw: Mapping[str, Any]) -> StagedFile:
    return StagedFile(
        s3_uri=raw["s3_uri"],
        path=raw["path"],
        is_directory=bool(raw.get("is_directory", False)),
        optional=bool(raw.get("optional", False)),
        secondary=tuple((str(a), str(b)) for a, b in raw.get("secondary", ())),
        wave=int(raw.get("wave", 0)),
    )


def _json_default(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


@dataclass(frozen=True)
class TaskSpec:
    """One unit of work for Batch, engine-neutral.

    `image`, `mounts`, `platform`, `job_role_arn` and `execution_role_arn` shape the job
    definition (hashed and reused); `vcpus`, `memory_mib`, `gpus`, `timeout_seconds`, `queue`,
    `retry`, `tags` and the launch pointer are per-job and travel in SubmitJob. `depends_on` holds
    Batch job ids this job waits for (at most 20, Batch's limit). `assign_public_ip` is for
    Fargate jobs in public subnets (without it they cannot pull images or reach S3).
    `disk_mib` is an EC2 job's disk request: Batch cannot reserve disk on EC2, so it is only
    checked against the instances' volume before submission (Fargate uses ephemeral storage).
    `companion_image`, when set, runs the payload in `image` unchanged (no Python needed there,
    only /bin/sh) and does the staging in companion containers of the same job that use
    `companion_image`, the project's image (see docs/core.md, "Companion layout").
    """

    name: str
    image: str
    launch: LaunchSpec
    queue: str
    vcpus: float = 1.0
    memory_mib: int = 2048
    gpus: int = 0
    timeout_seconds: int | None = None
    mounts: tuple[EfsMount, ...] = ()
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    tags: Mapping[str, str] = field(default_factory=dict)
    platform: Platform = Platform.EC2
    job_role_arn: str | None = None
    execution_role_arn: str | None = None
    job_definition: str | None = None
    depends_on: tuple[str, ...] = ()
    ephemeral_storage_gib: int | None = None
    assign_public_ip: bool = False
    disk_mib: int | None = None
    companion_image: str | None = None
