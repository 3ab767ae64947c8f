"""`awsbatch doctor`: preflight checks of an account (or the local cloud) before a run.

Every check returns a `Check` with PASS/WARN/FAIL/SKIP and, for anything not passing, a fix the
user can apply. Clients are passed in, so the checks run unchanged against real AWS, moto and the
local cloud (AWS_ENDPOINT_URL).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from snakemake_executor_awsbatch.ops.capacity import Request, check_capacity
from snakemake_executor_awsbatch.ops.checks import Check, Status


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
            endpoint_url=endpoint_url or _configured_endpoint(session),
            batch=client("batch"),
            s3=client("s3"),
            efs=client("efs"),
            sts=client("sts"),
            iam=client("iam"),
        )

    @property
    def is_local(self) -> bool:
        """True when the endpoint is on this machine (the local cloud or moto)."""
        if not self.endpoint_url:
            return False
        host = urlparse(self.endpoint_url).hostname or ""
        return host in ("127.0.0.1", "localhost", "::1")


def _configured_endpoint(session: boto3.session.Session) -> str | None:
    value = session._session.get_config_variable("endpoint_url")  # AWS_ENDPOINT_URL / config file
    return str(value) if value else None


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _denied(exc: ClientError) -> bool:
    code = _error_code(exc)
    return code in ("AccessDenied", "AccessDeniedException", "403", "UnauthorizedOperation")


def _guard(name: str, actions: str, body: Callable[[], list[Check]]) -> list[Check]:
    """Run a group of checks, turning access and connection errors into FAIL lines with a fix."""
    try:
        return body()
    except ClientError as exc:
        if _denied(exc):
            return [
                Check(
                    name,
                    Status.FAIL,
                    f"access denied: {exc}",
                    f"allow {actions} for the identity running the workflow.",
                )
            ]
        return [Check(name, Status.FAIL, str(exc), "see the error above; docs/troubleshooting.md")]
    except BotoCoreError as exc:
        return [
            Check(name, Status.FAIL, str(exc), "check the region, endpoint URL and network access.")
        ]


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

    return _guard(
        "job queue", "batch:DescribeJobQueues and batch:DescribeComputeEnvironments", body
    )


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


def check_bucket(clients: Clients, target: DoctorTarget) -> list[Check]:
    """The bucket exists, is readable and writable, encrypted, and (on AWS) TLS-only."""
    if not target.bucket:
        return [
            Check(
                "bucket",
                Status.FAIL,
                "no bucket given",
                "pass --bucket (the BucketName output of infra/template.yaml).",
            )
        ]
    bucket = target.bucket
    s3 = clients.s3

    def body() -> list[Check]:
        try:
            s3.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if _error_code(exc) in ("404", "NoSuchBucket"):
                return [
                    Check(
                        f"bucket {bucket}",
                        Status.FAIL,
                        "bucket does not exist",
                        "create it with infra/template.yaml or fix the bucket name.",
                    )
                ]
            raise
        checks = [Check(f"bucket {bucket}", Status.PASS, "exists and is reachable")]
        checks.append(_bucket_encryption(s3, bucket))
        if target.write_probe:
            checks.append(_bucket_probe(s3, bucket))
        if clients.is_local:
            checks.append(Check("bucket TLS-only", Status.SKIP, "not applicable locally"))
        else:
            checks.append(_bucket_tls(s3, bucket))
        return checks

    return _guard(f"bucket {bucket}", "s3:ListBucket on the bucket", body)


def _bucket_encryption(s3: Any, bucket: str) -> Check:
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"][
            "Rules"
        ]
    except ClientError as exc:
        if _error_code(exc) == "ServerSideEncryptionConfigurationNotFoundError":
            return Check(
                "bucket encryption",
                Status.WARN,
                "no default encryption configured (S3 still applies SSE-S3 to new objects)",
                "set default encryption: `aws s3api put-bucket-encryption` (see docs/security.md).",
            )
        if _denied(exc):
            return Check(
                "bucket encryption",
                Status.WARN,
                "cannot read the encryption setting",
                "allow s3:GetEncryptionConfiguration to check it.",
            )
        raise
    algorithm = rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] if rules else "?"
    return Check("bucket encryption", Status.PASS, f"default {algorithm}")


def _bucket_probe(s3: Any, bucket: str) -> Check:
    key = f".awsbatch-doctor/{uuid.uuid4().hex}"
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=b"awsbatch doctor probe")
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        s3.delete_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        return Check(
            "bucket read/write",
            Status.FAIL,
            f"probe object failed: {_error_code(exc)}",
            "allow s3:PutObject, s3:GetObject and s3:DeleteObject on the bucket's objects.",
        )
    ok = body == b"awsbatch doctor probe"
    return Check(
        "bucket read/write",
        Status.PASS if ok else Status.FAIL,
        "put, get and delete of a probe object" if ok else "probe read back different bytes",
        "" if ok else "check for a proxy or object lambda rewriting objects.",
    )


def _bucket_tls(s3: Any, bucket: str) -> Check:
    fix = "add the DenyInsecureTransport statement of infra/template.yaml to the bucket policy."
    try:
        policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    except ClientError as exc:
        if _error_code(exc) == "NoSuchBucketPolicy":
            return Check("bucket TLS-only", Status.WARN, "no bucket policy", fix)
        if _denied(exc):
            return Check("bucket TLS-only", Status.WARN, "cannot read the bucket policy", fix)
        raise
    ok = "aws:SecureTransport" in policy
    return Check(
        "bucket TLS-only",
        Status.PASS if ok else Status.WARN,
        "policy denies plain HTTP" if ok else "policy does not deny plain HTTP",
        "" if ok else fix,
    )


def check_efs(clients: Clients, target: DoctorTarget) -> list[Check]:
    """The reference file system is available, has mount targets, and owns the access point."""
    if not target.efs_file_system_id:
        return [Check("EFS", Status.SKIP, "no file system given (references are staged)")]
    fs_id = target.efs_file_system_id
    efs = clients.efs

    def body() -> list[Check]:
        try:
            fs = efs.describe_file_systems(FileSystemId=fs_id)["FileSystems"][0]
        except ClientError as exc:
            if _error_code(exc) == "FileSystemNotFound":
                return [
                    Check(
                        f"EFS {fs_id}",
                        Status.FAIL,
                        "file system not found",
                        f"check the id and region ({clients.region}): `aws efs "
                        "describe-file-systems`.",
                    )
                ]
            raise
        state = fs.get("LifeCycleState")
        checks = [
            Check(
                f"EFS {fs_id}",
                Status.PASS if state == "available" else Status.FAIL,
                f"{state}, {'encrypted' if fs.get('Encrypted') else 'NOT encrypted'}",
                "" if state == "available" else "wait until it is available or recreate it.",
            )
        ]
        if clients.is_local:
            checks.append(Check("EFS mount targets", Status.SKIP, "local: a host directory"))
        else:
            targets = efs.describe_mount_targets(FileSystemId=fs_id)["MountTargets"]
            checks.append(
                Check(
                    "EFS mount targets",
                    Status.PASS if targets else Status.FAIL,
                    f"{len(targets)} mount target(s)",
                    ""
                    if targets
                    else "create one per subnet of the compute environments "
                    "(MountTargetA/B in infra/template.yaml).",
                )
            )
        if target.efs_access_point_id:
            checks.append(_access_point(efs, fs_id, target.efs_access_point_id))
        return checks

    return _guard(f"EFS {fs_id}", "elasticfilesystem:Describe*", body)


def _access_point(efs: Any, fs_id: str, ap_id: str) -> Check:
    try:
        points = efs.describe_access_points(AccessPointId=ap_id)["AccessPoints"]
    except ClientError as exc:
        if _error_code(exc) == "AccessPointNotFound":
            points = []
        else:
            raise
    if not points:
        return Check(
            f"access point {ap_id}",
            Status.FAIL,
            "not found",
            f"list the file system's access points: `aws efs describe-access-points "
            f"--file-system-id {fs_id}`.",
        )
    point = points[0]
    if point.get("FileSystemId") != fs_id:
        return Check(
            f"access point {ap_id}",
            Status.FAIL,
            f"belongs to {point.get('FileSystemId')}, not {fs_id}",
            "use an access point of the same file system.",
        )
    root = point.get("RootDirectory", {}).get("Path", "/")
    return Check(f"access point {ap_id}", Status.PASS, f"root {root}")


def check_job_role(clients: Clients, target: DoctorTarget) -> list[Check]:
    """The job role exists and ECS tasks may assume it."""
    if not target.job_role_arn:
        return [
            Check(
                "job role",
                Status.WARN,
                "none: jobs get the instance role's permissions and EFS IAM auth cannot work",
                "pass --job-role-arn (the JobRoleArn output of infra/template.yaml).",
            )
        ]
    arn = target.job_role_arn
    name = arn.rsplit("/", 1)[-1]

    def body() -> list[Check]:
        try:
            role = clients.iam.get_role(RoleName=name)["Role"]
        except ClientError as exc:
            if _error_code(exc) == "NoSuchEntity":
                return [
                    Check(
                        "job role",
                        Status.FAIL,
                        f"role {name} not found",
                        "create it with infra/template.yaml or fix the ARN.",
                    )
                ]
            raise
        trust = role.get("AssumeRolePolicyDocument", {})
        if "ecs-tasks.amazonaws.com" not in str(trust):
            return [
                Check(
                    "job role",
                    Status.FAIL,
                    f"{name} cannot be assumed by ECS tasks",
                    "add ecs-tasks.amazonaws.com as a trusted principal of the role.",
                )
            ]
        return [Check("job role", Status.PASS, f"{name}, trusted by ecs-tasks")]

    if clients.is_local:
        try:
            return body()
        except (ClientError, BotoCoreError):
            return [Check("job role", Status.SKIP, "the local endpoint has no IAM")]
    return _guard("job role", "iam:GetRole", body)


def run_doctor(clients: Clients, target: DoctorTarget) -> list[Check]:
    """Every check, in the order a run needs them."""
    groups: Iterable[Callable[[], list[Check]]] = (
        lambda: check_credentials(clients),
        lambda: check_region(clients),
        lambda: check_queue_and_environments(clients, target),
        lambda: check_bucket(clients, target),
        lambda: check_efs(clients, target),
        lambda: check_job_role(clients, target),
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
