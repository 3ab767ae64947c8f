"""BatchSubmitter: the facade both front-ends use to run TaskSpecs on AWS Batch.

It validates specs before anything is submitted (`preflight`), uploads each task's launch spec
to S3, registers job definitions once per content, submits, polls in batches (waiting out
DescribeJobs' eventual consistency, failing jobs that vanish, flagging jobs stuck RUNNABLE),
terminates, and reads logs and the launcher's report.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

from snakemake_executor_awsbatch.batch import NO_CREDENTIALS, BatchClient
from snakemake_executor_awsbatch.botosession import shared_session
from snakemake_executor_awsbatch.capacity import CapacityChecker, StuckTracker
from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.jobdef import (
    job_definition_request,
    reserved_resources,
    submit_request,
)
from snakemake_executor_awsbatch.jobstate import JobState, from_description, missing
from snakemake_executor_awsbatch.logs import read_log_stream
from snakemake_executor_awsbatch.ratelimit import Pacer, RateLimiter, process_limiter
from snakemake_executor_awsbatch.s3uri import parse_s3_uri
from snakemake_executor_awsbatch.secrets import check_env_names, check_no_secrets
from snakemake_executor_awsbatch.taskspec import TaskSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubmitterSettings:
    """Behaviour of the Batch layer (see docs/core.md)."""

    max_calls_per_second: float = 20.0
    missing_grace_seconds: float = 120.0
    stuck_dwell_seconds: float = 600.0
    fail_stuck_misconfigured: bool = True
    check_capacity: bool = True
    environment: Mapping[str, str] = field(default_factory=dict)


class JobDefinitions:
    """Job definitions by content hash: looked up (ACTIVE) or registered once, then cached."""

    def __init__(self, batch: BatchClient) -> None:
        self.batch = batch
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()
        self.registered = 0

    def ensure(self, spec: TaskSpec) -> str:
        """`name:revision` of the job definition for a spec (the user's one when given)."""
        if spec.job_definition:
            return spec.job_definition
        request = job_definition_request(spec)
        name = str(request["jobDefinitionName"])
        with self._lock:  # one registration per content, even with many submitting threads
            if name in self._cache:
                return self._cache[name]
            active = self.batch.active_job_definitions(name)
            if active:
                best = max(active, key=lambda d: int(d["revision"]))
                ref = f"{name}:{best['revision']}"
            else:
                ref = self.batch.register_job_definition(request)
                self.registered += 1
            self._cache[name] = ref
            return ref


class BatchSubmitter:
    """Runs TaskSpecs on AWS Batch (or the local cloud)."""

    def __init__(
        self,
        batch: BatchClient,
        s3: Any,
        logs: Any,
        settings: SubmitterSettings | None = None,
        *,
        logs_pacer: Pacer | None = None,
        clock: Callable[[], float] = time.monotonic,
        ec2: Callable[[], Any] | None = None,
    ) -> None:
        self.batch = batch
        self.s3 = s3
        self.logs = logs
        self.settings = settings or SubmitterSettings()
        self.logs_pacer = logs_pacer or Pacer(RateLimiter(10.0))
        self.job_definitions = JobDefinitions(batch)
        self.capacity = CapacityChecker(batch, ec2)
        self.stuck = StuckTracker(self.settings.stuck_dwell_seconds, clock)
        self._clock = clock
        self._seen_at: dict[str, float] = {}  # job id -> when we submitted or first missed it
        self._lock = threading.Lock()

    @classmethod
    def create(
        cls,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        max_calls_per_second: float = 20.0,
        settings: SubmitterSettings | None = None,
    ) -> BatchSubmitter:
        """A submitter with boto3 clients for Batch, S3 and CloudWatch Logs."""
        settings = settings or SubmitterSettings(max_calls_per_second=max_calls_per_second)
        session = shared_session(region)
        # Our pacer does the retrying; botocore's own retries would multiply the attempts.
        single = Config(retries={"total_max_attempts": 1, "mode": "standard"})
        s3_config = Config(retries={"mode": "standard", "max_attempts": 8})
        try:
            batch = BatchClient(
                session.client("batch", endpoint_url=endpoint_url, config=single),
                Pacer(process_limiter("batch", settings.max_calls_per_second)),
            )
            s3 = session.client("s3", endpoint_url=endpoint_url, config=s3_config)
            logs = session.client("logs", endpoint_url=endpoint_url, config=single)
        except NoRegionError:
            raise UserError(
                "no AWS region is configured; set the region option or AWS_DEFAULT_REGION."
            ) from None
        # EC2 is asked only for a launch template's volume size, once per compute environment.
        ec2 = functools.partial(session.client, "ec2", endpoint_url=endpoint_url, config=s3_config)
        return cls(
            batch, s3, logs, settings, logs_pacer=Pacer(process_limiter("logs", 10.0)), ec2=ec2
        )

    def preflight(self, specs: Iterable[TaskSpec]) -> None:
        """Check every spec and its queue; raises UserError before anything is submitted."""
        for spec in specs:
            if not spec.image.strip() or any(c.isspace() for c in spec.image):
                raise UserError(f"task {spec.name} has an invalid image '{spec.image}'; fix it.")
            parse_s3_uri(spec.launch.staging.spec_uri)
            check_env_names(spec.launch.env, f"the environment of task {spec.name}")
            if not spec.job_definition:
                job_definition_request(spec)
            submit_request(spec, spec.job_definition or "preflight", environment=self._env())
            if self.settings.check_capacity:
                res = reserved_resources(spec)  # with companions: the whole task
                self.capacity.check_fits(
                    spec.name,
                    spec.queue,
                    res.vcpus,
                    res.memory_mib,
                    spec.disk_mib,
                    platform=spec.platform.value,
                )

    def _env(self) -> dict[str, str]:
        return dict(self.settings.environment)

    def upload_spec(self, spec: TaskSpec) -> None:
        """Put the launch spec at its S3 URI (with the manifest's KMS key when set)."""
        body = spec.launch.to_json()
        check_env_names(spec.launch.env, f"the environment of task {spec.name}")
        check_no_secrets(json.loads(body), f"the task spec of {spec.name}")
        self._put_task_object(spec, spec.launch.staging.spec_uri, body, "the task spec")

    def _put_task_object(self, spec: TaskSpec, uri: str, body: str, what: str) -> None:
        staging = spec.launch.staging
        bucket, key = parse_s3_uri(uri)
        extra: dict[str, Any] = {}
        if staging.sse_kms_key_id:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": staging.sse_kms_key_id}
        try:
            self.s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=body.encode(),
                ContentType="application/json",
                **extra,
            )
        except NoCredentialsError as error:
            raise UserError(NO_CREDENTIALS) from error
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchBucket", "AccessDenied", "403", "404"):
                raise UserError(
                    f"cannot write {what} to {uri} ({code}); "
                    "check the bucket name and that these credentials may write to it."
                ) from error
            raise

    def submit(self, spec: TaskSpec) -> str:
        """Upload the launch spec, ensure the job definition, SubmitJob; returns the job id."""
        self.upload_spec(spec)
        definition = self.job_definitions.ensure(spec)
        request = submit_request(spec, definition, environment=self._env())
        job_id = self.batch.submit_job(request)
        with self._lock:
            self._seen_at[job_id] = self._clock()
        # The job id beside the spec lets `awsbatch report` find jobs whose launcher never ran
        # (image pull failure, cancelled while queued), which leave no report.json.
        record = {"job_id": job_id, "job_name": request["jobName"], "queue": spec.queue}
        self._put_task_object(
            spec, spec.launch.staging.job_uri, json.dumps(record), "the job record"
        )
        log.debug("submitted %s as %s", spec.name, job_id)
        return job_id

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """States of the given jobs (DescribeJobs 100 a call)."""
        found = {j["jobId"]: from_description(j) for j in self.batch.describe_jobs(job_ids)}
        now = self._clock()
        out: dict[str, JobState] = {}
        stuck_to_fail: list[JobState] = []
        for job_id in job_ids:
            state = found.get(job_id)
            if state is None:
                out[job_id] = self._missing(job_id, now)
                continue
            with self._lock:
                self._seen_at.pop(job_id, None)
            state = self.stuck.observe(state)
            if (
                state.is_stuck
                and self.settings.fail_stuck_misconfigured
                and (state.status_reason or "").startswith("MISCONFIGURATION")
            ):
                stuck_to_fail.append(state)
            out[job_id] = state
        if stuck_to_fail:
            # A job that can never be placed blocks the head of its queue: end it.
            for state in stuck_to_fail:
                explanation = state.explain()
                self.cancel([state.job_id], explanation)
                out[state.job_id] = dataclasses.replace(
                    state, status="FAILED", stuck_seconds=None, status_reason=explanation
                )
        return out

    def _missing(self, job_id: str, now: float) -> JobState:
        with self._lock:
            since = self._seen_at.setdefault(job_id, now)
        waited = now - since
        if waited < self.settings.missing_grace_seconds:
            return JobState(
                job_id=job_id,
                status="SUBMITTED",
                status_reason="not yet visible in DescribeJobs (eventual consistency)",
            )
        return missing(job_id, waited)

    def cancel(self, job_ids: Sequence[str], reason: str) -> None:
        """End jobs: TerminateJobs stops running ones and cancels queued ones, 50 a call."""
        self.batch.terminate_jobs(job_ids, reason[:1000])

    def fetch_log(self, state: JobState, max_lines: int | None = None) -> list[str]:
        """The job's CloudWatch log lines (last `max_lines`), [] when it has no stream yet."""
        if not state.log_stream_name or max_lines == 0:
            return []
        return read_log_stream(
            self.logs, state.log_stream_name, pacer=self.logs_pacer, max_lines=max_lines
        )

    def _get_text(self, uri: str) -> str | None:
        bucket, key = parse_s3_uri(uri)
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return bytes(body).decode(errors="replace")

    def fetch_report(self, spec: TaskSpec) -> dict[str, object] | None:
        """The launcher's JSON report for a task, None when it has not written one."""
        text = self._get_text(spec.launch.staging.report_uri)
        if text is None:
            return None
        report: dict[str, object] = json.loads(text)
        return report

    def fetch_task_log(self, spec: TaskSpec, max_lines: int | None = None) -> list[str]:
        """The payload's log as the launcher uploaded it to S3 ([] when absent)."""
        text = self._get_text(spec.launch.staging.log_uri)
        lines = text.splitlines() if text else []
        if max_lines is not None:
            return lines[-max_lines:] if max_lines else []
        return lines
