"""cwl-awsbatch with --awsbatch-companion-image: a tool whose image is not the run's default runs
in the companion layout (stage-in / main / stage-out containers of one Batch job) with its paths
under /awsbatch-work. On the local cloud every container runs on this machine, so the images are
names only: what is verified is the job's shape, the paths the tool sees and its outputs, not
that an image without Python works."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from cwltool.context import RuntimeContext
from cwltool.errors import WorkflowException

from cwl_runner.companion import STAGEDIR, companion_context, companion_for
from cwl_runner.main import _own_parser
from cwl_runner.session import RunnerSettings
from snakemake_executor_awsbatch.localcloud import LocalCloud

from .s3_helpers import Recorder, local_env, run_cwl

__all__ = ["local_env"]  # fixture used by this module's tests

TOOL_IMAGE = "registry.example.org/tools/no-python:1"
COMPANION_IMAGE = "registry.example.org/project/awsbatch:1"
DATA = Path(__file__).with_name("data")

UPPER_TOOL = {
    "cwlVersion": "v1.2",
    "class": "CommandLineTool",
    "requirements": {"DockerRequirement": {"dockerPull": TOOL_IMAGE}},
    "baseCommand": ["sh", "-c"],
    "arguments": [
        'tr a-z A-Z < "$0" > upper.txt && echo "$0" > input-path.txt && pwd > where.txt',
        "$(inputs.f.path)",
    ],
    "inputs": {"f": {"type": "File"}},
    "outputs": {
        "upper": {"type": "File", "outputBinding": {"glob": "upper.txt"}},
        "texts": {"type": "File[]", "outputBinding": {"glob": "*.txt"}},
    },
}

FAILING_TOOL = {
    "cwlVersion": "v1.2",
    "class": "CommandLineTool",
    "requirements": {"DockerRequirement": {"dockerPull": TOOL_IMAGE}},
    "baseCommand": ["sh", "-c", "echo the-tool-says-no >&2; exit 4"],
    "inputs": {},
    "outputs": {},
}


def _run(args: list[str]) -> tuple[int, dict[str, Any], str, Recorder]:
    return run_cwl(args, options=("--awsbatch-companion-image", COMPANION_IMAGE))


def _write(path: Path, doc: dict[str, Any]) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


def _describe(cloud: LocalCloud, job_id: str) -> dict[str, Any]:
    batch = boto3.client("batch", endpoint_url=cloud.endpoint_url, region_name=cloud.region)
    return dict(batch.describe_jobs(jobs=[job_id])["jobs"][0])


# --- which jobs use the layout, without a cloud -----------------------------------------------


def _settings(**kw: Any) -> RunnerSettings:
    return RunnerSettings(queue="q", s3_root="s3://b/p", region="us-east-1", **kw)


def test_only_non_default_images_use_the_companion_layout() -> None:
    on = _settings(companion_image=COMPANION_IMAGE)
    assert companion_for(TOOL_IMAGE, on) == COMPANION_IMAGE
    assert companion_for(on.default_image, on) is None
    assert companion_for(None, on) is None
    assert companion_for(TOOL_IMAGE, _settings()) is None


def test_option_and_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CWL_AWSBATCH_COMPANION_IMAGE", "from/env:1")
    assert _own_parser().parse_known_args([])[0].awsbatch_companion_image == "from/env:1"
    parsed = _own_parser().parse_known_args(["--awsbatch-companion-image", "from/flag:2"])[0]
    assert parsed.awsbatch_companion_image == "from/flag:2"
    monkeypatch.delenv("CWL_AWSBATCH_COMPANION_IMAGE")
    assert _own_parser().parse_known_args([])[0].awsbatch_companion_image is None


def test_output_directory_outside_the_shared_volume_is_refused() -> None:
    req = {"class": "DockerRequirement", "dockerOutputDirectory": "/data/out"}
    with pytest.raises(WorkflowException, match="dockerOutputDirectory /data/out"):
        companion_context(RuntimeContext(), req, "tool")
    inside = companion_context(
        RuntimeContext(), {"dockerOutputDirectory": "/awsbatch-work/o"}, "tool"
    )
    assert inside.use_container and inside.docker_stagedir == STAGEDIR


# --- end to end on the local cloud -------------------------------------------------------------


@pytest.mark.e2e
def test_tool_image_runs_in_a_companion_job(local_env: LocalCloud, tmp_path: Path) -> None:
    source = tmp_path / "reads.txt"
    source.write_text("acgt ttga\n")
    tool = _write(tmp_path / "upper.cwl", UPPER_TOOL)
    job = _write(tmp_path / "job.json", {"f": {"class": "File", "path": str(source)}})
    outdir = tmp_path / "out"
    code, result, err, backend = _run(["--outdir", str(outdir), tool, job])
    assert code == 0, err
    [spec], [job_id] = backend.submitted, backend.job_ids
    assert spec.image == TOOL_IMAGE and spec.companion_image == COMPANION_IMAGE
    described = _describe(local_env, job_id)
    containers = described["ecsProperties"]["taskProperties"][0]["containers"]
    assert [c["name"] for c in containers] == ["stage-in", "main", "stage-out"]
    assert "containerProperties" not in described
    assert Path(result["upper"]["path"]).read_text() == "ACGT TTGA\n"
    texts = {Path(f["path"]).name: Path(f["path"]).read_text() for f in result["texts"]}
    assert sorted(texts) == ["input-path.txt", "upper.txt", "where.txt"]
    # The tool saw cwltool's container layout under the shared volume, not controller paths.
    assert texts["where.txt"] == "/awsbatch-work/out\n"
    assert texts["input-path.txt"].startswith(STAGEDIR + "/")
    assert texts["input-path.txt"].rstrip().endswith("/reads.txt")
    assert spec.launch.workdir == "/awsbatch-work/out"
    assert all(i.path.startswith(STAGEDIR + "/") for i in spec.launch.staging.inputs)
    assert result["upper"]["checksum"].startswith("sha1$")


@pytest.mark.e2e
def test_default_image_tool_keeps_the_single_container_job(
    local_env: LocalCloud, tmp_path: Path
) -> None:
    source = tmp_path / "in.txt"
    source.write_text("plain\n")
    job = _write(tmp_path / "job.json", {"f": {"class": "File", "path": str(source)}})
    code, result, err, backend = _run(["--outdir", str(tmp_path / "o"), str(DATA / "cat.cwl"), job])
    assert code == 0, err
    [spec], [job_id] = backend.submitted, backend.job_ids
    assert spec.companion_image is None
    assert "ecsProperties" not in _describe(local_env, job_id)
    assert Path(result["out"]["path"]).read_text() == "plain\n"


@pytest.mark.e2e
def test_failing_tool_exits_1_with_its_log(local_env: LocalCloud, tmp_path: Path) -> None:
    tool = _write(tmp_path / "fails.cwl", FAILING_TOOL)
    job = _write(tmp_path / "job.json", {})
    code, _result, err, backend = _run(["--outdir", str(tmp_path / "o"), tool, job])
    assert code == 1
    [spec], [job_id] = backend.submitted, backend.job_ids
    assert spec.companion_image == COMPANION_IMAGE
    assert _describe(local_env, job_id)["status"] == "FAILED"
    assert "the-tool-says-no" in err
    assert "exit 4" in err


WORKFLOW = {
    "cwlVersion": "v1.2",
    "class": "Workflow",
    "requirements": {"StepInputExpressionRequirement": {}},
    "inputs": {"f": "File"},
    "outputs": {"joined": {"type": "File", "outputSource": "join/out"}},
    "steps": {
        "tool_image": {
            "run": {
                "class": "CommandLineTool",
                "requirements": {
                    "DockerRequirement": {"dockerPull": TOOL_IMAGE},
                    "InitialWorkDirRequirement": {
                        "listing": [{"entryname": "note.txt", "entry": "from initial workdir\n"}]
                    },
                },
                "baseCommand": ["sh", "-c", 'cat note.txt "$0" > made.txt'],
                "inputs": {"f": {"type": "File", "inputBinding": {"position": 1}}},
                "outputs": {"made": {"type": "File", "outputBinding": {"glob": "made.txt"}}},
            },
            "in": {"f": "f"},
            "out": ["made"],
        },
        "join": {"run": str(DATA / "cat.cwl"), "in": {"f": "tool_image/made"}, "out": ["out"]},
    },
}


@pytest.mark.e2e
def test_companion_step_feeds_a_default_step(local_env: LocalCloud, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("input line\n")
    workflow = _write(tmp_path / "wf.cwl", WORKFLOW)
    job = _write(tmp_path / "job.json", {"f": {"class": "File", "path": str(source)}})
    code, result, err, backend = _run(["--outdir", str(tmp_path / "o"), workflow, job])
    assert code == 0, err
    layouts = sorted((spec.companion_image or "single") for spec in backend.submitted)
    assert layouts == sorted([COMPANION_IMAGE, "single"])
    text = Path(result["joined"]["path"]).read_text()
    assert text == "from initial workdir\ninput line\n"


DIR_TOOL = {
    "cwlVersion": "v1.2",
    "class": "CommandLineTool",
    "requirements": {"DockerRequirement": {"dockerPull": TOOL_IMAGE}},
    "baseCommand": ["sh", "-c", "mkdir -p tree/empty tree/full && echo x > tree/full/f.txt"],
    "inputs": {},
    "outputs": {"tree": {"type": "Directory", "outputBinding": {"glob": "tree"}}},
}


@pytest.mark.e2e
def test_empty_subdirectory_of_an_output_survives(local_env: LocalCloud, tmp_path: Path) -> None:
    # No in-job manifest here: the core's directory upload marks the empty directory.
    tool = _write(tmp_path / "tree.cwl", DIR_TOOL)
    job = _write(tmp_path / "job.json", {})
    code, result, err, backend = _run(["--outdir", str(tmp_path / "o"), tool, job])
    assert code == 0, err
    [spec] = backend.submitted
    assert spec.companion_image == COMPANION_IMAGE
    tree = Path(result["tree"]["path"])
    assert (tree / "empty").is_dir() and not any((tree / "empty").iterdir())
    assert (tree / "full" / "f.txt").read_text() == "x\n"
