"""GetObject bodies streamed from moto's stored object, a byte range read as that range only.

moto answers every GetObject by reading the whole object into one bytes value and, for a Range,
slicing it: a 1 GiB object costs 1 GiB of memory and a full read per request, so ranged parallel
downloads cost O(parts x size) and the first byte waits for the last. Here the common request
(path-style GET of the current version, optional single byte range, optional If-Match and
checksum mode) is answered with the headers moto would send and a body read from the object's
own buffer in 1 MiB pieces. Anything else (versions, part numbers, response-header overrides,
SSE-C, other conditions, archived objects, missing keys, failed preconditions, odd ranges) goes
to moto unchanged, so errors keep moto's exact shapes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

_CHUNK = 1 << 20
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# Request headers whose semantics stay with moto.
MOTO_ONLY_HEADERS = (
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
    "HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION_CUSTOMER_ALGORITHM",
    "HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION_CUSTOMER_KEY",
)
_ARCHIVED = ("GLACIER", "DEEP_ARCHIVE")


@dataclass(frozen=True)
class Streamed:
    """A GetObject answer: status line, headers and a body read piece by piece."""

    status: str
    headers: list[tuple[str, str]]
    body: Iterator[bytes]


def stream_get_object(environ: dict[str, Any], account_id: str) -> Streamed | None:
    """The streamed answer to a plain GetObject, or None to let moto answer it."""
    if environ.get("REQUEST_METHOD") != "GET":
        return None
    if any(name in environ for name in MOTO_ONLY_HEADERS):
        return None
    if plain_query(environ) is None:
        return None
    bucket_name, key_name = bucket_and_key(environ)
    if not bucket_name or not key_name:
        return None
    key = _current_key(account_id, bucket_name, key_name)
    if key is None or not _readable(key):
        return None
    if_match = environ.get("HTTP_IF_MATCH")
    if if_match and key.etag not in (if_match, f'"{if_match}"'):
        return None
    size = int(key.size)
    try:
        span = _byte_range(str(environ.get("HTTP_RANGE", "")), size)
    except _ForMoto:
        return None
    headers = _headers(key, checksums=environ.get("HTTP_X_AMZ_CHECKSUM_MODE") == "ENABLED")
    status = "200 OK"
    begin, end = 0, size - 1
    if span is not None:
        begin, end = span
        status = "206 Partial Content"
        if begin or end < size - 1:
            # S3 (and moto) send no whole-object checksum with a part of the object.
            headers = {k: v for k, v in headers.items() if not k.startswith("x-amz-checksum-")}
        headers["content-range"] = f"bytes {begin}-{end}/{size}"
    headers["content-length"] = str(max(0, end - begin + 1))
    return Streamed(status, list(headers.items()), _read(key, begin, end + 1))


def plain_query(
    environ: dict[str, Any], allowed: frozenset[str] = frozenset({"x-id"})
) -> dict[str, list[str]] | None:
    """The parsed query string when it has only `allowed` parameters (by default nothing but
    the operation: no version, part, ...), else None."""
    query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
    return None if set(query) - allowed else query


def bucket_and_key(environ: dict[str, Any]) -> tuple[str, str]:
    """Bucket and key of a path-style request, from the undecoded path when the server has it."""
    host = str(environ.get("HTTP_HOST", "")).split(":", 1)[0]
    if host not in ("127.0.0.1", "localhost"):
        return "", ""  # a virtual-hosted name: moto knows how to read those
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    path = unquote(urlsplit(str(raw)).path) if raw else str(environ.get("PATH_INFO", ""))
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key


def _current_key(account_id: str, bucket: str, key: str) -> Any:
    """moto's current version of the object, or None when moto should explain why not."""
    from moto.s3.models import s3_backends

    try:
        return s3_backends[account_id]["aws"].get_object(bucket, key)
    except Exception:  # a missing bucket and the like: moto words the error
        return None


def _readable(key: Any) -> bool:
    """Whether the key can be streamed here (not archived, and moto's internals as expected)."""
    if getattr(key, "storage_class", None) in _ARCHIVED or getattr(key, "disposed", False):
        return False
    return hasattr(key, "_value_buffer") and hasattr(key, "lock")


class _ForMoto(Exception):
    """A request whose answer moto words (an unsatisfiable or unusual range)."""


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single Range, None for the whole object; _ForMoto for others."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or size == 0:
        raise _ForMoto(header)
    first, last = match.groups()
    if first:
        begin = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if begin > size - 1 or (last and int(last) < begin):
            raise _ForMoto(header)
        return begin, end
    if last and int(last) > 0:
        return size - min(int(last), size), size - 1
    raise _ForMoto(header)


def _headers(key: Any, *, checksums: bool) -> dict[str, str]:
    """The headers moto's GetObject sends for the whole object (before ranges)."""
    headers: dict[str, str] = {}
    if key.version_id != "null":
        headers["x-amz-version-id"] = str(key.version_id)
    headers.update({str(k): str(v) for k, v in key.response_dict.items()})
    if checksums and key.checksum_algorithm:
        value = str(key.checksum_value)
        if key.checksum_type == "COMPOSITE":
            value = f"{value}-{key.checksum_parts}"
        headers[f"x-amz-checksum-{str(key.checksum_algorithm).lower()}"] = value
        if key.checksum_type:
            headers["x-amz-checksum-type"] = str(key.checksum_type)
    headers.update({str(k): str(v) for k, v in key.metadata.items()})
    headers["Accept-Ranges"] = "bytes"
    return headers


def _read(key: Any, start: int, stop: int) -> Iterator[bytes]:
    """The bytes [start, stop) of the object, a piece at a time (other readers interleave)."""
    position = start
    while position < stop:
        with key.lock:
            buffer = key._value_buffer
            buffer.seek(position)
            piece: bytes = buffer.read(min(_CHUNK, stop - position))
        if not piece:
            return  # the object was replaced or removed under us: the client sees a short body
        position += len(piece)
        yield piece
