"""Waiting for a Batch job to finish, for the end-to-end tests on the local cloud."""

from __future__ import annotations

import time

from snakemake_executor_awsbatch.jobstate import JobState
from snakemake_executor_awsbatch.submitter import BatchSubmitter


def wait_finished(sub: BatchSubmitter, job_id: str, timeout: float = 120) -> JobState:
    """Poll until the job has finished; fail the test when it takes longer than `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        state = sub.poll([job_id])[job_id]
        if state.is_finished:
            return state
        assert time.monotonic() < deadline, f"job still {state.status}"
        time.sleep(0.3)
