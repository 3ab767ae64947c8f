"""Job output into CloudWatch Logs: the engine writes straight into moto's Logs backend, so the
events are served by the same endpoint's Logs API (GetLogEvents, FilterLogEvents). The account's
log groups are saved to the state dir on a clean stop and loaded back on start."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

LOG_GROUP = "/aws/batch/job"


class LogSink:
    """Appends lines to log streams of the `/aws/batch/job` group of one account and region."""

    def __init__(self, account_id: str, region: str) -> None:
        self._account_id = account_id
        self._region = region
        self._lock = threading.Lock()
        self._created: Any = None

    @property
    def _backend(self) -> Any:
        """moto's Logs backend with the job log group, made at the first job's first line: its
        creation (about 0.07 s) would otherwise sit between the cloud's start and the first
        request a run makes. Callers hold `_lock`."""
        if self._created is None:
            from moto.logs.models import logs_backends

            backend = logs_backends[self._account_id][self._region]
            if LOG_GROUP not in backend.groups:
                backend.create_log_group(LOG_GROUP, {})
            self._created = backend
        return self._created

    def open_stream(self, stream: str) -> None:
        """Create a stream (idempotent)."""
        with self._lock:
            self._backend.ensure_log_stream(LOG_GROUP, stream)

    def put(self, stream: str, lines: list[str]) -> None:
        """Append lines, stamped now, to a stream."""
        if not lines:
            return
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": line} for line in lines]
        with self._lock:
            self._backend.ensure_log_stream(LOG_GROUP, stream)
            self._backend.put_log_events(LOG_GROUP, stream, events)


def save(account_id: str, region: str, path: Path) -> int:
    """Write every log group, stream and event of the account to `path`; returns the events."""
    from moto.logs.models import logs_backends

    backend: Any = logs_backends[account_id][region]
    groups: dict[str, dict[str, list[tuple[int, str]]]] = {}
    count = 0
    for name, group in list(backend.groups.items()):
        streams = groups.setdefault(name, {})
        for stream_name, stream in list(group.streams.items()):
            streams[stream_name] = [(e.timestamp, e.message) for e in stream.events]
            count += len(streams[stream_name])
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(groups))
    os.replace(tmp, path)
    return count


def load(account_id: str, region: str, path: Path) -> int:
    """Put saved log groups back into moto; returns the number of events loaded."""
    if not path.is_file():
        return 0
    from moto.logs.models import logs_backends

    backend: Any = logs_backends[account_id][region]
    count = 0
    for name, streams in json.loads(path.read_text()).items():
        if name not in backend.groups:
            backend.create_log_group(name, {})
        for stream_name, events in streams.items():
            backend.ensure_log_stream(name, stream_name)
            if events:
                batch = [{"timestamp": ts, "message": message} for ts, message in events]
                backend.put_log_events(name, stream_name, batch)
                count += len(batch)
    return count


def forget(account_id: str, region: str) -> None:
    """Drop the account's log groups from moto (they live on in the saved file)."""
    from moto.logs.models import logs_backends

    logs_backends[account_id][region].groups.clear()
