"""S3 store, fs access and path mapper of the CWL runner, against moto's S3."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from cwl_runner.fsaccess import S3FsAccess
from cwl_runner.pathmapper import S3PathMapper
from cwl_runner.s3store import S3Store, parse_s3_uri
from snakemake_executor_awsbatch.errors import UserError

BUCKET = "cwl-test"


@pytest.fixture
def store() -> Iterator[S3Store]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield S3Store(client, f"s3://{BUCKET}/root")


def _put(store: S3Store, key: str, body: bytes) -> str:
    store.client.put_object(Bucket=BUCKET, Key=key, Body=body)
    return f"s3://{BUCKET}/{key}"


def test_parse_s3_uri_rejects_non_s3() -> None:
    assert parse_s3_uri("s3://b/k/x") == ("b", "k/x")
    with pytest.raises(UserError, match="s3://bucket/key"):
        parse_s3_uri("/local/path")


def test_file_upload_is_content_addressed(store: S3Store, tmp_path: Path) -> None:
    first = tmp_path / "a.txt"
    second = tmp_path / "b.txt"
    first.write_text("same bytes")
    second.write_text("same bytes")
    uri_a = store.upload_file_cas(str(first))
    uri_b = store.upload_file_cas(str(second))
    assert uri_a == uri_b
    assert store.read_bytes(uri_a) == b"same bytes"
    keys = store.client.list_objects_v2(Bucket=BUCKET, Prefix="root/cas/")["KeyCount"]
    assert keys == 1


def test_reupload_from_fresh_store_skips_existing(store: S3Store, tmp_path: Path) -> None:
    source = tmp_path / "ref.fa"
    source.write_text(">chr1\nACGT\n")
    uri = store.upload_file_cas(str(source))
    fresh = S3Store(store.client, store.root_uri)
    calls: list[str] = []
    original = fresh.client.upload_file

    def counting(*args: object, **kwargs: object) -> None:
        calls.append(str(args))
        original(*args, **kwargs)

    fresh.client.upload_file = counting
    try:
        assert fresh.upload_file_cas(str(source)) == uri
    finally:
        fresh.client.upload_file = original
    assert calls == []


def test_directory_round_trip(store: S3Store, tmp_path: Path) -> None:
    src = tmp_path / "dir"
    (src / "sub").mkdir(parents=True)
    (src / "x.txt").write_text("x")
    (src / "sub" / "y.txt").write_text("yy")
    prefix = store.upload_dir_cas(str(src))
    fs = S3FsAccess("", store)
    assert fs.isdir(prefix)
    assert not fs.isfile(prefix)
    assert sorted(fs.listdir(prefix)) == [f"{prefix}/sub", f"{prefix}/x.txt"]
    assert fs.size(f"{prefix}/sub/y.txt") == 2
    dest = tmp_path / "back"
    assert store.download_tree(prefix, str(dest)) == 2
    assert (dest / "sub" / "y.txt").read_text() == "yy"


def test_fsaccess_reads_globs_and_joins(store: S3Store, tmp_path: Path) -> None:
    _put(store, "data/reads_1.fq", b"@r1\n")
    _put(store, "data/reads_2.fq", b"@r2\n")
    _put(store, "data/other.bam", b"BAM")
    fs = S3FsAccess(str(tmp_path), store)
    assert fs.glob(f"s3://{BUCKET}/data/*.fq") == [
        f"s3://{BUCKET}/data/reads_1.fq",
        f"s3://{BUCKET}/data/reads_2.fq",
    ]
    assert fs.glob(f"s3://{BUCKET}/data/missing.txt") == []
    with fs.open(f"s3://{BUCKET}/data/reads_1.fq", "r") as handle:
        assert handle.read() == "@r1\n"
    with fs.open(f"s3://{BUCKET}/data/other.bam", "rb") as handle:
        assert handle.read() == b"BAM"
    with pytest.raises(OSError, match="only be opened for reading"):
        fs.open(f"s3://{BUCKET}/data/other.bam", "w")
    assert fs.join(f"s3://{BUCKET}/data/", "x", "y") == f"s3://{BUCKET}/data/x/y"
    assert not fs.exists(f"s3://{BUCKET}/nothing-here")
    local = tmp_path / "l.txt"
    local.write_text("local")
    assert fs.isfile("l.txt") and fs.size(str(local)) == 5


def test_fsaccess_denied_object_is_a_user_error() -> None:
    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    stubber = Stubber(client)
    stubber.add_client_error("head_object", service_error_code="403", http_status_code=403)
    with stubber:
        fs = S3FsAccess("", S3Store(client, "s3://b/root"))
        with pytest.raises(UserError, match="grant s3:GetObject"):
            fs.isfile("s3://private-bucket/sample.bam")


def test_fsaccess_missing_bucket_is_a_user_error(store: S3Store) -> None:
    with pytest.raises(UserError, match="does not exist"):
        S3FsAccess("", store).isfile("s3://bucket-that-does-not-exist/x")


def test_pathmapper_keeps_s3_inputs_in_place_with_secondary_files(tmp_path: Path) -> None:
    local = tmp_path / "local.txt"
    local.write_text("l")
    bam = {
        "class": "File",
        "location": f"s3://{BUCKET}/data/sample.bam",
        "basename": "sample.bam",
        "secondaryFiles": [
            {
                "class": "File",
                "location": f"s3://{BUCKET}/data/sample.bam.bai",
                "basename": "sample.bam.bai",
            }
        ],
    }
    refdir = {"class": "Directory", "location": f"s3://{BUCKET}/refs", "basename": "refs"}
    plain = {"class": "File", "location": local.as_uri(), "basename": "local.txt"}
    listing: list[Any] = [bam, refdir, plain]
    mapper = S3PathMapper(listing, str(tmp_path), "/stage", separateDirs=True)
    ent = mapper.mapper(f"s3://{BUCKET}/data/sample.bam")
    assert ent.resolved == f"s3://{BUCKET}/data/sample.bam" and ent.type == "File"
    bai = mapper.mapper(f"s3://{BUCKET}/data/sample.bam.bai")
    assert os.path.dirname(bai.target) == os.path.dirname(ent.target)
    assert bai.target.endswith("sample.bam.bai") and bai.target.startswith("/stage/")
    assert mapper.mapper(f"s3://{BUCKET}/refs").type == "Directory"
    assert mapper.mapper(local.as_uri()).resolved == str(local)


def test_s3_locations_are_uris(store: S3Store, tmp_path: Path) -> None:
    uri = _put(store, "out/a b%.txt", b"spaced")
    fs = S3FsAccess(str(tmp_path), store)
    (location,) = fs.glob(f"s3://{BUCKET}/out/*.txt")
    # Listed names come back percent-encoded, and read back as the same key.
    assert location == f"s3://{BUCKET}/out/a%20b%25.txt"
    assert fs.isfile(location) and fs.size(location) == 6
    with fs.open(location, "rb") as handle:
        assert handle.read() == b"spaced"
    mapper = S3PathMapper(
        [{"class": "File", "location": location, "basename": "a b%.txt"}], str(tmp_path), "/stage"
    )
    assert mapper.mapper(location).resolved == uri


def test_join_follows_os_path_join(store: S3Store) -> None:
    fs = S3FsAccess("/", store)
    assert fs.join("s3://b/out", "x", "y.txt") == "s3://b/out/x/y.txt"
    assert fs.join("s3://b/out", "s3://c/other", "z") == "s3://c/other/z"
    # An absolute local path wins over an S3 base, as in os.path.join (cwltool relies on it).
    assert fs.join("s3://b/out", "/data/ref.fa") == "/data/ref.fa"
    assert fs.join("/local", "s3://b/k") == "s3://b/k"


def test_efs_locations_and_mount_paths(store: S3Store) -> None:
    fs = S3FsAccess("/", store, efs_paths=("/refs",))
    assert fs.exists("/refs/genome.fa") and fs.isfile("/refs/genome.fa")
    assert not fs.exists("/refsx/genome.fa")
    assert fs.exists("efs://fs-0123abcd/genome.fa")
    with pytest.raises(UserError, match="no valid EFS file system id"):
        fs.exists("efs://fs-zz/genome.fa")
