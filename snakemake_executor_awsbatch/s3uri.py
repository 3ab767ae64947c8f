"""Parsing and joining `s3://bucket/key` URIs, with one clear error for a malformed one."""

from __future__ import annotations

import re

from snakemake_executor_awsbatch.errors import UserError

# General purpose bucket names: 3-63 chars of lowercase letters, digits, dots and dashes.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split `s3://bucket/key` into (bucket, key); the key may be empty for a bucket root."""
    if not uri.startswith("s3://"):
        raise UserError(f"'{uri}' is not an S3 URI; write it as s3://bucket/key.")
    rest = uri[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not _BUCKET.match(bucket):
        raise UserError(
            f"'{uri}' names an invalid S3 bucket '{bucket}'; use a bucket name of 3-63 "
            "lowercase letters, digits, dots or dashes."
        )
    return bucket, key


def join_s3_uri(base: str, *parts: str) -> str:
    """Join path parts onto an S3 URI with single slashes."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def format_s3_uri(bucket: str, key: str) -> str:
    """The `s3://bucket/key` form of a bucket and key."""
    return f"s3://{bucket}/{key}"
