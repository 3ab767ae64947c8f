"""How downloads write and how many requests they hold: 256 KiB write slices (short writes
resumed), each range's pages prepared by the kernel before its bytes are written, the `.part`
file renamed on success and removed on failure, and one budget of `max_concurrency` requests in
flight for whole objects and ranges together."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from snakemake_executor_awsbatch.s3ranged import partial_file, write_at
from snakemake_executor_awsbatch.staging import S3Stager, StagingSettings

MIB = 1 << 20
SLICE = 256 << 10


def test_write_at_writes_in_slices_of_at_most_256_kib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(MIB + 7)
    sizes: list[int] = []
    real_pwrite = os.pwrite

    def recording_pwrite(fd: int, piece: Any, offset: int) -> int:
        sizes.append(len(piece))
        return real_pwrite(fd, piece, offset)

    monkeypatch.setattr(os, "pwrite", recording_pwrite)
    path = _write_new_file(tmp_path, data, offset=5)
    assert max(sizes) == SLICE
    assert sum(sizes) == len(data)
    assert path.read_bytes() == b"\0" * 5 + data


def test_write_at_resumes_short_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(300_000)
    real_pwrite = os.pwrite

    def short_pwrite(fd: int, piece: Any, offset: int) -> int:
        return real_pwrite(fd, memoryview(piece)[:1000], offset)

    monkeypatch.setattr(os, "pwrite", short_pwrite)
    assert _write_new_file(tmp_path, data, offset=0).read_bytes() == data


def _write_new_file(tmp_path: Path, data: bytes, offset: int) -> Path:
    """`write_at` into a new file out.bin at `offset`; returns its path."""
    path = tmp_path / "out.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        write_at(fd, data, offset)
    finally:
        os.close(fd)
    return path


def test_partial_file_takes_the_final_name_only_on_success(tmp_path: Path) -> None:
    done = tmp_path / "done.txt"
    with partial_file(str(done)) as fd:
        os.write(fd, b"whole")
        assert not done.exists()
    assert done.read_text() == "whole"

    failed = tmp_path / "failed.txt"
    with pytest.raises(RuntimeError), partial_file(str(failed)) as fd:
        os.write(fd, b"half")
        raise RuntimeError("broke off")
    assert list(tmp_path.iterdir()) == [done]


class _CountingClient:
    """An S3 client that counts GetObject requests in flight (from the call to the body's close)
    and holds each one a little, so that requests which may overlap do overlap."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def get_object(self, **params: Any) -> Any:
        with self._lock:
            self.in_flight += 1
            self.calls += 1
            self.peak = max(self.peak, self.in_flight)
        time.sleep(0.02)
        try:
            response = self._client.get_object(**params)
        except BaseException:
            self._leave()
            raise
        body = response["Body"]
        close = body.close
        closed: list[bool] = []

        def counted_close() -> None:
            if not closed:
                closed.append(True)
                self._leave()
            close()

        body.close = counted_close
        return response


def test_whole_objects_and_ranges_share_one_request_budget(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    settings = StagingSettings(chunk_mib=5, threshold_mib=5, range_mib=5, max_concurrency=2)
    files = {f"small-{i}.bin": os.urandom(1000 + i) for i in range(8)}
    files["big.bin"] = os.urandom(12 * MIB)  # three ranges of 5 MiB
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    with S3Stager(s3, settings) as stager:
        stager.upload_files([(str(tmp_path / n), f"s3://{bucket}/{n}") for n in files])
    counting = _CountingClient(s3)
    with S3Stager(counting, settings) as stager:
        stats = stager.download_files(
            [(f"s3://{bucket}/{n}", str(tmp_path / "down" / n)) for n in files]
        )
    assert counting.calls == len(files) + 3  # one GET each, plus the big object's ranges
    assert counting.peak == 2
    assert counting.in_flight == 0
    assert (stats.files, stats.unverified) == (len(files), 0)
    for name, data in files.items():
        assert (tmp_path / "down" / name).read_bytes() == data


def test_each_range_has_its_pages_prepared_in_the_sized_file_before_its_bytes(
    s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(12 * MIB)  # ranges of 5, 5 and 2 MiB
    (tmp_path / "big.bin").write_bytes(data)
    settings = StagingSettings(chunk_mib=5, threshold_mib=5, range_mib=5, max_concurrency=2)
    with S3Stager(s3, settings) as stager:
        stager.upload_files([(str(tmp_path / "big.bin"), f"s3://{bucket}/big.bin")])
    advised: list[tuple[int, int, int, bytes]] = []
    real_fadvise = os.posix_fadvise

    def recording_fadvise(fd: int, offset: int, length: int, advice: int) -> None:
        # The file's size and what is already written in the range, when the hint is given.
        with open(f"/proc/self/fd/{fd}", "rb") as handle:  # fd itself is write-only
            handle.seek(offset)
            written = handle.read(length)
        advised.append((offset, length, os.fstat(fd).st_size, written))
        assert advice == os.POSIX_FADV_WILLNEED
        real_fadvise(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", recording_fadvise)
    target = tmp_path / "down" / "big.bin"
    with S3Stager(s3, settings) as stager:
        stager.download_files([(f"s3://{bucket}/big.bin", str(target))])
    assert sorted((offset, length) for offset, length, _, _ in advised) == [
        (0, 5 * MIB),
        (5 * MIB, 5 * MIB),
        (10 * MIB, 2 * MIB),
    ]
    # Sized first (a hint past the end of the file does nothing), and nothing of the range
    # written yet (the pages are set up before the bytes arrive, not after).
    for _, length, size, written in advised:
        assert size == len(data)
        assert written == b"\0" * length
    assert target.read_bytes() == data


def test_by_default_a_large_object_goes_up_in_16_mib_parts_and_comes_down_in_32_mib_ranges(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(40 * MIB)
    (tmp_path / "big.bin").write_bytes(data)
    with S3Stager(s3, StagingSettings()) as stager:
        stager.upload_files([(str(tmp_path / "big.bin"), f"s3://{bucket}/big.bin")])
    # A multipart ETag ends in the number of parts: 16 + 16 + 8 MiB.
    assert s3.head_object(Bucket=bucket, Key="big.bin")["ETag"].endswith('-3"')
    ranges: list[str] = []
    real_get = s3.get_object

    def recording_get(**params: Any) -> Any:
        ranges.append(params.get("Range", "whole"))
        return real_get(**params)

    target = tmp_path / "down.bin"
    with S3Stager(_Recording(s3, recording_get), StagingSettings()) as stager:
        stager.download_files([(f"s3://{bucket}/big.bin", str(target))])
    assert sorted(ranges) == [
        f"bytes=0-{32 * MIB - 1}",
        f"bytes={32 * MIB}-{40 * MIB - 1}",
        "whole",
    ]
    assert target.read_bytes() == data


class _Recording:
    """An S3 client whose GetObject goes through `get` (everything else is the real client's)."""

    def __init__(self, client: Any, get: Any) -> None:
        self._client = client
        self.get_object = get

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
