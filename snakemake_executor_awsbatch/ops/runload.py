"""Read a run from S3 (and DescribeJobs) into a `RunReport`.

What a run is: an S3 prefix with one task prefix per Batch job below it. A task prefix is any
prefix holding a `spec.json` (written by the submitter before the job is submitted); it may also
hold the launcher's `report.json` and `log.txt`. This covers both front-ends:

- Snakemake: `<default-storage-prefix>/.awsbatch/<run-id>/<rule>-<jobid>-<hex8>/`
- CWL:       `<s3-root>/runs/<run-id>/<step>-<hex8>/`

Files below a task prefix (a CWL step's `outdir/`) are never taken for tasks. The Batch job id
comes from, in order: an optional `awsbatch-run.json` manifest at the run prefix
(`{"tasks": {"<task dir>": {"job_id": "...", "rule": "..."}}}`), an optional `job.json`
(`{"job_id": "..."}`) in the task prefix, or report.json's `batch_job_id` (absent when the
launcher never ran, e.g. the image could not be pulled). The rule or step name
comes from the manifest, else the job's `snakemake-rule` tag, else the task directory's name
without its unique suffix. Anything missing is reported as a note, never guessed silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.ops.report import AttemptRecord, RunReport, TaskRecord
from snakemake_executor_awsbatch.s3uri import parse_s3_uri

MANIFEST = "awsbatch-run.json"
FETCH_THREADS = 16
TASK_FILES = ("spec.json", "report.json", "log.txt")
_SUFFIX = re.compile(r"(-\d+)?-[0-9a-f]{8}$")

Describe = Callable[[Sequence[str]], list[dict[str, Any]]]


def rule_from_dir(name: str) -> str:
    """'bwa_map-12-0a1b2c3d' -> 'bwa_map' (the rule/step part of a task directory name)."""
    return _SUFFIX.sub("", name) or name


def _list_keys(s3: Any, bucket: str, prefix: str) -> dict[str, float]:
    """Keys under a prefix with their last-modified times (epoch seconds)."""
    keys: dict[str, float] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            keys[obj["Key"]] = obj["LastModified"].timestamp()
    return keys


def pick_run(dirs: Sequence[str], newest: Mapping[str, float]) -> tuple[str, list[str]]:
    """When the prefix holds several runs, the newest run's directory and the others' names.

    `dirs` are task prefixes relative to the given prefix; tasks of one run share a parent.
    """
    runs: dict[str, float] = {}
    for d in dirs:
        parent = d.rpartition("/")[0]
        runs[parent] = max(runs.get(parent, 0.0), newest.get(d, 0.0))
    chosen = max(runs, key=lambda r: (runs[r], r))
    return chosen, sorted(r for r in runs if r != chosen)


def _get_json(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    try:
        loaded = json.loads(body)
    except ValueError:
        return None
    return loaded if isinstance(loaded, dict) else None


def task_prefixes(keys: Sequence[str], prefix: str) -> list[str]:
    """Task prefixes (relative to the run prefix) in listing order; nested ones are dropped."""
    found: list[str] = []
    for key in keys:
        parent, _, base = key.rpartition("/")
        if base == "spec.json" and parent.startswith(prefix.rstrip("/")):
            found.append(parent[len(prefix) :].strip("/"))
    found = sorted(set(found))
    return [p for p in found if not any(p.startswith(o + "/") for o in found if o != p)]


def load_run(s3: Any, run_uri: str, describe: Describe | None = None) -> RunReport:
    """The run at `run_uri`, with DescribeJobs details when `describe` is given."""
    bucket, key = parse_s3_uri(run_uri)
    prefix = key.rstrip("/") + "/" if key else ""
    try:
        keys = _list_keys(s3, bucket, prefix)
    except ClientError as exc:
        raise UserError(
            f"Cannot list {run_uri} ({exc.response.get('Error', {}).get('Code')}): check the run "
            "URI and that these credentials may list the bucket."
        ) from exc
    dirs = task_prefixes(list(keys), prefix)
    notes: list[str] = []
    if dirs:
        newest = {d: keys.get(f"{prefix}{d}/spec.json", 0.0) for d in dirs}
        run_dir, others = pick_run(dirs, newest)
        if others:
            # Several runs below the prefix: report the newest, as if its prefix had been given.
            prefix = f"{prefix}{run_dir}/"
            run_uri = f"s3://{bucket}/{prefix.rstrip('/')}"
            dirs = [d[len(run_dir) + 1 :] for d in dirs if d.rpartition("/")[0] == run_dir]
            notes.append(f"{len(others) + 1} runs under the prefix; this is the newest")
    if not dirs:
        raise UserError(
            f"No tasks (spec.json files) under {run_uri}: pass the run prefix, e.g. "
            "s3://bucket/prefix/.awsbatch/<run-id> (Snakemake) or s3://bucket/root/runs/<run-id> "
            "(CWL)."
        )
    manifest = _get_json(s3, bucket, prefix + MANIFEST) or {}
    entries: Mapping[str, Any] = manifest.get("tasks", {}) if isinstance(manifest, dict) else {}

    def fetch(name: str) -> dict[str, dict[str, Any] | None]:
        # One GET per task: in parallel, as a run can hold thousands of tasks.
        wanted = [d for d in dirs if f"{prefix}{d}/{name}" in keys]
        with ThreadPoolExecutor(FETCH_THREADS) as pool:
            got = pool.map(lambda d: _get_json(s3, bucket, f"{prefix}{d}/{name}"), wanted)
            found = dict(zip(wanted, got, strict=True))
        return {d: found.get(d) for d in dirs}

    reports = fetch("report.json")
    job_files = fetch("job.json")
    job_ids = {
        d: str(
            (entries.get(d) or {}).get("job_id")
            or (job_files[d] or {}).get("job_id")
            or (reports[d] or {}).get("batch_job_id")
            or ""
        )
        for d in dirs
    }
    described: dict[str, dict[str, Any]] = {}
    wanted = sorted({j for j in job_ids.values() if j})
    if describe is not None and wanted:
        described = {j["jobId"]: j for j in describe(wanted)}
        gone = [j for j in wanted if j not in described]
        if gone:
            notes.append(
                f"{len(gone)} job(s) no longer known to DescribeJobs (Batch keeps finished jobs "
                "for about 7 days); their times come from the launcher's report"
            )
    tasks = []
    for d in dirs:
        report = reports[d]
        if report is None:
            notes.append(f"{d}: no report.json (job not finished, or the launcher never ran)")
        job = described.get(job_ids[d])
        entry = entries.get(d) or {}
        if job is None and job_ids[d]:
            job = {"jobId": job_ids[d]}  # known id, but DescribeJobs not asked or forgot it
        tasks.append(_task(f"s3://{bucket}/{prefix}{d}", d, entry, report, job))
    if not any(t.instance_type for t in tasks):
        notes.append("instance types unknown (no EC2 metadata in the reports): priced as m6i")
    tasks.sort(key=_order)
    return RunReport(run_uri=run_uri, tasks=tuple(tasks), notes=tuple(notes))


def _order(task: TaskRecord) -> tuple[bool, float, str]:
    # Tasks with no known time (never ran) go last.
    when = task.created or _first_start(task)
    return (when is None, when or 0.0, task.prefix)


def _first_start(task: TaskRecord) -> float | None:
    starts = [a.started for a in task.attempts if a.started is not None]
    return min(starts) if starts else None


def _seconds(ms: object) -> float | None:
    return float(ms) / 1000.0 if isinstance(ms, int | float) else None


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _requested(job: Mapping[str, Any]) -> tuple[float | None, int | None]:
    container = job.get("container")
    if container is None:
        tasks = job.get("ecsProperties", {}).get("taskProperties", [])
        containers = [c for t in tasks for c in t.get("containers", [])]
        container = containers[0] if containers else {}
    vcpus = _number(container.get("vcpus"))
    memory = _number(container.get("memory"))
    for req in container.get("resourceRequirements", []):
        if req.get("type") == "VCPU":
            vcpus = float(req["value"])
        elif req.get("type") == "MEMORY":
            memory = float(req["value"])
    return vcpus, int(memory) if memory is not None else None


def _task(
    uri: str,
    name: str,
    entry: Mapping[str, Any],
    report: Mapping[str, Any] | None,
    job: Mapping[str, Any] | None,
) -> TaskRecord:
    report = report or {}
    job = job or {}
    instance = report.get("instance") or {}
    tags = job.get("tags") or {}
    rule = str(entry.get("rule") or tags.get("snakemake-rule") or rule_from_dir(name))
    attempts = tuple(
        AttemptRecord(
            started=_seconds(a.get("startedAt")),
            stopped=_seconds(a.get("stoppedAt")),
            exit_code=a.get("container", {}).get("exitCode"),
            reason=a.get("statusReason") or a.get("container", {}).get("reason"),
        )
        for a in job.get("attempts", [])
    )
    if not attempts and report:
        started = _number(report.get("started_at"))
        wall = _number(report.get("wall_seconds")) or 0.0
        attempts = (
            AttemptRecord(
                started=started,
                stopped=started + wall if started is not None else None,
                exit_code=report.get("exit_code"),
                reason=report.get("error"),
            ),
        )
    vcpus, memory = _requested(job)
    lifecycle = instance.get("lifecycle")
    cpu = (_number(report.get("cpu_user_seconds")) or 0.0) + (
        _number(report.get("cpu_system_seconds")) or 0.0
    )
    return TaskRecord(
        prefix=uri,
        rule=rule,
        job_id=str(job.get("jobId") or report.get("batch_job_id") or "") or None,
        job_name=job.get("jobName"),
        status=str(job.get("status") or _status_from_report(report)),
        status_reason=job.get("statusReason") or report.get("error"),
        exit_code=report.get("exit_code"),
        created=_seconds(job.get("createdAt")),
        attempts=attempts,
        requested_vcpus=vcpus,
        requested_memory_mib=memory,
        peak_memory_mib=_number(report.get("peak_memory_mib")),
        wall_seconds=_number(report.get("wall_seconds")),
        cpu_seconds=cpu if report else None,
        bytes_in=int(report.get("bytes_in") or 0),
        bytes_out=int(report.get("bytes_out") or 0),
        instance_type=instance.get("instance_type"),
        spot=None if lifecycle is None else lifecycle == "spot",
        fargate="FARGATE" in (job.get("platformCapabilities") or []),
        has_report=bool(report),
    )


def _status_from_report(report: Mapping[str, Any]) -> str:
    if not report:
        return "UNKNOWN"
    return "SUCCEEDED" if report.get("exit_code") == 0 else "FAILED"
