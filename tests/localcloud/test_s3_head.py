"""The local cloud answers plain HeadObject and HeadBucket itself: the same status and headers as
moto's own answer, and every other HEAD left to moto."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from snakemake_executor_awsbatch.localcloud.cloud import LocalCloud

from .helpers import client, steady_headers
from .spies import leave_to_moto, watch_direct_answers

BUCKET = "localcloud-head"
VERSIONED = "localcloud-head-versioned"


@pytest.fixture(scope="module")
def s3(local_cloud: LocalCloud) -> Iterator[Any]:
    """A client with a bucket of plain, checksummed, encrypted and oddly named objects."""
    s3 = client(local_cloud, "s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="plain.bin", Body=os.urandom(1000), Metadata={"who": "t"})
    s3.put_object(Bucket=BUCKET, Key="crc.bin", Body=b"x" * 77, ChecksumAlgorithm="CRC32C")
    s3.put_object(Bucket=BUCKET, Key="cold.bin", Body=b"y", StorageClass="STANDARD_IA")
    s3.put_object(
        Bucket=BUCKET, Key="kms.bin", Body=b"z", ServerSideEncryption="aws:kms", SSEKMSKeyId="k1"
    )
    s3.put_object(Bucket=BUCKET, Key="dir/a key +ü.txt", Body=b"odd name")
    s3.put_object(Bucket=BUCKET, Key="empty", Body=b"")
    s3.create_bucket(Bucket=VERSIONED)
    s3.put_bucket_versioning(Bucket=VERSIONED, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=VERSIONED, Key="v.bin", Body=b"v1")
    yield s3


def _head(s3: Any, call: str, params: dict[str, Any]) -> tuple[int, dict[str, str]]:
    try:
        response = getattr(s3, call)(**params)
        meta = response["ResponseMetadata"]
    except ClientError as error:
        meta = error.response["ResponseMetadata"]
    headers = steady_headers(meta)
    return int(meta["HTTPStatusCode"]), headers


OURS: list[tuple[str, dict[str, Any]]] = [
    ("head_object", {"Bucket": BUCKET, "Key": "plain.bin"}),
    ("head_object", {"Bucket": BUCKET, "Key": "crc.bin", "ChecksumMode": "ENABLED"}),
    ("head_object", {"Bucket": BUCKET, "Key": "crc.bin"}),
    ("head_object", {"Bucket": BUCKET, "Key": "cold.bin"}),
    ("head_object", {"Bucket": BUCKET, "Key": "kms.bin"}),
    ("head_object", {"Bucket": BUCKET, "Key": "dir/a key +ü.txt"}),
    ("head_object", {"Bucket": BUCKET, "Key": "empty"}),
    ("head_object", {"Bucket": BUCKET, "Key": "missing"}),
    ("head_object", {"Bucket": BUCKET, "Key": "dir"}),
    ("head_bucket", {"Bucket": BUCKET}),
    ("head_bucket", {"Bucket": "no-such-bucket-anywhere"}),
    ("head_object", {"Bucket": "no-such-bucket-anywhere", "Key": "dir/k.txt"}),
    ("head_object", {"Bucket": "nob", "Key": "k"}),
]


@pytest.mark.parametrize(("call", "params"), OURS, ids=[f"{c}{sorted(p.items())}" for c, p in OURS])
def test_answer_equals_motos(
    s3: Any, monkeypatch: pytest.MonkeyPatch, call: str, params: dict[str, Any]
) -> None:
    served = watch_direct_answers(monkeypatch, "answer_head")
    ours = _head(s3, call, params)
    assert served == [True]
    leave_to_moto(monkeypatch, "answer_head")
    motos = _head(s3, call, params)
    assert ours == motos


MOTOS: list[tuple[str, dict[str, Any]]] = [
    ("head_object", {"Bucket": VERSIONED, "Key": "v.bin"}),
    ("head_object", {"Bucket": BUCKET, "Key": "plain.bin", "IfMatch": '"nope"'}),
    ("head_object", {"Bucket": BUCKET, "Key": "plain.bin", "IfNoneMatch": '"nope"'}),
    ("head_object", {"Bucket": BUCKET, "Key": "plain.bin", "PartNumber": 1}),
    ("head_object", {"Bucket": BUCKET, "Key": "plain.bin", "Range": "bytes=0-1"}),
]


@pytest.mark.parametrize(
    ("call", "params"), MOTOS, ids=[f"{c}{sorted(p.items())}" for c, p in MOTOS]
)
def test_other_heads_are_left_to_moto(
    s3: Any, monkeypatch: pytest.MonkeyPatch, call: str, params: dict[str, Any]
) -> None:
    served = watch_direct_answers(monkeypatch, "answer_head")
    _head(s3, call, params)
    assert served == [False]


def test_object_written_after_a_miss_is_seen(s3: Any) -> None:
    assert _head(s3, "head_object", {"Bucket": BUCKET, "Key": "late"})[0] == 404
    s3.put_object(Bucket=BUCKET, Key="late", Body=b"12345")
    status, headers = _head(s3, "head_object", {"Bucket": BUCKET, "Key": "late"})
    assert (status, headers["content-length"]) == (200, "5")
    s3.delete_object(Bucket=BUCKET, Key="late")
    assert _head(s3, "head_object", {"Bucket": BUCKET, "Key": "late"})[0] == 404
