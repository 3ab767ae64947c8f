"""Running one container of a job as a host process group, and watching its memory.

A container is a process group started with `start_new_session`, so that killing the group kills
everything the command started. Bind mounts (EFS volumes, shared task volumes) need a private mount
namespace: the command is then wrapped in `unshare --mount --propagation private` and a short `sh`
prologue that binds each source at its target (read-only when asked) before `exec`ing the command.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from snakemake_executor_awsbatch.localcloud.model import Bind

# Exit status of the mount prologue when a bind fails; mapped to CannotStartContainerError.
MOUNT_FAILED_EXIT = 125
NAMESPACE_UNAVAILABLE = (
    "CannotStartContainerError: volumes need a private mount namespace (unshare --mount), which "
    "this host does not permit; run the local cloud as root or with CAP_SYS_ADMIN, or drop the "
    "job's volumes."
)


@functools.cache
def mount_namespaces_available() -> bool:
    """Whether `unshare --mount` works here (probed once per process)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    probe = subprocess.run(
        [unshare, "--mount", "--propagation", "private", "true"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def mount_failure_marker(cwd: Path, name: str) -> Path:
    """The file the mount prologue creates when a bind fails (so a 125 exit is told apart)."""
    return cwd / f".localcloud-mount-failed-{name}"


def wrap_with_binds(argv: Sequence[str], binds: Sequence[Bind], marker: Path) -> list[str]:
    """The argv that runs `argv` inside a private mount namespace with `binds` in place."""
    if not binds:
        return list(argv)
    lines = ["set -e"]
    for bind in binds:
        target = shlex.quote(bind.target)
        lines.append(f"mkdir -p {target}")
        lines.append(f"mount --bind {shlex.quote(str(bind.source))} {target}")
        if bind.read_only:
            lines.append(f"mount -o remount,bind,ro {target}")
    prologue = "; ".join(lines)
    script = (
        f'marker=$1; shift; ( {prologue} ) || {{ : > "$marker"; exit {MOUNT_FAILED_EXIT}; }}; '
        'exec "$@"'
    )
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        script,
        "sh",
        str(marker),
        *argv,
    ]


def start_group(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, binds: Sequence[Bind], name: str
) -> subprocess.Popen[bytes]:
    """Start `argv` as a new process group with stdout and stderr merged into one pipe."""
    return subprocess.Popen(
        wrap_with_binds(argv, binds, mount_failure_marker(cwd, name)),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send `sig` to a process group that may already be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def exit_code_of(returncode: int) -> int:
    """Docker's view of an exit status: a death by signal N is 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def _pss_bytes(pid: int) -> int | None:
    """A process's proportional set size (shared pages split between their users), or None."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def group_memory_bytes(groups: set[int]) -> dict[int, int]:
    """Memory of each of `groups` (process group ids), from /proc.

    A one-process group counts its resident set; a group of several counts their proportional
    set sizes, so that pages they share (libraries, copy-on-write after fork) count once, as a
    container's cgroup counts them.
    """
    page = os.sysconf("SC_PAGE_SIZE")
    members: dict[int, list[tuple[int, int]]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                raw = handle.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after its closing paren.
        fields = raw[raw.rfind(b")") + 2 :].split()
        if len(fields) < 22:
            continue
        pgid = int(fields[2])
        if pgid in groups:
            members.setdefault(pgid, []).append((int(entry.name), int(fields[21]) * page))
    totals: dict[int, int] = {}
    for pgid, procs in members.items():
        if len(procs) == 1:
            totals[pgid] = procs[0][1]
            continue
        total = 0
        for pid, rss in procs:
            pss = _pss_bytes(pid)
            total += rss if pss is None else pss
        totals[pgid] = total
    return totals


class MemoryWatcher:
    """One thread that samples every watched process group's memory and reports those over limit."""

    # Each sample scans all of /proc in this (the cloud's) process; at 0.25 s it costs a few
    # percent of a core, and a job over its limit is stopped within about half a second.
    def __init__(self, interval: float = 0.25) -> None:
        self._interval = interval
        self._watched: dict[int, tuple[int, Callable[[], None]]] = {}
        self._over: set[int] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="localcloud-memory", daemon=True)
        self._thread.start()

    def watch(self, pgid: int, limit_bytes: int, on_exceeded: Callable[[], None]) -> None:
        """Call `on_exceeded` once if the group's resident memory goes over `limit_bytes`."""
        with self._lock:
            self._watched[pgid] = (limit_bytes, on_exceeded)
        self._wake.set()

    def unwatch(self, pgid: int) -> None:
        """Stop watching a group."""
        with self._lock:
            self._watched.pop(pgid, None)
            self._over.discard(pgid)

    def stop(self) -> None:
        """Stop the sampling thread."""
        self._stopped = True
        self._wake.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stopped:
            with self._lock:
                idle = not self._watched
            if idle:
                self._wake.wait()
                self._wake.clear()
                continue
            with self._lock:
                groups = set(self._watched)
            usage = group_memory_bytes(groups)
            exceeded: list[Callable[[], None]] = []
            with self._lock:
                for pgid, (limit, callback) in list(self._watched.items()):
                    if usage.get(pgid, 0) <= limit:
                        self._over.discard(pgid)
                    elif pgid not in self._over:
                        # A child between fork and exec still shows its parent's memory (this
                        # whole server): only a second sample over the limit counts.
                        self._over.add(pgid)
                    else:
                        exceeded.append(callback)
                        del self._watched[pgid]
                        self._over.discard(pgid)
            for callback in exceeded:
                callback()
            self._wake.wait(self._interval)
            self._wake.clear()
