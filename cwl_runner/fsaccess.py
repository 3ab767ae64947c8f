"""cwltool file-system access that understands `s3://` locations next to local paths."""

from __future__ import annotations

import fnmatch
import io
import re
import urllib.parse
from collections.abc import Sequence
from typing import IO, Any, cast

from cwltool.stdfsaccess import StdFsAccess

from snakemake_executor_awsbatch.errors import UserError

from .s3store import S3Store

EFS_MOUNT_ROOT = "/mnt/efs"
# EFS file system ids: "fs-" and 8 (older) or 17 hex digits.
_EFS_ID = re.compile(r"^fs-[0-9a-f]{8}([0-9a-f]{9})?$")


def is_s3(path: str) -> bool:
    """True for an `s3://` location."""
    return path.startswith("s3://")


def is_efs(path: str) -> bool:
    """True for an `efs://fs-id/path` location (a reference read from EFS in the job)."""
    return path.startswith("efs://")


def s3_key_uri(location: str) -> str:
    """The raw `s3://bucket/key` of an `s3://` location.

    CWL locations are URIs, so cwltool percent-encodes the names it derives (a glob match
    `a b.txt` becomes `.../a%20b.txt`); S3 keys are the decoded names."""
    return urllib.parse.unquote(location)


def s3_location(raw_uri: str) -> str:
    """The URI form (percent-encoded key) of a raw `s3://bucket/key`."""
    bucket, _, key = raw_uri[len("s3://") :].partition("/")
    return f"s3://{bucket}/{urllib.parse.quote(key, safe='/')}"


def valid_efs_id(fs_id: str) -> bool:
    """True for a well-formed EFS file system id (fs- and 8 or 17 hex digits)."""
    return bool(_EFS_ID.match(fs_id))


def parse_efs(location: str) -> tuple[str, str]:
    """`efs://fs-id/a/b` -> ("fs-id", "a/b")."""
    fs_id, _, path = location[len("efs://") :].partition("/")
    if not valid_efs_id(fs_id):
        raise UserError(
            f"{location!r} names no valid EFS file system id; write it as efs://fs-ID/path "
            "with ID 8 or 17 hex digits (e.g. efs://fs-0123abcd/refs/genome.fa)."
        )
    return fs_id, urllib.parse.unquote(path).strip("/")


def efs_target(location: str) -> str:
    """Where an `efs://` location appears inside the job: /mnt/efs/<fs-id>/<path>."""
    fs_id, path = parse_efs(location)
    return f"{EFS_MOUNT_ROOT}/{fs_id}/{path}".rstrip("/")


def under_mount(path: str, mount_paths: Sequence[str]) -> bool:
    """True if the local path `path` lies under one of the EFS mount paths of the job."""
    clean = path[len("file://") :] if path.startswith("file://") else path
    clean = urllib.parse.unquote(clean)
    return any(clean == m or clean.startswith(m.rstrip("/") + "/") for m in mount_paths)


class S3FsAccess(StdFsAccess):
    """StdFsAccess for local paths; S3 reads, listings and globs for `s3://` ones.

    Paths under `efs_paths` (the jobs' EFS mount points) and `efs://` locations are taken to
    exist: the controller does not mount EFS, and the job names a missing reference."""

    def __init__(self, basedir: str, store: S3Store, efs_paths: Sequence[str] = ()) -> None:
        """Resolve relative local paths against `basedir`; use `store` for S3."""
        super().__init__(basedir)
        self.store = store
        self.efs_paths = tuple(efs_paths)
        # Listings say which children are directories; remembering that saves one request per
        # child when cwltool asks isdir()/isfile() right after listdir() (outputs are immutable).
        self._kinds: dict[str, bool] = {}

    def _on_efs(self, fn: str) -> bool:
        return is_efs(fn) or (bool(self.efs_paths) and under_mount(fn, self.efs_paths))

    def glob(self, pattern: str) -> list[str]:
        """Glob locally, or match one path level at a time against S3 listings."""
        if not is_s3(pattern):
            result: list[str] = super().glob(pattern)
            return result
        raw = s3_key_uri(pattern)
        if not any(ch in raw for ch in "*?["):
            return [s3_location(raw)] if self._exists_raw(raw) else []
        bucket_part, _, key = raw[len("s3://") :].partition("/")
        candidates = [f"s3://{bucket_part}"]
        for part in key.split("/"):
            matched: list[str] = []
            for base in candidates:
                if any(ch in part for ch in "*?["):
                    for entry in self._list(base):
                        name = entry.uri.rsplit("/", 1)[-1]
                        if fnmatch.fnmatchcase(name, part):
                            matched.append(entry.uri)
                else:
                    matched.append(f"{base}/{part}")
            candidates = matched
        return [s3_location(uri) for uri in candidates if self._exists_raw(uri)]

    def _list(self, raw: str) -> list[Any]:
        entries = self.store.list_dir(raw)
        for entry in entries:
            self._kinds[entry.uri] = entry.is_dir
        return entries

    def open(self, fn: str, mode: str) -> IO[Any]:
        """Open a local file, or stream an S3 object (S3 is read-only here)."""
        if not is_s3(fn):
            handle: IO[Any] = super().open(fn, mode)
            return handle
        if "r" not in mode or "+" in mode:
            raise OSError(f"{fn} is in S3 and can only be opened for reading")
        raw = s3_key_uri(fn)
        if "b" in mode:
            # A stream, so that loadContents reads 64 KiB and not the whole object.
            return cast(IO[Any], self.store.open_stream(raw))
        return io.StringIO(self.store.read_bytes(raw).decode("utf-8"))

    def exists(self, fn: str) -> bool:
        """True for an existing local path, S3 object or S3 prefix (or marked directory)."""
        if is_efs(fn):
            parse_efs(fn)
            return True
        if self._on_efs(fn):
            return True
        if not is_s3(fn):
            return bool(super().exists(fn))
        return self._exists_raw(s3_key_uri(fn))

    def _exists_raw(self, raw: str) -> bool:
        if raw in self._kinds:
            return True
        return self.store.exists_object(raw) or self.store.is_prefix(raw)

    def size(self, fn: str) -> int:
        """Size of a local file or S3 object (0 for EFS, which the controller cannot see)."""
        if self._on_efs(fn):
            return 0
        if not is_s3(fn):
            return int(super().size(fn))
        return self.store.size(s3_key_uri(fn))

    def isfile(self, fn: str) -> bool:
        """True for a local regular file or an S3 object (or an EFS location)."""
        if self._on_efs(fn):
            return self.exists(fn)
        if not is_s3(fn):
            return bool(super().isfile(fn))
        raw = s3_key_uri(fn)
        if raw in self._kinds:
            return not self._kinds[raw]
        return self.store.exists_object(raw)

    def isdir(self, fn: str) -> bool:
        """True for a local directory or an S3 prefix with objects or a directory marker."""
        if not is_s3(fn):
            return bool(super().isdir(fn))
        raw = s3_key_uri(fn)
        if raw in self._kinds:
            return self._kinds[raw]
        return self.store.is_prefix(raw)

    def listdir(self, fn: str) -> list[str]:
        """Children of a local directory or S3 prefix, as locations."""
        if not is_s3(fn):
            result: list[str] = super().listdir(fn)
            return result
        return [s3_location(entry.uri) for entry in self._list(s3_key_uri(fn))]

    def join(self, path: str, *paths: str) -> str:
        """Join path parts, with '/' for S3; a later absolute part wins, as in os.path.join."""
        for index in range(len(paths) - 1, -1, -1):
            if is_s3(paths[index]) or (is_s3(path) and paths[index].startswith("/")):
                return self.join(paths[index], *paths[index + 1 :])
        if not is_s3(path):
            joined: str = super().join(path, *paths)
            return joined
        return "/".join([path.rstrip("/"), *(p.strip("/") for p in paths if p.strip("/"))])

    def realpath(self, path: str) -> str:
        """Resolve symlinks locally; S3 and EFS locations are already canonical."""
        if is_s3(path) or self._on_efs(path):
            return path
        resolved: str = super().realpath(path)
        return resolved
