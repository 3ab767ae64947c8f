"""BatchClient: every AWS Batch call of the process, paced by one shared limiter.

Throttling and 5xx are retried with jittered backoff (see `ratelimit.py`); other errors are
raised at once, as a UserError when the request itself was wrong (ClientException).
DescribeJobs goes 100 ids a call, TerminateJobs/CancelJobs 50, with a per-job fallback when the
installed botocore has no batch form of the call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from botocore.exceptions import ClientError, NoCredentialsError

from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.ratelimit import Pacer, RateLimiter

log = logging.getLogger(__name__)

T = TypeVar("T")
NO_CREDENTIALS = (
    "no AWS credentials were found; configure them (aws configure, AWS_PROFILE or an instance "
    "role), or use the local cloud."
)
DESCRIBE_BATCH = 100
TERMINATE_BATCH = 50


def chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class BatchClient:
    """A paced, retrying wrapper around a boto3 Batch client."""

    def __init__(self, client: Any, pacer: Pacer | None = None) -> None:
        self.client = client
        self.pacer = pacer or Pacer(RateLimiter(20.0))

    def _call(self, op: str, fn: Callable[[], T]) -> T:
        try:
            return self.pacer.call(op, fn)
        except NoCredentialsError as error:
            raise UserError(NO_CREDENTIALS) from error
        except ClientError as error:
            err = error.response.get("Error", {})
            code, message = str(err.get("Code", "")), str(err.get("Message", error))
            if code == "ClientException":
                raise UserError(
                    f"AWS Batch refused {op}: {message.rstrip('.')}; fix the named setting "
                    "(job queue, job definition, resources or role) and run again."
                ) from error
            raise

    def submit_job(self, request: dict[str, Any]) -> str:
        """SubmitJob; returns the job id."""
        response = self._call("SubmitJob", lambda: self.client.submit_job(**request))
        return str(response["jobId"])

    def register_job_definition(self, request: dict[str, Any]) -> str:
        """RegisterJobDefinition; returns `name:revision`."""
        response = self._call(
            "RegisterJobDefinition", lambda: self.client.register_job_definition(**request)
        )
        return f"{response['jobDefinitionName']}:{response['revision']}"

    def active_job_definitions(self, name: str) -> list[dict[str, Any]]:
        """Every ACTIVE revision of a job definition name (all pages)."""
        found: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"jobDefinitionName": name, "status": "ACTIVE"}
            if token:
                kwargs["nextToken"] = token
            page = self._call(
                "DescribeJobDefinitions",
                lambda kw=kwargs: self.client.describe_job_definitions(**kw),  # type: ignore[misc]
            )
            found.extend(page.get("jobDefinitions", []))
            token = page.get("nextToken")
            if not token:
                return found

    def describe_jobs(self, job_ids: Sequence[str]) -> list[dict[str, Any]]:
        """DescribeJobs for any number of ids, 100 a call; unknown ids are simply absent."""
        out: list[dict[str, Any]] = []
        for chunk in chunks(list(dict.fromkeys(job_ids)), DESCRIBE_BATCH):
            page = self._call(
                "DescribeJobs",
                lambda c=chunk: self.client.describe_jobs(jobs=list(c)),  # type: ignore[misc]
            )
            out.extend(page.get("jobs", []))
        return out

    def terminate_jobs(self, job_ids: Sequence[str], reason: str) -> None:
        """Terminate jobs (running or queued), 50 a call, per job when TerminateJobs is absent."""
        self._batched("terminate_jobs", "terminate_job", job_ids, reason)

    def cancel_jobs(self, job_ids: Sequence[str], reason: str) -> None:
        """Cancel queued jobs, 50 a call, per job when CancelJobs is absent."""
        self._batched("cancel_jobs", "cancel_job", job_ids, reason)

    def _batched(self, many: str, one: str, job_ids: Sequence[str], reason: str) -> None:
        ids = list(dict.fromkeys(job_ids))
        if not ids:
            return
        if hasattr(self.client, many):
            for chunk in chunks(ids, TERMINATE_BATCH):
                response = self._call(
                    many,
                    lambda c=chunk: getattr(self.client, many)(  # type: ignore[misc]
                        jobs=list(c), reason=reason
                    ),
                )
                for error in response.get("errors", []):
                    log.warning("%s of %s failed: %s", many, error.get("jobId"), error)
            return
        for job_id in ids:
            self._call(
                one,
                lambda j=job_id: getattr(self.client, one)(  # type: ignore[misc]
                    jobId=j, reason=reason
                ),
            )

    def describe_job_queues(self, names: Sequence[str]) -> list[dict[str, Any]]:
        """DescribeJobQueues for the named queues (names or ARNs)."""
        page = self._call(
            "DescribeJobQueues", lambda: self.client.describe_job_queues(jobQueues=list(names))
        )
        return list(page.get("jobQueues", []))

    def describe_compute_environments(self, names: Sequence[str]) -> list[dict[str, Any]]:
        """DescribeComputeEnvironments for the named environments (names or ARNs)."""
        out: list[dict[str, Any]] = []
        for chunk in chunks(list(names), 100):
            page = self._call(
                "DescribeComputeEnvironments",
                lambda c=chunk: self.client.describe_compute_environments(  # type: ignore[misc]
                    computeEnvironments=list(c)
                ),
            )
            out.extend(page.get("computeEnvironments", []))
        return out
