"""The threads of Snakemake's running local jobs, as the local cloud counts them (local_jobs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from snakemake_executor_awsbatch.local_jobs import running_local_threads


@dataclass(eq=False)
class FakeJob:
    threads: int
    is_local: bool


@dataclass
class FakeScheduler:
    running: set[Any] = field(default_factory=set)
    _tofinish: list[Any] = field(default_factory=list)
    _toerror: list[Any] = field(default_factory=list)


@dataclass
class FakeWorkflow:
    scheduler: Any = None


def test_only_local_jobs_whose_process_still_runs_are_counted() -> None:
    fastp, index, remote, ended = (
        FakeJob(2, True),
        FakeJob(1, True),
        FakeJob(8, False),
        FakeJob(4, True),
    )
    failed = FakeJob(3, True)
    scheduler = FakeScheduler(
        running={fastp, index, remote, ended, failed}, _tofinish=[ended], _toerror=[failed]
    )
    held = running_local_threads(FakeWorkflow(scheduler))
    assert held() == 3.0
    # It reads the scheduler afresh at every call.
    scheduler.running.discard(fastp)
    assert held() == 1.0


def test_nothing_is_counted_before_the_scheduler_exists_or_without_its_record() -> None:
    workflow = FakeWorkflow()
    held = running_local_threads(workflow)
    assert held() == 0.0
    workflow.scheduler = object()  # a Snakemake whose scheduler keeps no `running` set
    assert held() == 0.0
    workflow.scheduler = FakeScheduler(running={FakeJob(2, True)})
    assert held() == 2.0
