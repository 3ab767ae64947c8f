"""The local cloud streams GetObject bodies itself: the same status, headers and bytes as moto's
own answer, a Range read without reading the whole object, and every other request left to moto."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from snakemake_executor_awsbatch.localcloud.cloud import LocalCloud

from .helpers import client, steady_headers
from .spies import leave_to_moto, watch_direct_answers

BUCKET = "localcloud-streaming"
DATA = os.urandom(3 * (1 << 20) + 123)


@pytest.fixture(scope="module")
def s3(local_cloud: LocalCloud) -> Iterator[Any]:
    """A client with a bucket holding plain, checksummed, multipart and oddly named objects."""
    s3 = client(local_cloud, "s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="plain.bin", Body=DATA, Metadata={"who": "test"})
    s3.put_object(Bucket=BUCKET, Key="sha.bin", Body=DATA, ChecksumAlgorithm="SHA256")
    s3.put_object(Bucket=BUCKET, Key="dir/a key +ü.txt", Body=b"odd name")
    s3.put_object(Bucket=BUCKET, Key="empty", Body=b"")
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="multi.bin", ChecksumAlgorithm="CRC32C")
    part = 5 << 20
    parts = []
    for number, start in enumerate(range(0, 2 * part, part), 1):
        answer = s3.upload_part(
            Bucket=BUCKET,
            Key="multi.bin",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=(DATA * 4)[start : start + part],
            ChecksumAlgorithm="CRC32C",
        )
        parts.append(
            {
                "PartNumber": number,
                "ETag": answer["ETag"],
                "ChecksumCRC32C": answer["ChecksumCRC32C"],
            }
        )
    s3.complete_multipart_upload(
        Bucket=BUCKET,
        Key="multi.bin",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    yield s3


def _answer(s3: Any, **params: Any) -> tuple[int, dict[str, str], bytes]:
    response = s3.get_object(Bucket=BUCKET, **params)
    meta = response["ResponseMetadata"]
    headers = steady_headers(meta)
    return int(meta["HTTPStatusCode"]), headers, response["Body"].read()


CASES: list[dict[str, Any]] = [
    {"Key": "plain.bin"},
    {"Key": "plain.bin", "Range": "bytes=0-9"},
    {"Key": "plain.bin", "Range": "bytes=1048576-"},
    {"Key": "plain.bin", "Range": "bytes=-5"},
    {"Key": "plain.bin", "Range": f"bytes=0-{len(DATA) + 50}"},
    {"Key": "sha.bin", "ChecksumMode": "ENABLED"},
    {"Key": "sha.bin", "ChecksumMode": "ENABLED", "Range": "bytes=5-100"},
    {"Key": "multi.bin", "ChecksumMode": "ENABLED"},
    {"Key": "multi.bin", "ChecksumMode": "ENABLED", "Range": "bytes=5242000-5243000"},
    {"Key": "dir/a key +ü.txt"},
    {"Key": "empty"},
]


@pytest.mark.parametrize("params", CASES, ids=[str(sorted(c.items())) for c in CASES])
def test_streamed_answer_equals_motos(
    s3: Any, monkeypatch: pytest.MonkeyPatch, params: dict[str, Any]
) -> None:
    served = watch_direct_answers(monkeypatch, "stream_get_object")
    ours = _answer(s3, **params)
    assert served == [True]
    leave_to_moto(monkeypatch, "stream_get_object")
    motos = _answer(s3, **params)
    assert ours == motos


def test_range_is_read_without_the_whole_object(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.s3.models import FakeKey

    def whole(self: Any) -> bytes:
        raise AssertionError("the whole object was read")

    monkeypatch.setattr(FakeKey, "value", property(whole))
    body = s3.get_object(Bucket=BUCKET, Key="plain.bin", Range="bytes=100-199")["Body"].read()
    assert body == DATA[100:200]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"Key": "missing"}, "NoSuchKey"),
        ({"Key": "plain.bin", "IfMatch": '"not-the-etag"'}, "PreconditionFailed"),
        ({"Key": "plain.bin", "Range": f"bytes={len(DATA) + 1}-"}, "InvalidRange"),
    ],
)
def test_errors_are_left_to_moto(s3: Any, params: dict[str, Any], code: str) -> None:
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket=BUCKET, **params)
    assert caught.value.response["Error"]["Code"] == code


def test_matching_if_match_is_streamed(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    etag = s3.head_object(Bucket=BUCKET, Key="plain.bin")["ETag"]
    served = watch_direct_answers(monkeypatch, "stream_get_object")
    body = s3.get_object(Bucket=BUCKET, Key="plain.bin", IfMatch=etag, Range="bytes=0-3")
    assert body["Body"].read() == DATA[:4]
    not_modified = s3.get_object(Bucket=BUCKET, Key="plain.bin", IfModifiedSince="2000-01-01")
    assert not_modified["Body"].read() == DATA
    assert served == [True, False]  # If-Modified-Since is moto's to judge
