"""S3 access for the CWL runner: content-addressed uploads, prefix downloads and listings.

Local inputs are uploaded under `<root>/cas/<sha256>` (files) and `<root>/dirs/<sha256>/...`
(directory trees), so that a re-run of the same inputs uploads nothing.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from snakemake_executor_awsbatch import dirmarkers
from snakemake_executor_awsbatch.errors import UserError

_CHUNK = 1024 * 1024


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split `s3://bucket/key` into (bucket, key); the key may be empty."""
    if not uri.startswith("s3://"):
        raise UserError(f"{uri!r} is not an s3:// URI; write it as s3://bucket/key.")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise UserError(f"{uri!r} names no bucket; write it as s3://bucket/key.")
    return bucket, key


def sha256_file(path: str) -> str:
    """The hex SHA-256 of a local file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class S3Entry:
    """One object or common prefix seen in a listing."""

    uri: str
    is_dir: bool
    size: int = 0


class S3Store:
    """Thin, typed helper over one boto3 S3 client rooted at an `s3://bucket/prefix`."""

    def __init__(self, client: Any, root_uri: str) -> None:
        """Use `client` (a boto3 S3 client) and keep run data under `root_uri`."""
        self.client = client
        self.root_uri = root_uri.rstrip("/")
        self._hash_cache: dict[tuple[str, int, int], str] = {}
        self._known: set[str] = set()
        self._lock = threading.Lock()

    # ---- uploads -------------------------------------------------------------------------
    def _digest(self, path: str) -> str:
        stat = os.stat(path)
        key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._hash_cache.get(key)
        if cached is None:
            cached = sha256_file(path)
            with self._lock:
                self._hash_cache[key] = cached
        return cached

    def upload_file_cas(self, path: str) -> str:
        """Upload a local file once, keyed by its SHA-256; return its S3 URI."""
        uri = f"{self.root_uri}/cas/{self._digest(path)}"
        if not self._present(uri):
            bucket, key = parse_s3_uri(uri)
            self.client.upload_file(path, bucket, key)
            self._mark(uri)
        return uri

    def put_bytes_cas(self, data: bytes) -> str:
        """Store `data` once, keyed by its SHA-256; return its S3 URI."""
        uri = f"{self.root_uri}/cas/{hashlib.sha256(data).hexdigest()}"
        if not self._present(uri):
            bucket, key = parse_s3_uri(uri)
            self.client.put_object(Bucket=bucket, Key=key, Body=data)
            self._mark(uri)
        return uri

    def upload_dir_cas(self, path: str) -> str:
        """Upload a local directory tree once, keyed by its listing and content; return the
        prefix URI (no trailing slash). Empty directories become directory markers."""
        files: list[tuple[str, str]] = []
        for dirpath, _dirnames, filenames in os.walk(path, followlinks=True):
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                files.append((os.path.relpath(full, path), full))
        files.sort()
        empty = dirmarkers.empty_dirs(path)
        digest = hashlib.sha256()
        for rel, full in files:
            digest.update(f"{rel}\0{self._digest(full)}\n".encode())
        for rel in empty:
            digest.update(f"{rel}/\0dir\n".encode())
        prefix = f"{self.root_uri}/dirs/{digest.hexdigest()}"
        marker = f"{prefix}.complete"
        if not self._present(marker):
            for rel, full in files:
                bucket, key = parse_s3_uri(f"{prefix}/{rel}")
                self.client.upload_file(full, bucket, key)
            dirmarkers.put_markers(self.client, prefix, empty)
            bucket, key = parse_s3_uri(marker)
            self.client.put_object(Bucket=bucket, Key=key, Body=b"")
            self._mark(marker)
        return prefix

    def _present(self, uri: str) -> bool:
        with self._lock:
            if uri in self._known:
                return True
        if self.exists_object(uri):
            self._mark(uri)
            return True
        return False

    def _mark(self, uri: str) -> None:
        with self._lock:
            self._known.add(uri)

    # ---- reads ---------------------------------------------------------------------------
    def exists_object(self, uri: str) -> bool:
        """True if `uri` names an existing object (not a prefix)."""
        bucket, key = parse_s3_uri(uri)
        if not key:
            return False
        try:
            self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return False
            if code == "NoSuchBucket":
                raise UserError(
                    f"the bucket of {uri} does not exist; create it or correct the URI."
                ) from err
            if code in ("403", "AccessDenied"):
                raise UserError(
                    f"access to {uri} is denied; grant s3:GetObject on it to these credentials."
                ) from err
            raise
        return True

    def is_prefix(self, uri: str) -> bool:
        """True if at least one object lives under `uri/` (an S3 'directory')."""
        bucket, key = parse_s3_uri(uri)
        prefix = key.rstrip("/") + "/" if key else ""
        reply = self.client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        return int(reply.get("KeyCount", 0)) > 0

    def size(self, uri: str) -> int:
        """Size in bytes of the object at `uri`; UserError when it is missing or unreadable."""
        bucket, key = parse_s3_uri(uri)
        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket", "403", "AccessDenied"):
                raise UserError(
                    f"{uri} does not exist or is not readable ({code}); "
                    "upload it, correct the location or grant s3:GetObject."
                ) from err
            raise
        return int(head["ContentLength"])

    def read_bytes(self, uri: str) -> bytes:
        """The whole content of the object at `uri`."""
        bucket, key = parse_s3_uri(uri)
        body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
        data: bytes = body.read()
        return data

    def open_stream(self, uri: str) -> Any:
        """A readable binary stream of the object at `uri` (read as consumed, not all at once)."""
        bucket, key = parse_s3_uri(uri)
        return self.client.get_object(Bucket=bucket, Key=key)["Body"]

    def list_dir(self, uri: str) -> list[S3Entry]:
        """Direct children of the prefix `uri` (objects and sub-prefixes)."""
        bucket, key = parse_s3_uri(uri)
        prefix = key.rstrip("/") + "/" if key else ""
        entries: list[S3Entry] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                name = str(common["Prefix"]).rstrip("/")
                entries.append(S3Entry(f"s3://{bucket}/{name}", True))
            for obj in page.get("Contents", []):
                name = str(obj["Key"])
                if name == prefix:
                    continue
                entries.append(S3Entry(f"s3://{bucket}/{name}", False, int(obj["Size"])))
        return entries

    def list_tree(self, uri: str) -> list[S3Entry]:
        """Every object under the prefix `uri`, recursively."""
        bucket, key = parse_s3_uri(uri)
        prefix = key.rstrip("/") + "/" if key else ""
        entries: list[S3Entry] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                name = str(obj["Key"])
                entries.append(S3Entry(f"s3://{bucket}/{name}", False, int(obj["Size"])))
        return entries

    def download_file(self, uri: str, dest: str) -> None:
        """Download one object to a local path, creating parent directories."""
        bucket, key = parse_s3_uri(uri)
        os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
        if os.path.islink(dest):
            os.unlink(dest)
        self.client.download_file(bucket, key, dest)

    def download_tree(self, uri: str, dest: str) -> int:
        """Download every object under the prefix `uri` into `dest`, recreating the empty
        directories its markers name; return the object count."""
        base = uri.rstrip("/") + "/"
        _bucket, prefix = parse_s3_uri(base)
        count = 0
        os.makedirs(dest, exist_ok=True)
        markers: list[str] = []
        for entry in self.list_tree(uri):
            rel = entry.uri[len(base) :]
            if dirmarkers.is_marker(entry.uri):
                markers.append(parse_s3_uri(entry.uri)[1])
                continue
            self.download_file(entry.uri, os.path.join(dest, rel))
            count += 1
        dirmarkers.recreate_dirs(dest, prefix, markers)
        return count

    def put_marker(self, uri: str) -> None:
        """Write the zero-byte directory marker `uri/` (an empty directory, as the console does)."""
        dirmarkers.put_markers(self.client, uri, [""])

    def copy(self, src: str, dst: str) -> None:
        """Copy one object server-side (multipart copy above the part size); nothing passes
        through this machine."""
        src_bucket, src_key = parse_s3_uri(src)
        dst_bucket, dst_key = parse_s3_uri(dst)
        if dirmarkers.is_marker(src_key):
            self.client.copy_object(
                Bucket=dst_bucket, Key=dst_key, CopySource={"Bucket": src_bucket, "Key": src_key}
            )
            return
        self.client.copy({"Bucket": src_bucket, "Key": src_key}, dst_bucket, dst_key)

    def sync_prefix(self, src: str, dst: str) -> int:
        """Make the prefix `dst` hold what `src` holds (server-side copies, then deletion of
        what `src` no longer has); return the number of objects copied."""
        src_base, dst_base = src.rstrip("/"), dst.rstrip("/")
        wanted = {e.uri[len(src_base) :] for e in self.list_tree(src_base)}
        for rel in sorted(wanted):
            self.copy(src_base + rel, dst_base + rel)
        stale = [e.uri for e in self.list_tree(dst_base) if e.uri[len(dst_base) :] not in wanted]
        for uri in stale:
            bucket, key = parse_s3_uri(uri)
            self.client.delete_object(Bucket=bucket, Key=key)
        return len(wanted)

    def ensure_bucket(self, bucket: str, region: str) -> None:
        """Create `bucket` if it is missing (used for the local cloud only)."""
        try:
            self.client.head_bucket(Bucket=bucket)
        except ClientError:
            if region == "us-east-1":
                self.client.create_bucket(Bucket=bucket)
            else:
                self.client.create_bucket(
                    Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
                )
