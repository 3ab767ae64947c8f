"""On-disk state of the local cloud, so that a restart with the same state dir loses nothing.

Layout under the state dir: `cloud.json` (account id, EFS ids), `jobdefs.json` (every job
definition revision), `jobs.jsonl` (one DescribeJobs record per finished job, appended as jobs
finish), `s3/` (the S3 snapshot, see `s3snapshot.py`), `efs/fs-*/` (EFS file systems),
`work/` (jobs' working directories) and `api-calls.jsonl`.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from pathlib import Path
from typing import Any


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class Store:
    """Reads and writes the state dir's small JSON files."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._jobs_file = (self.root / "jobs.jsonl").open("a", encoding="utf-8")
        # Job records are written by a thread of their own, so that the engine's lock is not
        # held for serialisation and disk writes.
        self._records: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write_records, name="localcloud-store")
        self._writer.daemon = True
        self._writer.start()

    def load_meta(self) -> dict[str, Any]:
        """The cloud's identity (account id, EFS file systems), or {} on first start."""
        path = self.root / "cloud.json"
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def save_meta(self, meta: dict[str, Any]) -> None:
        """Record the cloud's identity."""
        _write_atomic(self.root / "cloud.json", json.dumps(meta, indent=1, sort_keys=True))

    def load_jobdefs(self) -> list[dict[str, Any]]:
        """Every job definition revision ever registered."""
        path = self.root / "jobdefs.json"
        return list(json.loads(path.read_text())) if path.exists() else []

    def save_jobdefs(self, jobdefs: list[dict[str, Any]]) -> None:
        """Replace the stored job definitions."""
        with self._lock:
            _write_atomic(self.root / "jobdefs.json", json.dumps(jobdefs))

    def append_job(self, detail: dict[str, Any]) -> None:
        """Record a finished job (a later record of the same id wins on load); `detail` must not
        be changed afterwards."""
        self._records.put(detail)

    def _write_records(self) -> None:
        while True:
            detail = self._records.get()
            if detail is None:
                return
            lines = [json.dumps(detail, separators=(",", ":"))]
            # Write whatever else is already waiting in the same flush.
            while not self._records.empty():
                more = self._records.get()
                if more is None:
                    self._records.put(None)
                    break
                lines.append(json.dumps(more, separators=(",", ":")))
            self._jobs_file.write("\n".join(lines) + "\n")
            self._jobs_file.flush()

    def load_jobs(self) -> dict[str, dict[str, Any]]:
        """Finished jobs' DescribeJobs records by job id, in submission order."""
        path = self.root / "jobs.jsonl"
        records: dict[str, dict[str, Any]] = {}
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if not line:
                    continue
                try:
                    detail = json.loads(line)
                except json.JSONDecodeError:
                    # A line cut short by a crash: every complete record is still good.
                    continue
                records[detail["jobId"]] = detail
        return dict(sorted(records.items(), key=lambda kv: kv[1].get("createdAt", 0)))

    def close(self) -> None:
        """Write every pending record, then close the job log."""
        self._records.put(None)
        self._writer.join()
        self._jobs_file.close()
