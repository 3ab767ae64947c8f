"""The local cloud answers one-page ListObjects itself: what the client reads equals moto's own
answer, and every other listing is left to moto."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from snakemake_executor_awsbatch.localcloud.cloud import LocalCloud

from .helpers import client, steady_headers
from .spies import leave_to_moto, watch_direct_answers

BUCKET = "localcloud-list"
VERSIONED = "localcloud-list-versioned"


@pytest.fixture(scope="module")
def s3(local_cloud: LocalCloud) -> Iterator[Any]:
    """A client with a bucket of plain, oddly named and infrequent-access objects."""
    s3 = client(local_cloud, "s3")
    s3.create_bucket(Bucket=BUCKET)
    for key in ("a.txt", "dir/a key +ü.txt", "dir/b&<c>.txt", "dir/sub/deep", "dirx"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
    s3.put_object(Bucket=BUCKET, Key="dir/cold", Body=b"c", StorageClass="STANDARD_IA")
    s3.create_bucket(Bucket=VERSIONED)
    s3.put_bucket_versioning(Bucket=VERSIONED, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=VERSIONED, Key="v", Body=b"v")
    yield s3


def _listing(s3: Any, params: dict[str, Any]) -> dict[str, Any]:
    response = s3.list_objects(**params)
    meta = response.pop("ResponseMetadata")
    response["headers"] = steady_headers(meta)
    return dict(response)


OURS: list[dict[str, Any]] = [
    {"Bucket": BUCKET},
    {"Bucket": BUCKET, "Prefix": "dir/"},
    {"Bucket": BUCKET, "Prefix": "dir/a key +"},
    {"Bucket": BUCKET, "Prefix": "dir/b&"},
    {"Bucket": BUCKET, "Prefix": "nothing/"},
    {"Bucket": BUCKET, "Prefix": "a.txt/", "MaxKeys": 1},
    {"Bucket": BUCKET, "Prefix": "dir", "MaxKeys": 6},
]


@pytest.mark.parametrize("params", OURS, ids=[str(sorted(p.items())) for p in OURS])
def test_listing_equals_motos(
    s3: Any, monkeypatch: pytest.MonkeyPatch, params: dict[str, Any]
) -> None:
    served = watch_direct_answers(monkeypatch, "answer_list_objects")
    ours = _listing(s3, params)
    assert served == [True]
    leave_to_moto(monkeypatch, "answer_list_objects")
    assert ours == _listing(s3, params)


MOTOS: list[dict[str, Any]] = [
    {"Bucket": BUCKET, "Delimiter": "/"},
    {"Bucket": BUCKET, "Marker": "a.txt"},
    {"Bucket": BUCKET, "Prefix": "dir/", "MaxKeys": 2},  # truncated
    {"Bucket": BUCKET, "MaxKeys": 0},
    {"Bucket": VERSIONED},
]


@pytest.mark.parametrize("params", MOTOS, ids=[str(sorted(p.items())) for p in MOTOS])
def test_other_listings_are_left_to_moto(
    s3: Any, monkeypatch: pytest.MonkeyPatch, params: dict[str, Any]
) -> None:
    served = watch_direct_answers(monkeypatch, "answer_list_objects")
    s3.list_objects(**params)
    assert served == [False]


def _names(s3: Any, prefix: str) -> list[str]:
    listing = s3.list_objects(Bucket=BUCKET, Prefix=prefix)
    return [str(item["Key"]) for item in listing.get("Contents", [])]


def test_listing_follows_writes_and_deletes(s3: Any) -> None:
    assert _names(s3, "late/") == []
    s3.put_object(Bucket=BUCKET, Key="late/x", Body=b"1")
    assert _names(s3, "late/") == ["late/x"]
    s3.delete_object(Bucket=BUCKET, Key="late/x")
    assert _names(s3, "late/") == []
