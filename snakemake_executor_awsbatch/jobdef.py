"""TaskSpec -> RegisterJobDefinition and SubmitJob requests, with no I/O.

A job definition holds only what is shared by many jobs (image, launcher command, volumes, roles,
platform); it is named by a hash of that content, so it is registered once and reused across jobs
and runs. Everything per job travels in SubmitJob: resources as `containerOverrides`, the task
spec as a parameter holding an S3 pointer (`Ref::taskspec`), never the payload itself. A spec with
a `companion_image` becomes a multi-container (`ecsProperties`) job instead: staging runs in
companion containers of the project's image around the tool's container, sharing one task volume.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.resources import Resources, normalise, snap_fargate
from snakemake_executor_awsbatch.retry import retry_strategy
from snakemake_executor_awsbatch.secrets import check_env_names, check_no_secrets
from snakemake_executor_awsbatch.taskspec import EfsMount, Platform, TaskSpec

LAUNCHER_COMMAND = ("python", "-m", "snakemake_executor_awsbatch.launcher", "Ref::taskspec")

# The companion layout: one task volume shared by three containers, at the same path in each.
COMPANION_VOLUME = "awsbatch-work"
COMPANION_DIR = "/awsbatch-work"
PAYLOAD_SCRIPT = ".payload.sh"  # written by stage-in, run by `main` with /bin/sh
EXIT_CODE_FILE = ".exit-code"  # written by `main`, read by stage-out
STAGE_IN, MAIN, STAGE_OUT = "stage-in", "main", "stage-out"
# The tool image needs only /bin/sh: it runs the script stage-in wrote and records its code.
MAIN_COMMAND = (
    "/bin/sh",
    "-c",
    f"/bin/sh {COMPANION_DIR}/{PAYLOAD_SCRIPT}; code=$?; "
    f"echo $code > {COMPANION_DIR}/{EXIT_CODE_FILE}; exit $code",
)
# What each companion reserves. EC2: a whole vCPU, the documented minimum for EC2 resources;
# Fargate: the smallest share. Staging is I/O-bound; 512 MiB holds the launcher and its buffers.
COMPANION_VCPUS = {Platform.EC2: 1.0, Platform.FARGATE: 0.25}
COMPANION_MEMORY_MIB = 512
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


def _mount_points(mounts: tuple[EfsMount, ...]) -> list[dict[str, Any]]:
    return [
        {"containerPath": m.container_path, "sourceVolume": m.volume_name, "readOnly": m.read_only}
        for m in mounts
    ]


def _check_definition(spec: TaskSpec) -> None:
    if not spec.image:
        raise UserError(f"task {spec.name} has no container image; set one.")
    _check_mounts(spec)
    if spec.platform is Platform.FARGATE and not spec.execution_role_arn:
        raise UserError(
            f"task {spec.name} runs on Fargate without an execution role; "
            "set an execution role ARN (Fargate needs one to pull images and write logs)."
        )


def _fargate_fields(spec: TaskSpec) -> dict[str, Any]:
    """Fargate-only settings, the same in `containerProperties` and in ECS task properties."""
    out: dict[str, Any] = {
        "platformVersion": "1.4.0" if spec.mounts else "LATEST",
        "networkConfiguration": {
            "assignPublicIp": "ENABLED" if spec.assign_public_ip else "DISABLED"
        },
    }
    if spec.ephemeral_storage_gib is not None:
        out["ephemeralStorage"] = {"sizeInGiB": min(max(spec.ephemeral_storage_gib, 21), 200)}
    return out


def _container_body(spec: TaskSpec) -> dict[str, Any]:
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
        container["mountPoints"] = _mount_points(spec.mounts)
    if spec.job_role_arn:
        container["jobRoleArn"] = spec.job_role_arn
    if spec.execution_role_arn:
        container["executionRoleArn"] = spec.execution_role_arn
    if fargate:
        extra = _fargate_fields(spec)
        container["fargatePlatformConfiguration"] = {"platformVersion": extra["platformVersion"]}
        container["networkConfiguration"] = extra["networkConfiguration"]
        if "ephemeralStorage" in extra:
            container["ephemeralStorage"] = extra["ephemeralStorage"]
    return {"containerProperties": container}


def job_definition_request(spec: TaskSpec) -> dict[str, Any]:
    """The RegisterJobDefinition request for a spec, named by a hash of its content."""
    _check_definition(spec)
    properties = _companion_body(spec) if spec.companion_image else _container_body(spec)
    body: dict[str, Any] = {
        "type": "container",
        "parameters": {SPEC_PARAMETER: "unset"},
        **properties,
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


def _phase_command(phase: str) -> list[str]:
    return [*LAUNCHER_COMMAND[:-1], "--phase", phase, LAUNCHER_COMMAND[-1]]


def _check_companion(spec: TaskSpec) -> None:
    """Paths the payload sees must lie on the shared volume, or stage-in would fill its own disk."""
    if spec.job_definition:
        raise UserError(
            f"task {spec.name} sets both a job definition and a companion image; the companion "
            "layout registers its own definition, so drop one of the two."
        )
    launch = spec.launch
    paths = [launch.workdir or ""] + [
        f.path for f in (*launch.staging.inputs, *launch.staging.outputs, *launch.staging.logs)
    ]
    for path in paths:
        if path.startswith("/") and not (path + "/").startswith(COMPANION_DIR + "/"):
            raise UserError(
                f"task {spec.name} uses the absolute path {path} with a companion image; only "
                f"paths under {COMPANION_DIR} are shared between containers, so use relative "
                f"paths or paths under {COMPANION_DIR}."
            )


def _companion_shares(spec: TaskSpec) -> tuple[Resources, Resources]:
    """(main container, each companion): main gets the job's request, companions a fixed share.

    On Fargate the task's total must be an allowed pair, so the total is snapped and main gets
    what the companions leave of it."""
    companion_cpu = COMPANION_VCPUS[spec.platform]
    companion = Resources(companion_cpu, COMPANION_MEMORY_MIB)
    if spec.platform is Platform.FARGATE:
        res = normalise(spec.vcpus, spec.memory_mib, spec.gpus, spec.platform)
        cpu, mem = snap_fargate(res.vcpus + 2 * companion_cpu, res.memory_mib + 1024)
        return Resources(cpu - 2 * companion_cpu, mem - 2 * COMPANION_MEMORY_MIB), companion
    return normalise(spec.vcpus, spec.memory_mib, spec.gpus, spec.platform), companion


def reserved_resources(spec: TaskSpec) -> Resources:
    """What Batch reserves for the whole job: with companions, the sum over its containers."""
    if not spec.companion_image:
        return normalise(spec.vcpus, spec.memory_mib, spec.gpus, spec.platform)
    main, companion = _companion_shares(spec)
    return Resources(
        main.vcpus + 2 * companion.vcpus, main.memory_mib + 2 * companion.memory_mib, main.gpus
    )


def _companion_body(spec: TaskSpec) -> dict[str, Any]:
    """`ecsProperties` of the companion layout: stage-in -> main (the tool) -> stage-out."""
    _check_companion(spec)
    assert spec.companion_image is not None
    work = {"containerPath": COMPANION_DIR, "sourceVolume": COMPANION_VOLUME, "readOnly": False}
    # Placeholder sizes, as for single-container jobs: the real ones travel as overrides.
    main_res, companion = _companion_shares(replace(spec, vcpus=1.0, memory_mib=2048, gpus=0))
    containers: list[dict[str, Any]] = [
        {
            "name": STAGE_IN,
            "image": spec.companion_image,
            "command": _phase_command("in"),
            "essential": False,
            "mountPoints": [work],
            "resourceRequirements": companion.requirements(),
        },
        {
            "name": MAIN,
            "image": spec.image,
            "command": list(MAIN_COMMAND),
            "essential": False,
            "dependsOn": [{"containerName": STAGE_IN, "condition": "SUCCESS"}],
            "mountPoints": [work, *_mount_points(spec.mounts)],
            "resourceRequirements": main_res.requirements(),
        },
        {
            "name": STAGE_OUT,
            "image": spec.companion_image,
            "command": _phase_command("out"),
            "essential": True,
            "dependsOn": [{"containerName": MAIN, "condition": "COMPLETE"}],
            "mountPoints": [work],
            "resourceRequirements": companion.requirements(),
        },
    ]
    volumes = {m.volume_name: _volume(m) for m in spec.mounts}
    task: dict[str, Any] = {
        "containers": containers,
        "volumes": [{"name": COMPANION_VOLUME}, *volumes.values()],
    }
    if spec.job_role_arn:
        task["taskRoleArn"] = spec.job_role_arn
    if spec.execution_role_arn:
        task["executionRoleArn"] = spec.execution_role_arn
    if spec.platform is Platform.FARGATE:
        task.update(_fargate_fields(spec))
    return {"ecsProperties": {"taskProperties": [task]}}


def companion_overrides(spec: TaskSpec, env: Mapping[str, str]) -> dict[str, Any]:
    """The `ecsPropertiesOverride` of a companion-layout job: per-job sizes and environment."""
    _check_companion(spec)
    main_res, companion = _companion_shares(spec)
    environment = [{"name": k, "value": v} for k, v in sorted(env.items())]
    containers = []
    for name, res in ((STAGE_IN, companion), (MAIN, main_res), (STAGE_OUT, companion)):
        container: dict[str, Any] = {"name": name, "resourceRequirements": res.requirements()}
        if environment:
            container["environment"] = environment
        containers.append(container)
    return {"taskProperties": [{"containers": containers}]}


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
    env = dict(environment or {})
    if env:
        check_env_names(env, "the job's environment overrides")
    spec_uri = spec.launch.staging.spec_uri
    request: dict[str, Any] = {
        "jobName": job_name(spec.name),
        "jobQueue": spec.queue,
        "jobDefinition": job_definition,
        "parameters": {SPEC_PARAMETER: spec_uri},
    }
    if spec.companion_image:
        request["ecsPropertiesOverride"] = companion_overrides(spec, env)
    else:
        res = normalise(spec.vcpus, spec.memory_mib, spec.gpus, spec.platform)
        overrides: dict[str, Any] = {"resourceRequirements": res.requirements()}
        if env:
            overrides["environment"] = [{"name": k, "value": v} for k, v in sorted(env.items())]
        if spec.job_definition:
            # A user's definition may run anything: point its command at the launcher explicitly.
            overrides["command"] = [*LAUNCHER_COMMAND[:-1], spec_uri]
        request["containerOverrides"] = overrides
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
    # Batch's 8 KiB rule is about container overrides; the ECS form carries the same content.
    overrides = max(overrides, len(json.dumps(request.get("ecsPropertiesOverride", {}))))
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
