"""Instance sizes and an ESTIMATED price table, for the doctor's fit check and the run report.

Prices are AWS's published on-demand Linux prices in us-east-1 as the authors knew them in
January 2025 (PRICE_TABLE_DATE), expressed per vCPU-hour: within each family listed here the price
scales linearly with size, so one number per family is exact for every size. Other regions, newer
prices, savings plans and data transfer are not modelled. Spot prices move hourly; SPOT_FACTOR is a
typical long-run ratio of spot to on-demand, not a quote. Every figure derived from this module is
an ESTIMATE and is labelled as one wherever it is shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PRICE_TABLE_DATE = "2025-01"
PRICE_TABLE_REGION = "us-east-1"
SPOT_FACTOR = 0.35
"""Typical spot price as a fraction of on-demand (spot is usually 60-70% cheaper)."""

FARGATE_VCPU_HOUR = 0.04048
FARGATE_GIB_HOUR = 0.004445

# Memory the ECS agent and the OS keep for themselves, so a job can never get an instance's full
# nominal memory (AWS: "Compute resource memory management"). 5% is a conservative rule of thumb.
RESERVED_MEMORY_FRACTION = 0.05

_SIZES: dict[str, float] = {
    "medium": 1,
    "large": 2,
    "xlarge": 4,
    "2xlarge": 8,
    "4xlarge": 16,
    "8xlarge": 32,
    "9xlarge": 36,
    "12xlarge": 48,
    "16xlarge": 64,
    "18xlarge": 72,
    "24xlarge": 96,
    "32xlarge": 128,
    "48xlarge": 192,
}


@dataclass(frozen=True)
class Family:
    """One instance family: on-demand USD per vCPU-hour, GiB of memory per vCPU, largest size."""

    name: str
    usd_per_vcpu_hour: float
    gib_per_vcpu: float
    max_vcpus: int
    arch: str = "x86_64"

    @property
    def max_memory_gib(self) -> float:
        """Nominal memory of the family's largest size."""
        return self.max_vcpus * self.gib_per_vcpu


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("c4", 0.0500, 1.875, 36),
        Family("m4", 0.0500, 4.0, 64),
        Family("r4", 0.0665, 7.625, 64),
        Family("c5", 0.0425, 2.0, 96),
        Family("m5", 0.0480, 4.0, 96),
        Family("r5", 0.0630, 8.0, 96),
        Family("c5a", 0.0385, 2.0, 96),
        Family("m5a", 0.0430, 4.0, 96),
        Family("r5a", 0.0565, 8.0, 96),
        Family("c6i", 0.0425, 2.0, 128),
        Family("m6i", 0.0480, 4.0, 128),
        Family("r6i", 0.0630, 8.0, 128),
        Family("c6a", 0.03825, 2.0, 192),
        Family("m6a", 0.0432, 4.0, 192),
        Family("r6a", 0.0567, 8.0, 192),
        Family("c7i", 0.044625, 2.0, 192),
        Family("m7i", 0.0504, 4.0, 192),
        Family("r7i", 0.06615, 8.0, 192),
        Family("c6g", 0.034, 2.0, 64, "arm64"),
        Family("m6g", 0.0385, 4.0, 64, "arm64"),
        Family("r6g", 0.0504, 8.0, 64, "arm64"),
        Family("c7g", 0.03625, 2.0, 64, "arm64"),
        Family("m7g", 0.0408, 4.0, 64, "arm64"),
        Family("r7g", 0.05355, 8.0, 64, "arm64"),
    )
}

# What Batch's "optimal" instance type means: the C4, M4 and R4 families (AWS Batch docs).
OPTIMAL_FAMILIES = ("c4", "m4", "r4")
DEFAULT_FAMILY = "m6i"


@dataclass(frozen=True)
class InstanceShape:
    """The largest vCPU count and nominal memory one instance type (or family) offers."""

    name: str
    vcpus: int
    memory_mib: int

    @property
    def usable_memory_mib(self) -> int:
        """Memory a job can actually reserve after the ECS agent's share."""
        return int(self.memory_mib * (1 - RESERVED_MEMORY_FRACTION))


def family_of(instance_type: str) -> str:
    """The family part of an instance type ("m6i.2xlarge" -> "m6i"; a family is returned as is)."""
    return instance_type.split(".", 1)[0]


def shapes_for(instance_type: str) -> list[InstanceShape]:
    """Largest shapes an entry of a compute environment's `instanceTypes` can launch, if known."""
    if instance_type == "optimal":
        return [s for f in OPTIMAL_FAMILIES for s in shapes_for(f)]
    family = FAMILIES.get(family_of(instance_type))
    if family is None:
        return []
    if "." not in instance_type:
        vcpus = family.max_vcpus
    else:
        size = _SIZES.get(instance_type.split(".", 1)[1])
        if size is None:
            return []
        vcpus = int(size)
    memory = int(vcpus * family.gib_per_vcpu * 1024)
    return [InstanceShape(instance_type, vcpus, memory)]


def job_cost_usd(
    *,
    vcpus: float,
    memory_mib: int,
    seconds: float,
    instance_type: str | None,
    spot: bool,
    fargate: bool = False,
) -> float:
    """ESTIMATED cost of one job attempt: the share of an instance its request reserves.

    A job pays for the larger of its vCPUs and its memory expressed in the family's vCPUs (a
    memory-heavy job on a compute family blocks the instance's other vCPUs).
    """
    hours = max(seconds, 0.0) / 3600.0
    if fargate:
        return hours * (vcpus * FARGATE_VCPU_HOUR + memory_mib / 1024 * FARGATE_GIB_HOUR)
    family = FAMILIES.get(family_of(instance_type or DEFAULT_FAMILY), FAMILIES[DEFAULT_FAMILY])
    reserved_vcpus = max(vcpus, memory_mib / 1024 / family.gib_per_vcpu)
    price = family.usd_per_vcpu_hour * (SPOT_FACTOR if spot else 1.0)
    return hours * reserved_vcpus * price


def suggested_memory_mib(peak_mib: float, headroom: float = 1.2, step: int = 256) -> int:
    """A right-sized memory request: the observed peak with headroom, rounded up to `step` MiB."""
    return max(step, int(math.ceil(peak_mib * headroom / step) * step))
