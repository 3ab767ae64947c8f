"""Benchmark the Snakemake executor on the local cloud, and the official plugin beside it.

A generated workflow of N small independent jobs (default 500) runs with `--executor awsbatch`
against an embedded local cloud. Batch API calls are counted from the cloud's api-calls.jsonl
(the calls each run made, split by operation), jobs per second from the wall time, and the peak
RSS of the Snakemake process from /proc (VmHWM). Then, unless --skip-official, the same workflow
runs with the official `snakemake-executor-plugin-aws-batch`, installed into a separate temporary
venv and pointed at the same endpoint; if it cannot run there, the JSON says why.

Usage: .venv/bin/python tests/benchmarks/bench_executor.py [--jobs 500] [-j 50] [--skip-official]
       [--official-jobs 100]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from snakemake_executor_awsbatch.localcloud import LocalCloud  # noqa: E402

SNAKEFILE = """
N = {n}
rule all:
    input: expand("out/{{i}}.txt", i=range(N))

rule one:
    output: "out/{{i}}.txt"
    shell: "echo {{wildcards.i}} > {{output}}"
"""


def _calls(path: Path, start: int) -> tuple[list[dict[str, Any]], int]:
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines[start:] if line.strip()], len(lines)


def _peak_rss_mib(pid: int, stop: threading.Event, result: list[float]) -> None:
    # VmHWM is the process's own high-water mark, so the last reading before exit is its peak.
    while not stop.is_set():
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    result.append(int(line.split()[1]) / 1024)
        except OSError:
            return
        stop.wait(0.2)


def run_one(
    label: str, argv: list[str], workdir: Path, env: dict[str, str], cloud: LocalCloud, n: int
) -> dict[str, Any]:
    """Run one Snakemake invocation and measure it."""
    _, before = _calls(cloud.api_calls_path, 0)
    log_path = workdir / f"{label}.log"
    started = time.monotonic()
    with log_path.open("w") as log:
        try:
            proc = subprocess.Popen(
                argv, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        except OSError as err:
            return {"error": f"could not start {argv[0]}: {err}"}
        stop, samples = threading.Event(), []  # type: ignore[var-annotated]
        sampler = threading.Thread(target=_peak_rss_mib, args=(proc.pid, stop, samples))
        sampler.start()
        try:
            code = proc.wait(timeout=3600)
        finally:
            stop.set()
            sampler.join()
            if proc.poll() is None:
                proc.kill()
    wall = time.monotonic() - started
    calls, _ = _calls(cloud.api_calls_path, before)
    batch = [c for c in calls if c.get("service") == "batch"]
    by_op = collections.Counter(str(c.get("operation")) for c in batch)
    figures: dict[str, Any] = {
        "exit_code": code,
        "jobs": n,
        "wall_seconds": round(wall, 1),
        "jobs_per_second": round(n / wall, 3),
        "batch_api_calls": len(batch),
        "api_calls_per_job": round(len(batch) / n, 3),
        "calls_by_operation": dict(sorted(by_op.items())),
        "register_job_definition": by_op.get("RegisterJobDefinition", 0),
        "s3_calls": sum(1 for c in calls if c.get("service") == "s3"),
        "peak_rss_mib": round(max(samples), 1) if samples else None,
    }
    if code != 0:
        figures["error"] = log_path.read_text()[-1500:]
    return figures


def official_venv(root: Path) -> tuple[Path | None, str | None]:
    """A temporary venv with the official plugin, or the reason it could not be made."""
    venv = root / "official-venv"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        subprocess.run(
            [
                str(venv / "bin" / "pip"),
                "install",
                "-q",
                "snakemake",
                "snakemake-executor-plugin-aws-batch",
                "snakemake-storage-plugin-s3",
            ],
            check=True,
            timeout=1200,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as err:
        return None, f"pip install failed: {(err.stderr or '')[-500:]}"
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, f"could not create the venv: {err}"
    return venv, None


def main() -> None:
    """Run the benchmark and print one JSON line last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("-j", "--parallel", type=int, default=50)
    parser.add_argument("--vcpus", type=int, default=8)
    parser.add_argument("--skip-official", action="store_true")
    parser.add_argument(
        "--official-jobs",
        type=int,
        default=None,
        help="jobs in the official plugin's workflow (default: --jobs); it runs Snakemake in "
        "every job, so 500 jobs take hours here; per-job figures stay comparable",
    )
    args = parser.parse_args()
    out: dict[str, Any] = {"benchmark": "bench_executor", "jobs": args.jobs}
    with tempfile.TemporaryDirectory(prefix="bench-executor-") as tmp:
        root = Path(tmp)
        with LocalCloud(vcpus=args.vcpus, memory_mib=args.vcpus * 1024) as cloud:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SNAKEMAKE_"))}
            env.update(cloud.client_env())
            env["PYTHONPATH"] = str(REPO)
            ours_dir = root / "ours"
            ours_dir.mkdir()
            (ours_dir / "Snakefile").write_text(SNAKEFILE.format(n=args.jobs))
            argv = [
                str(Path(sys.executable).with_name("snakemake")),
                "--executor", "awsbatch",
                "--awsbatch-endpoint-url", cloud.endpoint_url,
                "--awsbatch-region", cloud.region,
                "--awsbatch-queue", cloud.queue_name,
                "--awsbatch-image", "localcloud/host:latest",
                "--awsbatch-min-memory-mib", "512",
                "--default-storage-provider", "s3",
                "--default-storage-prefix", "s3://bench-ours/run",
                "--seconds-between-status-checks", "10",
                "-j", str(args.parallel),
            ]  # fmt: skip
            out["ours"] = run_one("ours", argv, ours_dir, env, cloud, args.jobs)
            print(json.dumps({"ours": out["ours"]}, sort_keys=True), flush=True)
            if args.skip_official:
                out["official"] = {"skipped": "--skip-official was given"}
            else:
                out["official"] = run_official(root, cloud, env, args)
    ours, official = out["ours"], out["official"]
    if ours.get("exit_code") == 0 and official.get("exit_code") == 0:
        out["ratios_official_over_ours"] = {
            key: round(official[key] / ours[key], 2) if ours[key] else None
            for key in ("api_calls_per_job", "jobs_per_second", "peak_rss_mib")
            if official.get(key) is not None and ours.get(key) is not None
        }
    print(json.dumps(out, sort_keys=True))


def run_official(
    root: Path, cloud: LocalCloud, env: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    """The same workflow with the official plugin, or why it could not run."""
    venv, why = official_venv(root)
    if venv is None:
        return {"error": why}
    work = root / "official"
    work.mkdir()
    jobs = args.official_jobs or args.jobs
    (work / "Snakefile").write_text(SNAKEFILE.format(n=jobs))
    official_env = dict(env)
    official_env.pop("PYTHONPATH", None)
    argv = [
        str(venv / "bin" / "snakemake"),
        "--executor", "aws-batch",
        "--aws-batch-region", cloud.region,
        "--aws-batch-job-queue", cloud.queue_name,
        "--aws-batch-job-role", f"arn:aws:iam::{cloud.account_id}:role/bench",
        "--container-image", "localcloud/host:latest",
        "--default-storage-provider", "s3",
        "--default-storage-prefix", "s3://bench-official/run",
        "--storage-s3-endpoint-url", cloud.endpoint_url,
        "--seconds-between-status-checks", "10",
        "-j", str(args.parallel),
    ]  # fmt: skip
    return run_one("official", argv, work, official_env, cloud, jobs)


if __name__ == "__main__":
    main()
