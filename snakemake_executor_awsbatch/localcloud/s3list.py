"""Small ListObjects (v1) answered from moto's backend without moto's request machinery.

Snakemake's S3 storage plugin lists `<key>/` to learn whether each input or output is a
directory (about 100 listings in a small germline run, nearly all empty), and after every
removal it lists the whole bucket to see whether the bucket is now empty. moto builds each
answer through Flask and a generic serializer: 2-3 ms for an empty listing, about 18 ms for 80
objects. Here a first page that fits in one answer (no delimiter, marker or continuation, not
truncated) is written directly, with the same XML elements in the same order; anything else goes
to moto.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from snakemake_executor_awsbatch.localcloud.s3serve import Streamed, bucket_and_key, plain_query

_PLAIN_QUERY = frozenset({"prefix", "max-keys", "encoding-type"})
# moto's fixed owner of every object, as its ListObjects answer names it.
_OWNER = (
    "<Owner><DisplayName>webfile</DisplayName>"
    "<ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID></Owner>"
)
_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'


def answer_list_objects(environ: dict[str, Any], account_id: str) -> Streamed | None:
    """The answer to a one-page ListObjects, or None to let moto answer it."""
    if environ.get("REQUEST_METHOD") != "GET":
        return None
    query = plain_query(environ, _PLAIN_QUERY)
    if query is None or any(len(values) != 1 for values in query.values()):
        return None
    bucket_name, key_name = bucket_and_key(environ)
    if not bucket_name or key_name:
        return None
    from moto import settings
    from moto.s3.models import FakeKey, s3_backends

    backend = s3_backends[account_id]["aws"]
    bucket = backend.buckets.get(bucket_name)
    if bucket is None or bucket.is_versioned:
        return None  # moto words a missing bucket; versions and delete markers are its business
    prefix = query["prefix"][0] if "prefix" in query else None
    encoding = query["encoding-type"][0] if "encoding-type" in query else None
    try:
        max_keys = int(query.get("max-keys", [settings.get_s3_default_max_keys()])[0])
    except ValueError:
        return None
    if encoding not in (None, "url") or max_keys < 1:
        return None
    keys = sorted(
        (
            key
            for name, key in list(bucket.keys.items())
            if isinstance(key, FakeKey) and (not prefix or name.startswith(prefix))
        ),
        key=lambda key: str(key.name),
    )
    if len(keys) > max_keys:
        return None  # truncated: moto pages
    parts = [_HEAD, "<IsTruncated>false</IsTruncated>"]
    for key in keys:
        parts.append(
            f"<Contents><Key>{escape(str(key.safe_name(encoding)))}</Key>"
            f"<LastModified>{key.last_modified_ISO8601}</LastModified>"
            f"<ETag>{escape(str(key.etag))}</ETag><Size>{int(key.size)}</Size>"
            f"<StorageClass>{escape(str(key.storage_class))}</StorageClass>{_OWNER}</Contents>"
        )
    parts.append(f"<Name>{escape(bucket_name)}</Name>")
    if prefix is not None:
        parts.append(f"<Prefix>{escape(prefix)}</Prefix>")
    parts.append(f"<MaxKeys>{max_keys}</MaxKeys>")
    if encoding:
        parts.append(f"<EncodingType>{escape(encoding)}</EncodingType>")
    parts.append("</ListBucketResult>")
    body = "".join(parts).encode()
    headers = [
        ("Server", "amazon.com"),  # moto's, which the HTTP server joins to its own
        ("content-type", "application/xml"),
        ("content-length", str(len(body))),
    ]
    return Streamed("200 OK", headers, iter((body,)))
