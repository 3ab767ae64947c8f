"""The local Batch scheduler: capacity, dependencies, arrays, retries, timeouts, terminate/cancel.

Event-driven: every change (a submit, an attempt's end, a terminate) marks the engine dirty and
wakes one scheduler thread, which moves jobs along SUBMITTED -> PENDING -> RUNNABLE -> STARTING
and hands startable jobs to an `AttemptRunner`. All job state is guarded by one lock.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snakemake_executor_awsbatch.localcloud import jobspec
from snakemake_executor_awsbatch.localcloud.chaos import Chaos
from snakemake_executor_awsbatch.localcloud.logs import LogSink
from snakemake_executor_awsbatch.localcloud.model import (
    FAILED,
    PENDING,
    REASON_ARRAY_CHILD_FAILED,
    REASON_DEPENDENCY_FAILED,
    REASON_ESSENTIAL_EXITED,
    REASON_TIMEOUT,
    REASON_TOO_LARGE,
    RUNNABLE,
    RUNNING,
    STARTING,
    STATUSES,
    SUBMITTED,
    SUCCEEDED,
    TERMINAL,
    Attempt,
    ContainerPlan,
    ContainerResult,
    Job,
    summary_from_detail,
)
from snakemake_executor_awsbatch.localcloud.process import MemoryWatcher
from snakemake_executor_awsbatch.localcloud.retry import retry_action
from snakemake_executor_awsbatch.localcloud.runner import AttemptOutcome, AttemptRunner
from snakemake_executor_awsbatch.localcloud.store import Store
from snakemake_executor_awsbatch.localcloud.warm import WarmPool

log = logging.getLogger(__name__)

REASON_SHUTDOWN = "The local cloud stopped while the job was active"
# How often jobs held back only by the host's other work look again (see `Engine.share_host`).
HOST_RECHECK_SECONDS = 0.02
REASON_START_FAILED = "Task failed to start"


@dataclass(frozen=True)
class Capacity:
    """The host's size, shared by the local compute environments."""

    vcpus: float
    memory_mib: int


def now_ms() -> int:
    """Epoch milliseconds, Batch's timestamp unit."""
    return int(time.time() * 1000)


class Engine:
    """Runs submitted jobs on this host within its capacity, which every queue shares."""

    def __init__(
        self,
        *,
        capacity: Capacity,
        host: jobspec.HostContext,
        work_root: Path,
        store: Store,
        sink: LogSink,
        chaos: Chaos,
        account_id: str,
        region: str,
        warm_launchers: bool = True,
    ) -> None:
        self.capacity = capacity
        self._host = host
        self._work_root = work_root
        self._store = store
        self._sink = sink
        self._chaos = chaos
        self._account_id = account_id
        self._region = region
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._dirty = False
        self._stopped = False
        self._jobs: dict[str, Job] = {}
        self._active: dict[str, Job] = {}
        # Scheduling indexes, so that each event costs work in proportion to what it changes:
        # jobs not yet looked at, jobs waiting on each job id, and the RUNNABLE queue in order.
        self._fresh: list[Job] = []
        self._dependents: dict[str, list[Job]] = {}
        self._finished: list[str] = []
        # How many jobs have ever ended: what `wait_for_job_end` callers compare against.
        self._ended_count = 0
        self._waiters_released = 0
        self._runnable: dict[str, Job] = {}
        self._to_launch: list[AttemptRunner] = []
        self._archive: dict[str, dict[str, Any]] = store.load_jobs()
        self._runners: dict[str, AttemptRunner] = {}
        self._timers: dict[str, list[threading.Timer]] = {}
        self._spot_armed: set[str] = set()
        self._used_vcpus = 0.0
        self._used_memory = 0
        self._host_vcpus: Callable[[], float] | None = None
        self._held_back_by_host = False
        self._watcher = MemoryWatcher()
        self.warm_pool = WarmPool(work_root) if warm_launchers else None
        self._thread = threading.Thread(target=self._loop, name="localcloud-scheduler", daemon=True)
        self._thread.start()

    # ----- queries -------------------------------------------------------------------------

    def lookup(self, job_id: str) -> Job | dict[str, Any] | None:
        """A live job, a finished job's stored record, or None."""
        with self._lock:
            return self._jobs.get(job_id) or self._archive.get(job_id)

    def describe(self, job_ids: Iterable[str]) -> list[dict[str, Any]]:
        """DescribeJobs records of the known ids, in the order asked (unknown ids are skipped)."""
        out = []
        with self._lock:
            for job_id in job_ids:
                job = self._jobs.get(job_id)
                if job is not None:
                    out.append(job.to_detail())
                elif job_id in self._archive:
                    out.append(self._archive[job_id])
        return out

    def summaries(self, queue_arn: str | None = None) -> list[dict[str, Any]]:
        """JobSummary records of every job ever submitted (to one queue if given), oldest first."""
        with self._lock:
            stored = [
                summary_from_detail(d)
                for k, d in self._archive.items()
                if k not in self._jobs and queue_arn in (None, d.get("jobQueue"))
            ]
            live = [
                j.summary() for j in self._jobs.values() if queue_arn in (None, j.queue.queue_arn)
            ]
        return stored + live

    def children_of(self, parent_id: str) -> list[str]:
        """Ids of an array job's children (stored or live)."""
        with self._lock:
            job = self._jobs.get(parent_id)
            if job is not None:
                return list(job.children)
            detail = self._archive.get(parent_id)
            if detail is None or "size" not in detail.get("arrayProperties", {}):
                return []
            size = int(detail["arrayProperties"]["size"])
            return [f"{parent_id}:{i}" for i in range(size)]

    def status_of(self, job_id: str) -> str | None:
        """Current status of a job id, or None when unknown."""
        found = self.lookup(job_id)
        if found is None:
            return None
        return found.status if isinstance(found, Job) else str(found["status"])

    def array_size_of(self, job_id: str) -> int | None:
        """The size of an array job, None for a job that is not an array parent."""
        found = self.lookup(job_id)
        if isinstance(found, Job):
            return found.array_size if found.is_array_parent else None
        if found is not None:
            size = found.get("arrayProperties", {}).get("size")
            return int(size) if size is not None else None
        return None

    def wait_for_job_end(self, seen: int, timeout: float) -> int:
        """Block until more than `seen` jobs have ended (or `timeout` s pass); the count now."""
        deadline = time.monotonic() + timeout
        with self._cond:
            released = self._waiters_released
            while (
                self._ended_count <= seen
                and not self._stopped
                and self._waiters_released == released
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return self._ended_count

    # ----- commands ------------------------------------------------------------------------

    def release_job_end_waiters(self) -> None:
        """Let every `wait_for_job_end` in progress return now (its caller is shutting down)."""
        with self._cond:
            self._waiters_released += 1
            self._cond.notify_all()

    def prewarm_launchers(self) -> None:
        """Start the warm launcher interpreter now, for jobs with the host's environment.

        Otherwise the first launcher job starts it, and waits for its imports (about 0.4 s).
        """
        if self.warm_pool is not None:
            self.warm_pool.prepare(self._host.base_env)

    def share_host(self, held_vcpus: Callable[[], float] | None) -> None:
        """Count `held_vcpus()`, the vCPUs this host's other work holds now, as taken.

        The local cloud runs its jobs on the machine that also runs the workflow engine's own
        local jobs; without this both would plan with every core and together ask for more
        than there are. The function is called from the scheduler thread, under its lock: it
        must be quick and must not call into the cloud.
        """
        with self._cond:
            self._host_vcpus = held_vcpus
            self._wake()

    def submit(self, jobs: list[Job]) -> None:
        """Accept a job (and, for an array, its children, which follow the parent in `jobs`)."""
        with self._cond:
            for job in jobs:
                self._jobs[job.job_id] = job
                self._active[job.job_id] = job
                self._fresh.append(job)
            parent = jobs[0]
            if parent.is_array_parent:
                parent.child_counts = {s: 0 for s in STATUSES}
                parent.child_counts[SUBMITTED] = len(jobs) - 1
            self._wake()

    def terminate(self, job_id: str, reason: str, cancel_only: bool) -> None:
        """TerminateJob (or CancelJob when `cancel_only`: running jobs are then left alone)."""
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None or job.status in TERMINAL:
                return
            targets = [self._jobs[c] for c in job.children] if job.is_array_parent else [job]
            for target in targets:
                if target.status in TERMINAL:
                    continue
                if target.status in (SUBMITTED, PENDING, RUNNABLE):
                    if cancel_only:
                        target.is_cancelled = True
                    else:
                        target.is_terminated = True
                    self._finish(target, FAILED, reason)
                elif not cancel_only:
                    target.is_terminated = True
                    runner = self._runners.get(target.job_id)
                    if runner is not None:
                        runner.stop("terminate", reason)
            if job.is_array_parent:
                if cancel_only:
                    job.is_cancelled = True
                else:
                    job.is_terminated = True
            self._wake()

    def shutdown(self) -> None:
        """Stop every attempt, record active jobs as failed, and stop the scheduler."""
        with self._cond:
            self._stopped = True
            runners = list(self._runners.values())
            # Attempts handed out but not yet started must still run, to see the stop and report.
            unlaunched, self._to_launch = self._to_launch, []
            self._cond.notify_all()
        for runner in runners:
            runner.stop("shutdown", REASON_SHUTDOWN, grace=0.5)
        for runner in unlaunched:
            runner.start()
        deadline = time.monotonic() + 5
        with self._cond:
            while self._runners and time.monotonic() < deadline:
                self._cond.wait(0.1)
            for job in list(self._active.values()):
                if not job.is_array_parent:
                    self._finish(job, FAILED, REASON_SHUTDOWN)
            for job in list(self._active.values()):
                self._finish(job, FAILED, REASON_SHUTDOWN)
            for timers in self._timers.values():
                for timer in timers:
                    timer.cancel()
        self._thread.join(timeout=5)
        self._watcher.stop()
        if self.warm_pool is not None:
            self.warm_pool.stop()

    # ----- scheduling ----------------------------------------------------------------------

    def _wake(self) -> None:
        self._dirty = True
        self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._dirty and not self._stopped:
                    # The host's other work ends without telling us: jobs it holds back
                    # look again shortly.
                    if self._held_back_by_host:
                        if not self._cond.wait(HOST_RECHECK_SECONDS):
                            break
                    else:
                        self._cond.wait()
                if self._stopped:
                    return
                self._dirty = False
                self._pass()
                launch, self._to_launch = self._to_launch, []
            # Threads are started outside the lock, which API calls are waiting for.
            for runner in launch:
                runner.start()

    def _blocking_dependency(self, job: Job) -> tuple[str, str | None]:
        """("ok", None), ("failed", dep) or ("wait", the first unfinished dep)."""
        waiting: str | None = None
        for dep in job.wait_for:
            status = self.status_of(dep)
            if status == FAILED:
                return "failed", dep
            if status != SUCCEEDED and waiting is None:
                waiting = dep
        return ("wait", waiting) if waiting is not None else ("ok", None)

    def _evaluate(self, job: Job) -> None:
        """Move a SUBMITTED or PENDING job on, by the state of its dependencies."""
        if job.status not in (SUBMITTED, PENDING):
            return
        state, dep = self._blocking_dependency(job)
        if state == "failed":
            self._finish(job, FAILED, REASON_DEPENDENCY_FAILED)
        elif state == "wait":
            assert dep is not None
            self._set_status(job, PENDING)
            self._dependents.setdefault(dep, []).append(job)
        elif job.is_array_parent:
            # The parent runs nothing: it stays PENDING while its children run.
            self._set_status(job, PENDING)
        else:
            self._set_status(job, RUNNABLE)

    def _pass(self) -> None:
        while self._fresh or self._finished:
            fresh, self._fresh = self._fresh, []
            for job in fresh:
                self._evaluate(job)
            finished, self._finished = self._finished, []
            for job_id in finished:
                for job in self._dependents.pop(job_id, []):
                    self._evaluate(job)
        # In queue order, like Batch's FIFO queues: a job that does not fit yet keeps the
        # capacity it waits for, so smaller jobs behind it cannot starve it by taking each
        # slot as it frees (they may still use what is left beyond its needs).
        held_by_host = self._held_by_host() if self._runnable else 0.0
        self._held_back_by_host = False
        free_vcpus = self.capacity.vcpus - self._used_vcpus - held_by_host
        free_memory = self.capacity.memory_mib - self._used_memory
        for job in list(self._runnable.values()):
            if free_vcpus <= 1e-9 or free_memory <= 0:
                self._held_back_by_host = held_by_host > 0
                break
            if job.vcpus > self.capacity.vcpus or job.memory_mib > self.capacity.memory_mib:
                job.status_reason = REASON_TOO_LARGE
                continue
            if job.vcpus <= free_vcpus + 1e-9 and job.memory_mib <= free_memory:
                self._start(job)
            else:
                self._held_back_by_host = held_by_host > 0
            free_vcpus -= job.vcpus
            free_memory -= job.memory_mib

    def _held_by_host(self) -> float:
        """The vCPUs the host's other work holds (`share_host`), within the host's size."""
        if self._host_vcpus is None:
            return 0.0
        try:
            held = float(self._host_vcpus())
        except Exception:  # a faulty estimate must not stop the scheduler
            log.warning("the host's load could not be read; jobs use every vCPU", exc_info=True)
            self._host_vcpus = None
            return 0.0
        return min(max(held, 0.0), self.capacity.vcpus)

    def _set_status(self, job: Job, status: str) -> None:
        if job.status == status:
            return
        old, job.status = job.status, status
        if status == RUNNABLE:
            self._runnable[job.job_id] = job
        elif old == RUNNABLE:
            self._runnable.pop(job.job_id, None)
        if job.parent_id is not None:
            parent = self._jobs[job.parent_id]
            parent.child_counts[old] -= 1
            parent.child_counts[status] += 1

    def _start(self, job: Job) -> None:
        attempt_no = len(job.attempts) + 1
        task_id = jobspec.new_task_id()
        job.status_reason = None
        job.work_dir = self._work_root / f"{job.job_id.replace(':', '-')}-{attempt_no}"
        attempt = Attempt(
            task_arn=f"arn:aws:ecs:{self._region}:{self._account_id}:task/local/{task_id}",
            instance_arn=(
                f"arn:aws:ecs:{self._region}:{self._account_id}:container-instance/local/"
                f"{jobspec.new_uuid().hex}"
            ),
        )
        job.current = attempt
        self._used_vcpus += job.vcpus
        self._used_memory += job.memory_mib
        self._set_status(job, STARTING)
        try:
            plans = jobspec.build_plans(job, attempt_no, task_id, self._host)
        except jobspec.PlanError as exc:
            attempt.status_reason = REASON_START_FAILED
            self._close_attempt(job, AttemptOutcome([], start_error=str(exc)), [])
            return
        attempt.containers = [ContainerResult(p.name, p.log_stream) for p in plans]
        runner = AttemptRunner(
            plans=plans,
            cwd=job.work_dir,
            sink=self._sink,
            watcher=self._watcher,
            warm=self.warm_pool,
            on_started=lambda: self._on_started(job, attempt),
            on_finished=lambda outcome: self._on_finished(job, attempt, plans, outcome),
        )
        self._runners[job.job_id] = runner
        self._to_launch.append(runner)

    def _on_started(self, job: Job, attempt: Attempt) -> None:
        with self._cond:
            if job.current is not attempt or job.status != STARTING:
                return
            attempt.started_at = now_ms()
            if job.started_at is None:
                job.started_at = attempt.started_at
            self._set_status(job, RUNNING)
            self._arm_timers(job)
            if job.parent_id is not None:
                parent = self._jobs[job.parent_id]
                if parent.started_at is None:
                    parent.started_at = attempt.started_at

    def _arm_timers(self, job: Job) -> None:
        runner = self._runners[job.job_id]
        timers = []
        if job.timeout_seconds is not None:
            timers.append(
                threading.Timer(job.timeout_seconds, runner.stop, ("timeout", REASON_TIMEOUT))
            )
        # Only spot hosts are reclaimed; on-demand hosts run to the end, as on AWS.
        delay = self._chaos.spot_reclaim_delay() if job.queue.spot else None
        if delay is not None:
            instance = "i-" + jobspec.new_uuid().hex[:17]
            reason = f"Host EC2 (instance {instance}) terminated."
            timers.append(threading.Timer(delay, runner.stop, ("spot", reason, 0.0)))
            self._spot_armed.add(job.job_id)
        for timer in timers:
            timer.daemon = True
            timer.start()
        self._timers[job.job_id] = timers

    def _on_finished(
        self, job: Job, attempt: Attempt, plans: list[ContainerPlan], outcome: AttemptOutcome
    ) -> None:
        attempt_dir = job.work_dir
        with self._cond:
            succeeded = self._close_attempt(job, outcome, plans)
            self._wake()
        # Failed attempts keep their directory for inspection; successful ones free the disk
        # (outside the lock: a large directory takes a while).
        if succeeded and attempt_dir is not None:
            shutil.rmtree(attempt_dir, ignore_errors=True)

    def _close_attempt(self, job: Job, outcome: AttemptOutcome, plans: list[ContainerPlan]) -> bool:
        """Record an attempt's end and decide: SUCCEEDED, retry, or FAILED. True on success."""
        attempt = job.current
        assert attempt is not None
        for timer in self._timers.pop(job.job_id, []):
            timer.cancel()
        if job.job_id in self._spot_armed:
            self._spot_armed.discard(job.job_id)
            if outcome.stop_kind != "spot":
                self._chaos.release_spot()
        if outcome.stop_kind == "spot":
            # A reclaimed host reports no container exit code, only the instance's end.
            for result in outcome.results:
                result.exit_code = None
        self._runners.pop(job.job_id, None)
        self._used_vcpus -= job.vcpus
        self._used_memory -= job.memory_mib
        attempt.stopped_at = now_ms()
        if attempt.started_at is None:
            attempt.started_at = attempt.stopped_at
            if job.started_at is None:
                job.started_at = attempt.started_at
        if outcome.results:
            attempt.containers = outcome.results
        if outcome.start_error is not None:
            attempt.status_reason = REASON_START_FAILED
            if not attempt.containers:
                attempt.containers = [ContainerResult("default", "", None, outcome.start_error)]
        elif outcome.stop_kind is not None:
            attempt.status_reason = outcome.stop_reason
        else:
            attempt.status_reason = REASON_ESSENTIAL_EXITED
        job.attempts.append(attempt)
        job.current = None
        if plans and outcome.succeeded(plans):
            self._finish(job, SUCCEEDED, REASON_ESSENTIAL_EXITED)
            return True
        final = outcome.stop_kind in ("terminate", "timeout", "shutdown") or self._stopped
        if not final and len(job.attempts) < job.max_attempts:
            first = attempt.primary()
            action = retry_action(
                list(job.retry_strategy.get("evaluateOnExit", [])),
                first.exit_code if first else None,
                first.reason if first else None,
                attempt.status_reason,
            )
            if action == "RETRY":
                self._set_status(job, RUNNABLE)
                job.status_reason = None
                return False
        self._finish(job, FAILED, attempt.status_reason)
        return False

    def _finish(self, job: Job, status: str, reason: str | None) -> None:
        if job.status in TERMINAL:
            return
        if job.current is not None and job.job_id not in self._runners:
            job.current = None
        self._set_status(job, status)
        job.status_reason = reason
        job.stopped_at = now_ms()
        self._active.pop(job.job_id, None)
        self._finished.append(job.job_id)
        self._ended_count += 1
        self._store.append_job(job.to_detail())
        if job.parent_id is not None:
            self._update_parent(self._jobs[job.parent_id])
        self._wake()

    def _update_parent(self, parent: Job) -> None:
        if parent.status in TERMINAL:
            return
        counts = parent.child_counts
        if counts[SUCCEEDED] + counts[FAILED] == len(parent.children):
            ok = counts[FAILED] == 0
            reason = None if ok else REASON_ARRAY_CHILD_FAILED
            if parent.is_terminated or parent.is_cancelled:
                reason = self._jobs[parent.children[0]].status_reason
            self._finish(parent, SUCCEEDED if ok else FAILED, reason)
