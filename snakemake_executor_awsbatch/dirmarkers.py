"""Empty directories in S3: zero-byte "directory marker" objects whose key ends in "/".

S3 has no directories, only keys, so a directory with no files in it vanishes on upload. The S3
console represents a folder with a zero-byte object named `prefix/`; we do the same for every
empty directory of an uploaded tree (a non-empty directory is implied by the keys under it), and
recreate the directories from those markers on download.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from snakemake_executor_awsbatch.s3uri import parse_s3_uri


def is_marker(key: str) -> bool:
    """True for a directory marker key (it ends in "/")."""
    return key.endswith("/")


def empty_dirs(local_dir: str) -> list[str]:
    """Relative POSIX paths of the directories under `local_dir` that hold nothing at all;
    "" stands for `local_dir` itself when it is empty. Symlinked directories are not entered."""
    found: list[str] = []
    for root, dirnames, filenames in os.walk(local_dir):
        if not dirnames and not filenames:
            rel = os.path.relpath(root, local_dir)
            found.append("" if rel == "." else rel.replace(os.sep, "/"))
    return sorted(found)


def marker_key(prefix_key: str, rel_dir: str) -> str:
    """The marker key of `rel_dir` (relative, "" for the prefix itself) under `prefix_key`."""
    base = prefix_key.rstrip("/")
    rel = rel_dir.strip("/")
    joined = f"{base}/{rel}" if rel else base
    return joined.lstrip("/") + "/"


def put_markers(
    client: Any,
    uri: str,
    rel_dirs: Iterable[str],
    extra_args: Mapping[str, Any] | None = None,
) -> int:
    """Write one zero-byte marker under the prefix `uri` for each relative directory; return
    how many were written. `extra_args` are PutObject arguments (e.g. SSE-KMS settings)."""
    bucket, prefix = parse_s3_uri(uri)
    count = 0
    for rel in rel_dirs:
        client.put_object(
            Bucket=bucket, Key=marker_key(prefix, rel), Body=b"", **(extra_args or {})
        )
        count += 1
    return count


def upload_markers(
    client: Any, local_dir: str, uri: str, extra_args: Mapping[str, Any] | None = None
) -> int:
    """Mark every empty directory of `local_dir` under the prefix `uri`; return the count."""
    return put_markers(client, uri, empty_dirs(local_dir), extra_args)


def marker_dirs(prefix_key: str, keys: Iterable[str]) -> list[str]:
    """Relative directories named by the marker keys among `keys` under `prefix_key`
    ("" for a marker of the prefix itself); other keys are ignored."""
    base = prefix_key.rstrip("/") + "/" if prefix_key.strip("/") else ""
    found: list[str] = []
    for key in keys:
        if is_marker(key) and (key.startswith(base) or key == base):
            found.append(key[len(base) :].strip("/"))
    return sorted(set(found))


def recreate_dirs(local_dir: str, prefix_key: str, keys: Iterable[str]) -> int:
    """Create under `local_dir` the directories whose markers are among `keys`; return how
    many markers were found. A marker that would escape `local_dir` is refused."""
    root = os.path.realpath(local_dir)
    rels = marker_dirs(prefix_key, keys)
    for rel in rels:
        target = os.path.realpath(os.path.join(root, *rel.split("/"))) if rel else root
        if target != root and not target.startswith(root + os.sep):
            raise ValueError(f"directory marker {rel!r} points outside {local_dir}")
        os.makedirs(target, exist_ok=True)
    return len(rels)


def list_marker_keys(client: Any, uri: str) -> list[str]:
    """Every marker key under the prefix `uri` (one paged ListObjectsV2)."""
    bucket, prefix = parse_s3_uri(uri)
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    keys: list[str] = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(str(o["Key"]) for o in page.get("Contents", []) if is_marker(str(o["Key"])))
    return keys


def download_markers(client: Any, uri: str, local_dir: str) -> int:
    """Recreate under `local_dir` the empty directories marked under `uri`; return the count."""
    _bucket, prefix = parse_s3_uri(uri)
    return recreate_dirs(local_dir, prefix, list_marker_keys(client, uri))
