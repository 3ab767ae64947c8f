"""Shared pieces of the CWL S3 tests: small CWL documents, a recorder of submissions, an S3
call spy and a runner of `cwl-awsbatch --local` in this process."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import botocore.client
import pytest

from cwl_runner.main import _backend, run
from cwl_runner.session import BatchBackend, RunnerSettings
from snakemake_executor_awsbatch.localcloud import LocalCloud
from snakemake_executor_awsbatch.taskspec import TaskSpec

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
    """Wraps the real BatchSubmitter and keeps every submitted spec and its Batch job id."""

    def __init__(self, inner: BatchBackend) -> None:
        self.inner = inner
        self.submitted: list[TaskSpec] = []
        self.job_ids: list[str] = []

    def submit(self, spec: TaskSpec) -> str:
        self.submitted.append(spec)
        job_id = self.inner.submit(spec)
        self.job_ids.append(job_id)
        return job_id

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
    monkeypatch.delenv("CWL_AWSBATCH_COMPANION_IMAGE", raising=False)
    return local_cloud


def run_cwl(
    args: list[str], options: Sequence[str] = ("--awsbatch-no-call-cache",)
) -> tuple[int, dict[str, Any], str, Recorder]:
    """cwl-awsbatch --local in this process; (exit code, output object, stderr, recorder)."""
    holder: list[Recorder] = []

    def factory(settings: RunnerSettings) -> BatchBackend:
        holder.append(Recorder(_backend(settings)))
        return holder[0]

    out, err = io.StringIO(), io.StringIO()
    code = run(["--local", *options, *args], out, err, factory)
    text = out.getvalue()
    recorder = holder[0] if holder else Recorder(None)  # type: ignore[arg-type]
    return code, json.loads(text) if text.strip() else {}, err.getvalue(), recorder


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
