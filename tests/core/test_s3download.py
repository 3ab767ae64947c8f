"""Downloads against moto: one GetObject per object (no HeadObject), If-Match on every ranged
part, a body that breaks off is fetched again, an object replaced mid-download is refused, and
S3's own whole-object checksum is used (composite ones are not)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ResponseStreamingError

from snakemake_executor_awsbatch.checksums import Hasher, combine, file_checksum
from snakemake_executor_awsbatch.s3download import META_KEY, expected_checksum
from snakemake_executor_awsbatch.staging import S3Stager, StagingError, StagingSettings

MIB = 1 << 20
SMALL = StagingSettings(chunk_mib=5, threshold_mib=5, range_mib=5, max_concurrency=4)


def _calls(s3: Any) -> list[tuple[str, dict[str, Any]]]:
    """Every S3 operation the client makes from now on, with its parameters."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        seen.append((model.name, dict(params)))

    s3.meta.events.register("provide-client-params.s3.*", record)
    return seen


def _upload(s3: Any, tmp_path: Path, bucket: str, name: str, data: bytes) -> None:
    path = tmp_path / "up" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    with S3Stager(s3, SMALL) as stager:
        stager.upload_files([(str(path), f"s3://{bucket}/{name}")])


def test_small_objects_cost_one_get_each(s3: Any, bucket: str, tmp_path: Path) -> None:
    for i in range(5):
        _upload(s3, tmp_path, bucket, f"s{i}.txt", os.urandom(1000 + i))
    seen = _calls(s3)
    with S3Stager(s3, SMALL) as stager:
        stats = stager.download_files(
            [(f"s3://{bucket}/s{i}.txt", str(tmp_path / "d" / f"s{i}.txt")) for i in range(5)]
        )
    assert sorted(name for name, _ in seen) == ["GetObject"] * 5
    assert (stats.files, stats.unverified) == (5, 0)
    for i in range(5):
        assert (tmp_path / "d" / f"s{i}.txt").read_bytes() == (
            tmp_path / "up" / f"s{i}.txt"
        ).read_bytes()


def test_large_object_ranges_carry_the_etag(s3: Any, bucket: str, tmp_path: Path) -> None:
    data = os.urandom(12 * MIB)
    _upload(s3, tmp_path, bucket, "big.bin", data)
    etag = s3.head_object(Bucket=bucket, Key="big.bin")["ETag"]
    seen = _calls(s3)
    with S3Stager(s3, SMALL) as stager:
        stats = stager.download_files([(f"s3://{bucket}/big.bin", str(tmp_path / "big.bin"))])
    names = [name for name, _ in seen]
    assert "HeadObject" not in names
    ranged = [params for name, params in seen if name == "GetObject" and "Range" in params]
    assert len(ranged) == 3  # 12 MiB in 5 MiB parts
    assert {params["IfMatch"] for params in ranged} == {etag}
    assert stats.unverified == 0
    assert (tmp_path / "big.bin").read_bytes() == data


def test_object_replaced_mid_download_is_refused(s3: Any, bucket: str, tmp_path: Path) -> None:
    _upload(s3, tmp_path, bucket, "big.bin", os.urandom(12 * MIB))
    replaced: list[bool] = []

    def replace_once(**_: Any) -> None:
        # After the first GetObject (whose ETag the ranged parts will insist on).
        if not replaced:
            replaced.append(True)
            s3.put_object(Bucket=bucket, Key="big.bin", Body=b"new")

    s3.meta.events.register("after-call.s3.GetObject", replace_once)
    with (
        S3Stager(s3, SMALL) as stager,
        pytest.raises(StagingError, match="was replaced while it was being downloaded"),
    ):
        stager.download_files([(f"s3://{bucket}/big.bin", str(tmp_path / "big.bin"))])
    assert replaced == [True]
    assert not (tmp_path / "big.bin").exists()


class _BreaksOff:
    """A body whose first read fails the way a dropped connection does."""

    def read(self, amt: int | None = None) -> bytes:
        raise ResponseStreamingError(error="connection reset")

    def close(self) -> None:
        """Nothing to release."""


def _break_off_once(s3: Any, which: Callable[[dict[str, Any]], bool]) -> list[bool]:
    """Make the first GetObject response that `which` picks break off mid-body; the returned
    list gets one entry when that has happened."""
    broken: list[bool] = []

    def break_first(parsed: dict[str, Any], **_: Any) -> None:
        if which(parsed) and not broken:
            broken.append(True)
            parsed["Body"] = _BreaksOff()

    s3.meta.events.register("after-call.s3.GetObject", break_first)
    return broken


def test_body_that_breaks_off_is_fetched_again(s3: Any, bucket: str, tmp_path: Path) -> None:
    data = os.urandom(2000)
    _upload(s3, tmp_path, bucket, "a.bin", data)
    broken = _break_off_once(s3, lambda parsed: True)
    with S3Stager(s3, SMALL) as stager:
        stats = stager.download_files([(f"s3://{bucket}/a.bin", str(tmp_path / "a.bin"))])
    assert broken == [True]
    assert stats.unverified == 0
    assert (tmp_path / "a.bin").read_bytes() == data
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_body_that_keeps_breaking_off_fails(s3: Any, bucket: str, tmp_path: Path) -> None:
    _upload(s3, tmp_path, bucket, "a.bin", b"abc")

    def always_break(parsed: dict[str, Any], **_: Any) -> None:
        parsed["Body"] = _BreaksOff()

    s3.meta.events.register("after-call.s3.GetObject", always_break)
    settings = StagingSettings(chunk_mib=5, threshold_mib=5, range_mib=5, max_attempts=2)
    with S3Stager(s3, settings) as stager, pytest.raises(StagingError, match="connection reset"):
        stager.download_files([(f"s3://{bucket}/a.bin", str(tmp_path / "a.bin"))])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["up"]


def test_s3_full_object_checksum_verifies_others_objects(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="theirs.txt", Body=b"hello", ChecksumAlgorithm="SHA256")
    with S3Stager(s3, SMALL) as stager:
        stats = stager.download_files([(f"s3://{bucket}/theirs.txt", str(tmp_path / "t.txt"))])
    assert stats.unverified == 0
    assert (tmp_path / "t.txt").read_bytes() == b"hello"


def test_expected_checksum_prefers_ours_and_skips_composites() -> None:
    ours = {"Metadata": {META_KEY: "CRC32C:AAAAAA=="}, "ChecksumSHA256": "x", "ChecksumType": None}
    assert expected_checksum(ours) == "CRC32C:AAAAAA=="
    assert expected_checksum({"ChecksumCRC32C": "q83vEg==", "ChecksumType": "FULL_OBJECT"}) == (
        "CRC32C:q83vEg=="
    )
    assert expected_checksum({"ChecksumCRC32C": "q83vEg==-3", "ChecksumType": "COMPOSITE"}) is None
    assert expected_checksum({"ChecksumCRC32C": "q83vEg==", "ChecksumType": "COMPOSITE"}) is None
    assert expected_checksum({"Metadata": {META_KEY: "MD5:abc"}}) is None
    assert expected_checksum({}) is None


@pytest.mark.parametrize("algorithm", ["CRC32C", "CRC32", "SHA256"])
def test_running_hash_equals_whole_file_hash(tmp_path: Path, algorithm: str) -> None:
    data = os.urandom(3 * MIB + 17)
    (tmp_path / "f").write_bytes(data)
    hasher = Hasher(algorithm)
    for start in range(0, len(data), 1000003):
        hasher.update(data[start : start + 1000003])
    assert hasher.b64digest() == file_checksum(str(tmp_path / "f"), algorithm)


def test_unreachable_endpoint_is_a_staging_error(aws_env: None, tmp_path: Path) -> None:
    import socket

    from snakemake_executor_awsbatch.staging import s3_client

    with socket.socket() as probe:  # a port nothing listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = s3_client(region="us-east-1", endpoint_url=f"http://127.0.0.1:{port}", max_attempts=1)
    with (
        S3Stager(client, SMALL) as stager,
        pytest.raises(StagingError, match="could not read s3://b-u-c-k-e-t/k"),
    ):
        stager.download_files([("s3://b-u-c-k-e-t/k", str(tmp_path / "k"))])


def test_broken_range_is_fetched_again_and_corrupt_large_object_refused(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(12 * MIB)
    _upload(s3, tmp_path, bucket, "big.bin", data)
    broken = _break_off_once(s3, lambda parsed: "ContentRange" in parsed)
    with S3Stager(s3, SMALL) as stager:
        stats = stager.download_files([(f"s3://{bucket}/big.bin", str(tmp_path / "big.bin"))])
    assert broken == [True]
    assert stats.unverified == 0
    assert (tmp_path / "big.bin").read_bytes() == data

    meta = s3.head_object(Bucket=bucket, Key="big.bin")["Metadata"]
    s3.put_object(Bucket=bucket, Key="big.bin", Body=os.urandom(12 * MIB), Metadata=meta)
    with (
        S3Stager(s3, SMALL) as stager,
        pytest.raises(StagingError, match="arrived corrupted"),
    ):
        stager.download_files([(f"s3://{bucket}/big.bin", str(tmp_path / "again.bin"))])
    assert not (tmp_path / "again.bin").exists()


@pytest.mark.parametrize("algorithm", ["CRC32C", "CRC32"])
def test_piece_crcs_combine_into_the_whole(algorithm: str) -> None:
    data = os.urandom(2 * MIB + 5)
    pieces = []
    for start in range(0, len(data), 700001):
        hasher = Hasher(algorithm)
        hasher.update(data[start : start + 700001])
        pieces.append((hasher, len(data[start : start + 700001])))
    whole = Hasher(algorithm)
    whole.update(data)
    assert combine(algorithm, pieces) == whole.b64digest()
