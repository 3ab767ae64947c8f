"""The Batch API subset served by the local cloud: request validation and response shapes.

Each handler takes the decoded JSON body of a rest-json request (`POST /v1/<operation>`) and
returns the JSON response body; a request Batch would refuse raises `ClientException` with the
message Batch gives (or one in its style where Batch's exact words are not known).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from snakemake_executor_awsbatch.capacity import LOCAL_HOST_MEMORY_TAG, LOCAL_HOST_VCPUS_TAG
from snakemake_executor_awsbatch.instance_disk import LOCAL_HOST_DISK_TAG
from snakemake_executor_awsbatch.localcloud import jobspec
from snakemake_executor_awsbatch.localcloud.api_errors import ClientException
from snakemake_executor_awsbatch.localcloud.engine import Engine, now_ms
from snakemake_executor_awsbatch.localcloud.jobdefs import JobDefinitions
from snakemake_executor_awsbatch.localcloud.model import STATUSES, Job, QueueBinding

JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
MAX_DEPENDENCIES = 20
MAX_OVERRIDES_CHARS = 8192
MAX_TAGS = 50
MAX_SUBMIT_BYTES = 30 * 1024
MAX_JOBDEF_BYTES = 24 * 1024


@dataclass(frozen=True)
class Environment:
    """Names and sizes of the local cloud's queues, compute environments and account.

    Two queues, each bound to one compute environment: `queue_name` to a SPOT environment
    (`ce_name`, whose hosts chaos may reclaim) and `ondemand_queue_name` to an EC2 (on-demand) one
    (`ondemand_ce_name`). Both environments are the same host, so they share its capacity.
    """

    account_id: str
    region: str
    queue_name: str
    ce_name: str
    ondemand_queue_name: str
    ondemand_ce_name: str
    vcpus: float
    memory_mib: int
    min_timeout_seconds: int
    disk_mib: int = 0  # free disk where jobs write (0: not declared)

    def arn(self, kind: str, name: str) -> str:
        """A Batch ARN of this account and region."""
        return f"arn:aws:batch:{self.region}:{self.account_id}:{kind}/{name}"

    def binding(self, queue_name: str, ce_name: str, spot: bool) -> QueueBinding:
        """A queue of this account bound to one of its compute environments."""
        return QueueBinding(
            queue_name=queue_name,
            queue_arn=self.arn("job-queue", queue_name),
            ce_name=ce_name,
            ce_arn=self.arn("compute-environment", ce_name),
            spot=spot,
        )

    def queues(self) -> tuple[QueueBinding, ...]:
        """Every queue, the spot one (the default) first."""
        return (
            self.binding(self.queue_name, self.ce_name, spot=True),
            self.binding(self.ondemand_queue_name, self.ondemand_ce_name, spot=False),
        )


class BatchApi:
    """Dispatches Batch operations to the engine and the job definition registry."""

    def __init__(self, env: Environment, engine: Engine, jobdefs: JobDefinitions) -> None:
        self.env = env
        self.engine = engine
        self.jobdefs = jobdefs
        self.queues = env.queues()
        self.operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "SubmitJob": self.submit_job,
            "DescribeJobs": self.describe_jobs,
            "ListJobs": self.list_jobs,
            "TerminateJob": self.terminate_job,
            "CancelJob": self.cancel_job,
            "TerminateJobs": self.terminate_jobs,
            "CancelJobs": self.cancel_jobs,
            "RegisterJobDefinition": self.register_job_definition,
            "DescribeJobDefinitions": self.describe_job_definitions,
            "DeregisterJobDefinition": self.deregister_job_definition,
            "DescribeComputeEnvironments": self.describe_compute_environments,
            "DescribeJobQueues": self.describe_job_queues,
        }
        self._by_path = {f"/v1/{name.lower()}": name for name in self.operations}

    def operation_for(self, path: str) -> str | None:
        """The operation a request path names, or None."""
        return self._by_path.get(path.rstrip("/").lower())

    def handle(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """Run one operation."""
        return self.operations[operation](body)

    # ----- environment ----------------------------------------------------------------------

    def describe_compute_environments(self, body: dict[str, Any]) -> dict[str, Any]:
        """DescribeComputeEnvironments: the local environments asked for (all when none are)."""
        wanted = set(body.get("computeEnvironments") or [])
        found = [
            self._compute_environment(q)
            for q in self.queues
            if not wanted or {q.ce_name, q.ce_arn} & wanted
        ]
        return {"computeEnvironments": found}

    def _compute_environment(self, queue: QueueBinding) -> dict[str, Any]:
        # Both environments describe the whole host, whose vCPUs and memory they share.
        host_tags = {
            LOCAL_HOST_VCPUS_TAG: _number(self.env.vcpus),
            LOCAL_HOST_MEMORY_TAG: str(self.env.memory_mib),
        }
        if self.env.disk_mib:
            host_tags[LOCAL_HOST_DISK_TAG] = str(self.env.disk_mib)
        resources: dict[str, Any] = {
            "type": "SPOT" if queue.spot else "EC2",
            "allocationStrategy": (
                "SPOT_CAPACITY_OPTIMIZED" if queue.spot else "BEST_FIT_PROGRESSIVE"
            ),
            "minvCpus": 0,
            "maxvCpus": int(self.env.vcpus),
            "desiredvCpus": int(self.env.vcpus),
            "instanceTypes": ["local"],
            "subnets": [],
            "securityGroupIds": [],
            "tags": dict(host_tags),
        }
        if queue.spot:
            resources["bidPercentage"] = 100
        return {
            "computeEnvironmentName": queue.ce_name,
            "computeEnvironmentArn": queue.ce_arn,
            "ecsClusterArn": (
                f"arn:aws:ecs:{self.env.region}:{self.env.account_id}:cluster/{queue.ce_name}"
            ),
            "type": "MANAGED",
            "state": "ENABLED",
            "status": "VALID",
            "statusReason": "ComputeEnvironment Healthy",
            "computeResources": resources,
            "tags": dict(host_tags),
            "containerOrchestrationType": "ECS",
        }

    def describe_job_queues(self, body: dict[str, Any]) -> dict[str, Any]:
        """DescribeJobQueues: the local queues asked for (all when none are)."""
        wanted = set(body.get("jobQueues") or [])
        found = [
            {
                "jobQueueName": q.queue_name,
                "jobQueueArn": q.queue_arn,
                "state": "ENABLED",
                "status": "VALID",
                "statusReason": "JobQueue Healthy",
                "priority": 1,
                "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": q.ce_arn}],
                "jobQueueType": "ECS_EC2",
                "tags": {},
            }
            for q in self.queues
            if not wanted or set(q.names()) & wanted
        ]
        return {"jobQueues": found}

    # ----- job definitions ------------------------------------------------------------------

    def register_job_definition(self, body: dict[str, Any]) -> dict[str, Any]:
        """RegisterJobDefinition."""
        _check_size(body, MAX_JOBDEF_BYTES, "job definition")
        record = self.jobdefs.register(body)
        return {k: record[k] for k in ("jobDefinitionName", "jobDefinitionArn", "revision")}

    def describe_job_definitions(self, body: dict[str, Any]) -> dict[str, Any]:
        """DescribeJobDefinitions, filtered by ids, name and status, one page at a time."""
        page, token = self.jobdefs.describe(
            body.get("jobDefinitions"),
            body.get("jobDefinitionName"),
            body.get("status"),
            body.get("maxResults"),
            body.get("nextToken"),
        )
        out: dict[str, Any] = {"jobDefinitions": page}
        if token:
            out["nextToken"] = token
        return out

    def deregister_job_definition(self, body: dict[str, Any]) -> dict[str, Any]:
        """DeregisterJobDefinition."""
        self.jobdefs.deregister(str(body.get("jobDefinition", "")))
        return {}

    # ----- jobs -----------------------------------------------------------------------------

    def submit_job(self, body: dict[str, Any]) -> dict[str, Any]:
        """SubmitJob: validate, build the job (and array children), hand it to the engine."""
        _check_size(body, MAX_SUBMIT_BYTES, "SubmitJob request")
        name = str(body.get("jobName", ""))
        if not JOB_NAME.match(name):
            raise ClientException(
                "Error executing request, Exception : Job name should match valid pattern: up to "
                "128 letters, numbers, hyphens and underscores, starting with a letter or number."
            )
        queue = self._queue(str(body.get("jobQueue", "")))
        jobdef = self.jobdefs.resolve(str(body.get("jobDefinition", "")))
        overrides = body.get("containerOverrides")
        if overrides is not None and len(json.dumps(overrides)) > MAX_OVERRIDES_CHARS:
            raise ClientException(
                f"Container Overrides length must be at most {MAX_OVERRIDES_CHARS}"
            )
        tags = dict(body.get("tags") or {})
        propagate = bool(body.get("propagateTags", jobdef.get("propagateTags", False)))
        if len(tags) > MAX_TAGS:
            raise ClientException(
                f"Error executing request, Exception : A job can have at most {MAX_TAGS} tags."
            )
        parameters = {**jobdef.get("parameters", {}), **(body.get("parameters") or {})}
        container = ecs = None
        if "containerProperties" in jobdef:
            if body.get("ecsPropertiesOverride"):
                raise ClientException(
                    "Error executing request, Exception : ecsPropertiesOverride is only valid for "
                    "a job definition with ecsProperties."
                )
            container, resources = jobspec.resolve_container(jobdef, body, parameters)
        else:
            if overrides:
                raise ClientException(
                    "Error executing request, Exception : containerOverrides is not valid for a "
                    "job definition with ecsProperties; use ecsPropertiesOverride."
                )
            ecs, resources = jobspec.resolve_ecs(jobdef, body, parameters)
        retry = dict(body.get("retryStrategy") or jobdef.get("retryStrategy") or {"attempts": 1})
        _check_retry(retry)
        timeout = (body.get("timeout") or jobdef.get("timeout") or {}).get("attemptDurationSeconds")
        if timeout is not None and int(timeout) < self.env.min_timeout_seconds:
            raise ClientException(
                f"Error executing request, Exception : timeout.attemptDurationSeconds must be at "
                f"least {self.env.min_timeout_seconds} seconds."
            )
        size = (body.get("arrayProperties") or {}).get("size")
        if size is not None and not 2 <= int(size) <= 10000:
            raise ClientException(
                "Error executing request, Exception : Array properties size must be between 2 "
                "and 10000."
            )
        depends_on = [dict(d) for d in body.get("dependsOn") or []]
        self._check_dependencies(depends_on, size)

        job_id = str(jobspec.new_uuid())
        created = now_ms()

        def make(jid: str, wait_for: list[str], index: int | None) -> Job:
            return Job(
                job_id=jid,
                name=name,
                arn=self.env.arn("job", jid),
                queue=queue,
                jobdef=jobdef,
                created_at=created,
                vcpus=resources.vcpus,
                memory_mib=resources.memory_mib,
                container=container,
                ecs=ecs,
                parameters=parameters,
                depends_on=depends_on,
                wait_for=wait_for,
                retry_strategy=retry,
                timeout_seconds=None if timeout is None else int(timeout),
                tags=tags,
                propagate_tags=propagate,
                array_size=None if size is None else int(size),
                array_index=index,
                parent_id=None if index is None else job_id,
            )

        plain = [d["jobId"] for d in depends_on if d.get("type") not in ("N_TO_N", "SEQUENTIAL")]
        parent = make(job_id, plain, None)
        jobs = [parent]
        if size is not None:
            for i in range(int(size)):
                waits = list(plain)
                for dep in depends_on:
                    if dep.get("type") == "N_TO_N":
                        waits.append(f"{dep['jobId']}:{i}")
                    elif dep.get("type") == "SEQUENTIAL" and i > 0:
                        waits.append(f"{job_id}:{i - 1}")
                child = make(f"{job_id}:{i}", waits, i)
                child.depends_on = []
                parent.children.append(child.job_id)
                jobs.append(child)
        self.engine.submit(jobs)
        return {"jobArn": parent.arn, "jobName": name, "jobId": job_id}

    def _queue(self, name: str) -> QueueBinding:
        """The queue a request names by name or ARN."""
        for queue in self.queues:
            if name in queue.names():
                return queue
        raise ClientException(f"JobQueue {name} not found.")

    def _check_dependencies(self, depends_on: list[dict[str, Any]], size: int | None) -> None:
        if len(depends_on) > MAX_DEPENDENCIES:
            raise ClientException(
                f"Error executing request, Exception : A job can depend on at most "
                f"{MAX_DEPENDENCIES} jobs; got {len(depends_on)}."
            )
        for dep in depends_on:
            kind = dep.get("type")
            if kind == "SEQUENTIAL":
                if size is None:
                    raise ClientException(
                        "Error executing request, Exception : SEQUENTIAL dependencies are only "
                        "valid for array jobs."
                    )
                continue
            dep_id = dep.get("jobId")
            if not dep_id or self.engine.status_of(str(dep_id)) is None:
                raise ClientException(
                    f"Error executing request, Exception : Dependent job ID {dep_id} is not found."
                )
            if kind == "N_TO_N":
                dep_size = self.engine.array_size_of(str(dep_id))
                if size is None or dep_size is None or dep_size != int(size):
                    raise ClientException(
                        "Error executing request, Exception : N_TO_N dependencies need two array "
                        "jobs of the same size."
                    )

    def describe_jobs(self, body: dict[str, Any]) -> dict[str, Any]:
        """DescribeJobs (at most 100 ids; unknown ids are left out, as Batch does)."""
        ids = [str(j) for j in body.get("jobs") or []]
        if len(ids) > 100:
            raise ClientException(
                "Error executing request, Exception : DescribeJobs accepts at most 100 job IDs."
            )
        return {"jobs": self.engine.describe(_job_id(i) for i in ids)}

    def list_jobs(self, body: dict[str, Any]) -> dict[str, Any]:
        """ListJobs by queue or array parent, by status (default RUNNING) or by filters."""
        array_id = body.get("arrayJobId")
        if body.get("multiNodeJobId"):
            return {"jobSummaryList": []}
        filters = {f["name"]: f.get("values", []) for f in body.get("filters") or []}
        status = body.get("jobStatus")
        if status is not None and status not in STATUSES:
            raise ClientException(f"Error executing request, Exception : Invalid status {status}.")
        if array_id:
            wanted = set(self.engine.children_of(str(array_id)))
            summaries = [s for s in self.engine.summaries() if s["jobId"] in wanted]
        else:
            queue = self._queue(str(body.get("jobQueue", "")))
            summaries = [
                s
                for s in self.engine.summaries(queue.queue_arn)
                if "index" not in s.get("arrayProperties", {})
            ]
        if filters:
            summaries = [s for s in summaries if _passes(s, filters)]
        else:
            summaries = [s for s in summaries if s["status"] == (status or "RUNNING")]
        start = int(body.get("nextToken") or 0)
        size = int(body.get("maxResults") or 100)
        page = summaries[start : start + size]
        out: dict[str, Any] = {"jobSummaryList": page}
        if start + size < len(summaries):
            out["nextToken"] = str(start + size)
        return out

    def terminate_job(self, body: dict[str, Any]) -> dict[str, Any]:
        """TerminateJob."""
        self._stop(str(body.get("jobId", "")), str(body.get("reason", "")), cancel_only=False)
        return {}

    def cancel_job(self, body: dict[str, Any]) -> dict[str, Any]:
        """CancelJob (jobs already STARTING or RUNNING are left running, as on Batch)."""
        self._stop(str(body.get("jobId", "")), str(body.get("reason", "")), cancel_only=True)
        return {}

    def terminate_jobs(self, body: dict[str, Any]) -> dict[str, Any]:
        """TerminateJobs (at most 50 ids)."""
        return self._stop_many(body, cancel_only=False)

    def cancel_jobs(self, body: dict[str, Any]) -> dict[str, Any]:
        """CancelJobs (at most 50 ids)."""
        return self._stop_many(body, cancel_only=True)

    def _stop_many(self, body: dict[str, Any], cancel_only: bool) -> dict[str, Any]:
        ids = [str(j) for j in body.get("jobs") or []]
        if not 1 <= len(ids) <= 50:
            raise ClientException(
                "Error executing request, Exception : between 1 and 50 job IDs are accepted."
            )
        successful, errors = [], []
        for job_id in ids:
            try:
                self._stop(job_id, str(body.get("reason", "")), cancel_only)
                successful.append(job_id)
            except ClientException as exc:
                errors.append({"job": job_id, "code": exc.code, "message": exc.message})
        return {"successful": successful, "errors": errors}

    def _stop(self, job_id: str, reason: str, cancel_only: bool) -> None:
        if not reason:
            raise ClientException("Error executing request, Exception : reason is required.")
        job_id = _job_id(job_id)
        if self.engine.status_of(job_id) is None:
            raise ClientException(f"Error executing request, Exception : Job {job_id} not found.")
        self.engine.terminate(job_id, reason, cancel_only)


def _check_retry(retry: dict[str, Any]) -> None:
    attempts = int(retry.get("attempts", 1))
    if not 1 <= attempts <= 10:
        raise ClientException(
            "Error executing request, Exception : retryStrategy.attempts must be between 1 and 10."
        )
    retry["attempts"] = attempts
    rules = retry.get("evaluateOnExit") or []
    if len(rules) > 5:
        raise ClientException(
            "Error executing request, Exception : retryStrategy.evaluateOnExit takes at most 5 "
            "rules."
        )
    for rule in rules:
        if str(rule.get("action", "")).upper() not in ("RETRY", "EXIT"):
            raise ClientException(
                "Error executing request, Exception : evaluateOnExit action must be RETRY or EXIT."
            )
        for key in ("onExitCode", "onReason", "onStatusReason"):
            if len(str(rule.get(key, ""))) > 512:
                raise ClientException(
                    f"Error executing request, Exception : evaluateOnExit.{key} is longer than "
                    f"512 characters."
                )


def _check_size(body: dict[str, Any], limit: int, what: str) -> None:
    size = len(json.dumps(body, separators=(",", ":")).encode())
    if size > limit:
        raise ClientException(
            f"Error executing request, Exception : The {what} is {size} bytes; the limit is "
            f"{limit // 1024} KiB."
        )


def _job_id(ref: str) -> str:
    """A job id from an id or a job ARN."""
    return ref.rsplit("/", 1)[-1] if ref.startswith("arn:") else ref


def _passes(summary: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    import fnmatch

    for key, values in filters.items():
        if not values:
            continue
        value = values[0]
        if key == "JOB_NAME" and not fnmatch.fnmatchcase(summary["jobName"], value):
            return False
        if key == "JOB_DEFINITION":
            arn = str(summary["jobDefinition"])
            name = arn.rsplit("/", 1)[-1]
            if not (
                fnmatch.fnmatchcase(arn, value)
                or fnmatch.fnmatchcase(name, value)
                or fnmatch.fnmatchcase(name.split(":")[0], value)
            ):
                return False
        if key == "BEFORE_CREATED_AT" and not summary["createdAt"] < int(value):
            return False
        if key == "AFTER_CREATED_AT" and not summary["createdAt"] > int(value):
            return False
    return True


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
