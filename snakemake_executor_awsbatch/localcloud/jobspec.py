"""From a SubmitJob request and its job definition to what the engine runs.

`resolve_job` merges the job definition with the request's overrides and validates what Batch
validates at submit time (raising `ClientException` with Batch's wording); `build_plans` turns a
job into the containers of one attempt (command, environment, bind mounts, log stream).
"""

from __future__ import annotations

import copy
import random
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snakemake_executor_awsbatch.localcloud.api_errors import ClientException
from snakemake_executor_awsbatch.localcloud.model import Bind, ContainerPlan, Job

_REF = re.compile(r"Ref::([A-Za-z0-9_\-]+)")


@dataclass(frozen=True)
class Resources:
    """vCPUs and memory (MiB) a job or container asks for."""

    vcpus: float
    memory_mib: int


def substitute(command: list[str], parameters: Mapping[str, str]) -> list[str]:
    """Replace `Ref::name` placeholders with parameter values, leaving unknown names as they are."""

    def one(match: re.Match[str]) -> str:
        return parameters.get(match.group(1), match.group(0))

    return [_REF.sub(one, arg) for arg in command]


def _requirements(items: list[dict[str, str]] | None, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        kind, value = item.get("type", ""), item.get("value", "")
        if kind in ("VCPU", "MEMORY"):
            try:
                number = float(value)
            except ValueError:
                number = -1.0
            if number <= 0 or (kind == "MEMORY" and not number.is_integer()):
                what = "a positive number" if kind == "VCPU" else "a positive whole number of MiB"
                raise ClientException(
                    f"Error executing request, Exception : Resource requirement ({kind}) in "
                    f"{where} has value {value!r}; it must be {what}."
                )
        elif kind == "GPU" and not value.isdigit():
            raise ClientException(
                f"Error executing request, Exception : Resource requirement (GPU) in {where} "
                f"has value {value!r}; it must be a whole number."
            )
        out[kind] = value
    return out


def _merge_requirements(base: dict[str, str], override: dict[str, str]) -> list[dict[str, str]]:
    merged = {**base, **override}
    return [{"type": k, "value": v} for k, v in merged.items()]


def _resources(reqs: list[dict[str, str]], legacy: Mapping[str, Any], where: str) -> Resources:
    by_type = {r["type"]: r["value"] for r in reqs}
    vcpus = float(by_type["VCPU"]) if "VCPU" in by_type else legacy.get("vcpus")
    memory = int(float(by_type["MEMORY"])) if "MEMORY" in by_type else legacy.get("memory")
    if vcpus is None or memory is None:
        missing = "vCPU" if vcpus is None else "memory"
        raise ClientException(
            f"Error executing request, Exception : {where} does not specify {missing}; set it "
            f"in resourceRequirements."
        )
    return Resources(float(vcpus), int(memory))


def _check_environment(env: list[dict[str, str]] | None, where: str) -> None:
    for item in env or []:
        if item.get("name", "").startswith("AWS_BATCH"):
            raise ClientException(
                f"Error executing request, Exception : Environment variable names in {where} may "
                f"not start with AWS_BATCH (got {item.get('name')})."
            )


def _merge_env(
    base: list[dict[str, str]] | None, override: list[dict[str, str]] | None
) -> list[dict[str, str]]:
    merged = {e["name"]: e.get("value", "") for e in base or []}
    merged.update({e["name"]: e.get("value", "") for e in override or []})
    return [{"name": k, "value": v} for k, v in merged.items()]


def resolve_container(
    jobdef: Mapping[str, Any], request: Mapping[str, Any], parameters: Mapping[str, str]
) -> tuple[dict[str, Any], Resources]:
    """The `container` of a single-container job and its resources."""
    props: dict[str, Any] = copy.deepcopy(jobdef["containerProperties"])
    overrides: Mapping[str, Any] = request.get("containerOverrides") or {}
    base_reqs = _requirements(props.get("resourceRequirements"), "the job definition")
    over_reqs = _requirements(overrides.get("resourceRequirements"), "containerOverrides")
    reqs = _merge_requirements(base_reqs, over_reqs)
    legacy = {
        "vcpus": overrides.get("vcpus", props.get("vcpus")),
        "memory": overrides.get("memory", props.get("memory")),
    }
    resources = _resources(reqs, legacy, "The job")
    _check_environment(overrides.get("environment"), "containerOverrides")
    command = list(overrides["command"]) if "command" in overrides else props.get("command", [])
    container: dict[str, Any] = {
        key: value
        for key, value in props.items()
        if key not in ("vcpus", "memory", "resourceRequirements", "environment", "command")
    }
    container.update(
        command=substitute(command, parameters),
        environment=_merge_env(props.get("environment"), overrides.get("environment")),
        resourceRequirements=[
            {"type": "VCPU", "value": _number(resources.vcpus)},
            {"type": "MEMORY", "value": str(resources.memory_mib)},
            *[r for r in reqs if r["type"] not in ("VCPU", "MEMORY")],
        ],
        volumes=props.get("volumes", []),
        mountPoints=props.get("mountPoints", []),
        networkInterfaces=[],
    )
    if "instanceType" in overrides:
        container["instanceType"] = overrides["instanceType"]
    return container, resources


def resolve_ecs(
    jobdef: Mapping[str, Any], request: Mapping[str, Any], parameters: Mapping[str, str]
) -> tuple[dict[str, Any], Resources]:
    """The `ecsProperties` of a multi-container job and the task's total resources."""
    ecs: dict[str, Any] = copy.deepcopy(jobdef["ecsProperties"])
    task = ecs["taskProperties"][0]
    override_task = ((request.get("ecsPropertiesOverride") or {}).get("taskProperties") or [{}])[0]
    overrides = {c.get("name"): c for c in override_task.get("containers", [])}
    names = {c["name"] for c in task["containers"]}
    for name in overrides:
        if name not in names:
            raise ClientException(
                f"Error executing request, Exception : ecsPropertiesOverride names container "
                f"{name!r}, which the job definition does not have."
            )
    vcpus, memory = 0.0, 0
    for container in task["containers"]:
        over = overrides.get(container["name"], {})
        where = f"container {container['name']}"
        reqs = _merge_requirements(
            _requirements(container.get("resourceRequirements"), where),
            _requirements(over.get("resourceRequirements"), f"the override of {where}"),
        )
        res = _resources(reqs, {}, f"Container {container['name']}")
        vcpus += res.vcpus
        memory += res.memory_mib
        _check_environment(over.get("environment"), f"the override of {where}")
        command = list(over["command"]) if "command" in over else container.get("command", [])
        container["command"] = substitute(command, parameters)
        container["environment"] = _merge_env(container.get("environment"), over.get("environment"))
        container["resourceRequirements"] = reqs
        container.setdefault("essential", True)
        container["networkInterfaces"] = []
    return ecs, Resources(vcpus, memory)


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)


@dataclass(frozen=True)
class HostContext:
    """What plans need from the local cloud: EFS roots and the base environment."""

    # The host directory of an EFS file system known to the cloud (created on first use), or None.
    efs_root: Callable[[str], Path | None]
    # (file system id, root directory path) of an EFS access point, or None if it is unknown.
    access_point: Callable[[str], tuple[str, str] | None]
    base_env: Mapping[str, str]


class PlanError(Exception):
    """A job that cannot start (its message is the container's CannotStartContainerError reason)."""


def _binds(
    volumes: list[dict[str, Any]], mounts: list[dict[str, Any]], host: HostContext, work: Path
) -> tuple[Bind, ...]:
    by_name = {v.get("name"): v for v in volumes}
    binds: list[Bind] = []
    for mount in mounts:
        volume = by_name.get(mount.get("sourceVolume"))
        if volume is None:
            raise PlanError(
                f"CannotStartContainerError: mount point {mount.get('containerPath')} names "
                f"volume {mount.get('sourceVolume')!r}, which the job does not define"
            )
        source = _volume_source(volume, host, work)
        binds.append(Bind(source, str(mount["containerPath"]), bool(mount.get("readOnly", False))))
    return tuple(binds)


def _volume_source(volume: Mapping[str, Any], host: HostContext, work: Path) -> Path:
    efs = volume.get("efsVolumeConfiguration")
    if efs is not None:
        fs_id = efs["fileSystemId"]
        root = host.efs_root(fs_id)
        if root is None:
            raise PlanError(
                f"CannotStartContainerError: ResourceInitializationError: failed to mount EFS "
                f"file system {fs_id}: it does not exist"
            )
        root_directory = str(efs.get("rootDirectory") or "/")
        access_point_id = (efs.get("authorizationConfig") or {}).get("accessPointId")
        if access_point_id:
            found = host.access_point(str(access_point_id))
            if found is None or found[0] != fs_id:
                raise PlanError(
                    f"CannotStartContainerError: ResourceInitializationError: access point "
                    f"{access_point_id} does not exist on EFS file system {fs_id}"
                )
            root_directory = found[1]
            # EFS creates an access point's root directory on first use.
            (root / root_directory.lstrip("/")).mkdir(parents=True, exist_ok=True)
        source = root / root_directory.lstrip("/")
        if not source.is_dir():
            raise PlanError(
                f"CannotStartContainerError: ResourceInitializationError: rootDirectory "
                f"{efs.get('rootDirectory')} does not exist on EFS file system {fs_id}"
            )
        return source
    host_path = (volume.get("host") or {}).get("sourcePath")
    if host_path:
        return Path(host_path)
    # A volume with no source is a scratch volume shared by the task's containers.
    scratch = work / ".volumes" / str(volume.get("name"))
    scratch.mkdir(parents=True, exist_ok=True)
    return scratch


def build_plans(job: Job, attempt_no: int, task_id: str, host: HostContext) -> list[ContainerPlan]:
    """The containers of one attempt of `job`."""
    assert job.work_dir is not None
    env = dict(host.base_env)
    env.update(
        AWS_BATCH_JOB_ID=job.job_id,
        AWS_BATCH_JOB_ATTEMPT=str(attempt_no),
        AWS_BATCH_JQ_NAME=job.queue.queue_name,
        AWS_BATCH_CE_NAME=job.queue.ce_name,
    )
    if job.array_index is not None:
        env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(job.array_index)
    defname = str(job.jobdef["jobDefinitionName"])
    if job.container is not None:
        c = job.container
        return [
            ContainerPlan(
                name="default",
                argv=tuple(c.get("command", [])),
                env=_env(env, c.get("environment")),
                binds=_binds(c.get("volumes", []), c.get("mountPoints", []), host, job.work_dir),
                log_stream=f"{defname}/default/{task_id}",
                memory_mib=job.memory_mib,
            )
        ]
    assert job.ecs is not None
    task = job.ecs["taskProperties"][0]
    plans = []
    for c in task["containers"]:
        reqs = {r["type"]: r["value"] for r in c.get("resourceRequirements", [])}
        plans.append(
            ContainerPlan(
                name=c["name"],
                argv=tuple(c.get("command", [])),
                env=_env(env, c.get("environment")),
                binds=_binds(task.get("volumes", []), c.get("mountPoints", []), host, job.work_dir),
                log_stream=f"{defname}/{c['name']}/{task_id}",
                memory_mib=int(float(reqs.get("MEMORY", job.memory_mib))),
                essential=bool(c.get("essential", True)),
                depends_on=tuple(
                    (d["containerName"], d.get("condition", "START"))
                    for d in c.get("dependsOn", [])
                ),
            )
        )
    return plans


def _env(
    base: Mapping[str, str], items: list[dict[str, str]] | None
) -> tuple[tuple[str, str], ...]:
    env = dict(base)
    env.update({e["name"]: e.get("value", "") for e in items or []})
    return tuple(env.items())


def new_uuid() -> uuid.UUID:
    """A random (version 4) UUID without a system call: ids need uniqueness, not secrecy."""
    return uuid.UUID(int=random.getrandbits(128), version=4)


def new_task_id() -> str:
    """An ECS-style task id."""
    return new_uuid().hex
