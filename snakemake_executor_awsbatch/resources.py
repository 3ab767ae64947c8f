"""Normalising resource requests into what Batch accepts.

Values are snapped, not rejected: memory in MiB from MB or MiB, EC2 vCPUs rounded up to whole
numbers, Fargate vCPU/memory snapped up to the nearest allowed pair, GPUs mapped to a
`resourceRequirements` entry. Only a request no Batch platform can give is refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.taskspec import Platform

MIN_MEMORY_MIB = 4  # Batch's own minimum for container memory


def _fargate_table() -> tuple[tuple[float, tuple[int, ...]], ...]:
    # AWS's published Fargate task sizes (vCPU -> allowed memory MiB).
    gib = 1024
    return (
        (0.25, (512, 1024, 2048)),
        (0.5, tuple(range(1 * gib, 4 * gib + 1, gib))),
        (1.0, tuple(range(2 * gib, 8 * gib + 1, gib))),
        (2.0, tuple(range(4 * gib, 16 * gib + 1, gib))),
        (4.0, tuple(range(8 * gib, 30 * gib + 1, gib))),
        (8.0, tuple(range(16 * gib, 60 * gib + 1, 4 * gib))),
        (16.0, tuple(range(32 * gib, 120 * gib + 1, 8 * gib))),
    )


FARGATE_SIZES = _fargate_table()


@dataclass(frozen=True)
class Resources:
    """A resource request Batch will accept as is."""

    vcpus: float
    memory_mib: int
    gpus: int = 0

    def requirements(self) -> list[dict[str, str]]:
        """Batch `resourceRequirements` entries (VCPU, MEMORY, GPU)."""
        vcpu = str(int(self.vcpus)) if float(self.vcpus).is_integer() else str(self.vcpus)
        out = [
            {"type": "VCPU", "value": vcpu},
            {"type": "MEMORY", "value": str(self.memory_mib)},
        ]
        if self.gpus:
            out.append({"type": "GPU", "value": str(self.gpus)})
        return out


def memory_mib(
    *, mem_mb: float | None = None, mem_mib: float | None = None, default: int = 2048
) -> int:
    """Memory in MiB from Snakemake-style `mem_mib` (preferred) or `mem_mb` (10^6 bytes)."""
    if mem_mib is not None:
        value = float(mem_mib)
    elif mem_mb is not None:
        value = float(mem_mb) * 1_000_000 / (1 << 20)
    else:
        return default
    if value <= 0:
        raise UserError(f"memory request {value:g} MiB is not positive; ask for at least 4 MiB.")
    return max(MIN_MEMORY_MIB, math.ceil(value))


def gpus_from(resources: Mapping[str, object]) -> int:
    """GPU count from the usual resource names (`gpu`, `gpus`, `nvidia_gpu`), 0 when absent."""
    for name in ("gpus", "gpu", "nvidia_gpu"):
        raw = resources.get(name)
        if raw is None:
            continue
        try:
            count = int(str(raw))
        except ValueError:
            raise UserError(
                f"resource {name}={raw!r} is not a whole number; give a GPU count such as {name}=1."
            ) from None
        if count < 0:
            raise UserError(f"resource {name}={count} is negative; give a GPU count of 0 or more.")
        return count
    return 0


def normalise(vcpus: float, memory: int, gpus: int, platform: Platform) -> Resources:
    """Snap a request to what the platform accepts (refusing only what cannot fit anywhere)."""
    if vcpus <= 0:
        raise UserError(f"vCPU request {vcpus:g} is not positive; ask for at least 0.25 vCPU.")
    memory = max(MIN_MEMORY_MIB, math.ceil(memory))
    if platform is Platform.FARGATE:
        if gpus:
            raise UserError(
                f"{gpus} GPU(s) were requested on Fargate, which has no GPUs; "
                "use an EC2 job queue for GPU jobs."
            )
        cpu, mem = snap_fargate(vcpus, memory)
        return Resources(vcpus=cpu, memory_mib=mem)
    return Resources(vcpus=float(max(1, math.ceil(vcpus))), memory_mib=memory, gpus=gpus)


def snap_fargate(vcpus: float, memory: int) -> tuple[float, int]:
    """The smallest Fargate (vCPU, MiB) pair at least as large as the request."""
    for cpu, memories in FARGATE_SIZES:
        if cpu + 1e-9 < vcpus:
            continue
        for mem in memories:
            if mem >= memory:
                return cpu, mem
    raise UserError(
        f"{vcpus:g} vCPU with {memory} MiB is larger than any Fargate task (16 vCPU, 120 GiB); "
        "lower the request or use an EC2 job queue."
    )
