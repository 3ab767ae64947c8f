"""`awsbatch doctor`: preflight checks of an account (or the local cloud) before a run.

Every check returns a `Check` with PASS/WARN/FAIL/SKIP and, for anything not passing, a fix the
user can apply. Clients are passed in, so the checks run unchanged against real AWS, moto and the
local cloud (AWS_ENDPOINT_URL).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from snakemake_executor_awsbatch.ops.capacity import Request, check_capacity
from snakemake_executor_awsbatch.ops.checks import Check, Status, guard
from snakemake_executor_awsbatch.ops.doctor_image import check_image
from snakemake_executor_awsbatch.ops.doctor_storage import check_bucket, check_efs, check_job_role


@dataclass(frozen=True)
class DoctorTarget:
    """What to check: the resources a run will use and its largest resource request."""

    queue: str | None = None
    bucket: str | None = None
    efs_file_system_id: str | None = None
    efs_access_point_id: str | None = None
    job_role_arn: str | None = None
    request: Request | None = None
    write_probe: bool = True
    image: str | None = None


@dataclass(frozen=True)
class Clients:
    """The AWS clients the doctor uses, all bound to one region and endpoint."""

    session: boto3.session.Session
    region: str | None
    endpoint_url: str | None
    batch: Any
    s3: Any
    efs: Any
    sts: Any
    iam: Any
    ecr: Any

    @classmethod
    def create(
        cls,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        profile: str | None = None,
    ) -> Clients:
        """Clients from the standard credential chain (AWS_ENDPOINT_URL is honoured by boto3)."""
        session = boto3.session.Session(profile_name=profile, region_name=region)
        name = session.region_name

        def client(service: str) -> Any:
            return session.client(service, region_name=name, endpoint_url=endpoint_url)  # type: ignore[call-overload]

        return cls(
            session=session,
            region=name,
            endpoint_url=endpoint_url or _configured_endpoint(),
            batch=client("batch"),
            s3=client("s3"),
            efs=client("efs"),
            sts=client("sts"),
            iam=client("iam"),
            ecr=client("ecr"),
        )

    @property
    def is_local(self) -> bool:
        """True when the endpoint is on this machine (the local cloud or moto)."""
        if not self.endpoint_url:
            return False
        host = urlparse(self.endpoint_url).hostname or ""
        return host in ("127.0.0.1", "localhost", "::1")


def _configured_endpoint() -> str | None:
    # boto3 itself honours AWS_ENDPOINT_URL; the doctor only needs it to tell local from AWS.
    return os.environ.get("AWS_ENDPOINT_URL") or None


def check_credentials(clients: Clients) -> list[Check]:
    """Credentials are found and accepted (STS GetCallerIdentity)."""
    creds = clients.session.get_credentials()
    if creds is None:
        return [
            Check(
                "credentials",
                Status.FAIL,
                "no AWS credentials found",
                "run `aws configure`, set AWS_PROFILE, or export AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY.",
            )
        ]
    try:
        who = clients.sts.get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        if clients.is_local:
            return [Check("credentials", Status.PASS, f"found ({creds.method}); local endpoint")]
        return [
            Check(
                "credentials",
                Status.FAIL,
                f"credentials were rejected: {exc}",
                "refresh them (e.g. `aws sso login`) or fix AWS_PROFILE.",
            )
        ]
    return [Check("credentials", Status.PASS, f"{who['Arn']} (account {who['Account']})")]


def check_region(clients: Clients) -> list[Check]:
    """A region is set and Batch exists there."""
    region = clients.region
    if not region:
        return [
            Check(
                "region",
                Status.FAIL,
                "no region configured",
                "export AWS_REGION (e.g. us-east-1) or pass --region.",
            )
        ]
    known = clients.session.get_available_regions("batch")
    if not clients.is_local and known and region not in known:
        return [
            Check(
                "region",
                Status.FAIL,
                f"{region} is not a region with AWS Batch",
                f"use one of: {', '.join(sorted(known)[:6])}, ...",
            )
        ]
    where = f" via {clients.endpoint_url}" if clients.endpoint_url else ""
    return [Check("region", Status.PASS, f"{region}{where}")]


def check_queue_and_environments(clients: Clients, target: DoctorTarget) -> list[Check]:
    """The job queue exists and is usable, and its compute environments can run the request."""
    if not target.queue:
        return [
            Check(
                "job queue",
                Status.FAIL,
                "no job queue given",
                "pass --queue (the SpotQueueName output of infra/template.yaml).",
            )
        ]
    queue_name = target.queue

    def body() -> list[Check]:
        queues = clients.batch.describe_job_queues(jobQueues=[queue_name])["jobQueues"]
        if not queues:
            return [
                Check(
                    "job queue",
                    Status.FAIL,
                    f"job queue {queue_name!r} not found in {clients.region}",
                    "create it with infra/template.yaml (docs/aws-setup.md) or pass the name of "
                    "an existing queue (`aws batch describe-job-queues`).",
                )
            ]
        queue = queues[0]
        checks = [_queue_state(queue)]
        order = sorted(queue.get("computeEnvironmentOrder", []), key=lambda o: o["order"])
        arns = [o["computeEnvironment"] for o in order]
        if not arns:
            checks.append(
                Check(
                    "compute environments",
                    Status.FAIL,
                    f"queue {queue_name!r} has no compute environment",
                    "attach one: `aws batch update-job-queue --job-queue "
                    f"{queue_name} --compute-environment-order order=1,computeEnvironment=<ce>`.",
                )
            )
            return checks
        envs = clients.batch.describe_compute_environments(computeEnvironments=arns)[
            "computeEnvironments"
        ]
        by_arn = {e["computeEnvironmentArn"]: e for e in envs}
        by_arn.update({e["computeEnvironmentName"]: e for e in envs})
        ordered = [by_arn[a] for a in arns if a in by_arn]
        for env in ordered:
            checks.append(_environment_state(env))
        checks.extend(check_capacity(ordered, target.request))
        return checks

    return guard("job queue", "batch:DescribeJobQueues and batch:DescribeComputeEnvironments", body)


def _queue_state(queue: dict[str, Any]) -> Check:
    name = queue["jobQueueName"]
    if queue.get("state") != "ENABLED":
        return Check(
            f"queue {name}",
            Status.FAIL,
            f"state {queue.get('state')}",
            f"enable it: `aws batch update-job-queue --job-queue {name} --state ENABLED`.",
        )
    if queue.get("status") == "INVALID":
        return Check(
            f"queue {name}",
            Status.FAIL,
            f"status INVALID: {queue.get('statusReason', '')}",
            "fix the cause named in the status reason, then update the queue.",
        )
    return Check(f"queue {name}", Status.PASS, f"ENABLED, priority {queue.get('priority')}")


def _environment_state(env: dict[str, Any]) -> Check:
    name = env["computeEnvironmentName"]
    if env.get("state") != "ENABLED":
        return Check(
            f"compute env {name}",
            Status.FAIL,
            f"state {env.get('state')}: jobs wait in RUNNABLE",
            "enable it: `aws batch update-compute-environment --compute-environment "
            f"{name} --state ENABLED`.",
        )
    if env.get("status") == "INVALID":
        return Check(
            f"compute env {name}",
            Status.FAIL,
            f"status INVALID: {env.get('statusReason', '')}",
            "fix the cause named in the status reason (often the service role, instance "
            "profile or subnets) and update the compute environment.",
        )
    resources = env.get("computeResources", {})
    kind = resources.get("type", env.get("type", "?"))
    return Check(
        f"compute env {name}",
        Status.PASS,
        f"ENABLED {kind}, max {resources.get('maxvCpus', '?')} vCPUs",
    )


def run_doctor(clients: Clients, target: DoctorTarget) -> list[Check]:
    """Every check, in the order a run needs them."""
    groups: Iterable[Callable[[], list[Check]]] = (
        lambda: check_credentials(clients),
        lambda: check_region(clients),
        lambda: check_queue_and_environments(clients, target),
        lambda: check_bucket(clients, target),
        lambda: check_efs(clients, target),
        lambda: check_job_role(clients, target),
        lambda: check_image(clients, target.image),
    )
    return [check for group in groups for check in group()]


def render_table(checks: list[Check]) -> str:
    """A plain-text pass/fail table with each fix under its failing line."""
    width = max([len(c.name) for c in checks] + [5])
    lines = [f"{'STATUS':6}  {'CHECK':{width}}  DETAIL"]
    for check in checks:
        lines.append(f"{check.status.value:6}  {check.name:{width}}  {check.detail}")
        if check.fix and check.status in (Status.FAIL, Status.WARN):
            lines.append(f"{'':6}  {'':{width}}  fix: {check.fix}")
    failed = sum(c.status is Status.FAIL for c in checks)
    warned = sum(c.status is Status.WARN for c in checks)
    lines.append(f"{failed} failed, {warned} warning(s), {len(checks)} checks")
    return "\n".join(lines)
