"""ResourceRequirement outdirMin/tmpdirMin against what the job's disk can be.

Fargate jobs get 20 GiB of ephemeral storage by default and at most 200 GiB; a request above 20
GiB asks for more (21..200), and one above 200 GiB cannot run. On EC2 the instance storage is not
described by Batch, so only the local cloud's host disk is known there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from snakemake_executor_awsbatch.errors import UserError

FARGATE_DEFAULT_GIB = 20
FARGATE_MAX_GIB = 200


@dataclass(frozen=True)
class DiskRequest:
    """One job's outdirMin + tmpdirMin, in MiB as cwltool reports them."""

    name: str
    outdir_mib: float
    tmpdir_mib: float
    explicit: bool

    @property
    def total_gib(self) -> int:
        """Both together, rounded up to whole GiB (they share the job's disk)."""
        return math.ceil((self.outdir_mib + self.tmpdir_mib) / 1024)


def check_disk(
    request: DiskRequest, platforms: tuple[str, ...], host_disk_mib: int | None
) -> int | None:
    """The Fargate ephemeral storage (GiB) to ask for, or None for the default; UserError when
    no disk of the queue can hold the request."""
    need = request.total_gib
    fix = "lower outdirMin/tmpdirMin or use a queue with larger disks"
    if host_disk_mib is not None and request.outdir_mib + request.tmpdir_mib > host_disk_mib:
        raise UserError(
            f"step {request.name} asks for {need} GiB of outdirMin+tmpdirMin but the local "
            f"cloud's disk holds {host_disk_mib // 1024} GiB; {fix}."
        )
    if platforms and all(p == "FARGATE" for p in platforms):
        if need > FARGATE_MAX_GIB:
            raise UserError(
                f"step {request.name} asks for {need} GiB of outdirMin+tmpdirMin but Fargate "
                f"ephemeral storage is at most {FARGATE_MAX_GIB} GiB; {fix}."
            )
        return need if need > FARGATE_DEFAULT_GIB else None
    return None


def unknown_disk_warning(request: DiskRequest) -> str:
    """The one-time warning for an EC2 queue whose instance storage Batch does not describe."""
    return (
        f"outdirMin/tmpdirMin of step {request.name} ({request.total_gib} GiB) are not checked: "
        "Batch does not describe the instance storage of EC2 compute environments; make sure "
        "their launch template gives jobs enough disk."
    )
