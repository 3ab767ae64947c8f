"""EFS references: `efs://fs-ID/path` locations and local paths under a configured mount.

Both are mounted in the job and never copied. An `efs://` location must name a file system
given with `--awsbatch-efs`; it then appears in the job under that mount's container path.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.taskspec import EfsMount

from .fsaccess import parse_efs


@dataclass(frozen=True)
class EfsLayout:
    """The EFS mounts of a run and where an `efs://` location appears in a job.

    `mounts` (from `--awsbatch-efs`) are in every job; `on_demand` ones (the local cloud's file
    systems) only in the jobs whose inputs name them."""

    mounts: tuple[EfsMount, ...] = ()
    on_demand: tuple[EfsMount, ...] = ()

    @property
    def mount_paths(self) -> tuple[str, ...]:
        """The container paths of the mounts (local paths under them are EFS references)."""
        return tuple(m.container_path for m in self.mounts)

    def mount_for(self, location: str) -> EfsMount:
        """The mount that serves `efs://fs-ID/path`; UserError when none does."""
        return self._resolve(location)[0]

    def target(self, location: str) -> str:
        """The path in the job of `efs://fs-ID/path`; UserError when no mount serves it."""
        return self._resolve(location)[1]

    def _resolve(self, location: str) -> tuple[EfsMount, str]:
        fs_id, path = parse_efs(location)
        full = "/" + path
        for mount in (*self.mounts, *self.on_demand):
            if mount.file_system_id != fs_id:
                continue
            root = "/" + mount.root_directory.strip("/")
            if root == "/" or full == root or full.startswith(root + "/"):
                rel = posixpath.relpath(full, root)
                return mount, posixpath.normpath(posixpath.join(mount.container_path, rel))
        configured = sorted({m.file_system_id for m in self.mounts})
        hint = f" (configured: {', '.join(configured)})" if configured else ""
        raise UserError(
            f"{location} is on EFS file system {fs_id}, which no job mounts{hint}; add "
            f"--awsbatch-efs {fs_id}:/mnt/efs/{fs_id} (or the mount path you use)."
        )


def local_on_demand(fs_ids: Sequence[str], configured: Sequence[EfsMount]) -> tuple[EfsMount, ...]:
    """The local cloud's file systems not configured by the user, each mounted read-only at
    /mnt/efs/<id> in the jobs that read from it."""
    taken = {m.file_system_id for m in configured}
    return tuple(
        EfsMount(file_system_id=fs_id, container_path=f"/mnt/efs/{fs_id}")
        for fs_id in dict.fromkeys(fs_ids)
        if fs_id not in taken
    )
