"""What a whole run moved and spent, summed from the launchers' per-job reports.

The executor reads each finished job's `report.json` (one S3 GET per job) and adds it here; at
shutdown the totals are logged and written to `.snakemake/awsbatch_run.json`, so a user (and the
demo's summary) sees the bytes staged without opening every report.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

RUN_TOTALS_PATH = Path(".snakemake") / "awsbatch_run.json"


@dataclass
class RunTotals:
    """Sums over the reports of the jobs seen so far."""

    jobs: int = 0
    direct_shell_jobs: int = 0
    reports_missing: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    files_in: int = 0
    files_out: int = 0
    payload_seconds: float = 0.0
    stage_in_seconds: float = 0.0
    stage_out_seconds: float = 0.0
    # Copies of storage inputs removed from this host because only Batch jobs read them.
    local_copies_dropped: int = 0
    # Jobs the local cloud forked from its warm launcher interpreter (localcloud.warm).
    warm_starts: int = 0

    def add(self, report: Mapping[str, object] | None, direct: bool) -> None:
        """Count one finished job, with its launcher report when there is one."""
        self.jobs += 1
        self.direct_shell_jobs += int(direct)
        if report is None:
            self.reports_missing += 1
            return
        self.bytes_in += _int(report.get("bytes_in"))
        self.bytes_out += _int(report.get("bytes_out"))
        self.files_in += _int(report.get("files_in"))
        self.files_out += _int(report.get("files_out"))
        self.payload_seconds += _float(report.get("payload_seconds"))
        self.stage_in_seconds += _float(report.get("stage_in_seconds"))
        self.stage_out_seconds += _float(report.get("stage_out_seconds"))

    def describe(self) -> str:
        """One line for the run's log."""
        text = (
            f"{self.jobs} Batch job(s), {self.direct_shell_jobs} run directly; staged "
            f"{self.bytes_in / 2**20:.1f} MiB in ({self.files_in} files) and "
            f"{self.bytes_out / 2**20:.1f} MiB out ({self.files_out} files) by the launcher"
        )
        if self.jobs > self.direct_shell_jobs:
            text += "; jobs that ran Snakemake moved their files through its S3 storage plugin"
        return text + "."

    def write(self, path: Path = RUN_TOTALS_PATH) -> Path:
        """Save the totals as JSON."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), sort_keys=True, indent=1) + "\n")
        return path


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _float(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
