"""Parsing `--awsbatch-efs` mounts: `fs-id[:rootDirectory]:containerPath[:ro|rw][:accessPoint]`.

Parsing is strict: a malformed mount is refused before any job is submitted.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable

from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.taskspec import EfsMount

_FS_ID = re.compile(r"^fs-[0-9a-f]{8,40}$")
_AP_ID = re.compile(r"^fsap-[0-9a-f]{8,40}$")
_FORM = "fs-id[:rootDirectory]:containerPath[:ro|rw][:accessPoint]"


def parse_efs_mount(text: str) -> EfsMount:
    """Parse one mount spec into an `EfsMount` (read-only unless `:rw` is given)."""
    parts = [p.strip() for p in text.strip().split(":")]
    if len(parts) < 2 or not parts[0]:
        raise UserError(f"EFS mount {text!r} has no container path; write it as {_FORM}.")
    fs_id = parts[0]
    if not _FS_ID.match(fs_id):
        raise UserError(
            f"EFS mount {text!r} names {fs_id!r}, which is not a file system id; "
            f"start it with an id such as fs-0123456789abcdef0 ({_FORM})."
        )
    if len(parts) >= 3 and parts[1].startswith("/") and parts[2].startswith("/"):
        root, container, rest = parts[1], parts[2], parts[3:]
    else:
        root, container, rest = "/", parts[1], parts[2:]
    read_only = True
    mode_seen = False
    access_point: str | None = None
    for item in rest:
        if item in ("ro", "rw") and not mode_seen and access_point is None:
            read_only, mode_seen = item == "ro", True
        elif _AP_ID.match(item) and access_point is None:
            access_point = item
        else:
            raise UserError(
                f"EFS mount {text!r} has {item!r} where ro, rw or an access point id "
                f"(fsap-...) belongs; write it as {_FORM}."
            )
    _check_path(text, "root directory", root)
    _check_path(text, "container path", container)
    if container == "/":
        raise UserError(f"EFS mount {text!r} would hide the container's root; mount it below /.")
    if access_point is not None and root != "/":
        raise UserError(
            f"EFS mount {text!r} sets root directory {root} together with access point "
            f"{access_point}; Batch requires the root to be / with an access point, so drop it "
            "and set the directory on the access point instead."
        )
    return EfsMount(
        file_system_id=fs_id,
        container_path=posixpath.normpath(container),
        root_directory=posixpath.normpath(root),
        read_only=read_only,
        access_point_id=access_point,
    )


def parse_efs_mounts(texts: Iterable[str]) -> tuple[EfsMount, ...]:
    """Parse several mount specs, refusing two mounts at the same container path."""
    mounts = tuple(parse_efs_mount(t) for t in texts if t.strip())
    seen: dict[str, EfsMount] = {}
    for mount in mounts:
        if mount.container_path in seen:
            raise UserError(
                f"two EFS mounts use container path {mount.container_path}; give each mount "
                "its own container path."
            )
        seen[mount.container_path] = mount
    return mounts


def format_efs_mount(mount: EfsMount) -> str:
    """The option form of a mount (the inverse of `parse_efs_mount`)."""
    parts = [mount.file_system_id]
    if mount.root_directory != "/":
        parts.append(mount.root_directory)
    parts.append(mount.container_path)
    parts.append("ro" if mount.read_only else "rw")
    if mount.access_point_id:
        parts.append(mount.access_point_id)
    return ":".join(parts)


def _check_path(text: str, what: str, path: str) -> None:
    if not path.startswith("/"):
        raise UserError(
            f"EFS mount {text!r} has {what} {path!r}, which is not absolute; "
            f"start it with / ({_FORM})."
        )
    if ".." in path.split("/"):
        raise UserError(f"EFS mount {text!r} has '..' in its {what}; give a plain absolute path.")
