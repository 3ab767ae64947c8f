"""Step outputs stay in S3: the next step uses them in place, the controller never downloads
them, and glob / loadContents / outputEval / secondaryFiles / checksum / size / Directory
outputs (empty ones included) still come out as cwltool gives them."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.client
import pytest

from cwl_runner.main import _backend, run
from cwl_runner.session import BatchBackend, RunnerSettings
from snakemake_executor_awsbatch.localcloud import LocalCloud
from snakemake_executor_awsbatch.taskspec import TaskSpec

pytestmark = pytest.mark.e2e

PRODUCE = """
cwlVersion: v1.2
class: CommandLineTool
baseCommand: [sh, -c, "seq 1 $0 > big.txt"]
arguments: [$(inputs.n)]
inputs: {n: int}
outputs:
  big: {type: File, outputBinding: {glob: big.txt}}
"""
COUNT = """
cwlVersion: v1.2
class: CommandLineTool
baseCommand: [wc, -l]
stdin: $(inputs.f.path)
stdout: count.txt
inputs: {f: File}
outputs:
  count: {type: stdout}
"""
TWO_STEPS = """
cwlVersion: v1.2
class: Workflow
inputs: {n: int}
outputs:
  count: {type: File, outputSource: tally/count}
steps:
  produce: {run: produce.cwl, in: {n: n}, out: [big]}
  tally: {run: count.cwl, in: {f: produce/big}, out: [count]}
"""
SHAPES = """
cwlVersion: v1.2
class: CommandLineTool
requirements: {InlineJavascriptRequirement: {}}
baseCommand: [sh, -c]
arguments:
  - printf hello > a.txt; printf data > b.dat; printf idx > b.dat.idx;
    mkdir -p d/empty e; printf x > d/x
inputs: []
outputs:
  a: {type: File, outputBinding: {glob: a.txt, loadContents: true}}
  shout:
    type: string
    outputBinding:
      glob: a.txt
      loadContents: true
      outputEval: $(self[0].contents.toUpperCase())
  b: {type: File, secondaryFiles: [.idx], outputBinding: {glob: "*.dat"}}
  d: {type: Directory, outputBinding: {glob: d}}
  e: {type: Directory, outputBinding: {glob: e}}
"""


class Recorder:
    """Wraps the real BatchSubmitter and keeps every submitted spec."""

    def __init__(self, inner: BatchBackend) -> None:
        self.inner = inner
        self.submitted: list[TaskSpec] = []

    def submit(self, spec: TaskSpec) -> str:
        self.submitted.append(spec)
        return self.inner.submit(spec)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def s3_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every S3 call this process makes: (operation, parameters)."""
    calls: list[tuple[str, dict[str, Any]]] = []
    real = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]

    def spy(self: Any, operation: str, params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name == "s3":
            calls.append((operation, dict(params)))
        return real(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", spy)
    yield calls


@pytest.fixture
def local_env(local_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> LocalCloud:
    for key, value in local_cloud.client_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CWL_AWSBATCH_LOCAL_ENDPOINT", local_cloud.endpoint_url)
    monkeypatch.setenv("CWL_AWSBATCH_LOCAL_REGION", local_cloud.region)
    monkeypatch.setenv("CWL_AWSBATCH_LOCAL_QUEUE", local_cloud.queue_name)
    monkeypatch.setenv("CWL_AWSBATCH_LOCAL_EFS", local_cloud.efs_file_system_id)
    return local_cloud


def run_cwl(args: list[str]) -> tuple[int, dict[str, Any], str, Recorder]:
    """cwl-awsbatch --local in this process; (exit code, output object, stderr, recorder)."""
    holder: list[Recorder] = []

    def factory(settings: RunnerSettings) -> BatchBackend:
        holder.append(Recorder(_backend(settings)))
        return holder[0]

    out, err = io.StringIO(), io.StringIO()
    code = run(["--local", "--awsbatch-no-call-cache", *args], out, err, factory)
    text = out.getvalue()
    return code, json.loads(text) if text.strip() else {}, err.getvalue(), holder[0]


def write_workflow(tmp_path: Path) -> Path:
    (tmp_path / "produce.cwl").write_text(PRODUCE)
    (tmp_path / "count.cwl").write_text(COUNT)
    (tmp_path / "wf.cwl").write_text(TWO_STEPS)
    return tmp_path / "wf.cwl"


def write_job(tmp_path: Path, n: int) -> str:
    (tmp_path / "job.json").write_text(json.dumps({"n": n}))
    return str(tmp_path / "job.json")


def gets(calls: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [str(p["Key"]) for op, p in calls if op == "GetObject"]


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
