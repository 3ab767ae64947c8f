"""The run report's data model, its per-rule aggregation and the terminal summary.

A run is an S3 prefix holding one task prefix per Batch job (see `runload.py` for how it is read);
a `TaskRecord` merges the launcher's report.json with what DescribeJobs says about the job.
Costs are ESTIMATES from `cost.py`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from snakemake_executor_awsbatch.ops.cost import (
    PRICE_TABLE_DATE,
    PRICE_TABLE_REGION,
    job_cost_usd,
    suggested_memory_mib,
)


@dataclass(frozen=True)
class AttemptRecord:
    """One Batch attempt of a job; times are epoch seconds."""

    started: float | None
    stopped: float | None
    exit_code: int | None = None
    reason: str | None = None

    @property
    def seconds(self) -> float:
        """How long the attempt ran (0 when a time is missing)."""
        if self.started is None or self.stopped is None:
            return 0.0
        return max(0.0, self.stopped - self.started)


@dataclass(frozen=True)
class TaskRecord:
    """One task of a run: its job, its attempts and what the launcher measured."""

    prefix: str
    rule: str
    job_id: str | None = None
    job_name: str | None = None
    status: str = "UNKNOWN"
    status_reason: str | None = None
    exit_code: int | None = None
    created: float | None = None
    attempts: tuple[AttemptRecord, ...] = ()
    requested_vcpus: float | None = None
    requested_memory_mib: int | None = None
    peak_memory_mib: float | None = None
    wall_seconds: float | None = None
    cpu_seconds: float | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    instance_type: str | None = None
    spot: bool | None = None
    fargate: bool = False
    has_report: bool = False

    @property
    def retries(self) -> int:
        """Attempts beyond the first."""
        return max(0, len(self.attempts) - 1)

    @property
    def cost_usd(self) -> float:
        """ESTIMATED cost of every attempt of this task."""
        vcpus = self.requested_vcpus or 1.0
        memory = self.requested_memory_mib or 2048
        seconds = sum(a.seconds for a in self.attempts) or (self.wall_seconds or 0.0)
        return job_cost_usd(
            vcpus=vcpus,
            memory_mib=memory,
            seconds=seconds,
            instance_type=self.instance_type,
            spot=bool(self.spot),
            fargate=self.fargate,
        )


@dataclass(frozen=True)
class RuleSummary:
    """Every task of one rule (Snakemake) or step (CWL) together."""

    rule: str
    jobs: int
    failed: int
    retries: int
    run_seconds: float
    cpu_seconds: float
    peak_memory_mib: float | None
    requested_memory_mib: int | None
    bytes_in: int
    bytes_out: int
    cost_usd: float

    @property
    def suggested_memory_mib(self) -> int | None:
        """A right-sized request from the largest observed peak (None without a peak)."""
        if self.peak_memory_mib is None:
            return None
        return suggested_memory_mib(self.peak_memory_mib)


@dataclass(frozen=True)
class RunReport:
    """A whole run: tasks, per-rule summaries and what the loader could not find."""

    run_uri: str
    tasks: tuple[TaskRecord, ...]
    notes: tuple[str, ...] = ()
    rules: tuple[RuleSummary, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(summarise(self.tasks)))

    @property
    def cost_usd(self) -> float:
        """ESTIMATED cost of the run."""
        return sum(t.cost_usd for t in self.tasks)

    @property
    def span(self) -> tuple[float, float] | None:
        """Earliest creation/start and latest stop over all tasks, epoch seconds."""
        starts = [t.created for t in self.tasks if t.created is not None]
        starts += [a.started for t in self.tasks for a in t.attempts if a.started is not None]
        stops = [a.stopped for t in self.tasks for a in t.attempts if a.stopped is not None]
        if not starts or not stops:
            return None
        return min(starts), max(stops)


def summarise(tasks: Iterable[TaskRecord]) -> list[RuleSummary]:
    """Per-rule totals, in order of first appearance."""
    grouped: dict[str, list[TaskRecord]] = {}
    for task in tasks:
        grouped.setdefault(task.rule, []).append(task)
    out = []
    for rule, members in grouped.items():
        peaks = [t.peak_memory_mib for t in members if t.peak_memory_mib is not None]
        requested = [t.requested_memory_mib for t in members if t.requested_memory_mib]
        out.append(
            RuleSummary(
                rule=rule,
                jobs=len(members),
                failed=sum(t.status == "FAILED" for t in members),
                retries=sum(t.retries for t in members),
                run_seconds=sum(sum(a.seconds for a in t.attempts) for t in members),
                cpu_seconds=sum(t.cpu_seconds or 0.0 for t in members),
                peak_memory_mib=max(peaks) if peaks else None,
                requested_memory_mib=max(requested) if requested else None,
                bytes_in=sum(t.bytes_in for t in members),
                bytes_out=sum(t.bytes_out for t in members),
                cost_usd=sum(t.cost_usd for t in members),
            )
        )
    return out


def human_bytes(count: float) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def human_seconds(seconds: float) -> str:
    """3725 -> '1h02m05s'."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def cost_label() -> str:
    """The caveat printed next to every cost."""
    return (
        f"ESTIMATE from {PRICE_TABLE_REGION} on-demand prices of {PRICE_TABLE_DATE} "
        "(spot at a typical discount); not a bill"
    )


def render_text(report: RunReport) -> str:
    """The terminal summary: one line per rule, totals, retries and loader notes."""
    header = (
        f"{'RULE':24} {'JOBS':>4} {'FAIL':>4} {'RETRY':>5} {'RUN TIME':>9} "
        f"{'PEAK MEM':>9} {'REQUESTED':>9} {'SUGGEST':>8} {'IN':>9} {'OUT':>9} {'COST $':>8}"
    )
    lines = [f"run {report.run_uri}: {len(report.tasks)} task(s)", header]
    for r in report.rules:
        peak = f"{r.peak_memory_mib:.0f}M" if r.peak_memory_mib is not None else "-"
        req = f"{r.requested_memory_mib}M" if r.requested_memory_mib else "-"
        suggest = f"{r.suggested_memory_mib}M" if r.suggested_memory_mib else "-"
        lines.append(
            f"{r.rule[:24]:24} {r.jobs:>4} {r.failed:>4} {r.retries:>5} "
            f"{human_seconds(r.run_seconds):>9} {peak:>9} {req:>9} {suggest:>8} "
            f"{human_bytes(r.bytes_in):>9} {human_bytes(r.bytes_out):>9} {r.cost_usd:>8.4f}"
        )
    total_in = sum(t.bytes_in for t in report.tasks)
    total_out = sum(t.bytes_out for t in report.tasks)
    span = report.span
    elapsed = human_seconds(span[1] - span[0]) if span else "unknown"
    lines.append(
        f"total: elapsed {elapsed}, staged in {human_bytes(total_in)}, out "
        f"{human_bytes(total_out)}, cost ${report.cost_usd:.4f} ({cost_label()})"
    )
    for task in report.tasks:
        for number, attempt in enumerate(task.attempts[:-1], start=1):
            lines.append(
                f"retry: {task.rule} {task.job_id or task.prefix} attempt {number}: "
                f"{attempt.reason or 'no reason given'}"
            )
    for task in report.tasks:
        if task.status == "FAILED":
            lines.append(
                f"failed: {task.rule} {task.job_id or task.prefix}: "
                f"{task.status_reason or 'no reason given'}"
            )
    lines.extend(f"note: {note}" for note in report.notes)
    return "\n".join(lines)
