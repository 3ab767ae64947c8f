"""Launcher jobs forked from a warm interpreter, so that they start at once and cost no start-up.

Every job the executor submits runs `python -m snakemake_executor_awsbatch.launcher SPEC`. On AWS
that start is lost in the container's (tens of seconds); on the local cloud it was the largest
cost of a short job: about 0.35 s of Python start and imports (botocore above all), paid in CPU
and on the workflow's critical path by every job. The pool keeps one interpreter per start
environment (`warm_interpreter`) that has done the imports once, and forks each job from it.

A container started this way is the same as a cold one to the job and to the runner: its own
session and process group, stdout and stderr merged into one pipe, stdin at /dev/null, the job's
exact environment and directory, an exit that is reported before the process is reaped (so its
group id stays reserved while the runner stops what the job left behind). Only launcher
containers without volumes qualify, and only when their environment, the per-job AWS_BATCH_*
variables aside, is the one the interpreter was started with: the variables that shape Python's
start (PYTHONPATH, locale, ...) are then the same. Anything else starts cold.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from snakemake_executor_awsbatch.localcloud import process
from snakemake_executor_awsbatch.localcloud.model import ContainerPlan

LAUNCHER_MODULE = "snakemake_executor_awsbatch.launcher"
WARM_INTERPRETER_MODULE = "snakemake_executor_awsbatch.warm_interpreter"
# Variables Batch sets per job; they do not touch the interpreter's start, and are set at the fork.
PER_JOB_PREFIX = "AWS_BATCH_"
MAX_MESSAGE = 1 << 20
# How long a spawn may wait for the interpreter's answer (it may still be importing).
SPAWN_TIMEOUT_SECONDS = 30.0
# The status a job gets if its interpreter dies under it (as if killed by SIGKILL).
LOST_STATUS = signal.SIGKILL.value

EnvKey = tuple[tuple[str, str], ...]


def module_args(plan: ContainerPlan, module: str) -> list[str] | None:
    """The arguments of `python -m module` when `plan` runs that and qualifies, else None."""
    argv = plan.argv
    if plan.binds or len(argv) < 3 or tuple(argv[:3]) != ("python", "-m", module):
        return None
    return list(argv[3:])


def environment_key(env: Mapping[str, str]) -> EnvKey:
    """What an interpreter must have been started with to run a job of environment `env`."""
    return tuple(sorted((k, v) for k, v in env.items() if not k.startswith(PER_JOB_PREFIX)))


class _Child:
    """What the cloud knows of one forked job."""

    def __init__(self) -> None:
        self.exited = threading.Event()
        self.reaped = threading.Event()
        self.status: int | None = None


class WarmInterpreter:
    """One warm interpreter process and the thread that reads its messages."""

    def __init__(self, module: str, env: Mapping[str, str], start_dir: Path) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        start_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.proc = subprocess.Popen(
                ["python", "-m", WARM_INTERPRETER_MODULE, module, str(theirs.fileno())],
                cwd=start_dir,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                pass_fds=(theirs.fileno(),),
            )
        finally:
            theirs.close()
        self._control = ours
        self._lock = threading.Lock()  # one spawn or reap request at a time
        self._answers: queue.Queue[dict[str, Any]] = queue.Queue()
        self._children: dict[int, _Child] = {}
        self._children_lock = threading.Lock()
        self.alive = True
        self._reader = threading.Thread(target=self._read, name="localcloud-warm", daemon=True)
        self._reader.start()

    def spawn(self, job: dict[str, Any]) -> ForkedContainer | None:
        """Fork a process for `job`; None when the interpreter cannot (it has died)."""
        read_end, write_end = os.pipe()
        try:
            with self._lock:
                if not self.alive:
                    return None
                try:
                    socket.send_fds(
                        self._control,
                        [json.dumps({"op": "spawn", "job": job}).encode()],
                        [write_end],
                    )
                    answer = self._answers.get(timeout=SPAWN_TIMEOUT_SECONDS)
                except OSError:
                    return None
                except queue.Empty:
                    # A late answer would be taken as the next spawn's: this interpreter is done
                    # (ending it also ends anything it forked for this request).
                    self._kill()
                    return None
            pid = answer.get("spawned")
            if not isinstance(pid, int):
                return None
            stdout = os.fdopen(read_end, "rb")
            read_end = -1
            return ForkedContainer(self, pid, stdout)
        finally:
            os.close(write_end)
            if read_end >= 0:
                os.close(read_end)

    def child(self, pid: int) -> _Child:
        """The record of a forked job (created when its spawn was answered)."""
        with self._children_lock:
            record = self._children.get(pid)
            if record is None:
                record = self._children[pid] = _Child()
                if not self.alive:  # nobody will report on it: it went with the interpreter
                    _mark_lost(record)
            return record

    def reap(self, pid: int) -> int:
        """Reap an exited job; its raw wait status."""
        record = self.child(pid)
        with self._lock:
            if not record.reaped.is_set():
                with contextlib.suppress(OSError):
                    self._control.send(json.dumps({"op": "reap", "pid": pid}).encode())
        record.reaped.wait()
        with self._children_lock:
            self._children.pop(pid, None)
        assert record.status is not None
        return record.status

    def _kill(self) -> None:
        """Give up on a stuck interpreter: no more spawns; its group is killed (the reader then
        sees the socket close and reports its jobs lost)."""
        self.alive = False
        process.signal_group(self.proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        """End the interpreter (it kills any job still running) and wait for it."""
        with contextlib.suppress(OSError):
            self._control.shutdown(socket.SHUT_RDWR)
        self.proc.wait()
        self._reader.join(timeout=5)
        self._control.close()

    def _read(self) -> None:
        while True:
            try:
                data = self._control.recv(MAX_MESSAGE)
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            if "exited" in message:
                self.child(int(message["exited"])).exited.set()
            elif "reaped" in message:
                record = self.child(int(message["reaped"]))
                record.status = int(message["status"])
                record.exited.set()
                record.reaped.set()
            else:
                if "spawned" in message:
                    self.child(int(message["spawned"]))
                self._answers.put(message)
        self._lost()

    def _lost(self) -> None:
        """The interpreter has gone: its jobs went with it; release everyone waiting."""
        with self._children_lock:
            self.alive = False
        self._answers.put({})
        with self._children_lock:
            records = list(self._children.values())
        for record in records:
            _mark_lost(record)
        with contextlib.suppress(subprocess.TimeoutExpired):  # reap it (it is our child)
            self.proc.wait(timeout=5)


def _mark_lost(record: _Child) -> None:
    if record.status is None:
        record.status = LOST_STATUS
    record.exited.set()
    record.reaped.set()


class ForkedContainer:
    """A job forked by a warm interpreter, seen by the runner as it sees a cold Popen."""

    def __init__(self, owner: WarmInterpreter, pid: int, stdout: IO[bytes]) -> None:
        self._owner = owner
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None

    def wait_until_exited(self) -> None:
        """Block until the process has exited; it stays unreaped (pid and group id reserved)."""
        self._owner.child(self.pid).exited.wait()

    def wait(self) -> int:
        """Reap the process; its return code, negative for a signal (as Popen's)."""
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(self._owner.reap(self.pid))
        return self.returncode


class WarmPool:
    """Warm interpreters that preloaded `module` (the launcher), one per start environment."""

    def __init__(self, start_dir: Path, module: str = LAUNCHER_MODULE) -> None:
        self._start_dir = start_dir
        self._module = module
        self._interpreters: dict[EnvKey, WarmInterpreter] = {}
        # Replaced interpreters may still have jobs running: they are ended with the pool.
        self._retired: list[WarmInterpreter] = []
        self._lock = threading.Lock()
        self._stopped = False
        self.handed_out = 0

    def take(self, plan: ContainerPlan, cwd: Path) -> ForkedContainer | None:
        """`plan` forked from a warm interpreter in `cwd`; None when it must start cold."""
        args = module_args(plan, self._module)
        if args is None:
            return None
        env = dict(plan.env)
        with self._lock:
            interpreter = self._interpreters.get(environment_key(env))
        if interpreter is None:
            return None
        container = interpreter.spawn({"args": args, "env": env, "cwd": str(cwd)})
        if container is not None:
            with self._lock:
                self.handed_out += 1
        return container

    def replenish(self, plan: ContainerPlan) -> None:
        """Have a warm interpreter ready for jobs like `plan` (start one if there is none)."""
        if module_args(plan, self._module) is None:
            return
        self.prepare(dict(plan.env))

    def prepare(self, env: Mapping[str, str]) -> None:
        """Have a warm interpreter ready for launcher jobs whose environment is `env`."""
        key = environment_key(env)
        with self._lock:
            if self._stopped:
                return
            current = self._interpreters.get(key)
            if current is not None and current.alive:
                return
            # A run's launchers share one environment: one for another is no longer used.
            self._retired.extend(self._interpreters.values())
            self._interpreters = {}
            # On failure a cold start reports the problem, with its job's context.
            with contextlib.suppress(OSError):
                self._interpreters[key] = WarmInterpreter(self._module, dict(key), self._start_dir)

    def stop(self) -> None:
        """End every warm interpreter; none is started after this."""
        with self._lock:
            self._stopped = True
            interpreters = [*self._interpreters.values(), *self._retired]
            self._interpreters, self._retired = {}, []
        for interpreter in interpreters:
            interpreter.stop()
