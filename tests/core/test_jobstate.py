"""JobState from DescribeJobs entries and its one-sentence explanations."""

from __future__ import annotations

from typing import Any

import pytest

from snakemake_executor_awsbatch.jobstate import JobState, from_description, missing


def _desc(status: str, why: str | None = None, **container: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "jobId": "id-1",
        "jobName": "bwa",
        "status": status,
        "container": container,
    }
    if why:
        job["statusReason"] = why
    return job


def test_from_description_reads_attempts_and_log_stream() -> None:
    job = _desc("FAILED", "Host EC2 (instance i-0abc) terminated.", exitCode=None)
    job["attempts"] = [
        {
            "container": {"logStreamName": "jd/default/a1", "reason": None},
            "statusReason": "Host EC2 (instance i-0aaa) terminated.",
            "startedAt": 10,
            "stoppedAt": 20,
        },
        {
            "container": {"logStreamName": "jd/default/a2"},
            "statusReason": "Host EC2 (instance i-0abc) terminated.",
        },
    ]
    state = from_description(job)
    assert state.is_finished and state.is_failed
    assert len(state.attempts) == 2 and state.spot_reclaims == 2
    assert state.log_stream_name == "jd/default/a2"
    assert state.attempts[0].started_at == 10
    assert "lost its host" in state.explain() and "2 attempt(s)" in state.explain()


@pytest.mark.parametrize(
    ("desc", "words"),
    [
        (
            _desc(
                "FAILED",
                "Essential container in task exited",
                exitCode=137,
                reason="OutOfMemoryError: Container killed due to memory usage",
            ),
            "ran out of memory",
        ),
        (_desc("FAILED", "Job attempt duration exceeded timeout"), "exceeded its runtime limit"),
        (_desc("FAILED", "Dependent Job failed"), "a job it depends on failed"),
        (_desc("FAILED", "Essential container in task exited", exitCode=2), "exit code 2"),
        (
            _desc("FAILED", "Essential container in task exited", exitCode=98),
            "could not stage the inputs",
        ),
        (
            _desc("FAILED", "Task failed to start", reason="CannotPullContainerError: not found"),
            "could not pull its image",
        ),
        (_desc("SUCCEEDED", exitCode=0), "succeeded"),
        (_desc("RUNNABLE"), "is RUNNABLE"),
    ],
)
def test_explain_names_the_batch_reason(desc: dict[str, Any], words: str) -> None:
    text = from_description(desc).explain()
    assert words in text
    assert text.endswith(".") and text.count("\n") == 0


def test_multi_container_jobs_report_the_failed_container() -> None:
    job = {
        "jobId": "id-2",
        "status": "FAILED",
        "ecsProperties": {
            "taskProperties": [
                {
                    "containers": [
                        {"name": "stage", "exitCode": 0, "logStreamName": "s"},
                        {"name": "tool", "exitCode": 5, "logStreamName": "t", "reason": "x"},
                    ]
                }
            ]
        },
    }
    state = from_description(job)
    assert (state.exit_code, state.log_stream_name) == (5, "t")


def test_companion_job_reports_the_essential_container_with_the_payloads_reason() -> None:
    # stage-in and main are not essential; stage-out exits with the payload's code and carries
    # its log, while main holds Batch's out-of-memory reason.
    containers = [
        {"name": "stage-in", "essential": False, "exitCode": 0, "logStreamName": "in"},
        {
            "name": "main",
            "essential": False,
            "exitCode": 137,
            "reason": "OutOfMemoryError: Container killed due to memory usage",
        },
        {"name": "stage-out", "essential": True, "exitCode": 127, "logStreamName": "out"},
    ]
    job = {
        "jobId": "id-4",
        "status": "FAILED",
        "ecsProperties": {"taskProperties": [{"containers": containers}]},
    }
    state = from_description(job)
    assert (state.exit_code, state.log_stream_name) == (127, "out")
    assert "ran out of memory" in state.explain()


def test_missing_job_is_failed_with_a_reason() -> None:
    state = missing("id-9", 300)
    assert state.is_failed and "missing from DescribeJobs for 300s" in state.explain()


def test_stuck_job_explains_the_capacity_reason() -> None:
    state = JobState(
        job_id="id-3",
        status="RUNNABLE",
        status_reason="MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - no CE can run it",
        stuck_seconds=700,
    )
    assert state.is_stuck and not state.is_finished
    assert "RUNNABLE for 700s" in state.explain() and "lower the request" in state.explain()
