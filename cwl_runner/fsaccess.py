"""cwltool file-system access that understands `s3://` locations next to local paths."""

from __future__ import annotations

import fnmatch
import io
from typing import IO, Any

from cwltool.stdfsaccess import StdFsAccess

from snakemake_executor_awsbatch.errors import UserError

from .s3store import S3Store

EFS_MOUNT_ROOT = "/mnt/efs"


def is_s3(path: str) -> bool:
    """True for an `s3://` location."""
    return path.startswith("s3://")


def is_efs(path: str) -> bool:
    """True for an `efs://fs-id/path` location (a reference read from EFS in the job)."""
    return path.startswith("efs://")


def parse_efs(location: str) -> tuple[str, str]:
    """`efs://fs-id/a/b` -> ("fs-id", "a/b")."""
    fs_id, _, path = location[len("efs://") :].partition("/")
    if not fs_id.startswith("fs-"):
        raise UserError(f"{location!r} names no EFS file system; write it as efs://fs-ID/path.")
    return fs_id, path.strip("/")


def efs_target(location: str) -> str:
    """Where an `efs://` location appears inside the job: /mnt/efs/<fs-id>/<path>."""
    fs_id, path = parse_efs(location)
    return f"{EFS_MOUNT_ROOT}/{fs_id}/{path}".rstrip("/")


class S3FsAccess(StdFsAccess):
    """StdFsAccess for local paths; S3 reads, listings and globs for `s3://` ones."""

    def __init__(self, basedir: str, store: S3Store) -> None:
        """Resolve relative local paths against `basedir`; use `store` for S3."""
        super().__init__(basedir)
        self.store = store

    def glob(self, pattern: str) -> list[str]:
        """Glob locally, or match one path level at a time against S3 listings."""
        if not is_s3(pattern):
            result: list[str] = super().glob(pattern)
            return result
        if not any(ch in pattern for ch in "*?["):
            return [pattern] if self.exists(pattern) else []
        bucket_part, _, key = pattern[len("s3://") :].partition("/")
        candidates = [f"s3://{bucket_part}"]
        for part in key.split("/"):
            matched: list[str] = []
            for base in candidates:
                if any(ch in part for ch in "*?["):
                    for entry in self.store.list_dir(base):
                        name = entry.uri.rsplit("/", 1)[-1]
                        if fnmatch.fnmatchcase(name, part):
                            matched.append(entry.uri)
                else:
                    matched.append(f"{base}/{part}")
            candidates = matched
        return [uri for uri in candidates if self.exists(uri)]

    def open(self, fn: str, mode: str) -> IO[Any]:
        """Open a local file, or read an S3 object into memory (S3 is read-only here)."""
        if not is_s3(fn):
            handle: IO[Any] = super().open(fn, mode)
            return handle
        if "r" not in mode or "+" in mode:
            raise OSError(f"{fn} is in S3 and can only be opened for reading")
        data = self.store.read_bytes(fn)
        if "b" in mode:
            return io.BytesIO(data)
        return io.StringIO(data.decode("utf-8"))

    def exists(self, fn: str) -> bool:
        """True for an existing local path, S3 object or non-empty S3 prefix.

        `efs://` locations are taken to exist: the controller does not mount EFS, and a missing
        reference fails the job with the path named."""
        if is_efs(fn):
            parse_efs(fn)
            return True
        if not is_s3(fn):
            return bool(super().exists(fn))
        return self.store.exists_object(fn) or self.store.is_prefix(fn)

    def size(self, fn: str) -> int:
        """Size of a local file or S3 object (0 for `efs://`, which the controller cannot see)."""
        if is_efs(fn):
            return 0
        if not is_s3(fn):
            return int(super().size(fn))
        return self.store.size(fn)

    def isfile(self, fn: str) -> bool:
        """True for a local regular file or an S3 object (or an `efs://` location)."""
        if is_efs(fn):
            return self.exists(fn)
        if not is_s3(fn):
            return bool(super().isfile(fn))
        return self.store.exists_object(fn)

    def isdir(self, fn: str) -> bool:
        """True for a local directory or a non-empty S3 prefix."""
        if not is_s3(fn):
            return bool(super().isdir(fn))
        return self.store.is_prefix(fn)

    def listdir(self, fn: str) -> list[str]:
        """Children of a local directory or S3 prefix, as locations."""
        if not is_s3(fn):
            result: list[str] = super().listdir(fn)
            return result
        return [entry.uri for entry in self.store.list_dir(fn)]

    def join(self, path: str, *paths: str) -> str:
        """Join path parts, with '/' for S3."""
        if not is_s3(path):
            joined: str = super().join(path, *paths)
            return joined
        return "/".join([path.rstrip("/"), *(p.strip("/") for p in paths)])

    def realpath(self, path: str) -> str:
        """Resolve symlinks locally; S3 and EFS locations are already canonical."""
        if is_s3(path) or is_efs(path):
            return path
        resolved: str = super().realpath(path)
        return resolved
