"""An interpreter that loads a module's imports once, then forks a process for each job.

The local cloud starts one of these (see `localcloud.warm`) for the launcher: Python's start and
the launcher's imports (botocore above all, about 0.3 s of CPU) are then paid once per run, and
each job starts as a fork of an interpreter that has done them, in a few milliseconds. Usage:

    python -m snakemake_executor_awsbatch.warm_interpreter MODULE FD   (FD: the control socket)

If the module has a `warm_up()`, it is called once at start (the launcher's loads botocore's S3
model). The control socket is a SOCK_SEQPACKET Unix socket; each message is one JSON object:

- from the cloud, `{"op": "spawn", "job": {"args": [...], "env": {...}, "cwd": "..."}}` with one
  file descriptor attached (the job's stdout and stderr), answered by `{"spawned": PID}`. The
  child runs in its own session, with stdin at /dev/null, as `python -m MODULE *args` would in
  `cwd` with exactly `env`;
- `{"exited": PID}` when a job's process has exited. It is left a zombie, so that its pid and
  process group id stay reserved while the cloud stops what the job left behind;
- from the cloud, `{"op": "reap", "pid": PID}`, answered by `{"reaped": PID, "status": S}` (the
  raw wait status).

The interpreter stays single-threaded (forking is safe only then). When the socket closes (the
cloud stopped or died) it kills the groups of jobs still running and exits.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import runpy
import select
import signal
import socket
import sys
import traceback
from typing import Any

MAX_MESSAGE = 1 << 20


def become(module: str, job: dict[str, Any]) -> None:
    """Take on the job's directory, environment, stdin and argv, then run `module` as __main__."""
    cwd = str(job["cwd"])
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in dict(job["env"]).items()})
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    # `python -m` puts the directory it was started in first on the path (unless safe_path).
    if not sys.flags.safe_path:
        sys.path[0] = cwd
    sys.argv = [module, *(str(a) for a in job["args"])]
    # The module itself was imported only for its imports: run it afresh as __main__, as
    # `python -m` would (runpy warns about a module found already imported).
    sys.modules.pop(module, None)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _run_child(
    module: str, job: dict[str, Any], out_fd: int, started_fd: int, keep_closed: list[int]
) -> None:
    """In the forked child: become the job's process and never return."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in keep_closed:
            os.close(fd)
        os.setsid()
        # Closing this tells the server the session (and process group) exists: only then is the
        # pid reported, so a signal to the job's group can never miss it.
        os.close(started_fd)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.close(out_fd)
        become(module, job)
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # its reader is gone, or it closed
                stream.flush()
        os._exit(code)


class Server:
    """The fork loop: spawn and reap on request, report exits."""

    def __init__(self, module: str, control: socket.socket) -> None:
        self.module = module
        self.control = control
        self.running: set[int] = set()  # spawned, exit not yet reported
        self.unreaped: set[int] = set()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)

    def send(self, message: dict[str, Any]) -> None:
        """One message to the cloud."""
        self.control.send(json.dumps(message).encode())

    def serve(self) -> None:
        """Answer requests until the control socket closes."""
        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        while True:
            waited: list[int] = [self.control.fileno(), self._wake_r]
            ready, _, _ = select.select(waited, [], [])
            if self._wake_r in ready:
                while True:
                    try:
                        if not os.read(self._wake_r, 4096):
                            break
                    except BlockingIOError:
                        break
            self.report_exits()
            if self.control.fileno() in ready and not self.handle_request():
                break
        self.abandon()

    def report_exits(self) -> None:
        """Tell the cloud about jobs that have exited (left unreaped)."""
        for pid in sorted(self.running):
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is not None and info.si_pid == pid:
                self.running.discard(pid)
                self.send({"exited": pid})

    def handle_request(self) -> bool:
        """Serve one request; False when the cloud has gone."""
        data, fds, _, _ = socket.recv_fds(self.control, MAX_MESSAGE, 1)
        if not data:
            return False
        request = json.loads(data)
        if request.get("op") == "spawn" and len(fds) == 1:
            self.spawn(request["job"], fds[0])
        elif request.get("op") == "reap":
            pid = int(request["pid"])
            _, status = os.waitpid(pid, 0)
            self.unreaped.discard(pid)
            self.running.discard(pid)
            self.send({"reaped": pid, "status": status})
        else:
            for fd in fds:
                os.close(fd)
            self.send({"error": f"unknown request {request.get('op')!r}"})
        return True

    def spawn(self, job: dict[str, Any], out_fd: int) -> None:
        """Fork a process for `job`, its output on `out_fd`."""
        sys.stdout.flush()
        sys.stderr.flush()
        started_r, started_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            closed = [self.control.fileno(), self._wake_r, self._wake_w, started_r]
            _run_child(self.module, job, out_fd, started_w, closed)
        os.close(out_fd)
        os.close(started_w)
        os.read(started_r, 1)  # returns at end of file: the child has its own session
        os.close(started_r)
        self.running.add(pid)
        self.unreaped.add(pid)
        self.send({"spawned": pid})

    def abandon(self) -> None:
        """The cloud has gone: stop every job still running, reap them all."""
        for pid in sorted(self.unreaped):
            if pid in self.running:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def main() -> None:
    """Preload the module named by argv[1], then serve the control socket at fd argv[2]."""
    module, control_fd = sys.argv[1], int(sys.argv[2])
    loaded = importlib.import_module(module)
    warm_up = getattr(loaded, "warm_up", None)
    if callable(warm_up):
        warm_up()
    control = socket.socket(fileno=control_fd)
    Server(module, control).serve()
    # Every job is reaped and nothing is left to clean up: skip the interpreter's teardown of
    # the preloaded modules (about 0.1 s that the cloud's stop, and so the run, waited for).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
