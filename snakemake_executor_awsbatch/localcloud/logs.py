"""Job output into CloudWatch Logs: the engine writes straight into moto's Logs backend, so the
events are served by the same endpoint's Logs API (GetLogEvents, FilterLogEvents)."""

from __future__ import annotations

import threading
import time
from typing import Any

LOG_GROUP = "/aws/batch/job"


class LogSink:
    """Appends lines to log streams of the `/aws/batch/job` group of one account and region."""

    def __init__(self, account_id: str, region: str) -> None:
        from moto.logs.models import logs_backends

        self._backend: Any = logs_backends[account_id][region]
        self._lock = threading.Lock()
        with self._lock:
            if LOG_GROUP not in self._backend.groups:
                self._backend.create_log_group(LOG_GROUP, {})

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
