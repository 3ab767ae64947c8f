"""Helpers for the workflow tests: run cwltool on a workflow, read a VCF's records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pysam

REPO = Path(__file__).resolve().parents[2]


def run_cwltool(
    workflow: Path, job: dict[str, object], outdir: Path, awsbatch: bool = False
) -> dict[str, object]:
    """Run a CWL workflow with plain cwltool (--no-container), or with `cwl-awsbatch --local`
    (every tool a Batch job on the local cloud); returns its output object."""
    outdir.mkdir(parents=True, exist_ok=True)
    job_path = outdir.parent / f"{outdir.name}.job.json"
    job_path.write_text(json.dumps(job))
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    runner = (
        ["-m", "cwl_runner.main", "--local"] if awsbatch else ["-m", "cwltool", "--no-container"]
    )
    done = subprocess.run(
        [sys.executable, *runner, "--outdir", str(outdir), str(workflow), str(job_path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, object] = json.loads(done.stdout)
    return result


def file_job(path: Path) -> dict[str, str]:
    """A CWL File object for a local path."""
    return {"class": "File", "path": str(path)}


def records(vcf: Path) -> list[tuple[str, int, str, str, str]]:
    """(chrom, pos, ref, alts, filters) of every record, for comparing two call sets."""
    with pysam.VariantFile(str(vcf)) as handle:
        return [
            (r.chrom, r.pos, r.ref or "", ",".join(r.alts or ()), ";".join(r.filter.keys()))
            for r in handle
        ]
