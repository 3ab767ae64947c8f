"""Directory markers: empty directories written as `prefix/` objects and recreated from them,
by the core helpers (dirmarkers.py), the runner's S3 store and its fs access (moto's S3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from cwl_runner.fsaccess import S3FsAccess
from cwl_runner.outputs import parse_manifest
from cwl_runner.s3store import S3Store
from snakemake_executor_awsbatch import dirmarkers
from snakemake_executor_awsbatch.localcloud import LocalCloud

from .s3_helpers import Recorder, local_env, run_cwl

BUCKET = "markers"
__all__ = ["local_env"]  # the fixture used by the end-to-end tests


@pytest.fixture
def store() -> Iterator[S3Store]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield S3Store(client, f"s3://{BUCKET}/root")


def _tree(base: Path) -> Path:
    (base / "a" / "empty").mkdir(parents=True)
    (base / "a" / "f.txt").write_text("f")
    (base / "deep" / "er" / "est").mkdir(parents=True)
    (base / "full").mkdir()
    (base / "full" / "g.txt").write_text("g")
    return base


def _keys(store: S3Store, prefix: str) -> list[str]:
    reply = store.client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in reply.get("Contents", []))


def test_empty_dirs_are_the_leaves_without_entries(tmp_path: Path) -> None:
    assert dirmarkers.empty_dirs(str(_tree(tmp_path / "t"))) == ["a/empty", "deep/er/est"]
    (tmp_path / "none").mkdir()
    assert dirmarkers.empty_dirs(str(tmp_path / "none")) == [""]


def test_marker_keys() -> None:
    assert dirmarkers.marker_key("p/q", "a/b") == "p/q/a/b/"
    assert dirmarkers.marker_key("p/q/", "") == "p/q/"
    assert dirmarkers.marker_dirs("p", ["p/a/", "p/b.txt", "p/", "other/x/"]) == ["", "a"]


def test_upload_and_download_round_trip(store: S3Store, tmp_path: Path) -> None:
    source = _tree(tmp_path / "src")
    written = dirmarkers.upload_markers(store.client, str(source), f"s3://{BUCKET}/tree")
    assert written == 2
    assert _keys(store, "tree/") == ["tree/a/empty/", "tree/deep/er/est/"]
    dest = tmp_path / "dest"
    assert dirmarkers.download_markers(store.client, f"s3://{BUCKET}/tree", str(dest)) == 2
    assert (dest / "a" / "empty").is_dir() and (dest / "deep" / "er" / "est").is_dir()


def test_marker_escaping_the_destination_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outside"):
        dirmarkers.recreate_dirs(str(tmp_path / "d"), "p", ["p/../../etc/"])


def test_store_directory_upload_keeps_empty_dirs(store: S3Store, tmp_path: Path) -> None:
    source = _tree(tmp_path / "src")
    uri = store.upload_dir_cas(str(source))
    prefix = uri.split("/", 3)[3]
    assert f"{prefix}/a/empty/" in _keys(store, prefix + "/")
    # The empty directories are part of the content key: a tree without them is another upload.
    (source / "a" / "empty").rmdir()
    assert store.upload_dir_cas(str(source)) != uri
    dest = tmp_path / "dest"
    assert store.download_tree(uri, str(dest)) == 2
    assert (dest / "a" / "empty").is_dir()
    assert (dest / "deep" / "er" / "est").is_dir()
    assert (dest / "full" / "g.txt").read_text() == "g"


def test_fs_access_lists_marked_dirs(store: S3Store, tmp_path: Path) -> None:
    uri = store.upload_dir_cas(str(_tree(tmp_path / "src")))
    fs = S3FsAccess(str(tmp_path), store)
    assert sorted(fs.listdir(f"{uri}/a")) == [f"{uri}/a/empty", f"{uri}/a/f.txt"]
    assert fs.isdir(f"{uri}/a/empty") and not fs.isfile(f"{uri}/a/empty")
    assert fs.isdir(f"{uri}/deep/er/est")
    assert fs.listdir(f"{uri}/deep/er/est") == []
    assert not fs.exists(f"{uri}/nothing")
    store.put_marker(f"s3://{BUCKET}/alone")
    assert fresh_isdir(store, f"s3://{BUCKET}/alone")


def fresh_isdir(store: S3Store, uri: str) -> bool:
    return S3FsAccess("/", store).isdir(uri)


def test_manifest_parsing() -> None:
    text = (
        ".\n./a/empty\n---\n"
        "da39a3ee5e6b4b0d3255bfef95601890afd80709  ./x.txt\n"
        "\\0123456789012345678901234567890123456789  ./odd\\nname\n"
    )
    manifest = parse_manifest(text)
    assert manifest.empty_dirs == ("", "a/empty")
    assert manifest.sha1 == {"x.txt": "da39a3ee5e6b4b0d3255bfef95601890afd80709"}


FIND_DIRS = """
cwlVersion: v1.2
class: CommandLineTool
baseCommand: [sh, -c, 'cd "$0" && find . -type d | sort']
arguments: [$(inputs.d.path)]
stdout: dirs.txt
inputs: {d: Directory}
outputs: {dirs: {type: stdout}}
"""
NESTED = """
cwlVersion: v1.2
class: Workflow
inputs: []
outputs: {ya: {type: File, outputSource: second/ya}}
steps:
  first:
    run:
      class: CommandLineTool
      baseCommand: [mkdir, -p, deeply/nested/dir]
      inputs: []
      outputs: {deep: {type: Directory, outputBinding: {glob: deeply}}}
    in: {}
    out: [deep]
  second:
    run:
      class: CommandLineTool
      baseCommand: [touch, deeply/nested/dir/ya]
      requirements:
        InitialWorkDirRequirement: {listing: [{entry: $(inputs.dir), writable: true}]}
      inputs: {dir: Directory}
      outputs: {ya: {type: File, outputBinding: {glob: deeply/nested/dir/ya}}}
    in: {dir: first/deep}
    out: [ya]
"""


@pytest.mark.e2e
def test_empty_subdirectory_of_an_input_reaches_the_job(
    local_env: LocalCloud, tmp_path: Path
) -> None:
    source = _tree(tmp_path / "src")
    (tmp_path / "find.cwl").write_text(FIND_DIRS)
    (tmp_path / "job.json").write_text(
        json.dumps({"d": {"class": "Directory", "path": str(source)}})
    )
    args = ["--outdir", str(tmp_path / "o"), str(tmp_path / "find.cwl"), str(tmp_path / "job.json")]
    code, result, err, _ = run_cwl(args)
    assert code == 0, err
    dirs = Path(result["dirs"]["path"]).read_text().split()
    assert dirs == [".", "./a", "./a/empty", "./deep", "./deep/er", "./deep/er/est", "./full"]


@pytest.mark.e2e
def test_empty_nested_output_directory_feeds_the_next_step(
    local_env: LocalCloud, tmp_path: Path
) -> None:
    (tmp_path / "nested.cwl").write_text(NESTED)
    code, result, err, rec = run_cwl(
        ["--outdir", str(tmp_path / "o"), str(tmp_path / "nested.cwl")]
    )
    assert code == 0, err
    assert result["ya"]["size"] == 0
    first_outdir = rec.submitted[0].launch.staging.prefix.split("/", 3)[3] + "/outdir/"
    assert f"{first_outdir}deeply/nested/dir/" in _keys_of(rec, first_outdir)


def _keys_of(rec: Recorder, prefix: str) -> list[str]:
    bucket = rec.submitted[0].launch.staging.prefix.split("/")[2]
    client = boto3.client("s3")
    reply = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in reply.get("Contents", [])]
