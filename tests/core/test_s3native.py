"""Small objects through awscrt's S3 client (s3native) against the local cloud over its socket:
what it fetches itself, what it hands to botocore, and where it is not used at all."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from snakemake_executor_awsbatch import s3native
from snakemake_executor_awsbatch.localcloud import LocalCloud
from snakemake_executor_awsbatch.s3native import DISABLE_ENV, Endpoint, NativeGets, response_fields
from snakemake_executor_awsbatch.staging import S3Stager, StagingError, StagingSettings, s3_client

MIB = 1 << 20
SMALL = StagingSettings(chunk_mib=5, threshold_mib=5, range_mib=5, max_concurrency=4)
PROBE = "awsbatch-native-endpoint-probe"


@pytest.fixture
def cloud_s3(local_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An S3 client on the local cloud's socket, with a fresh bucket `native`."""
    for name, value in local_cloud.client_env().items():
        monkeypatch.setenv(name, value)
    client = s3_client(endpoint_url=local_cloud.endpoint_url)
    client.create_bucket(Bucket="native")
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket="native"):
        for item in page.get("Contents", []):
            client.delete_object(Bucket="native", Key=item["Key"])
    client.delete_bucket(Bucket="native")


def _botocore_gets(s3: Any) -> list[dict[str, Any]]:
    """The parameters of every GetObject the botocore client makes from now on."""
    seen: list[dict[str, Any]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "GetObject":
            seen.append(dict(params))

    s3.meta.events.register("provide-client-params.s3.GetObject", record)
    return seen


def _upload(
    s3: Any, tmp_path: Path, files: dict[str, bytes], settings: StagingSettings = SMALL
) -> None:
    up = tmp_path / "up"
    up.mkdir(exist_ok=True)
    for name, data in files.items():
        (up / name).write_bytes(data)
    with S3Stager(s3, settings) as stager:
        stager.upload_files([(str(up / n), f"s3://native/{n}") for n in files])


def test_small_objects_come_down_natively_large_ones_in_ranges(
    cloud_s3: Any, tmp_path: Path
) -> None:
    files = {f"s{i}.bin": os.urandom(1000 + i) for i in range(6)}
    files["big.bin"] = os.urandom(6 * MIB)
    _upload(cloud_s3, tmp_path, files)
    gets = _botocore_gets(cloud_s3)
    with S3Stager(cloud_s3, SMALL, native=True) as stager:
        stats = stager.download_files(
            [(f"s3://native/{n}", str(tmp_path / "d" / n)) for n in files]
        )
    assert (stats.files, stats.unverified) == (7, 0)
    for name, data in files.items():
        assert (tmp_path / "d" / name).read_bytes() == data
    # botocore made only the endpoint probe (answered in-process) and the large object's one
    # range: its first 5 MiB came with the native GET and were kept.
    keys = [g["Key"] for g in gets]
    assert sum(k.startswith(PROBE) for k in keys) == 1
    assert [g.get("Range") for g in gets if g["Key"] == "big.bin"] == [
        f"bytes={5 * MIB}-{6 * MIB - 1}"
    ]
    assert len(keys) == 2
    assert not [p for p in (tmp_path / "d").iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize(
    ("size", "algorithm"),
    [
        (12 * MIB, "CRC32C"),  # head 0..5 MiB, then ranges of 5 MiB and 2 MiB
        (5 * MIB + 1, "CRC32C"),  # one byte after the head: a range of one byte
        (5 * MIB, "CRC32C"),  # at the threshold: a small object, whole from the native GET
        (12 * MIB, "SHA256"),  # does not combine: the file is read back
    ],
)
def test_a_large_object_of_ours_is_checked_across_the_kept_head_and_its_ranges(
    cloud_s3: Any, tmp_path: Path, size: int, algorithm: str
) -> None:
    data = os.urandom(size)
    _upload(
        cloud_s3,
        tmp_path,
        {"big.bin": data},
        dataclasses.replace(SMALL, checksum_algorithm=algorithm),
    )
    head = cloud_s3.head_object(Bucket="native", Key="big.bin")
    assert head["Metadata"]["awsbatch-checksum"].startswith(f"{algorithm}:")
    with S3Stager(cloud_s3, SMALL, native=True) as stager:
        stats = stager.download_files([("s3://native/big.bin", str(tmp_path / "d" / "big.bin"))])
    assert stats.unverified == 0
    assert (tmp_path / "d" / "big.bin").read_bytes() == data
    # The same bytes under a checksum that is not theirs: refused, nothing left behind.
    cloud_s3.put_object(
        Bucket="native",
        Key="bad.bin",
        Body=data,
        Metadata={"awsbatch-checksum": f"{algorithm}:AAAAAA=="},
    )
    with (
        S3Stager(cloud_s3, SMALL, native=True) as stager,
        pytest.raises(StagingError, match="arrived corrupted"),
    ):
        stager.download_files([("s3://native/bad.bin", str(tmp_path / "e" / "bad.bin"))])
    assert list((tmp_path / "e").iterdir()) == []


def test_a_large_object_not_ours_goes_to_botocore_for_s3s_checksum(
    cloud_s3: Any, tmp_path: Path
) -> None:
    data = os.urandom(6 * MIB)
    cloud_s3.put_object(Bucket="native", Key="theirs.bin", Body=data, ChecksumAlgorithm="SHA256")
    gets = _botocore_gets(cloud_s3)
    with S3Stager(cloud_s3, SMALL, native=True) as stager:
        stats = stager.download_files([("s3://native/theirs.bin", str(tmp_path / "t.bin"))])
    # A ranged answer carries no S3 checksum; botocore's whole GET does, and it was checked.
    assert stats.unverified == 0
    assert (tmp_path / "t.bin").read_bytes() == data
    theirs = [g for g in gets if g["Key"] == "theirs.bin"]
    assert theirs[0].get("Range") is None and theirs[0].get("ChecksumMode") == "ENABLED"
    assert all(g.get("Range") for g in theirs[1:])


def test_a_small_object_not_ours_is_checked_against_its_md5_etag_in_one_get(
    cloud_s3: Any, tmp_path: Path
) -> None:
    cloud_s3.put_object(Bucket="native", Key="theirs.txt", Body=b"hello")
    gets = _botocore_gets(cloud_s3)
    with S3Stager(cloud_s3, SMALL, native=True) as stager:
        stats = stager.download_files([("s3://native/theirs.txt", str(tmp_path / "t.txt"))])
    assert stats.unverified == 0
    assert (tmp_path / "t.txt").read_bytes() == b"hello"
    assert [g["Key"] for g in gets if not g["Key"].startswith(PROBE)] == []


def _fields_with(monkeypatch: pytest.MonkeyPatch, **changes: str) -> None:
    """Have the native path see these response fields changed (as another store would send)."""
    real = s3native.response_fields

    def changed(headers: Any) -> dict[str, Any]:
        return {**real(headers), **changes}

    monkeypatch.setattr(s3native, "response_fields", changed)


@pytest.mark.parametrize(
    "changes",
    [
        {"ServerSideEncryption": "aws:kms"},  # its ETag is not an MD5
        {"ETag": '"' + "0" * 32 + '"'},  # an ETag that is not the MD5 of what arrived
    ],
)
def test_objects_it_cannot_check_or_find_go_to_botocore(
    cloud_s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changes: dict[str, str]
) -> None:
    cloud_s3.put_object(
        Bucket="native", Key="theirs.txt", Body=b"hello", ChecksumAlgorithm="SHA256"
    )
    _fields_with(monkeypatch, **changes)
    gets = _botocore_gets(cloud_s3)
    with S3Stager(cloud_s3, SMALL, native=True) as stager:
        stats = stager.download_files([("s3://native/theirs.txt", str(tmp_path / "t.txt"))])
        # S3's own checksum comes only with a whole GET: botocore fetched and checked it.
        assert stats.unverified == 0
        assert (tmp_path / "t.txt").read_bytes() == b"hello"
        theirs = [g for g in gets if not g["Key"].startswith(PROBE)]
        assert [(g["Key"], g.get("Range"), g.get("ChecksumMode")) for g in theirs] == [
            ("theirs.txt", None, "ENABLED")
        ]
        with pytest.raises(StagingError, match="s3://native/nope does not exist"):
            stager.download_files([("s3://native/nope", str(tmp_path / "nope"))])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


@pytest.mark.parametrize(
    ("fields", "md5"),
    [
        ({"ETag": '"5D41402ABC4B2A76B9719D911017C592"'}, "5d41402abc4b2a76b9719d911017c592"),
        (
            {"ETag": '"5d41402abc4b2a76b9719d911017c592"', "ServerSideEncryption": "AES256"},
            "5d41402abc4b2a76b9719d911017c592",
        ),
        ({"ETag": '"5d41402abc4b2a76b9719d911017c592-2"'}, None),  # multipart
        ({"ETag": '"5d41402abc4b2a76b9719d911017c592"', "ServerSideEncryption": "aws:kms"}, None),
        (
            {"ETag": '"5d41402abc4b2a76b9719d911017c592"', "ServerSideEncryption": "aws:kms:dsse"},
            None,
        ),
        ({"ETag": '"5d41402abc4b2a76b9719d911017c592"', "SSECustomerAlgorithm": "AES256"}, None),
        ({"ETag": '"not-an-md5-at-all-but-32-chars!!"'}, None),
        ({}, None),
    ],
)
def test_an_etag_is_taken_for_an_md5_only_where_s3_documents_one(
    fields: dict[str, str], md5: str | None
) -> None:
    assert s3native.etag_md5(fields) == md5


def test_corrupted_small_object_is_refused_and_removed(cloud_s3: Any, tmp_path: Path) -> None:
    cloud_s3.put_object(
        Bucket="native",
        Key="bad.bin",
        Body=b"not what the checksum says",
        Metadata={"awsbatch-checksum": "CRC32C:AAAAAA=="},
    )
    with (
        S3Stager(cloud_s3, SMALL, native=True) as stager,
        pytest.raises(StagingError, match="arrived corrupted"),
    ):
        stager.download_files([("s3://native/bad.bin", str(tmp_path / "bad.bin"))])
    assert list(tmp_path.iterdir()) == []


def test_endpoint_is_the_one_botocore_resolves(monkeypatch: pytest.MonkeyPatch) -> None:
    """No network: the probe is answered in-process before botocore would send it."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    client = boto3.client("s3", region_name="us-west-2")
    native = NativeGets.for_client(client, 2, intercepted_ok=True)
    assert native is not None
    assert native.endpoint("my-bucket") == Endpoint(
        host="my-bucket.s3.us-west-2.amazonaws.com", path_prefix="/", region="us-west-2"
    )
    # A dotted name cannot be a TLS host name: botocore addresses it by path.
    assert native.endpoint("my.bucket") == Endpoint(
        host="s3.us-west-2.amazonaws.com", path_prefix="/my.bucket/", region="us-west-2"
    )


def test_not_used_where_botocore_alone_is_right(
    local_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in local_cloud.client_env().items():
        monkeypatch.setenv(name, value)
    client = s3_client(endpoint_url=local_cloud.endpoint_url)
    assert NativeGets.for_client(client, 2, intercepted_ok=True) is not None
    monkeypatch.setenv(DISABLE_ENV, "0")
    assert NativeGets.for_client(client, 2, intercepted_ok=True) is None
    monkeypatch.delenv(DISABLE_ENV)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert NativeGets.for_client(client, 2, intercepted_ok=True) is None
    monkeypatch.delenv("HTTPS_PROXY")
    # moto's in-process mock answers its requests: a socket would reach something else.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        assert NativeGets.for_client(boto3.client("s3", region_name="us-east-1"), 2) is None


def test_response_fields_read_a_ranged_answer() -> None:
    fields = response_fields(
        [
            ("Content-Length", "11"),
            ("Content-Range", "bytes 0-10/4096"),
            ("ETag", '"abc"'),
            ("x-amz-meta-awsbatch-checksum", "CRC32C:AAAAAA=="),
            ("x-amz-checksum-crc32c", "BBBBBB=="),
            ("x-amz-checksum-type", "FULL_OBJECT"),
        ]
    )
    assert fields == {
        "ContentLength": 4096,
        "ETag": '"abc"',
        "Metadata": {"awsbatch-checksum": "CRC32C:AAAAAA=="},
        "ChecksumCRC32C": "BBBBBB==",
        "ChecksumType": "FULL_OBJECT",
    }


def test_a_second_native_path_on_the_same_client_finds_its_endpoint(cloud_s3: Any) -> None:
    """The probe handler is registered once per client and does not count as interception."""
    before = s3native._intercepted(cloud_s3)
    first = NativeGets.for_client(cloud_s3, 2, intercepted_ok=True)
    assert first is not None and first.endpoint("native") is not None
    assert s3native._intercepted(cloud_s3) == before
    second = NativeGets.for_client(cloud_s3, 2, intercepted_ok=True)
    assert second is not None and second.endpoint("native") == first.endpoint("native")


def test_threads_asking_for_a_new_bucket_at_once_share_one_probe(cloud_s3: Any) -> None:
    native = NativeGets.for_client(cloud_s3, 2, intercepted_ok=True)
    assert native is not None
    gets = _botocore_gets(cloud_s3)
    # Each probe takes a while, so the threads all ask before the first answer is known.
    cloud_s3.meta.events.register("provide-client-params.s3.GetObject", lambda **_: time.sleep(0.2))
    start = threading.Barrier(6)

    def ask() -> Endpoint | None:
        start.wait()
        return native.endpoint("native")

    with ThreadPoolExecutor(6) as pool:
        found = list(pool.map(lambda _: ask(), range(6)))
    assert found[0] is not None and found == [found[0]] * 6
    assert len(gets) == 1 and gets[0]["Key"].startswith(PROBE)
