"""Executor logic with a fake submitter: status handling, failure reports, spot fallback,
environment filtering and preflight caching. No cloud, no Snakemake run."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo

from snakemake_executor_awsbatch import executor as executor_module
from snakemake_executor_awsbatch.executor import Executor
from snakemake_executor_awsbatch.jobstate import AttemptState, JobState
from snakemake_executor_awsbatch.run_totals import RunTotals
from snakemake_executor_awsbatch.settings import BatchConfig
from snakemake_executor_awsbatch.taskspec import LaunchSpec, StagingManifest, TaskSpec

RECLAIM = "Host EC2 (instance i-0123) terminated."


class FakeSubmitter:
    """Records calls; answers poll() from a prepared table."""

    def __init__(self, states: dict[str, JobState], log: list[str]) -> None:
        self.states = states
        self.log = log
        self.submitted: list[TaskSpec] = []
        self.polled: list[list[str]] = []
        self.preflighted: list[list[TaskSpec]] = []

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        self.polled.append(list(job_ids))
        return {j: self.states[j] for j in job_ids if j in self.states}

    def fetch_log(self, state: JobState, max_lines: int | None = None) -> list[str]:
        return list(self.log)

    def fetch_task_log(self, spec: TaskSpec, max_lines: int | None = None) -> list[str]:
        return ["from s3"]

    def submit(self, spec: TaskSpec) -> str:
        self.submitted.append(spec)
        return f"resubmitted-{len(self.submitted)}"

    def preflight(self, specs: Sequence[TaskSpec]) -> None:
        self.preflighted.append(list(specs))

    def fetch_report(self, spec: TaskSpec) -> dict[str, object] | None:
        return {"bytes_in": 100, "bytes_out": 7, "files_in": 1, "files_out": 1}


class FakeJob:
    jobid = 3
    name = "align"

    def __init__(self) -> None:
        self.errors: list[tuple[str | None, dict[str, Any]]] = []

    def log_error(self, msg: str | None = None, **kwargs: Any) -> None:
        self.errors.append((msg, kwargs))


class _NoLimit:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


def _spec(queue: str = "spot-q") -> TaskSpec:
    launch = LaunchSpec(staging=StagingManifest(prefix="s3://b/p/t"), shell="true")
    return TaskSpec(name="smk-align-3", image="img:1", launch=launch, queue=queue)


def _executor(submitter: FakeSubmitter, **config: Any) -> tuple[Executor, SimpleNamespace]:
    ex = Executor.__new__(Executor)
    done = SimpleNamespace(finished=[], failed=[])
    ex.workflow = SimpleNamespace(
        remote_execution_settings=SimpleNamespace(seconds_between_status_checks=10),
        scheduler=SimpleNamespace(
            finish_callback=done.finished.append, error_callback=done.failed.append
        ),
    )
    ex.config = BatchConfig(queue="spot-q", image="img:1", **config)
    ex.submitter = submitter  # type: ignore[assignment]
    ex.logger = SimpleNamespace(info=lambda *_: None, warning=lambda *_: None)
    ex.status_rate_limiter = _NoLimit()
    ex._next_seconds_between_status_checks = None
    ex._checked = set()
    ex._dropped_env = set()
    ex._explained_rules = set()
    ex._direct_jobs = set()
    ex.totals = RunTotals()
    ex.wait = True
    return ex, done


def _check(ex: Executor, infos: list[SubmittedJobInfo]) -> list[SubmittedJobInfo]:
    async def collect() -> list[SubmittedJobInfo]:
        return [info async for info in ex.check_active_jobs(infos)]

    return asyncio.run(collect())


def test_one_poll_for_all_jobs_reports_each_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    states = {
        "ok": JobState(job_id="ok", status="SUCCEEDED"),
        "run": JobState(job_id="run", status="RUNNING"),
        "oom": JobState(
            job_id="oom",
            status="FAILED",
            job_name="smk-align-3",
            exit_code=137,
            container_reason="OutOfMemoryError: Container killed due to memory usage",
        ),
    }
    sub = FakeSubmitter(states, [f"line {i}" for i in range(50)])
    ex, done = _executor(sub, log_lines=5)
    jobs = {name: FakeJob() for name in states}
    infos = [SubmittedJobInfo(job=jobs[n], external_jobid=n, aux={"spec": _spec()}) for n in states]
    still = _check(ex, infos)
    assert sub.polled == [["ok", "run", "oom"]]
    assert [i.external_jobid for i in still] == ["run"]
    assert done.finished == [jobs["ok"]] and done.failed == [jobs["oom"]]
    msg, kwargs = jobs["oom"].errors[0]
    assert msg is not None and "ran out of memory" in msg
    assert "line 45" in msg and "line 49" in msg and "line 44" not in msg
    saved = Path(kwargs["aux_logs"][0])
    assert saved.parent == Path(".snakemake/awsbatch_logs")
    assert saved.read_text().splitlines() == [f"line {i}" for i in range(50)]
    assert ex.next_seconds_between_status_checks == 10  # a job finished: base pace
    assert (ex.totals.jobs, ex.totals.bytes_in, ex.totals.bytes_out) == (1, 100, 7)  # ok's report


def test_idle_polls_back_off_up_to_three_times_the_interval() -> None:
    sub = FakeSubmitter({"run": JobState(job_id="run", status="RUNNING")}, [])
    ex, _ = _executor(sub)
    info = SubmittedJobInfo(job=FakeJob(), external_jobid="run")
    pauses = []
    for _ in range(5):
        _check(ex, [info])
        pauses.append(ex.next_seconds_between_status_checks)
    assert pauses == [15.0, 22.5, 30.0, 30.0, 30.0]
    ex.report_job_submission = lambda info: None  # type: ignore[method-assign]
    ex._submit(FakeJob(), _spec())  # type: ignore[arg-type]
    assert ex.next_seconds_between_status_checks == 10  # a new job: back to the base pace


def test_spot_exhausted_job_moves_to_the_fallback_queue() -> None:
    reclaimed = JobState(
        job_id="j1",
        status="FAILED",
        status_reason=RECLAIM,
        attempts=(AttemptState(None, None, RECLAIM, None),) * 3,
    )
    sub = FakeSubmitter({"j1": reclaimed}, [])
    ex, done = _executor(sub, fallback_queue="ondemand-q")
    job = FakeJob()
    still = _check(ex, [SubmittedJobInfo(job=job, external_jobid="j1", aux={"spec": _spec()})])
    assert [s.queue for s in sub.submitted] == ["ondemand-q"]
    assert [i.external_jobid for i in still] == ["resubmitted-1"]
    assert done.failed == [] and job.errors == []
    # once on the fallback queue, a further failure is reported, not moved again
    sub.states["resubmitted-1"] = reclaimed
    _check(ex, still)
    assert len(sub.submitted) == 1 and done.failed == [job]


def test_job_environment_drops_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    ex, _ = _executor(FakeSubmitter({}, []))
    envvars = {
        "SNAKEMAKE_STORAGE_S3_ENDPOINT_URL": "http://127.0.0.1:9",
        "SNAKEMAKE_STORAGE_S3_SECRET_KEY": "s3cr3t",
        "SNAKEMAKE_STORAGE_S3_ACCESS_KEY": "AKIA",
        "MY_API_TOKEN": "t",
    }
    monkeypatch.setattr(Executor, "envvars", lambda self: envvars)
    assert ex._job_env() == {"SNAKEMAKE_STORAGE_S3_ENDPOINT_URL": "http://127.0.0.1:9"}


def test_preflight_runs_once_per_job_shape() -> None:
    sub = FakeSubmitter({}, [])
    ex, _ = _executor(sub)
    ex._preflight([_spec(), _spec()])
    ex._preflight([_spec(), _spec("other-q")])
    assert [[s.queue for s in batch] for batch in sub.preflighted] == [["spot-q"], ["other-q"]]


def test_module_exports_common_settings_for_snakemake() -> None:
    settings = executor_module.common_settings
    assert settings.non_local_exec and settings.implies_no_shared_fs
    assert settings.pass_envvar_declarations_to_cmd is False
    assert settings.auto_deploy_default_storage_provider is False


def test_sleep_on_the_local_cloud_ends_when_a_job_ends() -> None:
    ex, _ = _executor(FakeSubmitter({}, []))
    calls: list[tuple[int, float]] = []

    def job_end_signal(seen: int, timeout: float) -> int:
        calls.append((seen, timeout))
        return seen + 1 if len(calls) == 3 else seen  # the third wait sees a job end

    ex._job_end_signal = job_end_signal
    ex._ended_seen = 4
    asyncio.run(ex.sleep())
    assert [seen for seen, _ in calls] == [4, 4, 4]
    assert all(0 < timeout <= executor_module.WAKE_CHECK_SECONDS for _, timeout in calls)
    assert ex._ended_seen == 5  # the next pause waits for a later end


def test_sleep_stops_at_once_when_the_run_shuts_down(monkeypatch: pytest.MonkeyPatch) -> None:
    ex, _ = _executor(FakeSubmitter({}, []))  # no job-end signal: AWS polling
    pauses: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:
            ex.wait = False  # what shutdown() does while the status loop sleeps

    monkeypatch.setattr(executor_module.asyncio, "sleep", fake_sleep)
    asyncio.run(ex.sleep())
    # A 10 s interval, but the loop looked at the flag every slice and left after the second.
    assert pauses == [executor_module.WAKE_CHECK_SECONDS] * 2


def test_sleep_sees_a_job_end_signal_set_after_it_began(monkeypatch: pytest.MonkeyPatch) -> None:
    # Snakemake starts the status loop before __post_init__ sets the local cloud's signal: the
    # first pause must take the signal up as soon as it exists, not sleep out its interval.
    ex, _ = _executor(FakeSubmitter({}, []))
    slept: list[float] = []

    def job_end_signal(seen: int, timeout: float) -> int:
        return seen + 1  # a job has ended

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        ex._job_end_signal = job_end_signal  # __post_init__ runs during the first slice
        if len(slept) == 3:
            ex.wait = False  # ends the loop of a sleep that never looks at the signal

    monkeypatch.setattr(executor_module.asyncio, "sleep", fake_sleep)
    asyncio.run(ex.sleep())
    assert slept == [executor_module.WAKE_CHECK_SECONDS]
    assert ex._ended_seen == 1


def test_ending_the_status_wait_frees_a_pause_on_the_local_cloud_at_once(
    local_cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex, _ = _executor(FakeSubmitter({}, []))
    ex.lock = threading.Lock()
    ex._job_end_signal = local_cloud.wait_for_job_end
    ex._ended_seen = local_cloud.wait_for_job_end(0, timeout=0)
    monkeypatch.setattr(executor_module, "active_cloud", lambda: local_cloud)
    # Slices as long as the interval: only the release can end this pause early.
    monkeypatch.setattr(executor_module, "WAKE_CHECK_SECONDS", 10.0)
    status = threading.Thread(target=lambda: asyncio.run(ex.sleep()))
    began = time.monotonic()
    status.start()
    time.sleep(0.2)  # the status loop is inside the cloud's wait
    ex._end_status_wait()
    status.join(timeout=20)
    assert not status.is_alive() and time.monotonic() - began < 5
    assert ex.wait is False
