"""The launcher split in two phases, for the companion layout (a tool image without Python).

`--phase in` runs in the `stage-in` companion container: it reads the task spec, stages inputs
into the task volume shared by the job's containers, and writes there the payload as a /bin/sh
script (`.payload.sh`) and its partial report. The tool's own container (`main`) runs that script
and records the payload's exit code in `.exit-code` (see jobdef.MAIN_COMMAND). `--phase out` runs
in the `stage-out` companion once `main` has stopped: it uploads the outputs when the code is a
success code, always uploads the payload's log files, its log and the report, and exits with the
launcher's usual code, so that Batch's job status and exit code are right.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import sys
import time
from dataclasses import fields
from typing import Any

from snakemake_executor_awsbatch.archives import unpack_archives
from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.instance import instance_metadata
from snakemake_executor_awsbatch.jobdef import COMPANION_DIR, EXIT_CODE_FILE, PAYLOAD_SCRIPT
from snakemake_executor_awsbatch.jobstate import (
    EXIT_SPEC_UNREADABLE,
    EXIT_STAGE_IN_FAILED,
)
from snakemake_executor_awsbatch.launcher import (
    _TRANSFER_ERRORS,
    Report,
    _add,
    _finish,
    settle,
)
from snakemake_executor_awsbatch.s3uri import parse_s3_uri
from snakemake_executor_awsbatch.staging import S3Stager, StagingSettings, s3_client
from snakemake_executor_awsbatch.taskspec import LaunchSpec

log = logging.getLogger("awsbatch.launcher")

LOG_FILE = ".log.txt"
REPORT_IN_FILE = ".report-in.json"
# The code stage-out reports when `main` recorded none (it could not start /bin/sh, or died
# before the wrapper wrote the file): the shell's "command not found" code.
EXIT_NO_RECORDED_CODE = 127
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def workdir_of(spec: LaunchSpec, shared: str) -> str:
    """The payload's working directory on the shared volume."""
    return spec.workdir or os.path.join(shared, "work")


def payload_script(spec: LaunchSpec, workdir: str, log_path: str) -> str:
    """The /bin/sh script `main` runs: cd, environment, redirections, then exec the payload."""
    for name in spec.env:
        if not _ENV_NAME.fullmatch(name):
            raise UserError(
                f"environment variable name {name!r} is not a shell name, which a companion-"
                "layout job needs; use letters, digits and underscores only."
            )
    q = shlex.quote
    log_q = q(log_path)
    redirect = [f"< {q(spec.stdin)}" if spec.stdin else "< /dev/null"]
    redirect.append(f"> {q(spec.stdout)}" if spec.stdout else f">> {log_q}")
    if spec.stderr:
        redirect.append(f"2> {q(spec.stderr)}")
    elif spec.stdout:
        redirect.append(f"2>> {log_q}")
    else:
        redirect.append("2>&1")
    redirs = " ".join(redirect)
    lines = ["# written by the stage-in companion container", f"cd {q(workdir)} || exit 126"]
    lines += [f"export {name}={q(value)}" for name, value in sorted(spec.env.items())]
    if spec.command:
        lines.append(f"exec {' '.join(q(a) for a in spec.command)} {redirs}")
    elif spec.shell is not None:
        # The launcher runs scripts with bash when it exists; many tool images have only sh.
        body = q(spec.shell)
        lines.append("if command -v bash >/dev/null 2>&1; then")
        lines.append(f"  exec bash -c {body} {redirs}")
        lines.append("fi")
        lines.append(f"exec /bin/sh -c {body} {redirs}")
    else:
        raise UserError("the task spec has neither a command nor a shell script; give one.")
    return "\n".join(lines) + "\n"


def _read_spec(client: Any, spec_uri: str) -> LaunchSpec:
    bucket, key = parse_s3_uri(spec_uri)
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return LaunchSpec.from_json(body.decode())


def _spec_or_report(client: Any, spec_uri: str, report: Report) -> LaunchSpec | None:
    """The spec, or None after uploading a `spec_unreadable` report."""
    try:
        return _read_spec(client, spec_uri)
    except (*_TRANSFER_ERRORS, ValueError, KeyError) as error:
        report.status, report.exit_code = "spec_unreadable", EXIT_SPEC_UNREADABLE
        report.error = f"cannot read the task spec {spec_uri}: {error}"
        log.error("%s", report.error)
        prefix = spec_uri.rsplit("/", 1)[0]
        _finish(client, report, f"{prefix}/report.json", None, None)
        return None


def _new_report() -> Report:
    return Report(
        batch_job_id=os.environ.get("AWS_BATCH_JOB_ID"),
        batch_attempt=os.environ.get("AWS_BATCH_JOB_ATTEMPT"),
    )


def stage_in(spec_uri: str, client: Any | None = None, shared: str = COMPANION_DIR) -> int:
    """Phase `in`: stage inputs into the shared volume and write the payload script."""
    client = client or s3_client()
    report = _new_report()
    spec = _spec_or_report(client, spec_uri, report)
    if spec is None:
        return EXIT_SPEC_UNREADABLE
    manifest = spec.staging
    log_path = os.path.join(shared, LOG_FILE)
    workdir = workdir_of(spec, shared)
    report.instance = instance_metadata()
    start = time.monotonic()
    try:
        # A retried attempt gets a fresh task volume, so nothing here is left from an earlier one.
        os.makedirs(workdir, exist_ok=True)
        with open(log_path, "wb"):
            pass
        with S3Stager(client, StagingSettings.from_manifest(manifest)) as stager:
            _add(report, stager.stage_in(manifest.inputs, workdir), "in")
            _add(report, unpack_archives(stager, spec.archives, workdir), "in")
        script = payload_script(spec, workdir, log_path)
    except _TRANSFER_ERRORS as error:
        report.status, report.exit_code = "stage_in_failed", EXIT_STAGE_IN_FAILED
        report.error = f"staging inputs failed: {error}"
        log.error("%s", report.error)
        _finish(client, report, manifest.report_uri, manifest.log_uri, log_path)
        return EXIT_STAGE_IN_FAILED
    report.stage_in_seconds = time.monotonic() - start
    report.status = "staged_in"
    with open(os.path.join(shared, REPORT_IN_FILE), "w", encoding="utf-8") as handle:
        handle.write(report.to_json())
    # Written last: its modification time marks the end of stage-in for the payload's timing.
    with open(os.path.join(shared, PAYLOAD_SCRIPT), "w", encoding="utf-8") as handle:
        handle.write(script)
    return 0


def _load_report(shared: str) -> Report:
    """Stage-in's partial report (a fresh one if stage-in left none)."""
    path = os.path.join(shared, REPORT_IN_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except (OSError, ValueError):
        return _new_report()
    known = {f.name for f in fields(Report)}
    return Report(**{k: v for k, v in raw.items() if k in known})


def _recorded_code(shared: str) -> tuple[int | None, float]:
    """The payload's exit code as `main` recorded it, and the payload's approximate duration."""
    code_path = os.path.join(shared, EXIT_CODE_FILE)
    try:
        with open(code_path, encoding="utf-8") as handle:
            code = int(handle.read().strip())
        ended = os.stat(code_path).st_mtime
        began = os.stat(os.path.join(shared, PAYLOAD_SCRIPT)).st_mtime
    except (OSError, ValueError):
        return None, 0.0
    return code, max(0.0, ended - began)


def _echo_log(log_path: str) -> None:
    """Copy the payload's log to stdout, so CloudWatch has it in stage-out's stream."""
    try:
        with open(log_path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
    except OSError as error:
        log.error("cannot read the payload's log %s: %s", log_path, error)


def stage_out(spec_uri: str, client: Any | None = None, shared: str = COMPANION_DIR) -> int:
    """Phase `out`: judge the recorded exit code, upload outputs, logs and the report."""
    client = client or s3_client()
    report = _load_report(shared)
    spec = _spec_or_report(client, spec_uri, report)
    if spec is None:
        return EXIT_SPEC_UNREADABLE
    manifest = spec.staging
    log_path = os.path.join(shared, LOG_FILE)
    if not os.path.exists(log_path):
        open(log_path, "wb").close()
    code, seconds = _recorded_code(shared)
    report.payload_seconds = seconds
    report.payload_exit_code = code
    _echo_log(log_path)
    if code is None:
        report.status, report.exit_code = "payload_not_run", EXIT_NO_RECORDED_CODE
        report.error = (
            f"the tool container recorded no exit code in {EXIT_CODE_FILE}; check that its image "
            "has /bin/sh and that it mounts the shared volume"
        )
        log.error("%s", report.error)
        _finish(client, report, manifest.report_uri, manifest.log_uri, log_path)
        return report.exit_code
    workdir = workdir_of(spec, shared)
    with S3Stager(client, StagingSettings.from_manifest(manifest)) as stager:
        settle(stager, spec, workdir, code, report)
    _finish(client, report, manifest.report_uri, manifest.log_uri, log_path)
    return report.exit_code


def run_phase(phase: str, spec_uri: str) -> int:
    """Run phase `in` or `out` against the shared volume at its usual path."""
    return stage_in(spec_uri) if phase == "in" else stage_out(spec_uri)
