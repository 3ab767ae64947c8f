"""S3 staging: many files at once through one s3transfer TransferManager (one thread pool,
parallel multipart parts), checksums set on upload and verified on download.

Every uploaded object carries its whole-file checksum in the metadata key `awsbatch-checksum`
(`ALGO:base64`), and S3 checks each part in transit (`ChecksumAlgorithm`). A download
(`s3download.ObjectFetcher`: one GetObject per object, no HeadObject) is checked against that
metadata, or against S3's own full-object checksum for objects others wrote (a small one
fetched natively: its ETag, where that is the data's MD5); an object with none of these is
counted as unverified. Small objects come down through awscrt's native S3 client
where it can send them (`s3native`), with botocore behind it. Throttling (503 SlowDown) and 5xx
are retried by botocore's standard retry mode, a body that breaks off mid-stream by the fetcher
or s3transfer.
"""

from __future__ import annotations

import functools
import glob
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError
from s3transfer.manager import TransferConfig, TransferManager

from snakemake_executor_awsbatch import dirmarkers
from snakemake_executor_awsbatch.botosession import shared_session
from snakemake_executor_awsbatch.checksums import ALGORITHMS, file_checksum
from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.s3download import META_KEY, ObjectFetcher, StagingError
from snakemake_executor_awsbatch.s3native import NativeGets
from snakemake_executor_awsbatch.s3uri import format_s3_uri, join_s3_uri, parse_s3_uri
from snakemake_executor_awsbatch.taskspec import StagedFile, StagingManifest

__all__ = [
    "META_KEY",
    "S3Stager",
    "StagingError",
    "StagingSettings",
    "TransferStats",
    "parse_s3_uri",
]

log = logging.getLogger(__name__)
MIB = 1 << 20
# The native client's own retries of a small GET (5xx, SlowDown, connection errors) before the
# object is handed to botocore, which retries with its full policy (max_attempts).
_NATIVE_RETRIES = 2


def default_concurrency(cpus: int | None = None) -> int:
    """Requests in flight by default: 4 per CPU, between 8 and 32.

    Every request's botocore work runs under one interpreter lock, so past a few connections per
    core more of them only contend: on 2 cores, 1 GiB came down at a median 647 MiB/s with 8
    ranged GETs in flight and 543 MiB/s with 32 (4 rounds each, same server).
    """
    count = os.cpu_count() if cpus is None else cpus
    return min(32, max(8, 4 * (count or 1)))


@dataclass(frozen=True)
class StagingSettings:
    """How transfers run: 16 MiB upload parts, 32 MiB download ranges, and
    `default_concurrency()` requests at once."""

    checksum_algorithm: str | None = "CRC32C"
    sse_kms_key_id: str | None = None
    storage_class: str | None = None
    max_concurrency: int = field(default_factory=default_concurrency)
    chunk_mib: int = 16
    threshold_mib: int = 16
    # Ranges of 32 MiB: half the GETs (and connections) of 16 MiB ones for the same bytes; 1 GiB
    # with 200 small files came down at a median 811 MiB/s against 682 with 16 MiB ranges (5
    # interleaved rounds each, same server, load 4-5 from other work). Upload parts stay at
    # 16 MiB: with 32 MiB ones the same 1 GiB went up at 103-113 MiB/s against 132-134.
    range_mib: int = 32
    max_attempts: int = 8

    @classmethod
    def from_manifest(cls, manifest: StagingManifest, **overrides: Any) -> StagingSettings:
        """Settings taken from a task's staging manifest (and the AWSBATCH_S3_* environment)."""
        return cls(
            checksum_algorithm=manifest.checksum_algorithm or None,
            sse_kms_key_id=manifest.sse_kms_key_id,
            storage_class=manifest.storage_class,
            **{**tuning_from_env(), **overrides},
        )


def tuning_from_env(env: Mapping[str, str] | None = None) -> dict[str, int]:
    """Transfer tuning from AWSBATCH_S3_CONCURRENCY / _CHUNK_MIB / _THRESHOLD_MIB / _RANGE_MIB,
    when set."""
    env = os.environ if env is None else env
    out: dict[str, int] = {}
    for name, key in (
        ("AWSBATCH_S3_CONCURRENCY", "max_concurrency"),
        ("AWSBATCH_S3_CHUNK_MIB", "chunk_mib"),
        ("AWSBATCH_S3_THRESHOLD_MIB", "threshold_mib"),
        ("AWSBATCH_S3_RANGE_MIB", "range_mib"),
    ):
        raw = env.get(name)
        if raw:
            if not raw.isdigit() or int(raw) < 1:
                raise UserError(f"{name}={raw!r} is not a positive whole number; fix or unset it.")
            out[key] = int(raw)
    if "chunk_mib" in out and out["chunk_mib"] < 5:
        raise UserError("AWSBATCH_S3_CHUNK_MIB is below S3's 5 MiB part minimum; raise it.")
    return out


@dataclass(frozen=True)
class TransferStats:
    """What a batch of transfers moved."""

    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    unverified: int = 0

    def __add__(self, other: TransferStats) -> TransferStats:
        return TransferStats(
            self.files + other.files,
            self.bytes + other.bytes,
            self.seconds + other.seconds,
            self.unverified + other.unverified,
        )


def s3_client(
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    max_concurrency: int = 32,
    max_attempts: int = 8,
) -> Any:
    """An S3 client sized for parallel transfers, retrying 5xx/SlowDown (standard mode)."""
    config = Config(
        # Small-object GETs and the ranges of large ones each use up to max_concurrency.
        max_pool_connections=2 * max_concurrency + 8,
        retries={"mode": "standard", "max_attempts": max_attempts},
        tcp_keepalive=True,
    )
    return shared_session().client(
        "s3", region_name=region, endpoint_url=endpoint_url, config=config
    )


# The client a warm interpreter made for the jobs it forks (see prepare_s3_client); each forked
# job takes its own copy. It lives here, not in the launcher: a forked job runs the launcher
# module afresh as __main__.
_prepared_clients: list[Any] = []


def prepare_s3_client() -> None:
    """Make a launcher job's S3 client ahead (a warm interpreter, before it forks any job).

    Making it parses the S3 model into the shared loader too. Even with the model parsed, a
    client takes about 10 ms to make, on the path of every job. Jobs are forked from a warm
    interpreter only when their environment, the per-job AWS_BATCH_* variables aside, is the
    one it started with, so this client reads the endpoint, region and credentials a fresh one
    would. It never sends anything in the interpreter itself, so no fork copies a connection.
    """
    _prepared_clients[:] = [s3_client()]


def take_prepared_s3_client() -> Any | None:
    """The client `prepare_s3_client` made, once; None if there is none (left)."""
    return _prepared_clients.pop() if _prepared_clients else None


class S3Stager:
    """Moves files and prefixes between S3 and local paths, many at a time."""

    def __init__(
        self, client: Any, settings: StagingSettings | None = None, *, native: bool | None = None
    ) -> None:
        """`native`: whether small objects may come down through awscrt's S3 client
        (s3native): None decides by the client (never for requests answered in-process),
        True also for a client with in-process handlers (tests), False never."""
        self.client = client
        self.settings = settings or StagingSettings()
        algo = self.settings.checksum_algorithm
        if algo is not None and algo not in ALGORITHMS:
            raise UserError(
                f"checksum algorithm '{algo}' is not supported; use one of {ALGORITHMS}."
            )
        config = TransferConfig(
            multipart_threshold=self.settings.threshold_mib * MIB,
            multipart_chunksize=self.settings.chunk_mib * MIB,
            max_request_concurrency=self.settings.max_concurrency,
            max_submission_concurrency=self.settings.max_concurrency,
            max_io_queue_size=1000,
            io_chunksize=1 * MIB,
            num_download_attempts=self.settings.max_attempts,
        )
        self._tm = TransferManager(client, config)
        self._pool = ThreadPoolExecutor(max(4, self.settings.max_concurrency))
        self._fetcher = ObjectFetcher(
            client,
            threshold=self.settings.threshold_mib * MIB,
            part_size=self.settings.range_mib * MIB,
            concurrency=self.settings.max_concurrency,
            max_attempts=self.settings.max_attempts,
            native=None
            if native is False
            else functools.partial(
                NativeGets.for_client,
                client,
                _NATIVE_RETRIES,
                intercepted_ok=bool(native),
            ),
        )

    def close(self) -> None:
        """Wait for transfers in flight and free the thread pools."""
        self._tm.shutdown()
        self._pool.shutdown()
        self._fetcher.close()

    def __enter__(self) -> S3Stager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- uploads ------------------------------------------------------------------------------

    def _upload_args(self, path: str) -> dict[str, Any]:
        args: dict[str, Any] = {}
        algo = self.settings.checksum_algorithm
        if algo:
            args["ChecksumAlgorithm"] = algo
            args["Metadata"] = {META_KEY: f"{algo}:{file_checksum(path, algo)}"}
        args.update(self._sse_args())
        if self.settings.storage_class:
            args["StorageClass"] = self.settings.storage_class
        return args

    def _sse_args(self) -> dict[str, Any]:
        if not self.settings.sse_kms_key_id:
            return {}
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.settings.sse_kms_key_id}

    def upload_files(self, pairs: Iterable[tuple[str, str]]) -> TransferStats:
        """Upload (local path, s3 uri) pairs in parallel."""
        start = time.monotonic()
        jobs = [(path, uri, *parse_s3_uri(uri)) for path, uri in pairs]

        def submit(job: tuple[str, str, str, str]) -> tuple[str, Any, int]:
            path, uri, bucket, key = job
            size = os.path.getsize(path)
            future = self._tm.upload(path, bucket, key, extra_args=self._upload_args(path))
            return uri, future, size

        submitted = list(self._pool.map(submit, jobs))
        total = 0
        for uri, future, size in submitted:
            try:
                future.result()
            except ClientError as error:
                raise StagingError(f"upload to {uri} failed: {error}") from error
            total += size
        return TransferStats(len(submitted), total, time.monotonic() - start)

    def upload_directory(self, local_dir: str, uri: str) -> TransferStats:
        """Upload every file under a directory to the prefix `uri/`."""
        pairs = []
        for root, _, names in os.walk(local_dir):
            for name in names:
                path = os.path.join(root, name)
                rel = os.path.relpath(path, local_dir).replace(os.sep, "/")
                pairs.append((path, join_s3_uri(uri, rel)))
        stats = self.upload_files(pairs)
        # Empty directories have no keys of their own: a zero-byte "dir/" marker keeps each.
        dirmarkers.upload_markers(self.client, local_dir, uri, self._sse_args())
        return stats

    # -- downloads ----------------------------------------------------------------------------

    def download_files(self, pairs: Iterable[tuple[str, str]]) -> TransferStats:
        """Download (s3 uri, local path) pairs in parallel, verifying checksums."""
        start = time.monotonic()
        jobs = list(pairs)
        futures = [self._pool.submit(self._fetcher.fetch, uri, path) for uri, path in jobs]
        done = [future.result() for future in futures]
        return TransferStats(
            len(done),
            sum(item.size for item in done),
            time.monotonic() - start,
            unverified=sum(not item.verified for item in done),
        )

    def list_prefix(self, uri: str) -> list[tuple[str, int]]:
        """(key, size) of every object under `uri/`, skipping folder markers."""
        return self._list(uri)[0]

    def _list(self, uri: str) -> tuple[list[tuple[str, int]], list[str]]:
        """(key, size) of the objects under `uri/`, and the directory-marker keys apart."""
        bucket, prefix = parse_s3_uri(uri)
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        objects: list[tuple[str, int]] = []
        markers: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = str(obj["Key"])
                if dirmarkers.is_marker(key):
                    markers.append(key)
                else:
                    objects.append((key, int(obj["Size"])))
        return objects, markers

    def download_directory(self, uri: str, local_dir: str) -> TransferStats:
        """Download every object under the prefix `uri/` into a directory, and recreate the
        empty directories its markers name."""
        bucket, prefix = parse_s3_uri(uri)
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        objects, markers = self._list(uri)
        os.makedirs(local_dir, exist_ok=True)
        dirmarkers.recreate_dirs(local_dir, prefix, markers)
        pairs = [
            (format_s3_uri(bucket, key), os.path.join(local_dir, *key[len(prefix) :].split("/")))
            for key, _ in objects
        ]
        return self.download_files(pairs)

    # -- task staging -------------------------------------------------------------------------

    def stage_in(self, files: Sequence[StagedFile], workdir: str) -> TransferStats:
        """Fetch a task's inputs (files, directories and their secondary files)."""
        stats = TransferStats()
        pairs: list[tuple[str, str]] = []
        for item in files:
            target = os.path.join(workdir, item.path)
            if item.is_directory:
                stats += self.download_directory(item.s3_uri, target)
            else:
                pairs.append((item.s3_uri, target))
            pairs.extend((uri, os.path.join(workdir, path)) for uri, path in item.secondary)
        return stats + self.download_files(pairs)

    def stage_out(self, files: Sequence[StagedFile], workdir: str) -> TransferStats:
        """Push a task's outputs; a missing non-optional output is a StagingError."""
        stats = TransferStats()
        pairs: list[tuple[str, str]] = []
        for item in files:
            target = os.path.join(workdir, item.path)
            if glob.has_magic(item.path):
                matches = sorted(glob.glob(target))
                if not matches and not item.optional:
                    raise StagingError(f"no output matches {item.path} in {workdir}")
                for match in matches:
                    name = os.path.relpath(match, workdir).replace(os.sep, "/")
                    if os.path.isdir(match):
                        stats += self.upload_directory(match, join_s3_uri(item.s3_uri, name))
                    else:
                        pairs.append((match, join_s3_uri(item.s3_uri, os.path.basename(match))))
                continue
            if item.is_directory and os.path.isdir(target):
                stats += self.upload_directory(target, item.s3_uri)
            elif os.path.isfile(target):
                pairs.append((target, item.s3_uri))
            elif not item.optional:
                raise StagingError(f"output {item.path} was not created in {workdir}")
            for uri, path in item.secondary:
                sec = os.path.join(workdir, path)
                if os.path.isfile(sec):
                    pairs.append((sec, uri))
                elif not item.optional:
                    raise StagingError(f"secondary output {path} was not created in {workdir}")
        return stats + self.upload_files(pairs)
