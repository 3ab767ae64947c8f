"""`python -m workflows.demo`: the README's main command.

Simulates a small data set on a real reference (a few hundred kbp of C. elegans chromosome I at
30x), runs the germline workflow with `snakemake --executor awsbatch --awsbatch-local` (the
embedded local cloud: Batch jobs, S3 staging), and prints a summary: the VCF, its variant counts,
the accuracy against the planted truth, wall time, Batch jobs run and bytes staged.

The helpers here (simulate, stage the workflow sources, write the config, run Snakemake plainly or
through the executor) are also what the workflow tests and benchmarks use, so that the three run
the workflows the same way.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.run_totals import RUN_TOTALS_PATH

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS_DIR = REPO_ROOT / "workflows"
TABLES = {"germline": ("samples", "samples.tsv"), "somatic": ("pairs", "pairs.tsv")}
DEFAULT_STORAGE_PREFIX = "s3://awsbatch-demo/runs"
# The executor logs one line per submission: "Job 7 submitted to AWS Batch as <id> (<name>)."
_SUBMITTED = re.compile(r"submitted to AWS Batch as ")


@dataclass(frozen=True)
class RunResult:
    """One Snakemake run of a workflow: where, how it ended, how long, how many Batch jobs."""

    workflow: str
    workdir: Path
    returncode: int
    wall_seconds: float
    log: Path
    executor: bool
    batch_jobs: int | None
    totals: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """True when Snakemake exited 0."""
        return self.returncode == 0


def simulate_data(
    outdir: Path,
    region_length: int = 250_000,
    normal_depth: float = 30.0,
    tumor_depth: float = 60.0,
    seed: int = 1,
    tumor: bool = True,
) -> Path:
    """Simulate reads and truth with workflows.tools.simulate into `outdir`; returns `outdir`."""
    argv = [
        sys.executable,
        "-m",
        "workflows.tools.simulate",
        "--outdir",
        str(outdir),
        "--region-length",
        str(region_length),
        "--normal-depth",
        str(normal_depth),
        "--tumor-depth",
        str(tumor_depth),
        "--seed",
        str(seed),
    ]
    if not tumor:
        argv.append("--no-tumor")
    done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the simulator failed:\n{done.stderr}")
    return outdir


def stage_sources(workdir: Path) -> None:
    """Copy both workflows into `workdir/workflows/`.

    Snakemake ships a workflow to remote jobs as an archive of the sources under the working
    directory only, so the Snakefile must live inside it.
    """
    target = workdir / "workflows"
    for name in TABLES:
        dest = target / name
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(
            WORKFLOWS_DIR / name, dest, ignore=shutil.ignore_patterns("__pycache__", "cwl")
        )


def _table_rows(path: Path, workdir: Path) -> dict[str, dict[str, str]]:
    """A samples/pairs TSV as inline config rows, file paths made relative to `workdir`."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    key = next(iter(rows[0]))
    inline: dict[str, dict[str, str]] = {}
    for row in rows:
        fields = {
            col: os.path.relpath((path.parent / val).resolve(), workdir.resolve())
            for col, val in row.items()
            if col != key
        }
        inline[row[key]] = fields
    return inline


def write_config(
    workflow: str,
    workdir: Path,
    data_dir: Path,
    local_inputs: bool,
    extra: Mapping[str, object] | None = None,
) -> Path:
    """Write `workdir/<workflow>.config.yaml` with the reference and the table rows inline.

    Inline rows travel with the config file, which Snakemake ships to remote jobs; a TSV would
    not be there. JSON is YAML, so no YAML writer is needed.
    """
    key, table = TABLES[workflow]
    config: dict[str, object] = {
        "reference": os.path.relpath((data_dir / "reference.fa").resolve(), workdir.resolve()),
        key: _table_rows(data_dir / table, workdir),
        "local_inputs": local_inputs,
        **(extra or {}),
    }
    path = workdir / f"{workflow}.config.yaml"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def snakemake_env() -> dict[str, str]:
    """The environment Snakemake runs in: this interpreter's bin first on PATH, the repository
    first on PYTHONPATH.

    Snakemake finds executor plugins by listing top-level modules (pkgutil), which does not see
    packages installed in setuptools' editable "finder" mode; the repository on PYTHONPATH makes
    `snakemake_executor_plugin_awsbatch` visible however the project was installed.
    """
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def executor_available() -> bool:
    """True when Snakemake, run as `run_workflow` runs it, can load the awsbatch executor."""
    probe = (
        "from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry as R; "
        "import sys; sys.exit(0 if 'awsbatch' in R().plugins else 1)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=snakemake_env(), capture_output=True, check=False
    )
    return done.returncode == 0


# Seconds between the executor's status checks when running on the local cloud.
LOCAL_STATUS_INTERVAL_SECONDS = 1
# Snakemake's -j with the executor: how many Batch jobs may be submitted at once. The Batch queue
# decides what runs when (the local cloud: as its 2 vCPUs allow), so every ready job is handed
# over at once; with fewer, Snakemake re-checks every waiting job's inputs in S3 each time a slot
# frees (measured: 687 HeadObject calls for the germline run at -j 4, 429 at -j 16).
BATCH_JOBS_IN_FLIGHT = 16


def snakemake_argv(
    workflow: str,
    config: Path,
    executor: bool,
    jobs: int = BATCH_JOBS_IN_FLIGHT,
    cores: int = 2,
    storage_prefix: str = DEFAULT_STORAGE_PREFIX,
) -> list[str]:
    """The Snakemake command line for one workflow, plain (`-c`) or through the executor."""
    argv = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        f"workflows/{workflow}/Snakefile",
        "--configfile",
        config.name,
        "--printshellcmds",
    ]
    if executor:
        argv += [
            "--executor",
            "awsbatch",
            "--awsbatch-local",
            "--default-storage-provider",
            "s3",
            "--default-storage-prefix",
            storage_prefix,
            "-j",
            str(jobs),
            # Polls cost nothing on the local cloud, and this pipeline is a chain of short jobs
            # whose wall time is dominated by the wait for the next status check (Snakemake's
            # default is 10 s); on real AWS keep the default or longer.
            "--seconds-between-status-checks",
            str(LOCAL_STATUS_INTERVAL_SECONDS),
        ]
    else:
        argv += ["-c", str(cores)]
    return argv


def run_workflow(
    workflow: str,
    workdir: Path,
    data_dir: Path,
    executor: bool,
    jobs: int = BATCH_JOBS_IN_FLIGHT,
    cores: int = 2,
    storage_prefix: str = DEFAULT_STORAGE_PREFIX,
    extra_config: Mapping[str, object] | None = None,
    extra_args: Sequence[str] = (),
) -> RunResult:
    """Run one workflow in `workdir` on the data of `data_dir`; Snakemake's output goes to a log.
    `extra_args` are added to Snakemake's command line (e.g. `--groups`).

    Through the executor, inputs are read in place (`local_inputs`): local-cloud jobs run on
    this machine, so they see its files, and the data need not be uploaded first.
    """
    if workflow not in TABLES:
        raise UserError(f"unknown workflow {workflow!r}: choose germline or somatic.")
    if executor and not executor_available():
        raise UserError(
            "the awsbatch executor plugin is not available to Snakemake here: install the "
            "project with `pip install -e .` (scripts/setup.sh does) and retry."
        )
    workdir.mkdir(parents=True, exist_ok=True)
    stage_sources(workdir)
    config = write_config(workflow, workdir, data_dir, local_inputs=executor, extra=extra_config)
    argv = [*snakemake_argv(workflow, config, executor, jobs, cores, storage_prefix), *extra_args]
    log = workdir / f"{workflow}.{'executor' if executor else 'plain'}.log"
    env = snakemake_env()
    start = time.monotonic()
    with log.open("w") as handle:
        done = subprocess.run(
            argv, cwd=workdir, stdout=handle, stderr=subprocess.STDOUT, env=env, check=False
        )
    wall = time.monotonic() - start
    text = log.read_text(errors="replace")
    jobs_run = len(_SUBMITTED.findall(text)) if executor else None
    return RunResult(
        workflow, workdir, done.returncode, wall, log, executor, jobs_run, _run_totals(workdir)
    )


def _run_totals(workdir: Path) -> dict[str, Any] | None:
    """The executor's totals of the run (bytes staged and more), when it wrote them."""
    path = workdir / RUN_TOTALS_PATH
    if not path.exists():
        return None
    totals: dict[str, Any] = json.loads(path.read_text())
    return totals


def result_vcf(workflow: str, workdir: Path, name: str) -> Path:
    """The final VCF of one sample (germline) or pair (somatic) in a run directory."""
    suffix = ".somatic.vcf.gz" if workflow == "somatic" else ".vcf.gz"
    return workdir / "results" / name / f"{name}{suffix}"


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workflows.demo",
        description="Simulate small data, run the germline workflow through the awsbatch "
        "executor on the local cloud, and summarise the result.",
    )
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / "demo-run")
    parser.add_argument("--region-length", type=int, default=200_000)
    parser.add_argument(
        "--scatter", type=int, default=2, help="region chunks per caller (one call each)"
    )
    parser.add_argument("--depth", type=float, default=30.0, help="normal coverage")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--jobs", type=int, default=BATCH_JOBS_IN_FLIGHT, help="Batch jobs in flight"
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="run with plain local Snakemake (-c 2) instead of the executor",
    )
    parser.add_argument("--json", type=Path, help="also write the summary here as JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m workflows.demo`."""
    from workflows.summary import format_summary, germline_summary

    args = _parse_args(argv)
    executor = not args.plain
    if executor and not executor_available():
        print(
            "demo: the awsbatch executor is not available to Snakemake in this environment; "
            "run scripts/setup.sh (it installs the project), or pass --plain to run the "
            "workflow locally.",
            file=sys.stderr,
        )
        return 2
    workdir: Path = args.workdir.resolve()
    if workdir.exists():
        shutil.rmtree(workdir)
    data_dir = workdir / "data"
    print(f"demo: simulating {args.region_length:,} bp at {args.depth:g}x into {data_dir}")
    simulate_data(
        data_dir,
        region_length=args.region_length,
        normal_depth=args.depth,
        seed=args.seed,
        tumor=False,
    )
    how = "snakemake --executor awsbatch --awsbatch-local" if executor else "snakemake -c 2"
    print(f"demo: running the germline workflow with `{how}` (log: {workdir}/germline.*.log)")
    run = run_workflow(
        "germline",
        workdir,
        data_dir,
        executor=executor,
        jobs=args.jobs,
        extra_config={"scatter": args.scatter},
    )
    if not run.ok:
        tail = "\n".join(run.log.read_text(errors="replace").splitlines()[-25:])
        print(f"{tail}\ndemo: the workflow failed (exit {run.returncode}); see {run.log}.")
        return 1
    summary = germline_summary(run, data_dir, sample="normal")
    print(format_summary(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
