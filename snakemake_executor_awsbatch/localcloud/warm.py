"""Launcher interpreters started ahead of their jobs, so that a launcher job starts at once.

Every job the executor submits runs `python -m snakemake_executor_awsbatch.launcher SPEC`. On AWS
that start is lost in the container's (tens of seconds); on the local cloud it was the largest
cost of a short job: about 0.35 s of Python start and imports (botocore above all), paid by every
job on the workflow's critical path. The pool starts the next launcher's interpreter while the
current job runs (`warm_interpreter`), and hands it its job when one comes.

A container started from the pool is the same as a cold one: its own session and process group,
a child of this process (so waiting, signals and memory watching are unchanged), stdout and
stderr merged into one pipe, stdin at /dev/null, the job's exact environment and directory. Only
launcher containers without volumes qualify, and only when their environment, the per-job
AWS_BATCH_* variables aside, is the one the interpreter was started with: the variables that shape
Python's start (PYTHONPATH, locale, ...) are then the same. Anything else starts cold.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path

from snakemake_executor_awsbatch.localcloud import process
from snakemake_executor_awsbatch.localcloud.model import ContainerPlan

LAUNCHER_MODULE = "snakemake_executor_awsbatch.launcher"
WARM_INTERPRETER_MODULE = "snakemake_executor_awsbatch.warm_interpreter"
# Variables Batch sets per job; they do not touch the interpreter's start, and are set at hand-off.
PER_JOB_PREFIX = "AWS_BATCH_"
# Idle interpreters kept per environment: enough for two jobs that start together (the local
# cloud's two-core hosts run two 1-vCPU jobs at once), few enough to cost little memory (~50 MiB
# each) and CPU (~0.3 s each, spent while the machine is otherwise busy with the current job).
IDLE_PER_ENVIRONMENT = 1

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


class WarmPool:
    """Idle interpreters that preloaded `module` (the launcher), by the environment they have."""

    def __init__(self, start_dir: Path, module: str = LAUNCHER_MODULE) -> None:
        self._start_dir = start_dir
        self._module = module
        self._idle: dict[EnvKey, list[subprocess.Popen[bytes]]] = {}
        self._lock = threading.Lock()
        self._stopped = False
        self._starting = 0
        self.handed_out = 0

    def take(self, plan: ContainerPlan, cwd: Path) -> subprocess.Popen[bytes] | None:
        """An idle interpreter, now running `plan` in `cwd`; None when the plan must start cold."""
        args = module_args(plan, self._module)
        if args is None:
            return None
        env = dict(plan.env)
        job = json.dumps({"args": args, "env": env, "cwd": str(cwd)}).encode() + b"\n"
        while True:
            with self._lock:
                idle = self._idle.get(environment_key(env))
                proc = idle.pop(0) if idle else None
            if proc is None:
                return None
            if proc.poll() is not None:  # died while idle (killed from outside): try another
                self._end([proc])
                continue
            stdin = proc.stdin
            assert stdin is not None
            try:
                stdin.write(job)
                stdin.close()
            except OSError:  # it died just now: try another
                self._end([proc])
                continue
            with self._lock:
                self.handed_out += 1
            return proc

    def replenish(self, plan: ContainerPlan) -> None:
        """Start idle interpreters for jobs like `plan`, up to IDLE_PER_ENVIRONMENT."""
        if module_args(plan, self._module) is None:
            return
        key = environment_key(dict(plan.env))
        with self._lock:
            if self._stopped:
                return
            # A run's launchers share one environment; idle ones of another are dropped.
            stale = [p for k, procs in self._idle.items() if k != key for p in procs]
            self._idle = {key: self._idle.get(key, [])}
            count = IDLE_PER_ENVIRONMENT - len(self._idle[key]) - self._starting
            self._starting += max(count, 0)
        self._end(stale)
        for _ in range(count):
            proc = self._start(dict(key))
            with self._lock:
                self._starting -= 1
                if proc is not None and not self._stopped:
                    self._idle.setdefault(key, []).append(proc)
                    proc = None
            if proc is not None:
                self._end([proc])

    def _start(self, env: dict[str, str]) -> subprocess.Popen[bytes] | None:
        try:
            self._start_dir.mkdir(parents=True, exist_ok=True)
            return subprocess.Popen(
                ["python", "-m", WARM_INTERPRETER_MODULE, self._module],
                cwd=self._start_dir,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError:  # a cold start will report the problem, with its job's context
            return None

    def stop(self) -> None:
        """End every idle interpreter; none is started after this."""
        with self._lock:
            self._stopped = True
            idle = [p for procs in self._idle.values() for p in procs]
            self._idle = {}
        self._end(idle)

    @staticmethod
    def _end(procs: list[subprocess.Popen[bytes]]) -> None:
        """Kill, reap and close idle (or failed) interpreters."""
        for proc in procs:
            if proc.returncode is None:  # unreaped, so its group id is still its own
                process.signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):  # a pipe whose reader is gone
                        pipe.close()
