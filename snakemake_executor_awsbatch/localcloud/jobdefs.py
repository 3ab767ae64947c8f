"""Job definitions: register (new revision per call), describe with filters and paging,
deregister, and resolving `name`, `name:revision` or an ARN as SubmitJob does."""

from __future__ import annotations

import copy
import re
import threading
from typing import Any

from snakemake_executor_awsbatch.localcloud.api_errors import ClientException
from snakemake_executor_awsbatch.localcloud.store import Store

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_REGISTERED_FIELDS = (
    "parameters",
    "schedulingPriority",
    "retryStrategy",
    "containerProperties",
    "timeout",
    "nodeProperties",
    "tags",
    "propagateTags",
    "platformCapabilities",
    "ecsProperties",
    "eksProperties",
    "consumableResourceProperties",
)


class JobDefinitions:
    """Every revision of every job definition, persisted in the state dir."""

    def __init__(self, store: Store, account_id: str, region: str) -> None:
        self._store = store
        self._prefix = f"arn:aws:batch:{region}:{account_id}:job-definition/"
        self._lock = threading.Lock()
        self._defs: list[dict[str, Any]] = store.load_jobdefs()

    def register(self, request: dict[str, Any]) -> dict[str, Any]:
        """Add a revision; returns the stored record."""
        name = str(request.get("jobDefinitionName", ""))
        if not NAME_PATTERN.match(name):
            raise ClientException(
                "Error executing request, Exception : Job definition name should match valid "
                "pattern: up to 128 letters, numbers, hyphens and underscores, starting with a "
                "letter or number."
            )
        kind = request.get("type")
        if kind not in ("container", "multinode"):
            raise ClientException(
                f"Error executing request, Exception : type {kind!r} is not supported; use "
                f"container."
            )
        has_container = "containerProperties" in request
        has_ecs = "ecsProperties" in request
        if kind == "multinode" or "eksProperties" in request or "nodeProperties" in request:
            raise ClientException(
                "Error executing request, Exception : the local cloud runs container jobs "
                "(containerProperties or ecsProperties) only; multinode and EKS jobs are not "
                "supported."
            )
        if has_container == has_ecs:
            raise ClientException(
                "Error executing request, Exception : A container job definition needs exactly "
                "one of containerProperties and ecsProperties."
            )
        if has_ecs:
            _check_ecs(request["ecsProperties"])
            _check_volumes(request["ecsProperties"]["taskProperties"][0].get("volumes"))
        else:
            _check_volumes(request["containerProperties"].get("volumes"))
        record: dict[str, Any] = {
            k: copy.deepcopy(request[k]) for k in _REGISTERED_FIELDS if k in request
        }
        with self._lock:
            revision = 1 + max(
                (d["revision"] for d in self._defs if d["jobDefinitionName"] == name), default=0
            )
            record.update(
                jobDefinitionName=name,
                jobDefinitionArn=f"{self._prefix}{name}:{revision}",
                revision=revision,
                status="ACTIVE",
                type=kind,
            )
            record.setdefault("parameters", {})
            record.setdefault("platformCapabilities", ["EC2"])
            record.setdefault("containerOrchestrationType", "ECS")
            self._defs.append(record)
            self._store.save_jobdefs(self._defs)
        return copy.deepcopy(record)

    def deregister(self, ref: str) -> None:
        """Mark a revision INACTIVE (a name without revision is refused, as Batch does)."""
        with self._lock:
            record = self._find(ref, active_only=False, need_revision=True)
            record["status"] = "INACTIVE"
            self._store.save_jobdefs(self._defs)

    def resolve(self, ref: str) -> dict[str, Any]:
        """The ACTIVE revision SubmitJob means by `ref` (latest active for a bare name)."""
        with self._lock:
            return copy.deepcopy(self._find(ref, active_only=True, need_revision=False))

    def describe(
        self,
        refs: list[str] | None,
        name: str | None,
        status: str | None,
        max_results: int | None,
        next_token: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """DescribeJobDefinitions: filter by refs/name/status, one page from `next_token`."""
        with self._lock:
            chosen = list(self._defs)
        if refs:
            chosen = [d for d in chosen if any(_is(d, r, self._prefix) for r in refs)]
        if name:
            chosen = [d for d in chosen if d["jobDefinitionName"] == name]
        if status:
            chosen = [d for d in chosen if d["status"] == status]
        start = _token_offset(next_token)
        size = max_results or 100
        if not 1 <= size <= 1000:
            raise ClientException("maxResults must be between 1 and 1000.")
        page = chosen[start : start + size]
        token = str(start + size) if start + size < len(chosen) else None
        return copy.deepcopy(page), token

    def _find(self, ref: str, active_only: bool, need_revision: bool) -> dict[str, Any]:
        name, revision = _split(ref, self._prefix)
        if need_revision and revision is None:
            raise ClientException(
                f"Error executing request, Exception : jobDefinition {ref} must name a revision "
                f"(name:revision or an ARN)."
            )
        candidates = [d for d in self._defs if d["jobDefinitionName"] == name]
        if revision is not None:
            candidates = [d for d in candidates if d["revision"] == revision]
            if not candidates or (active_only and candidates[0]["status"] != "ACTIVE"):
                raise ClientException(f"JobDefinition {_arn(self._prefix, ref)} not found.")
            return candidates[0]
        active = [d for d in candidates if d["status"] == "ACTIVE"]
        if not active:
            raise ClientException(
                f"JobDefinition name {name} does not exist or is not in ACTIVE status."
            )
        return max(active, key=lambda d: int(d["revision"]))


def _check_ecs(ecs: dict[str, Any]) -> None:
    tasks = ecs.get("taskProperties") or []
    if len(tasks) != 1:
        raise ClientException(
            "Error executing request, Exception : ecsProperties.taskProperties must hold exactly "
            "one task."
        )
    containers = tasks[0].get("containers") or []
    names = [c.get("name") for c in containers]
    if len(containers) > 1 and (None in names or len(set(names)) != len(names)):
        raise ClientException(
            "Error executing request, Exception : every container of a multi-container job "
            "needs a unique name."
        )
    if len(containers) == 1 and containers[0].get("name") is None:
        containers[0]["name"] = "default"
    if not any(c.get("essential", True) for c in containers):
        raise ClientException(
            "Error executing request, Exception : at least one container must be essential."
        )
    known = set(names)
    for container in containers:
        for dep in container.get("dependsOn", []):
            if dep.get("containerName") not in known:
                raise ClientException(
                    f"Error executing request, Exception : container {container.get('name')} "
                    f"depends on unknown container {dep.get('containerName')}."
                )


def _check_volumes(volumes: list[dict[str, Any]] | None) -> None:
    """Batch's rules for EFS volumes with access points and IAM authorization."""
    for volume in volumes or []:
        efs = volume.get("efsVolumeConfiguration")
        if not efs:
            continue
        auth = efs.get("authorizationConfig") or {}
        encrypted = efs.get("transitEncryption") == "ENABLED"
        if auth.get("accessPointId"):
            if efs.get("rootDirectory") not in (None, "", "/"):
                raise ClientException(
                    f"Error executing request, Exception : volume {volume.get('name')} names an "
                    f"access point, so its rootDirectory must be omitted or set to /."
                )
            if not encrypted:
                raise ClientException(
                    f"Error executing request, Exception : volume {volume.get('name')} names an "
                    f"access point, so transitEncryption must be ENABLED."
                )
        if auth.get("iam") == "ENABLED" and not encrypted:
            raise ClientException(
                f"Error executing request, Exception : volume {volume.get('name')} uses IAM "
                f"authorization, so transitEncryption must be ENABLED."
            )


def _split(ref: str, prefix: str) -> tuple[str, int | None]:
    tail = ref.split(":job-definition/", 1)[1] if ":job-definition/" in ref else ref
    name, _, rev = tail.partition(":")
    if rev:
        if not rev.isdigit():
            raise ClientException(f"JobDefinition {ref} not found.")
        return name, int(rev)
    return name, None


def _arn(prefix: str, ref: str) -> str:
    return ref if ref.startswith("arn:") else prefix + ref


def _is(record: dict[str, Any], ref: str, prefix: str) -> bool:
    name, revision = _split(ref, prefix)
    if record["jobDefinitionName"] != name:
        return False
    return revision is None or record["revision"] == revision


def _token_offset(token: str | None) -> int:
    if not token:
        return 0
    if not token.isdigit():
        raise ClientException("Error executing request, Exception : nextToken is invalid.")
    return int(token)
