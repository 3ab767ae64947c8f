"""Parallel ranged download of one large object, each range written at its offset; the `.part`
file every download writes before it takes the final name.

Each range is a GetObject with `Range` and `If-Match: <ETag>` (an object replaced mid-download
fails with 412 instead of mixing versions), read in 1 MiB pieces and written with `os.pwrite`
(in 256 KiB slices, see `_WRITE_SLICE`) straight to its place in a `.part` file, so no queue
or writer thread sits between the socket and the disk. Before a range's bytes arrive, the
kernel is asked to set up its pages (`prepare_pages`), so the writes only copy. Each range
keeps its own CRC; the CRCs combine into the whole file's (`awscrt.checksums.combine_crc32c`),
so the file is not read back. SHA256 does not combine: an object checked by SHA256 is read
back once.

Every request (a range here, a whole small object in `s3download.py`) holds one of the stager's
request slots while it runs, so `concurrency` bounds the requests in flight for all objects
together: the ranges of a large object and whole small objects at once no longer make up to
twice as many busy threads (each contending for the GIL) as the setting asks for.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, IncompleteReadError

from snakemake_executor_awsbatch.checksums import Hasher, combinable, combine, file_checksum

log = logging.getLogger(__name__)
_READ_CHUNK = 1 << 20
# Socket reads stay at 1 MiB (fewer Python calls), but disk writes go in 256 KiB slices: with
# 1 MiB pwrites the kernel's copy into the page cache (copy_folio_from_iter_atomic) took 22-25%
# of all CPU samples of a 1 GiB download against 2-4% with 256 KiB ones (perf, measured; large
# page-cache folios sized to each write, apparently drawn from memory the VM had not touched).
_WRITE_SLICE = 256 << 10


def prepare_pages(fd: int, start: int, length: int) -> None:
    """Have the kernel set up the page cache of bytes [start, start+length) of a sized file."""
    # WILLNEED on the not-yet-written (sparse) range makes the kernel allocate and zero its
    # pages now, in this range's thread and outside the file's inode lock, where every pwrite
    # would otherwise allocate its pages while holding that lock, one writer at a time. When
    # the memory is new to the VM (first touch: ~400 MB/s here against ~3 GB/s for reused
    # memory), those serialised first touches capped a 1 GiB download at 360-500 MiB/s
    # (page-cache copy 30-39% of samples, lock spinning 10%); with this, 640-860 (see
    # docs/staging-benchmark-log.md). That first touch is slow where the VM hands freed memory
    # back to its host (free page reporting); without that (as on EC2) the hint costs about
    # 13% on a 1 GiB file (1273-1542 MiB/s against 1542-1699 without it, session 14); it is
    # kept for its better worst case where memory is handed back (with memory held: 485-974
    # against 341-435). A hint only: the writes are correct with or without it.
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, start, length, os.POSIX_FADV_WILLNEED)


def write_at(fd: int, data: bytes, offset: int) -> None:
    """Write `data` at `offset` of `fd` in slices of at most 256 KiB (see _WRITE_SLICE)."""
    view = memoryview(data)
    done = 0
    while done < len(view):  # pwrite may write less than asked (then it says how much)
        done += os.pwrite(fd, view[done : done + _WRITE_SLICE], offset + done)


def partial_path(path: str) -> str:
    """The `.part` file a download of `path` writes in this thread before taking the name."""
    return f"{path}.{threading.get_ident()}.part"


def create_partial(partial: str, keep: bool = False) -> int:
    """A descriptor open for writing on the `.part` file `partial`, new or emptied (or, with
    `keep`, as this thread's download left it so far)."""
    return os.open(partial, os.O_WRONLY | os.O_CREAT | (0 if keep else os.O_TRUNC), 0o644)


@contextmanager
def partial_file(path: str, keep: bool = False) -> Iterator[int]:
    """A descriptor open for writing on a new `.part` file for `path` (with `keep`, the one
    this thread began); the file is closed and renamed to `path` on success, removed on
    failure."""
    partial = partial_path(path)
    try:
        fd = create_partial(partial, keep)
        try:
            yield fd
        finally:
            os.close(fd)
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.unlink(partial)
        raise


class RangeError(Exception):
    """A range could not be fetched; `replaced` when the object changed under the download."""

    def __init__(self, message: str, *, replaced: bool = False) -> None:
        super().__init__(message)
        self.replaced = replaced


class RangedFetcher:
    """Fetches one object as parallel ranges; safe to call from many threads at once."""

    def __init__(
        self,
        client: Any,
        part_size: int,
        concurrency: int,
        max_attempts: int,
        retryable: tuple[type[BaseException], ...],
        slots: threading.Semaphore,
    ) -> None:
        self.client = client
        self.slots = slots
        self.part_size = part_size
        self.max_attempts = max(1, max_attempts)
        self.retryable = retryable
        # One pool for the ranges of every object: many large inputs at once share `concurrency`
        # connections instead of each opening its own set.
        self._pool = ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="s3-range")

    def close(self) -> None:
        """Free the range threads (after the downloads in flight)."""
        self._pool.shutdown()

    def fetch(
        self,
        bucket: str,
        key: str,
        path: str,
        size: int,
        etag: str,
        algorithm: str | None,
        kept: int = 0,
        kept_hasher: Hasher | None = None,
    ) -> str | None:
        """Download to `path` atomically; returns the file's checksum with `algorithm`.

        With `kept`, the object's first `kept` bytes are already in this thread's `.part` file
        (the answer to the first GET, see s3native), `kept_hasher` their checksum when the
        algorithm combines; the ranges cover the rest."""
        hash_parts = algorithm is not None and combinable(algorithm)
        if hash_parts and kept_hasher is None:
            kept = 0  # no checksum of the kept bytes to combine with: fetch them again
        parts = [
            (start, min(self.part_size, size - start))
            for start in range(kept, size, self.part_size)
        ]
        part_algorithm = algorithm if hash_parts else None
        with partial_file(path, keep=kept > 0) as fd:
            os.ftruncate(fd, size)

            def one(part: tuple[int, int]) -> Hasher | None:
                with self.slots:
                    return self._part(bucket, key, etag, fd, part[0], part[1], part_algorithm)

            hashers = list(self._pool.map(one, parts))
        if algorithm is None:
            return None
        if hash_parts:
            pieces = [(h, length) for h, (_, length) in zip(hashers, parts, strict=True) if h]
            if kept and kept_hasher is not None:
                pieces.insert(0, (kept_hasher, kept))
            return combine(algorithm, pieces) if pieces else Hasher(algorithm).b64digest()
        return file_checksum(path, algorithm)

    def _part(
        self,
        bucket: str,
        key: str,
        etag: str,
        fd: int,
        start: int,
        length: int,
        algorithm: str | None,
    ) -> Hasher | None:
        """Fetch bytes [start, start+length) into fd, retrying a body that breaks off."""
        last = start + length - 1
        prepare_pages(fd, start, length)
        for attempt in range(1, self.max_attempts + 1):
            part_hasher = Hasher(algorithm) if algorithm is not None else None
            try:
                response = self.client.get_object(
                    Bucket=bucket, Key=key, Range=f"bytes={start}-{last}", IfMatch=etag
                )
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                raise RangeError(str(error), replaced=code == "PreconditionFailed") from error
            except BotoCoreError as error:
                raise RangeError(str(error)) from error
            body = response["Body"]
            offset = start
            try:
                while offset <= last and (piece := body.read(min(_READ_CHUNK, last + 1 - offset))):
                    write_at(fd, piece, offset)
                    if part_hasher is not None:
                        part_hasher.update(piece)
                    offset += len(piece)
                if offset != last + 1:
                    raise IncompleteReadError(actual_bytes=offset - start, expected_bytes=length)
            except self.retryable as error:
                if attempt == self.max_attempts:
                    raise RangeError(str(error)) from error
                log.info("range %d-%d of %s broke off (%s); retrying", start, last, key, error)
                continue
            finally:
                body.close()
            return part_hasher
        raise AssertionError("unreachable: the loop returns or raises")
