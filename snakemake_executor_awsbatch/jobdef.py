"""TaskSpec -> RegisterJobDefinition and SubmitJob requests, with no I/O.

A job definition holds only what is shared by many jobs (image, launcher command, volumes, roles,
platform); it is named by a hash of that content, so it is registered once and reused across jobs
and runs. Everything per job travels in SubmitJob: resources as `containerOverrides`, the task
spec as a parameter holding an S3 pointer (`Ref::taskspec`), never the payload itself.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.resources import normalise
from snakemake_executor_awsbatch.retry import retry_strategy
from snakemake_executor_awsbatch.secrets import check_env_names, check_no_secrets
from snakemake_executor_awsbatch.taskspec import EfsMount, Platform, TaskSpec

LAUNCHER_COMMAND = ("python", "-m", "snakemake_executor_awsbatch.launcher", "Ref::taskspec")
SPEC_PARAMETER = "taskspec"
NAME_PREFIX = "awsbatch"

MAX_OVERRIDES_CHARS = 8192
MAX_SUBMIT_BYTES = 30 * 1024
MAX_JOBDEF_BYTES = 24 * 1024
MAX_DEPENDS_ON = 20
MAX_TAGS = 50
MIN_TIMEOUT_SECONDS = 60

_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]")


def job_name(name: str) -> str:
    """A valid Batch job name (<= 128 chars of [A-Za-z0-9_-], starting alphanumeric)."""
    cleaned = _NAME_BAD.sub("_", name) or "job"
    if not cleaned[0].isalnum():
        cleaned = "j" + cleaned
    return cleaned[:128]


def _volume(mount: EfsMount) -> dict[str, Any]:
    # TLS always: genomics data is sensitive, and the project's template refuses non-TLS EFS
    # clients in its file system policy (Batch requires it with an access point anyway).
    config: dict[str, Any] = {"fileSystemId": mount.file_system_id, "transitEncryption": "ENABLED"}
    if mount.access_point_id:
        if mount.root_directory not in ("", "/"):
            raise UserError(
                f"EFS mount at {mount.container_path} sets root directory "
                f"'{mount.root_directory}' together with access point {mount.access_point_id}; "
                "set the directory on the access point and leave the root directory '/'."
            )
        config["authorizationConfig"] = {
            "accessPointId": mount.access_point_id,
            "iam": "ENABLED" if mount.iam_auth else "DISABLED",
        }
    else:
        config["rootDirectory"] = mount.root_directory or "/"
        if mount.iam_auth:
            raise UserError(
                f"EFS mount at {mount.container_path} asks for IAM authorisation without an "
                "access point; give it an access point id or turn IAM auth off."
            )
    return {"name": mount.volume_name, "efsVolumeConfiguration": config}


def _check_mounts(spec: TaskSpec) -> None:
    seen: set[str] = set()
    for mount in spec.mounts:
        if not mount.container_path.startswith("/"):
            raise UserError(
                f"EFS mount path '{mount.container_path}' is not absolute; "
                "give it as an absolute path such as /refs."
            )
        if mount.container_path in seen:
            raise UserError(
                f"two EFS mounts share the path {mount.container_path}; give each its own path."
            )
        seen.add(mount.container_path)
        if mount.iam_auth and not spec.job_role_arn:
            raise UserError(
                f"EFS mount at {mount.container_path} uses IAM authorisation but the job has no "
                "job role; set a job role ARN or turn IAM auth off."
            )


def job_definition_request(spec: TaskSpec) -> dict[str, Any]:
    """The RegisterJobDefinition request for a spec, named by a hash of its content."""
    if not spec.image:
        raise UserError(f"task {spec.name} has no container image; set one.")
    _check_mounts(spec)
    fargate = spec.platform is Platform.FARGATE
    # Placeholder sizes: the real ones always travel as overrides, so they do not split the hash.
    base = normalise(0.25 if fargate else 1, 512 if fargate else 2048, 0, spec.platform)
    container: dict[str, Any] = {
        "image": spec.image,
        "command": list(LAUNCHER_COMMAND),
        "resourceRequirements": base.requirements(),
    }
    volumes = {m.volume_name: _volume(m) for m in spec.mounts}
    if volumes:
        container["volumes"] = list(volumes.values())
        container["mountPoints"] = [
            {
                "containerPath": m.container_path,
                "sourceVolume": m.volume_name,
                "readOnly": m.read_only,
            }
            for m in spec.mounts
        ]
    if spec.job_role_arn:
        container["jobRoleArn"] = spec.job_role_arn
    if spec.execution_role_arn:
        container["executionRoleArn"] = spec.execution_role_arn
    if fargate:
        if not spec.execution_role_arn:
            raise UserError(
                f"task {spec.name} runs on Fargate without an execution role; "
                "set an execution role ARN (Fargate needs one to pull images and write logs)."
            )
        platform_version = "1.4.0" if spec.mounts else "LATEST"
        container["fargatePlatformConfiguration"] = {"platformVersion": platform_version}
        public = "ENABLED" if spec.assign_public_ip else "DISABLED"
        container["networkConfiguration"] = {"assignPublicIp": public}
        if spec.ephemeral_storage_gib is not None:
            size = min(max(spec.ephemeral_storage_gib, 21), 200)
            container["ephemeralStorage"] = {"sizeInGiB": size}
    body: dict[str, Any] = {
        "type": "container",
        "parameters": {SPEC_PARAMETER: "unset"},
        "containerProperties": container,
        "platformCapabilities": [spec.platform.value],
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    request = {"jobDefinitionName": f"{NAME_PREFIX}-{digest}", **body}
    check_no_secrets(request, "the job definition")
    size = len(json.dumps(request).encode())
    if size > MAX_JOBDEF_BYTES:
        raise UserError(
            f"the job definition for task {spec.name} is {size} bytes, over Batch's 24 KiB; "
            "use fewer EFS mounts."
        )
    return request


def _tags(tags: Mapping[str, str]) -> dict[str, str]:
    if len(tags) > MAX_TAGS:
        raise UserError(f"{len(tags)} tags were given; Batch allows at most 50, so drop some.")
    for key, value in tags.items():
        if not key or len(key) > 128 or key.lower().startswith("aws:"):
            raise UserError(f"tag key '{key}' is invalid; use 1-128 characters not starting aws:.")
        if len(value) > 256:
            raise UserError(f"tag '{key}' has a value over 256 characters; shorten it.")
    return dict(tags)


def submit_request(
    spec: TaskSpec,
    job_definition: str,
    *,
    environment: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The SubmitJob request: the pointer to the spec in S3 plus per-job overrides."""
    res = normalise(spec.vcpus, spec.memory_mib, spec.gpus, spec.platform)
    overrides: dict[str, Any] = {"resourceRequirements": res.requirements()}
    env = dict(environment or {})
    if env:
        check_env_names(env, "the job's environment overrides")
        overrides["environment"] = [{"name": k, "value": v} for k, v in sorted(env.items())]
    spec_uri = spec.launch.staging.spec_uri
    if spec.job_definition:
        # A user's definition may run anything: point its command at the launcher explicitly.
        overrides["command"] = [*LAUNCHER_COMMAND[:-1], spec_uri]
    request: dict[str, Any] = {
        "jobName": job_name(spec.name),
        "jobQueue": spec.queue,
        "jobDefinition": job_definition,
        "parameters": {SPEC_PARAMETER: spec_uri},
        "containerOverrides": overrides,
    }
    strategy = retry_strategy(spec.retry)
    if strategy:
        request["retryStrategy"] = strategy
    if spec.timeout_seconds is not None:
        request["timeout"] = {
            "attemptDurationSeconds": max(MIN_TIMEOUT_SECONDS, int(spec.timeout_seconds))
        }
    if spec.tags:
        request["tags"] = _tags(spec.tags)
        request["propagateTags"] = True
    if spec.depends_on:
        if len(spec.depends_on) > MAX_DEPENDS_ON:
            raise UserError(
                f"task {spec.name} depends on {len(spec.depends_on)} Batch jobs, over Batch's 20; "
                "let the workflow engine wait for them instead of Batch."
            )
        request["dependsOn"] = [{"jobId": j} for j in spec.depends_on]
    check_no_secrets(request, "the SubmitJob request")
    check_request_size(request, spec.name)
    return request


def check_request_size(request: Mapping[str, Any], name: str) -> None:
    """Refuse a SubmitJob request over Batch's limits before it reaches the API."""
    overrides = len(json.dumps(request.get("containerOverrides", {})))
    if overrides > MAX_OVERRIDES_CHARS:
        raise UserError(
            f"the container overrides of task {name} are {overrides} characters, over Batch's "
            "8,192; move environment values into the task spec (they travel through S3)."
        )
    size = len(json.dumps(request).encode())
    if size > MAX_SUBMIT_BYTES:
        raise UserError(
            f"the SubmitJob request of task {name} is {size} bytes, over Batch's 30 KiB; "
            "use fewer tags or dependencies."
        )
