"""Whole-file checksums in the encodings S3 uses (base64 of the big-endian digest)."""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable
from typing import Any

from awscrt import checksums as crt  # type: ignore[import-untyped]

from snakemake_executor_awsbatch.errors import UserError

ALGORITHMS = ("CRC32C", "CRC32", "SHA256")
# One reused 1 MiB buffer: larger reads allocate (and page-fault) fresh memory on every call.
_CHUNK = 1 << 20


class Hasher:
    """A running checksum fed in order, so a download is checked as it streams to disk."""

    def __init__(self, algorithm: str) -> None:
        if algorithm not in ALGORITHMS:
            raise UserError(
                f"checksum algorithm '{algorithm}' is not supported; use one of {ALGORITHMS}."
            )
        self.algorithm = algorithm
        self._crc: Callable[[Any, int], int] | None = None
        self._value = 0
        self._sha = hashlib.sha256() if algorithm == "SHA256" else None
        if algorithm == "CRC32C":
            self._crc = crt.crc32c
        elif algorithm == "CRC32":
            self._crc = zlib.crc32

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next bytes."""
        if self._sha is not None:
            self._sha.update(data)
        else:
            assert self._crc is not None
            self._value = self._crc(data, self._value)

    @property
    def crc_value(self) -> int:
        """The CRC so far as an integer (what combining needs)."""
        return self._value

    def b64digest(self) -> str:
        """The checksum so far, base64 of the big-endian digest (S3's encoding)."""
        if self._sha is not None:
            return base64.b64encode(self._sha.digest()).decode()
        return base64.b64encode(self._value.to_bytes(4, "big")).decode()


_COMBINE: dict[str, Callable[[int, int, int], int]] = {
    "CRC32C": crt.combine_crc32c,
    "CRC32": crt.combine_crc32,
}


def combinable(algorithm: str) -> bool:
    """Whether checksums of consecutive pieces combine into the whole's (CRCs do, SHA256 not)."""
    return algorithm in _COMBINE


def combine(algorithm: str, pieces: list[tuple[Hasher, int]]) -> str:
    """The base64 checksum of consecutive pieces from their (hasher, length), in order."""
    join = _COMBINE[algorithm]
    value = 0
    for number, (hasher, length) in enumerate(pieces):
        value = hasher.crc_value if number == 0 else join(value, hasher.crc_value, length)
    return base64.b64encode(value.to_bytes(4, "big")).decode()


def file_checksum(path: str, algorithm: str) -> str:
    """The base64 checksum of a whole file with CRC32C, CRC32 or SHA256."""
    hasher = Hasher(algorithm)
    buffer = memoryview(bytearray(_CHUNK))
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            hasher.update(buffer[:count])
    return hasher.b64digest()
