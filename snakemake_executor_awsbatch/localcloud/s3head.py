"""HeadObject and HeadBucket answered from moto's backend without moto's request machinery.

Snakemake's S3 storage plugin asks for an object's existence, size and modification time with
one HeadObject each (and a HeadBucket after every miss): about 400 HEAD requests in a small
germline run, one after another on the scheduler's thread. moto answers each through Flask,
its URL dispatch and its response wrapping, about half a millisecond more than the answer
itself takes. Here the plain forms (path-style, no version, part number or condition) are
answered with exactly the status and headers moto would send, and so is a HeadObject in a bucket
no account has (moto's NoSuchBucket 404); anything else goes to moto.
"""

from __future__ import annotations

import random
import string
from typing import Any

from snakemake_executor_awsbatch.localcloud.s3serve import (
    MOTO_ONLY_HEADERS,
    Streamed,
    bucket_and_key,
    plain_query,
)

_NOT_FOUND: list[tuple[str, str]] = [
    ("content-type", "text/html; charset=utf-8"),
    ("content-length", "0"),
]


# moto's NoSuchBucket error document; a HEAD answer carries only its length.
_NO_SUCH_BUCKET = (
    '<?xml version="1.0" encoding="utf-8"?>\n<Error><Code>NoSuchBucket</Code>'
    "<Message>The specified bucket does not exist</Message><BucketName>{bucket}</BucketName>"
    "<RequestId>{request_id}</RequestId><HostId>{host_id}</HostId></Error>"
)
_REQUEST_ID_CHARS = 52
_HOST_ID_CHARS = 76


def _no_such_bucket_headers(bucket: str) -> list[tuple[str, str]]:
    """The headers of moto's 404 to a HeadObject in a bucket no account has.

    The Snakemake S3 plugin asks this for every file of a run's DAG before the run's first
    upload has made the bucket (about 50 requests), and moto's answer costs 2 ms each against
    0.5 ms here.
    """
    request_id = "".join(random.choices(string.ascii_letters + string.digits, k=_REQUEST_ID_CHARS))
    host_id = "x" * _HOST_ID_CHARS
    body = _NO_SUCH_BUCKET.format(bucket=bucket, request_id=request_id, host_id=host_id)
    return [
        ("content-type", "application/xml"),
        ("x-amzn-requestid", request_id),
        ("content-length", str(len(body.encode()))),
        ("server", "amazon.com"),
    ]


def answer_head(environ: dict[str, Any], account_id: str) -> Streamed | None:
    """The answer to a plain HeadObject or HeadBucket, or None to let moto answer it."""
    if environ.get("REQUEST_METHOD") != "HEAD" or plain_query(environ) is None:
        return None
    if any(name in environ for name in (*MOTO_ONLY_HEADERS, "HTTP_IF_MATCH", "HTTP_RANGE")):
        return None
    bucket_name, key_name = bucket_and_key(environ)
    if not bucket_name:
        return None
    from moto.s3.models import FakeKey, s3_backends

    backend = s3_backends[account_id]["aws"]
    bucket = backend.buckets.get(bucket_name)
    if bucket is None:
        # Only a bucket no account has is missing; moto looks up the others (cross-account
        # access, table buckets) and words the answer.
        if bucket_name in backend.table_buckets or bucket_name in s3_backends.bucket_accounts:
            return None
        if not key_name:
            return Streamed("404 Not Found", _NOT_FOUND.copy(), iter(()))
        return Streamed("404 Not Found", _no_such_bucket_headers(bucket_name), iter(()))
    if not key_name:
        headers = [
            ("x-amz-bucket-region", str(bucket.region_name)),
            ("content-type", "application/xml"),
            ("content-length", "0"),
        ]
        return Streamed("200 OK", headers, iter(()))
    if bucket.is_versioned:
        return None  # delete markers and versions are moto's business
    key = bucket.keys.get(key_name)
    if key is None:
        return Streamed("404 Not Found", _NOT_FOUND.copy(), iter(()))
    if not isinstance(key, FakeKey):
        return None
    key.advance()  # as moto does: a restore in progress moves on with each look
    answer: dict[str, str] = {str(k): str(v) for k, v in key.metadata.items()}
    answer.update({str(k): str(v) for k, v in key.response_dict.items()})
    answer["Accept-Ranges"] = "bytes"
    if environ.get("HTTP_X_AMZ_CHECKSUM_MODE") == "ENABLED" and key.checksum_algorithm:
        answer[f"x-amz-checksum-{str(key.checksum_algorithm).lower()}"] = str(key.checksum_value)
    return Streamed("200 OK", list(answer.items()), iter(()))
