"""Whole-file checksums in the encodings S3 uses (base64 of the big-endian digest)."""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable

from awscrt import checksums as crt  # type: ignore[import-untyped]

from snakemake_executor_awsbatch.errors import UserError

ALGORITHMS = ("CRC32C", "CRC32", "SHA256")
_CHUNK = 8 << 20


def _crc(update: Callable[[bytes, int], int], path: str) -> str:
    value = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            value = update(chunk, value)
    return base64.b64encode(value.to_bytes(4, "big")).decode()


def file_checksum(path: str, algorithm: str) -> str:
    """The base64 checksum of a whole file with CRC32C, CRC32 or SHA256."""
    if algorithm == "CRC32C":
        return _crc(crt.crc32c, path)
    if algorithm == "CRC32":
        return _crc(zlib.crc32, path)
    if algorithm == "SHA256":
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        return base64.b64encode(digest.digest()).decode()
    raise UserError(f"checksum algorithm '{algorithm}' is not supported; use one of {ALGORITHMS}.")
