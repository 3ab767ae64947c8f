"""The CWL side: one CommandLineTool per step, every tool used. (Validity itself is exercised
by running both workflows with cwltool in test_germline.py and test_somatic.py.)"""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML
from wf_helpers import REPO

DOCUMENTS = sorted((REPO / "workflows").glob("*/cwl/*.cwl"))


def _load(path: Path) -> dict[str, object]:
    doc: dict[str, object] = YAML(typ="safe").load(path.read_text())
    return doc


def test_there_is_one_tool_per_step() -> None:
    names = {p.stem for p in DOCUMENTS}
    assert {"germline", "somatic", "fastp", "bwa_mem", "markdup", "bam_qc", "call_bcftools",
            "call_freebayes", "somatic_classify"} <= names  # fmt: skip


def test_every_step_runs_a_command_line_tool_and_every_tool_is_used() -> None:
    used: set[Path] = set()
    for name in ("germline", "somatic"):
        path = REPO / "workflows" / name / "cwl" / f"{name}.cwl"
        doc = _load(path)
        assert doc["class"] == "Workflow"
        steps = doc["steps"]
        assert isinstance(steps, dict)
        for step in steps.values():
            tool = (path.parent / step["run"]).resolve()
            assert _load(tool)["class"] == "CommandLineTool", tool
            used.add(tool)
    tools = {p.resolve() for p in DOCUMENTS if _load(p)["class"] == "CommandLineTool"}
    assert tools == used
