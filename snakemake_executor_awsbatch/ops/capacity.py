"""Does a workflow's largest request fit a queue's compute environments?

A job larger than every instance type a compute environment may launch, or than its maxvCpus,
waits in RUNNABLE forever (MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT / COMPUTE_ENVIRONMENT_MAX_
RESOURCE) and blocks the queue behind it; the doctor says so before the run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snakemake_executor_awsbatch.capacity import local_host_shape
from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.ops.checks import Check, Status
from snakemake_executor_awsbatch.ops.cost import InstanceShape, shapes_for

FARGATE_MAX_VCPUS = 16
FARGATE_MAX_MEMORY_MIB = 120 * 1024
_GPU_FAMILY = re.compile(r"^(p\d|g\d|inf|trn)")


@dataclass(frozen=True)
class Request:
    """The largest resources any single job of a run asks for, and where that figure came from."""

    vcpus: float
    memory_mib: int
    gpus: int = 0
    source: str = "command line"

    def describe(self) -> str:
        """Human form, e.g. '8 vCPUs, 30000 MiB'."""
        gpus = f", {self.gpus} GPU(s)" if self.gpus else ""
        return f"{self.vcpus:g} vCPUs, {self.memory_mib} MiB{gpus}"


@dataclass(frozen=True)
class Fit:
    """Whether one compute environment can run the request (None: cannot tell)."""

    fits: bool | None
    detail: str
    fix: str = ""


def environment_fit(env: Mapping[str, Any], request: Request) -> Fit:
    """Check one compute environment (a DescribeComputeEnvironments entry) against a request."""
    name = env["computeEnvironmentName"]
    resources = env.get("computeResources")
    if env.get("type") == "UNMANAGED" or not resources:
        return Fit(None, "unmanaged: instance capacity is not visible to the API")
    kind = str(resources.get("type", "EC2"))
    max_vcpus = float(resources.get("maxvCpus", 0))
    raise_max = (
        f"raise maxvCpus: `aws batch update-compute-environment --compute-environment {name} "
        f"--compute-resources maxvCpus={int(request.vcpus) + 1}` (SpotMaxVcpus/OnDemandMaxVcpus "
        "in infra/template.yaml)."
    )
    local = _local_cloud_fit(env, request)
    if local is not None:
        return local
    if max_vcpus < request.vcpus:
        return Fit(False, f"maxvCpus {max_vcpus:g} < {request.vcpus:g} requested", raise_max)
    if kind.startswith("FARGATE"):
        return _fargate_fit(request)
    types = [str(t) for t in resources.get("instanceTypes", [])]
    return _instance_fit(types, request)


def _local_cloud_fit(env: Mapping[str, Any], request: Request) -> Fit | None:
    """The local cloud's one "instance" is the host share it was started with (in its tags)."""
    shape = local_host_shape(dict(env))
    if shape is None:
        return None
    vcpus, memory = shape
    if request.vcpus <= vcpus and request.memory_mib <= memory:
        return Fit(True, f"local cloud: {vcpus:g} vCPUs / {memory} MiB")
    return Fit(
        False,
        f"local cloud has {vcpus:g} vCPUs / {memory} MiB, {request.describe()} requested",
        f"restart it larger (`awsbatch local --vcpus {max(int(request.vcpus + 0.999), 1)} "
        f"--memory {request.memory_mib}`) or lower the rule's threads/memory.",
    )


def _fargate_fit(request: Request) -> Fit:
    if request.gpus:
        return Fit(False, "Fargate has no GPUs", "send GPU rules to an EC2 queue with GPU types.")
    if request.vcpus > FARGATE_MAX_VCPUS or request.memory_mib > FARGATE_MAX_MEMORY_MIB:
        return Fit(
            False,
            f"Fargate tops out at {FARGATE_MAX_VCPUS} vCPUs / {FARGATE_MAX_MEMORY_MIB} MiB",
            "send the largest rules to an EC2 queue, or lower their threads/memory.",
        )
    return Fit(True, "within Fargate's largest task size")


def _instance_fit(types: list[str], request: Request) -> Fit:
    if request.gpus:
        if any(_GPU_FAMILY.match(t) for t in types):
            return Fit(None, "GPU instance types present; sizes not in the built-in table")
        return Fit(
            False,
            f"{request.gpus} GPU(s) requested but no GPU instance types ({', '.join(types)})",
            "add a GPU family (e.g. g5) to the compute environment's instanceTypes.",
        )
    shapes: list[InstanceShape] = [s for t in types for s in shapes_for(t)]
    if not shapes:
        return Fit(None, f"instance types {', '.join(types) or '(none)'} not in the size table")
    if any(s.vcpus >= request.vcpus and s.usable_memory_mib >= request.memory_mib for s in shapes):
        return Fit(True, f"an instance of {', '.join(types)} fits {request.describe()}")
    largest = max(shapes, key=lambda s: (s.usable_memory_mib, s.vcpus))
    return Fit(
        False,
        f"no instance type fits {request.describe()}; the largest, {largest.name}, gives "
        f"{largest.vcpus} vCPUs / ~{largest.usable_memory_mib} MiB usable",
        "add a larger family to the compute environment's instanceTypes (e.g. r6i for "
        "memory, c6i for cores), or lower the rule's threads/memory.",
    )


def check_capacity(envs: list[Mapping[str, Any]], request: Request | None) -> list[Check]:
    """One line per compute environment: can it run the request? FAIL if none can."""
    if request is None:
        return [
            Check(
                "largest request",
                Status.SKIP,
                "no request given",
                "pass --max-vcpus/--max-memory or --workflow to check instance sizes.",
            )
        ]
    enabled = [e for e in envs if e.get("state") == "ENABLED"]
    fits = [(e, environment_fit(e, request)) for e in enabled]
    any_fits = any(f.fits is not False for _, f in fits)
    checks = []
    for env, fit in fits:
        name = f"fit {env['computeEnvironmentName']}"
        if fit.fits is True:
            checks.append(Check(name, Status.PASS, fit.detail))
        elif fit.fits is None:
            checks.append(Check(name, Status.WARN, fit.detail, "check instance sizes by hand."))
        else:
            status = Status.WARN if any_fits else Status.FAIL
            checks.append(Check(name, status, fit.detail, fit.fix))
    if not enabled:
        checks.append(
            Check(
                "largest request",
                Status.FAIL,
                "no ENABLED compute environment to run it",
                "enable a compute environment of the queue.",
            )
        )
    else:
        checks.append(
            Check(
                "largest request",
                Status.PASS if any_fits else Status.FAIL,
                f"{request.describe()} (from {request.source})",
                ""
                if any_fits
                else "jobs this large would wait in RUNNABLE forever: see the fixes above.",
            )
        )
    return checks


_SNAKE_THREADS = re.compile(r"^\s*threads\s*[:=]\s*(\d+)\s*,?\s*$", re.MULTILINE)
_SNAKE_MEM = re.compile(r"\bmem_(mb|mib|gb)\s*=\s*(\d+(?:\.\d+)?)")


_INCLUDE = re.compile(r"^\s*include:\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_CWL_RUN = re.compile(r"^\s*run:\s*[\"']?([\w./-]+\.cwl)", re.MULTILINE)


def workflow_files(path: Path) -> list[Path]:
    """The workflow file and those it includes (Snakemake `include:`, CWL `run:` files)."""
    seen: list[Path] = []
    todo = [path.resolve()]
    while todo:
        current = todo.pop()
        if current in seen or not current.is_file():
            continue
        seen.append(current)
        text = current.read_text()
        pattern = _CWL_RUN if current.suffix == ".cwl" else _INCLUDE
        todo.extend((current.parent / m).resolve() for m in pattern.findall(text))
    return seen


def request_from_workflow(path: Path) -> Request:
    """The largest literal request in a Snakefile or CWL file (expressions are not evaluated)."""
    if not path.is_file():
        raise UserError(f"Workflow file {path} does not exist: pass the Snakefile or .cwl path.")
    files = workflow_files(path)
    if path.suffix == ".cwl":
        return _from_cwl([f.read_text() for f in files], path)
    text = "\n".join(f.read_text() for f in files)
    threads = [int(m) for m in _SNAKE_THREADS.findall(text)]
    mems = [_mib(unit, float(v)) for unit, v in _SNAKE_MEM.findall(text)]
    if not threads and not mems:
        raise UserError(
            f"No literal threads or mem_mb found in {path}: pass --max-vcpus and --max-memory."
        )
    return Request(float(max(threads, default=1)), max(mems, default=1024), source=str(path))


def _mib(unit: str, value: float) -> int:
    factor = {"mib": 1.0, "mb": 1e6 / 2**20, "gb": 1e9 / 2**20}[unit]
    return int(value * factor + 0.999)


def _from_cwl(texts: list[str], path: Path) -> Request:
    from ruamel.yaml import YAML

    docs = [YAML(typ="safe").load(text) for text in texts]
    cores: list[float] = []
    rams: list[int] = []
    for req in _resource_requirements(docs):
        for key in ("coresMin", "coresMax"):
            if isinstance(req.get(key), int | float):
                cores.append(float(req[key]))
        for key in ("ramMin", "ramMax"):
            if isinstance(req.get(key), int | float):
                rams.append(int(req[key]))
    if not cores and not rams:
        raise UserError(
            f"No literal ResourceRequirement in {path}: pass --max-vcpus and --max-memory."
        )
    return Request(max(cores, default=1.0), max(rams, default=1024), source=str(path))


def _resource_requirements(node: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(node, Mapping):
        if node.get("class") == "ResourceRequirement":
            yield node
        for key, value in node.items():
            if key == "ResourceRequirement" and isinstance(value, Mapping):
                yield value
            yield from _resource_requirements(value)
    elif isinstance(node, list):
        yield from _iter_all(node)


def _iter_all(items: Iterable[Any]) -> Iterator[Mapping[str, Any]]:
    for item in items:
        yield from _resource_requirements(item)
