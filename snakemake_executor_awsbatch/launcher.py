"""The command every Batch job runs: `python -m snakemake_executor_awsbatch.launcher s3://.../spec.json`.

With `--phase in` or `--phase out` it runs only the staging half of a companion-layout job (a tool
image without Python, see launch_phases.py); without it, the whole task as described here.

It reads its LaunchSpec from S3, stages the inputs in, runs the payload (argv or bash script) with
its redirections and environment, stages the outputs out, and uploads the payload's log (also
streamed to stdout, so CloudWatch has it) and a JSON report, also when the payload fails. The
launcher exits with the payload's code (0 for a code the spec lists as success); its own failures
use the distinct codes 97 (spec unreadable), 98 (stage-in failed) and 99 (stage-out failed).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError

from snakemake_executor_awsbatch.archives import unpack_archives
from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.instance import instance_metadata
from snakemake_executor_awsbatch.jobstate import (
    EXIT_SPEC_UNREADABLE,
    EXIT_STAGE_IN_FAILED,
    EXIT_STAGE_OUT_FAILED,
)
from snakemake_executor_awsbatch.s3uri import parse_s3_uri
from snakemake_executor_awsbatch.secrets import RedactingFilter
from snakemake_executor_awsbatch.staging import (
    S3Stager,
    StagingError,
    StagingSettings,
    TransferStats,
    prepare_s3_client,
    s3_client,
    take_prepared_s3_client,
)
from snakemake_executor_awsbatch.taskspec import LaunchSpec, StagedFile

log = logging.getLogger("awsbatch.launcher")
_TRANSFER_ERRORS = (StagingError, ClientError, BotoCoreError, UserError, OSError)


@dataclass
class Report:
    """The launcher's JSON report; mutable while the job runs, written once at the end."""

    status: str = "started"
    exit_code: int = 0
    payload_exit_code: int | None = None
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    wall_seconds: float = 0.0
    payload_seconds: float = 0.0
    stage_in_seconds: float = 0.0
    stage_out_seconds: float = 0.0
    cpu_user_seconds: float = 0.0
    cpu_system_seconds: float = 0.0
    peak_memory_mib: float = 0.0
    bytes_in: int = 0
    bytes_out: int = 0
    files_in: int = 0
    files_out: int = 0
    unverified_downloads: int = 0
    batch_job_id: str | None = None
    batch_attempt: str | None = None
    instance: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The report as JSON."""
        return json.dumps(self.__dict__, sort_keys=True, indent=1)


def _tee(source: IO[bytes], sinks: Sequence[IO[bytes]]) -> None:
    for line in iter(source.readline, b""):
        for sink in sinks:
            sink.write(line)
            sink.flush()
    source.close()


def run_payload(spec: LaunchSpec, workdir: str, log_path: str) -> int:
    """Run the payload in `workdir`, teeing its unredirected output to stdout and the log."""
    if spec.command:
        argv = list(spec.command)
    elif spec.shell is not None:
        argv = [shutil.which("bash") or "/bin/sh", "-c", spec.shell]
    else:
        raise UserError("the task spec has neither a command nor a shell script; give one.")
    env = {**os.environ, **spec.env}

    def path(p: str) -> str:
        return os.path.join(workdir, p)

    with ExitStack() as files:
        log_file = files.enter_context(open(log_path, "ab"))
        stdin: Any = subprocess.DEVNULL
        if spec.stdin:
            stdin = files.enter_context(open(path(spec.stdin), "rb"))
        stdout: Any = subprocess.PIPE
        if spec.stdout:
            stdout = files.enter_context(open(path(spec.stdout), "wb"))
        if spec.stderr:
            stderr: Any = files.enter_context(open(path(spec.stderr), "wb"))
        else:
            stderr = subprocess.STDOUT if stdout is subprocess.PIPE else subprocess.PIPE
        try:
            proc = subprocess.Popen(
                argv, cwd=workdir, env=env, stdin=stdin, stdout=stdout, stderr=stderr
            )
        except OSError as error:
            message = f"launcher: cannot start {argv[0]}: {error}\n".encode()
            log_file.write(message)
            sys.stdout.buffer.write(message)
            return 127
        previous = signal.signal(signal.SIGTERM, lambda sig, _f: proc.send_signal(sig))
        try:
            pipe = proc.stdout or proc.stderr
            if pipe is not None:
                _tee(pipe, [sys.stdout.buffer, log_file])
            code = proc.wait()
        finally:
            signal.signal(signal.SIGTERM, previous)
    return 128 - code if code < 0 else code


def _add(report: Report, stats: TransferStats, direction: str) -> None:
    if direction == "in":
        report.bytes_in += stats.bytes
        report.files_in += stats.files
        report.unverified_downloads += stats.unverified
    else:
        report.bytes_out += stats.bytes
        report.files_out += stats.files


def _put(client: Any, uri: str, body: bytes, content_type: str) -> None:
    bucket, key = parse_s3_uri(uri)
    client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def launch(spec_uri: str, client: Any | None = None) -> int:
    """Run one task end to end; returns the exit code the process should exit with."""
    client = client or take_prepared_s3_client() or s3_client()
    report = Report(
        batch_job_id=os.environ.get("AWS_BATCH_JOB_ID"),
        batch_attempt=os.environ.get("AWS_BATCH_JOB_ATTEMPT"),
    )
    prefix = spec_uri.rsplit("/", 1)[0]
    try:
        bucket, key = parse_s3_uri(spec_uri)
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        spec = LaunchSpec.from_json(body.decode())
    except (*_TRANSFER_ERRORS, ValueError, KeyError) as error:
        report.status, report.exit_code = "spec_unreadable", EXIT_SPEC_UNREADABLE
        report.error = f"cannot read the task spec {spec_uri}: {error}"
        log.error("%s", report.error)
        _finish(client, report, f"{prefix}/report.json", None, None)
        return EXIT_SPEC_UNREADABLE
    fd, log_path = tempfile.mkstemp(prefix="awsbatch-log-")
    os.close(fd)
    workdir = spec.workdir or tempfile.mkdtemp(prefix="awsbatch-work-")
    try:
        os.makedirs(workdir, exist_ok=True)
        report.instance = instance_metadata()
        _run_task(client, spec, workdir, log_path, report)
    finally:
        if spec.workdir is None:  # ours: free the disk (large BAMs) for the next job
            shutil.rmtree(workdir, ignore_errors=True)
    return report.exit_code


def _run_task(client: Any, spec: LaunchSpec, workdir: str, log_path: str, report: Report) -> None:
    """Stage in, run, stage out, then upload the log and report (whatever failed)."""
    manifest = spec.staging
    with S3Stager(client, StagingSettings.from_manifest(manifest)) as stager:
        try:
            start = time.monotonic()
            _add(report, stager.stage_in(manifest.inputs, workdir), "in")
            _add(report, unpack_archives(stager, spec.archives, workdir), "in")
            report.stage_in_seconds = time.monotonic() - start
        except _TRANSFER_ERRORS as error:
            report.status, report.exit_code = "stage_in_failed", EXIT_STAGE_IN_FAILED
            report.error = f"staging inputs failed: {error}"
            log.error("%s", report.error)
            _finish(client, report, manifest.report_uri, manifest.log_uri, log_path)
            return
        start = time.monotonic()
        code = run_payload(spec, workdir, log_path)
        report.payload_seconds = time.monotonic() - start
        report.payload_exit_code = code
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        report.cpu_user_seconds, report.cpu_system_seconds = usage.ru_utime, usage.ru_stime
        report.peak_memory_mib = usage.ru_maxrss / 1024  # Linux reports KiB
        settle(stager, spec, workdir, code, report)
    _finish(client, report, manifest.report_uri, manifest.log_uri, log_path)


def settle(stager: S3Stager, spec: LaunchSpec, workdir: str, code: int, report: Report) -> None:
    """Record the payload's outcome, push its log files, and its outputs when it succeeded.

    The log files go up beside the outputs (in a second thread), not before them: on the way to
    the next job, a job's uploads are a row of small requests each waiting on the last.
    """
    succeeded = code in spec.success_codes
    report.exit_code = 0 if succeeded else code
    report.status = "succeeded" if succeeded else "payload_failed"
    with ThreadPoolExecutor(1, thread_name_prefix="launcher-logs") as side:
        logs_pushed = side.submit(_push_logs, stager, spec.staging.logs, workdir)
        if succeeded:
            _stage_out(stager, spec.staging.outputs, workdir, report)
        _add(report, logs_pushed.result(), "out")


def _stage_out(
    stager: S3Stager, outputs: Sequence[StagedFile], workdir: str, report: Report
) -> None:
    """Push the outputs wave by wave; a failure marks the report (stage_out_failed)."""
    try:
        start = time.monotonic()
        for wave in sorted({f.wave for f in outputs}):
            _add(report, stager.stage_out([f for f in outputs if f.wave == wave], workdir), "out")
        report.stage_out_seconds = time.monotonic() - start
    except _TRANSFER_ERRORS as error:
        report.status, report.exit_code = "stage_out_failed", EXIT_STAGE_OUT_FAILED
        report.error = f"staging outputs failed: {error}"
        log.error("%s", report.error)


def _push_logs(stager: S3Stager, logs: Sequence[StagedFile], workdir: str) -> TransferStats:
    """Upload the payload's log files whatever its exit code; a failure here is only logged,
    because the payload's own result matters more than its log files."""
    if not logs:
        return TransferStats()
    try:
        return stager.stage_out(logs, workdir)
    except _TRANSFER_ERRORS as error:
        log.error("could not upload the payload's log files: %s", error)
        return TransferStats()


def _finish(
    client: Any, report: Report, report_uri: str, log_uri: str | None, log_path: str | None
) -> None:
    """Upload the log and the report; a failure here is logged, never masks the exit code."""
    report.wall_seconds = time.time() - report.started_at
    if report.error and log_path:
        with open(log_path, "ab") as handle:
            handle.write(f"launcher: {report.error}\n".encode())
    try:
        if log_uri and log_path:
            with open(log_path, "rb") as handle:
                _put(client, log_uri, handle.read(), "text/plain")
        _put(client, report_uri, report.to_json().encode(), "application/json")
    except _TRANSFER_ERRORS as error:
        log.error("could not upload the log/report to S3: %s", error)
    finally:
        if log_path and os.path.exists(log_path):
            os.unlink(log_path)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: `[--phase in|out] s3://.../spec.json` (no phase: the whole task)."""
    args = list(sys.argv[1:] if argv is None else argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], format="launcher: %(message)s")
    phase = "all"
    if len(args) == 3 and args[0] == "--phase":
        phase, args = args[1], args[2:]
    if phase not in ("all", "in", "out") or len(args) != 1 or not args[0].startswith("s3://"):
        log.error(
            "usage: python -m snakemake_executor_awsbatch.launcher [--phase in|out] "
            "s3://bucket/spec.json"
        )
        return EXIT_SPEC_UNREADABLE
    if phase == "all":
        return launch(args[0])
    # Imported here: launch_phases builds on this module's functions.
    from snakemake_executor_awsbatch.launch_phases import run_phase

    return run_phase(phase, args[0])


def warm_up() -> None:
    """Called by a warm interpreter (warm_interpreter) before its job arrives: make the job's
    S3 client ahead, which parses the S3 models too (staging.prepare_s3_client)."""
    prepare_s3_client()


def exit_now(code: int) -> None:
    """Flush the log streams and end the process without the interpreter's teardown.

    By now every transfer has finished and the report is in S3; tearing down botocore's many
    modules and objects would add about 0.1 s to every job, on the path to its next job.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
