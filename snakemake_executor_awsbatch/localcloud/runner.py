"""Running one attempt of a job: its containers, in `dependsOn` order, as host process groups.

A single-container job is the one-container case. For a multi-container job, a container starts
once its dependencies reach their condition (START, COMPLETE, SUCCESS; HEALTHY is treated as
START); when an essential container stops, the others are stopped, as ECS stops the task.
"""

from __future__ import annotations

import io
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from snakemake_executor_awsbatch.localcloud import process
from snakemake_executor_awsbatch.localcloud.logs import LogSink
from snakemake_executor_awsbatch.localcloud.model import REASON_OOM, ContainerPlan, ContainerResult
from snakemake_executor_awsbatch.localcloud.warm import ForkedContainer, WarmPool

STOP_GRACE_SECONDS = 2.0


@dataclass
class AttemptOutcome:
    """How an attempt ended: each container's result, and why it was stopped if it was."""

    results: list[ContainerResult]
    stop_kind: str | None = None  # "terminate", "timeout", "spot", "shutdown"
    stop_reason: str | None = None
    start_error: str | None = None

    def succeeded(self, plans: list[ContainerPlan]) -> bool:
        """True when no stop happened and every essential container exited 0."""
        if self.stop_kind is not None or self.start_error is not None:
            return False
        essential = {p.name for p in plans if p.essential}
        return all(r.exit_code == 0 for r in self.results if r.name in essential)


@dataclass
class _Running:
    plan: ContainerPlan
    proc: subprocess.Popen[bytes] | ForkedContainer
    reader: threading.Thread
    result: ContainerResult
    oom: bool = False
    exited: bool = False


@dataclass
class AttemptRunner:
    """Runs one attempt on its own thread; `stop()` may be called from any thread."""

    plans: list[ContainerPlan]
    cwd: Path
    sink: LogSink
    watcher: process.MemoryWatcher
    on_started: Callable[[], None]
    on_finished: Callable[[AttemptOutcome], None]
    warm: WarmPool | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _running: dict[str, _Running] = field(default_factory=dict)
    _stop_kind: str | None = None
    _stop_reason: str | None = None
    _events: queue.Queue[str] = field(default_factory=queue.Queue)

    def start(self) -> None:
        """Start the attempt's thread."""
        threading.Thread(target=self._run, name="localcloud-attempt", daemon=True).start()

    def stop(self, kind: str, reason: str | None, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop every container: SIGTERM, then SIGKILL after `grace` seconds."""
        with self._lock:
            if self._stop_kind is None:
                self._stop_kind, self._stop_reason = kind, reason
            signalled = self._signal_running(signal.SIGTERM if grace > 0 else signal.SIGKILL)
        self._events.put("")
        if grace > 0 and signalled:
            timer = threading.Timer(grace, self._kill_all)
            timer.daemon = True
            timer.start()

    def _kill_all(self) -> None:
        with self._lock:
            self._signal_running(signal.SIGKILL)

    def _signal_running(self, sig: signal.Signals) -> bool:
        """Signal the groups of containers not yet reaped (call with the lock held).

        A group id is only signalled while its leader is unreaped (running or a zombie), so a
        signal can never reach an unrelated group that reused the number.
        """
        groups = [r.proc.pid for r in self._running.values() if not r.exited]
        for pgid in groups:
            process.signal_group(pgid, sig)
        return bool(groups)

    def _run(self) -> None:
        self.cwd.mkdir(parents=True, exist_ok=True)
        results = {p.name: ContainerResult(p.name, p.log_stream) for p in self.plans}
        start_error: str | None = None
        started_any = False
        pending = list(self.plans)
        finished: dict[str, int] = {}
        try:
            while True:
                with self._lock:
                    stopping = self._stop_kind is not None
                    running = {n for n, r in self._running.items() if not r.exited}
                if not stopping:
                    for plan in list(pending):
                        verdict = self._ready(plan, running, finished)
                        if verdict is None:
                            continue
                        pending.remove(plan)
                        if verdict is False:
                            results[plan.name].reason = "DependencyConditionNotMet"
                            continue
                        error = self._launch(plan, results[plan.name])
                        if error is not None:
                            start_error = error
                            results[plan.name].reason = error
                            self.stop("start-failed", None, grace=0)
                            break
                        running.add(plan.name)
                        if not started_any:
                            started_any = True
                            self.on_started()
                if not running:
                    break
                name = self._events.get()
                if not name:
                    continue
                with self._lock:
                    entry = self._running[name]
                code = process.exit_code_of(entry.proc.wait())
                entry.result.exit_code = code
                if entry.oom:
                    entry.result.reason = REASON_OOM
                elif process.mount_failure_marker(self.cwd, name).exists():
                    start_error = (
                        "CannotStartContainerError: binding the job's volumes failed (the "
                        "container's log has mount's message)"
                    )
                    entry.result.exit_code = None
                    entry.result.reason = start_error
                finished[name] = code
                if entry.plan.essential:
                    self.stop("essential-exited", None, grace=STOP_GRACE_SECONDS)
        finally:
            with self._lock:
                all_running = list(self._running.values())
            for entry in all_running:
                entry.reader.join()
            kind = self._stop_kind if self._stop_kind != "essential-exited" else None
            if kind == "start-failed":
                kind = None
            ordered = [results[p.name] for p in self.plans]
            self.on_finished(AttemptOutcome(ordered, kind, self._stop_reason, start_error))

    @staticmethod
    def _ready(plan: ContainerPlan, running: set[str], finished: dict[str, int]) -> bool | None:
        """True: start now; None: wait; False: can never start (a SUCCESS dependency failed)."""
        for dep, condition in plan.depends_on:
            if condition in ("START", "HEALTHY"):
                if dep not in running and dep not in finished:
                    return None
            elif dep not in finished:
                return None
            elif condition == "SUCCESS" and finished[dep] != 0:
                return False
        return True

    def _launch(self, plan: ContainerPlan, result: ContainerResult) -> str | None:
        """Start one container; returns a CannotStartContainerError reason on failure."""
        if not plan.argv:
            return (
                "CannotStartContainerError: the container has no command, and the local cloud "
                "runs no image entrypoint; give the job definition a command"
            )
        if plan.binds and not process.mount_namespaces_available():
            return process.NAMESPACE_UNAVAILABLE
        self.sink.open_stream(plan.log_stream)
        try:
            proc: subprocess.Popen[bytes] | ForkedContainer | None = (
                self.warm.take(plan, self.cwd) if self.warm is not None else None
            )
            forked = proc is not None
            if proc is None:
                proc = process.start_group(
                    plan.argv, dict(plan.env), self.cwd, plan.binds, plan.name
                )
        except OSError as exc:
            return (
                f"CannotStartContainerError: failed to start {plan.argv[0] if plan.argv else ''}:"
                f" {exc.strerror or exc}"
            )
        entry = _Running(plan, proc, threading.Thread(), result)
        entry.reader = threading.Thread(
            target=self._wait, args=(entry,), name="localcloud-wait", daemon=True
        )
        with self._lock:
            self._running[plan.name] = entry
            if self._stop_kind is not None:
                # A stop arrived while this container was being started: it missed the signal.
                process.signal_group(proc.pid, signal.SIGKILL)
        entry.reader.start()
        limit = plan.memory_mib * 1024 * 1024
        self.watcher.watch(proc.pid, limit, lambda: self._out_of_memory(entry))
        if self.warm is not None and not forked:
            # It started cold: have a warm interpreter ready for the next job like this one.
            threading.Thread(
                target=self.warm.replenish, args=(plan,), name="localcloud-warm", daemon=True
            ).start()
        return None

    def _out_of_memory(self, entry: _Running) -> None:
        with self._lock:
            if entry.exited:
                return
            entry.oom = True
            process.signal_group(entry.proc.pid, signal.SIGKILL)

    def _wait(self, entry: _Running) -> None:
        """Wait for the container's main process, then report its exit."""
        copier = threading.Thread(target=self._copy_output, args=(entry,), daemon=True)
        copier.start()
        pid = entry.proc.pid
        # Wait without reaping: while the leader is a zombie its pid and group id stay reserved.
        if isinstance(entry.proc, ForkedContainer):
            entry.proc.wait_until_exited()
        else:
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        self.watcher.unwatch(pid)
        with self._lock:
            # A container ends with its main process: stop whatever it left behind, so that
            # the output pipe closes and nothing outlives the attempt.
            process.signal_group(pid, signal.SIGKILL)
            entry.exited = True
        entry.proc.wait()
        copier.join()
        self._events.put(entry.plan.name)

    def _copy_output(self, entry: _Running) -> None:
        """Copy the container's output, line by line, into its log stream."""
        stream = cast(io.BufferedReader, entry.proc.stdout)
        partial = b""
        while chunk := stream.read1(65536):
            *lines, partial = (partial + chunk).split(b"\n")
            self.sink.put(entry.plan.log_stream, [_text(line) for line in lines])
        if partial:
            self.sink.put(entry.plan.log_stream, [_text(partial)])
        stream.close()


def _text(line: bytes) -> str:
    return line.decode("utf-8", "replace").rstrip("\r")
