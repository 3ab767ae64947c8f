"""Downloads of single objects: one GetObject per object, checked while it streams to disk.

The GetObject response carries everything a HeadObject would (size, ETag, metadata, S3's
checksum), so no object costs two requests. An object up to the multipart threshold is written
from that one response and its checksum computed on the way, so the file is read from disk zero
times. A larger object drops that response after its headers (through the native client,
`s3native.py`, whose first GET asks for `threshold` bytes, those bytes are kept instead and
the ranges start after them) and is fetched as parallel ranged GETs (`s3ranged.py`), each with
`If-Match` on the ETag just seen (an object replaced mid-download fails with 412 instead of
mixing two versions) and written at its offset; the ranges' CRCs
combine into the file's, so only a SHA256-checked file is read back.

The checksum a download is held to is the uploader's whole-file `awsbatch-checksum` metadata, or
else S3's own checksum when it covers the whole object (`FULL_OBJECT`); a composite checksum of
multipart parts (`...-N`) cannot be checked against a whole file, so such an object without our
metadata counts as unverified.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, FlexibleChecksumError
from s3transfer.utils import S3_RETRYABLE_DOWNLOAD_ERRORS

from snakemake_executor_awsbatch.checksums import ALGORITHMS, Hasher
from snakemake_executor_awsbatch.s3native import NativeGets, TooLarge
from snakemake_executor_awsbatch.s3ranged import (
    RangedFetcher,
    RangeError,
    partial_file,
    partial_path,
    write_at,
)
from snakemake_executor_awsbatch.s3uri import parse_s3_uri

log = logging.getLogger(__name__)
META_KEY = "awsbatch-checksum"
# 1 MiB reads: measured 5x less system time than 4 MiB ones, whose buffers glibc maps and unmaps
# for every read (a page fault per 4 KiB), and few enough calls for Python's per-read cost.
_READ_CHUNK = 1 << 20
_BROKEN_OFF: tuple[type[BaseException], ...] = tuple(S3_RETRYABLE_DOWNLOAD_ERRORS)


class StagingError(Exception):
    """A transfer failed: a missing input, a missing output, a checksum mismatch or S3 errors."""


@dataclass(frozen=True)
class Fetched:
    """One object brought to disk."""

    uri: str
    path: str
    size: int
    verified: bool


def expected_checksum(response: Mapping[str, Any]) -> str | None:
    """The whole-object checksum (`ALGO:base64`) a Get/HeadObject response promises, if any."""
    ours = response.get("Metadata", {}).get(META_KEY)
    if ours:
        algo, _, value = str(ours).partition(":")
        return f"{algo}:{value}" if algo in ALGORITHMS and value else None
    kind = response.get("ChecksumType")
    for algo in ALGORITHMS:
        theirs = response.get(f"Checksum{algo}")
        if theirs and kind in (None, "FULL_OBJECT") and "-" not in str(theirs):
            return f"{algo}:{theirs}"
    return None


def checksum_algorithm(response: Mapping[str, Any]) -> str | None:
    """The algorithm of the checksum a response promises (see expected_checksum), if any."""
    expected = expected_checksum(response)
    return expected.partition(":")[0] if expected else None


class ObjectFetcher:
    """Fetches one object to one path; safe to call from many threads at once."""

    def __init__(
        self,
        client: Any,
        threshold: int,
        part_size: int,
        concurrency: int,
        max_attempts: int,
        native: Callable[[], NativeGets | None] | None = None,
    ) -> None:
        self.client = client
        # Whole small objects go through awscrt's S3 client when it can send them (s3native),
        # made on the first download (a stager that only uploads never starts its threads).
        self._native_factory = native
        self._native: NativeGets | None = None
        self._native_lock = threading.Lock()
        self.threshold = threshold
        self.max_attempts = max(1, max_attempts)
        # One budget of requests in flight for whole objects and ranges alike (see s3ranged).
        self._slots = threading.BoundedSemaphore(max(1, concurrency))
        self.ranges = RangedFetcher(
            client, part_size, concurrency, max_attempts, _BROKEN_OFF, self._slots
        )

    def _native_gets(self) -> NativeGets | None:
        if self._native_factory is not None:
            with self._native_lock:
                if self._native_factory is not None:
                    self._native = self._native_factory()
                    self._native_factory = None
        return self._native

    def close(self) -> None:
        """Free the threads of ranged downloads."""
        self.ranges.close()

    def fetch(self, uri: str, path: str) -> Fetched:
        """Download `uri` to `path` (atomically) and check it; StagingError when it fails."""
        bucket, key = parse_s3_uri(uri)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        native = self._native_gets()
        if native is not None:
            partial = partial_path(path)
            with self._slots:
                got = native.get(bucket, key, partial, self.threshold, checksum_algorithm)
            if got is not None:
                size = int(got.response["ContentLength"])
                expected = expected_checksum(got.response)
                if isinstance(got, TooLarge):
                    # Its ranges start after the bytes the native GET brought (got.kept).
                    etag = str(got.response["ETag"])
                    return self._ranged(uri, bucket, key, path, size, etag, expected, got)
                os.replace(partial, path)
                if got.checksum is None:  # not ours: s3native checked it against its ETag
                    return Fetched(uri, path, size, verified=True)
                _check(uri, path, expected, got.checksum)
                return Fetched(uri, path, size, expected is not None)
        for attempt in range(1, self.max_attempts + 1):
            with self._slots:
                response = self._get(uri, bucket, key)
                size = int(response["ContentLength"])
                expected = expected_checksum(response)
                if size <= self.threshold:
                    try:
                        actual = self._stream(response["Body"], path, expected)
                    except _BROKEN_OFF as error:
                        if attempt == self.max_attempts:
                            raise StagingError(f"download of {uri} failed: {error}") from error
                        log.info("download of %s broke off (%s); retrying", uri, error)
                        continue
                    except FlexibleChecksumError as error:
                        raise StagingError(
                            f"{uri} arrived corrupted ({error}); no local copy was kept, run the "
                            "job again"
                        ) from error
                    _check(uri, path, expected, actual)
                    return Fetched(uri, path, size, expected is not None)
                # Dropping the body costs one connection; a HeadObject first would cost a
                # round trip on every object, small ones included.
                response["Body"].close()
            # Outside the slot: each range takes one of its own.
            return self._ranged(uri, bucket, key, path, size, str(response["ETag"]), expected)
        raise AssertionError("unreachable: the loop returns or raises")

    def _get(self, uri: str, bucket: str, key: str) -> Any:
        try:
            return self.client.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status in (403, 404):
                raise StagingError(f"input {uri} does not exist or is not readable") from error
            raise StagingError(f"could not read {uri}: {error}") from error
        except BotoCoreError as error:  # no answer at all (connection refused, timeouts)
            raise StagingError(f"could not read {uri}: {error}") from error

    def _stream(self, body: Any, path: str, expected: str | None) -> str | None:
        """Write the body to a partial file, hashing as it goes; returns the checksum."""
        hasher = Hasher(expected.partition(":")[0]) if expected else None
        try:
            with partial_file(path) as fd:
                offset = 0
                while chunk := body.read(_READ_CHUNK):
                    if hasher is not None:
                        hasher.update(chunk)
                    write_at(fd, chunk, offset)
                    offset += len(chunk)
        finally:
            body.close()
        return hasher.b64digest() if hasher is not None else None

    def _ranged(
        self,
        uri: str,
        bucket: str,
        key: str,
        path: str,
        size: int,
        etag: str,
        expected: str | None,
        head: TooLarge | None = None,
    ) -> Fetched:
        algorithm = expected.partition(":")[0] if expected else None
        kept, kept_hasher = (head.kept, head.kept_hasher) if head is not None else (0, None)
        try:
            actual = self.ranges.fetch(bucket, key, path, size, etag, algorithm, kept, kept_hasher)
        except RangeError as error:
            if error.replaced:
                raise StagingError(
                    f"{uri} was replaced while it was being downloaded; run the job again once "
                    "it no longer changes"
                ) from error
            raise StagingError(f"download of {uri} failed: {error}") from error
        _check(uri, path, expected, actual)
        return Fetched(uri, path, size, expected is not None)


def _check(uri: str, path: str, expected: str | None, actual: str | None) -> None:
    """Remove the file and raise when its checksum is not the one promised."""
    if expected is None:
        return
    algo, _, value = expected.partition(":")
    if actual != value:
        os.unlink(path)
        raise StagingError(
            f"{uri} arrived corrupted ({algo} {actual} != {value}); the local copy was removed, "
            "run the job again"
        )
