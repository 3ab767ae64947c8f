"""A synchronous stand-in for the Batch submitter that runs each LaunchSpec on this host.

It does what the in-job launcher does (stage inputs from S3, run the shell payload in the
working directory with the spec's env and stdio, push the output directory back, write a
report) so the runner's job class can be tested without a Batch engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cwl_runner.s3store import S3Store, parse_s3_uri
from snakemake_executor_awsbatch.taskspec import TaskSpec


@dataclass
class InlineState:
    """A finished job, shaped like the core's JobState."""

    job_id: str
    status: str
    exit_code: int | None
    status_reason: str | None = None

    @property
    def is_finished(self) -> bool:
        """Always finished: jobs run at submission."""
        return True

    @property
    def is_failed(self) -> bool:
        """True if the payload's code was not a success code."""
        return self.status == "FAILED"

    def explain(self) -> str:
        """Status and reason."""
        return f"{self.status}: {self.status_reason}"


class InlineBackend:
    """Runs every submitted spec at once, recording what was submitted."""

    def __init__(self, store: S3Store) -> None:
        """Stage through `store`."""
        self.store = store
        self.submitted: list[TaskSpec] = []
        self.preflighted: list[TaskSpec] = []
        self.states: dict[str, InlineState] = {}

    def preflight(self, specs: Sequence[TaskSpec]) -> None:
        """Record the specs."""
        self.preflighted.extend(specs)

    def submit(self, spec: TaskSpec) -> str:
        """Run the spec now."""
        self.submitted.append(spec)
        launch = spec.launch
        for staged in launch.staging.inputs:
            if staged.is_directory:
                self.store.download_tree(staged.s3_uri, staged.path)
            else:
                self.store.download_file(staged.s3_uri, staged.path)
        workdir = launch.workdir or "."
        os.makedirs(workdir, exist_ok=True)

        def rel(path: str | None, mode: str) -> Any:
            if path is None:
                return None
            return open(os.path.join(workdir, path), mode)

        stdin, stdout, stderr = rel(launch.stdin, "rb"), rel(launch.stdout, "wb"), None
        stderr = rel(launch.stderr, "wb")
        try:
            proc = subprocess.run(
                ["bash", "-c", launch.shell or ""],
                cwd=workdir,
                env={**os.environ, **launch.env},
                stdin=stdin or subprocess.DEVNULL,
                # Like the launcher, never let the payload write to the controller's stdout.
                stdout=stdout or sys.stderr,
                stderr=stderr or sys.stderr,
                check=False,
            )
        finally:
            for handle in (stdin, stdout, stderr):
                if handle is not None:
                    handle.close()
        code = proc.returncode
        ok = code in launch.success_codes
        if ok:
            for out in launch.staging.outputs:
                for root, _dirs, files in os.walk(out.path):
                    for name in files:
                        full = os.path.join(root, name)
                        rel_name = os.path.relpath(full, out.path)
                        bucket, key = parse_s3_uri(f"{out.s3_uri}/{rel_name}")
                        self.store.client.upload_file(full, bucket, key)
        bucket, key = parse_s3_uri(launch.staging.report_uri)
        status = "succeeded" if ok else "payload_failed"
        report = json.dumps({"status": status, "payload_exit_code": code}).encode()
        self.store.client.put_object(Bucket=bucket, Key=key, Body=report)
        job_id = uuid.uuid4().hex
        self.states[job_id] = InlineState(job_id, "SUCCEEDED" if ok else "FAILED", code)
        return job_id

    def poll(self, job_ids: Sequence[str]) -> Mapping[str, InlineState]:
        """States of the given jobs."""
        return {job_id: self.states[job_id] for job_id in job_ids}

    def cancel(self, job_ids: Sequence[str], reason: str) -> None:
        """Nothing runs in the background, so nothing to cancel."""

    def fetch_log(self, state: Any, max_lines: int | None = None) -> list[str]:
        """No separate log is kept."""
        return []

    def fetch_report(self, spec: TaskSpec) -> dict[str, Any] | None:
        """The report written at submission."""
        data = self.store.read_bytes(spec.launch.staging.report_uri)
        loaded: dict[str, Any] = json.loads(data)
        return loaded
