"""Step outputs stay in S3: the next step uses them in place, the controller never downloads
them, and glob / loadContents / outputEval / secondaryFiles / checksum / size / Directory
outputs (empty ones included) still come out as cwltool gives them."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import boto3
import pytest

from snakemake_executor_awsbatch.localcloud import LocalCloud

from .s3_helpers import (
    SHAPES,
    Recorder,
    gets,
    local_env,
    run_cwl,
    s3_calls,
    write_job,
    write_workflow,
)

pytestmark = pytest.mark.e2e
__all__ = ["local_env", "s3_calls"]  # fixtures used by this module's tests


def test_intermediate_output_is_used_in_place_and_never_downloaded(
    local_env: LocalCloud, tmp_path: Path, s3_calls: list[tuple[str, dict[str, Any]]]
) -> None:
    workflow = write_workflow(tmp_path)
    outdir = tmp_path / "out"
    job = write_job(tmp_path, 40000)
    code, result, err, rec = run_cwl(["--outdir", str(outdir), str(workflow), job])
    assert code == 0, err
    assert [s.name.split("_")[0] for s in rec.submitted] == ["produce", "tally"]
    produce_prefix = rec.submitted[0].launch.staging.prefix
    # The second job reads the first job's output where the first job left it.
    (staged,) = rec.submitted[1].launch.staging.inputs
    assert staged.s3_uri == f"{produce_prefix}/outdir/big.txt"
    produce_key = produce_prefix.split("/", 3)[3]
    assert not [k for k in gets(s3_calls) if k.startswith(f"{produce_key}/outdir/")]
    # Only the final output came back, once.
    count_key = f"{rec.submitted[1].launch.staging.prefix.split('/', 3)[3]}/outdir/count.txt"
    assert gets(s3_calls).count(count_key) == 1
    assert sorted(p.name for p in outdir.iterdir()) == ["count.txt"]
    count = result["count"]
    assert (outdir / "count.txt").read_text().strip() == "40000"
    body = (outdir / "count.txt").read_bytes()
    assert count["checksum"] == "sha1$" + hashlib.sha1(body).hexdigest()
    assert count["size"] == len(body)


def test_output_shapes_from_s3(local_env: LocalCloud, tmp_path: Path) -> None:
    (tmp_path / "shapes.cwl").write_text(SHAPES)
    outdir = tmp_path / "out"
    code, result, err, _ = run_cwl(["--outdir", str(outdir), str(tmp_path / "shapes.cwl")])
    assert code == 0, err
    a = result["a"]
    assert (outdir / "a.txt").read_text() == "hello"
    assert a["checksum"] == "sha1$" + hashlib.sha1(b"hello").hexdigest()
    assert a["size"] == 5
    assert result["shout"] == "HELLO"
    b = result["b"]
    assert b["basename"] == "b.dat"
    assert [s["basename"] for s in b["secondaryFiles"]] == ["b.dat.idx"]
    assert (outdir / "b.dat.idx").read_text() == "idx"
    listing = {e["basename"]: e["class"] for e in result["d"]["listing"]}
    assert listing == {"empty": "Directory", "x": "File"}
    assert (outdir / "d" / "empty").is_dir()
    assert (outdir / "d" / "x").read_text() == "x"
    assert (outdir / "e").is_dir() and not list((outdir / "e").iterdir())
    assert result["e"]["listing"] == []


def test_leave_outputs_keeps_s3_locations(local_env: LocalCloud, tmp_path: Path) -> None:
    workflow = write_workflow(tmp_path)
    outdir = tmp_path / "out"
    args = ["--leave-outputs", "--outdir", str(outdir), str(workflow), write_job(tmp_path, 3)]
    code, result, err, rec = run_cwl(args)
    assert code == 0, err
    location = result["count"]["location"]
    assert location == f"{rec.submitted[1].launch.staging.prefix}/outdir/count.txt"
    assert not outdir.exists() or not list(outdir.iterdir())


INPLACE = """
cwlVersion: v1.2
class: Workflow
requirements: {InlineJavascriptRequirement: {}}
inputs: []
outputs:
  before: {type: "File[]", outputSource: listing/d1}
  after: {type: "File[]", outputSource: listing/d2}
steps:
  make:
    run:
      class: CommandLineTool
      baseCommand: [mkdir, made]
      inputs: []
      outputs: {out: {type: Directory, outputBinding: {glob: made}}}
    in: {}
    out: [out]
  touch:
    run:
      class: CommandLineTool
      requirements:
        InitialWorkDirRequirement: {listing: [{entry: $(inputs.r), entryname: inp, writable: true}]}
        InplaceUpdateRequirement: {inplaceUpdate: true}
      inputs: {r: Directory}
      outputs: {out: {type: Directory, outputBinding: {glob: inp}}}
      arguments: [touch, inp/blurb]
    in: {r: make/out}
    out: [out]
  listing:
    run:
      class: ExpressionTool
      inputs:
        a: {type: Directory, loadListing: shallow_listing}
        b: {type: Directory, loadListing: shallow_listing}
      outputs: {d1: "File[]", d2: "File[]"}
      expression: "$({d1: inputs.a.listing, d2: inputs.b.listing})"
    in: {a: make/out, b: touch/out}
    out: [d1, d2]
"""


def test_in_place_update_of_an_s3_directory(local_env: LocalCloud, tmp_path: Path) -> None:
    (tmp_path / "inplace.cwl").write_text(INPLACE)
    outdir = tmp_path / "out"
    code, result, err, rec = run_cwl(["--outdir", str(outdir), str(tmp_path / "inplace.cwl")])
    assert code == 0, err
    # The second job changed the first job's output where it lies in S3, and its own output is
    # that same directory, so both listings hold the one new file.
    assert [f["basename"] for f in result["before"]] == ["blurb"]
    assert result["before"] == result["after"]
    assert sorted(p.name for p in outdir.iterdir()) == ["blurb"]
    made_key = rec.submitted[0].launch.staging.prefix.split("/", 3)[3] + "/outdir/made/blurb"
    assert made_key in run_keys(rec)


def run_keys(rec: Recorder) -> list[str]:
    bucket = rec.submitted[0].launch.staging.prefix.split("/")[2]
    reply = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix="cwl/runs/")
    return [str(o["Key"]) for o in reply.get("Contents", [])]
