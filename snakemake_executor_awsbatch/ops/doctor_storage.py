"""The doctor's checks of where data lives and who may touch it: bucket, EFS, job role."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from snakemake_executor_awsbatch.ops.checks import Check, Status, error_code, guard, is_denied

if TYPE_CHECKING:
    from snakemake_executor_awsbatch.ops.doctor import Clients, DoctorTarget


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
            if error_code(exc) in ("404", "NoSuchBucket"):
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

    return guard(f"bucket {bucket}", "s3:ListBucket on the bucket", body)


def _bucket_encryption(s3: Any, bucket: str) -> Check:
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"][
            "Rules"
        ]
    except ClientError as exc:
        if error_code(exc) == "ServerSideEncryptionConfigurationNotFoundError":
            return Check(
                "bucket encryption",
                Status.WARN,
                "no default encryption configured (S3 still applies SSE-S3 to new objects)",
                "set default encryption: `aws s3api put-bucket-encryption` (see docs/security.md).",
            )
        if is_denied(exc):
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
            f"probe object failed: {error_code(exc)}",
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
        if error_code(exc) == "NoSuchBucketPolicy":
            return Check("bucket TLS-only", Status.WARN, "no bucket policy", fix)
        if is_denied(exc):
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
            if error_code(exc) == "FileSystemNotFound":
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

    return guard(f"EFS {fs_id}", "elasticfilesystem:Describe*", body)


def _access_point(efs: Any, fs_id: str, ap_id: str) -> Check:
    try:
        points = efs.describe_access_points(AccessPointId=ap_id)["AccessPoints"]
    except ClientError as exc:
        if error_code(exc) == "AccessPointNotFound":
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
            if error_code(exc) == "NoSuchEntity":
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
    return guard("job role", "iam:GetRole", body)
