"""Every CWL document of the workflows validates with cwltool."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from wf_helpers import REPO

DOCUMENTS = sorted((REPO / "workflows").glob("*/cwl/*.cwl"))


def test_there_is_one_tool_per_step() -> None:
    names = {p.stem for p in DOCUMENTS}
    assert {"germline", "somatic", "fastp", "bwa_mem", "markdup", "bam_qc", "call_bcftools",
            "call_freebayes", "somatic_classify"} <= names  # fmt: skip


@pytest.mark.parametrize("document", [p for p in DOCUMENTS if p.stem in ("germline", "somatic")],
                         ids=lambda p: p.stem)  # fmt: skip
def test_workflow_validates(document: Path) -> None:
    # Validating a workflow validates every tool it runs.
    done = subprocess.run(
        [sys.executable, "-m", "cwltool", "--validate", str(document)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "is valid CWL" in done.stdout
