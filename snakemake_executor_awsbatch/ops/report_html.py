"""The run report as one self-contained HTML file: inline CSS and SVG, no scripts, no fetches."""

from __future__ import annotations

from html import escape

from snakemake_executor_awsbatch.ops.report import (
    RunReport,
    TaskRecord,
    cost_label,
    human_bytes,
    human_seconds,
)

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
)
FAILED_COLOUR = "#d62728"
QUEUED_COLOUR = "#dddddd"
ROW = 18
LABEL_WIDTH = 200
PLOT_WIDTH = 900

_CSS = """
body { font-family: sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.note { color: #a60; font-size: 13px; } .estimate { color: #555; font-size: 12px; }
.over { color: #b00; font-weight: bold; }
"""


def _colours(report: RunReport) -> dict[str, str]:
    return {r.rule: PALETTE[i % len(PALETTE)] for i, r in enumerate(report.rules)}


def timeline_svg(report: RunReport) -> str:
    """Jobs as horizontal bars over time, grouped by rule; failed attempts in red."""
    span = report.span
    order = {r.rule: i for i, r in enumerate(report.rules)}
    tasks = sorted(report.tasks, key=lambda t: (order[t.rule], _start(t)))
    height = ROW * len(tasks) + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{LABEL_WIDTH + PLOT_WIDTH + 20}" '
        f'height="{height}" role="img" aria-label="timeline">'
    ]
    if span is None or span[1] <= span[0]:
        parts.append('<text x="10" y="20">no job times known</text></svg>')
        return "".join(parts)
    start, stop = span
    scale = PLOT_WIDTH / (stop - start)
    colours = _colours(report)
    previous = None
    for row, task in enumerate(tasks):
        y = 10 + row * ROW
        if task.rule != previous:
            parts.append(f'<text x="4" y="{y + 12}" font-size="12">{escape(task.rule[:28])}</text>')
            previous = task.rule
        parts.extend(_bars(task, y, start, scale, colours[task.rule]))
    axis_y = 14 + len(tasks) * ROW
    parts.append(
        f'<line x1="{LABEL_WIDTH}" y1="{axis_y}" x2="{LABEL_WIDTH + PLOT_WIDTH}" '
        f'y2="{axis_y}" stroke="#444"/>'
    )
    for i in range(6):
        x = LABEL_WIDTH + i * PLOT_WIDTH / 5
        label = human_seconds((stop - start) * i / 5)
        parts.append(
            f'<text x="{x:.1f}" y="{axis_y + 16}" font-size="11" text-anchor="middle">'
            f"{label}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _start(task: TaskRecord) -> float:
    starts = [a.started for a in task.attempts if a.started is not None]
    return min(starts) if starts else (task.created or 0.0)


def _bars(task: TaskRecord, y: float, start: float, scale: float, colour: str) -> list[str]:
    out = []
    first = _start(task)
    if task.created is not None and first > task.created:
        x = LABEL_WIDTH + (task.created - start) * scale
        out.append(
            f'<rect x="{x:.1f}" y="{y + 4}" width="{max((first - task.created) * scale, 1):.1f}" '
            f'height="{ROW - 8}" fill="{QUEUED_COLOUR}"><title>queued</title></rect>'
        )
    for number, attempt in enumerate(task.attempts, start=1):
        if attempt.started is None or attempt.stopped is None:
            continue
        # An attempt that was followed by another one, or the last one of a failed task, failed.
        failed = number < len(task.attempts) or task.status == "FAILED"
        fill = FAILED_COLOUR if failed else colour
        x = LABEL_WIDTH + (attempt.started - start) * scale
        width = max(attempt.seconds * scale, 2.0)
        tip = (
            f"{task.rule} {task.job_id or ''} attempt {number}: "
            f"{human_seconds(attempt.seconds)} {attempt.reason or ''}"
        )
        out.append(
            f'<rect x="{x:.1f}" y="{y + 2}" width="{width:.1f}" height="{ROW - 4}" '
            f'fill="{fill}"><title>{escape(tip)}</title></rect>'
        )
    return out


def _rules_table(report: RunReport) -> str:
    rows = [
        "<tr><th>rule / step</th><th>jobs</th><th>failed</th><th>retries</th><th>run time</th>"
        "<th>CPU time</th><th>peak memory</th><th>requested</th><th>suggested</th>"
        "<th>bytes in</th><th>bytes out</th><th>est. cost $</th></tr>"
    ]
    for r in report.rules:
        over = (
            r.peak_memory_mib is not None
            and r.requested_memory_mib is not None
            and r.peak_memory_mib > 0.9 * r.requested_memory_mib
        )
        peak = f"{r.peak_memory_mib:.0f} MiB" if r.peak_memory_mib is not None else "-"
        cls = ' class="over"' if over else ""
        rows.append(
            f"<tr><td>{escape(r.rule)}</td><td>{r.jobs}</td><td>{r.failed}</td>"
            f"<td>{r.retries}</td><td>{human_seconds(r.run_seconds)}</td>"
            f"<td>{human_seconds(r.cpu_seconds)}</td><td{cls}>{peak}</td>"
            f"<td>{_mib(r.requested_memory_mib)}</td><td>{_mib(r.suggested_memory_mib)}</td>"
            f"<td>{human_bytes(r.bytes_in)}</td><td>{human_bytes(r.bytes_out)}</td>"
            f"<td>{r.cost_usd:.4f}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def memory_svg(report: RunReport) -> str:
    """Per rule: requested memory (light bar) against the observed peak (dark bar)."""
    rules = [r for r in report.rules if r.requested_memory_mib or r.peak_memory_mib]
    top = max(
        [float(r.requested_memory_mib or 0) for r in rules]
        + [r.peak_memory_mib or 0.0 for r in rules]
        + [1.0]
    )
    scale = 600 / top
    colours = _colours(report)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{LABEL_WIDTH + 700}" '
        f'height="{len(rules) * 2 * ROW + 10}">'
    ]
    for i, r in enumerate(rules):
        y = 5 + i * 2 * ROW
        requested = (r.requested_memory_mib or 0) * scale
        peak = (r.peak_memory_mib or 0.0) * scale
        parts.append(f'<text x="4" y="{y + 13}" font-size="12">{escape(r.rule[:28])}</text>')
        parts.append(
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{requested:.1f}" height="{ROW - 2}" '
            f'fill="#cfd8e3"><title>requested {r.requested_memory_mib} MiB</title></rect>'
        )
        parts.append(
            f'<rect x="{LABEL_WIDTH}" y="{y + 4}" width="{peak:.1f}" height="{ROW - 10}" '
            f'fill="{colours[r.rule]}"><title>peak {r.peak_memory_mib} MiB</title></rect>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value} MiB"


def _or_dash(value: object) -> str:
    return "-" if value is None else escape(str(value))


def _retries_table(report: RunReport) -> str:
    rows = []
    for task in report.tasks:
        if task.status == "FAILED" and not task.attempts:  # failed before any attempt started
            rows.append(
                f"<tr><td>{escape(task.rule)}</td><td>{escape(task.job_id or '-')}</td>"
                f"<td>-</td><td>-</td><td>{escape(task.status_reason or '-')}</td></tr>"
            )
        for number, attempt in enumerate(task.attempts, start=1):
            if number < len(task.attempts) or task.status == "FAILED":
                rows.append(
                    f"<tr><td>{escape(task.rule)}</td><td>{escape(task.job_id or '-')}</td>"
                    f"<td>{number}</td><td>{_or_dash(attempt.exit_code)}</td>"
                    f"<td>{escape(_reason(task, number))}</td></tr>"
                )
    if not rows:
        return "<p>No retries and no failures.</p>"
    head = "<tr><th>rule</th><th>job</th><th>attempt</th><th>exit</th><th>reason</th></tr>"
    return "<table>" + head + "".join(rows) + "</table>"


def _reason(task: TaskRecord, number: int) -> str:
    reason = task.attempts[number - 1].reason
    if not reason and number == len(task.attempts):
        reason = task.status_reason
    return reason or "-"


def render_html(report: RunReport) -> str:
    """The whole report as one HTML document."""
    span = report.span
    elapsed = human_seconds(span[1] - span[0]) if span else "unknown"
    total_in = sum(t.bytes_in for t in report.tasks)
    total_out = sum(t.bytes_out for t in report.tasks)
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in report.notes)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>awsbatch run report</title><style>{_CSS}</style></head><body>"
        f"<h1>Run {escape(report.run_uri)}</h1>"
        f"<p>{len(report.tasks)} task(s), elapsed {elapsed}, staged in {human_bytes(total_in)}, "
        f"out {human_bytes(total_out)}, estimated cost <b>${report.cost_usd:.4f}</b></p>"
        f'<p class="estimate">Costs are an {escape(cost_label())}.</p>'
        f"<h2>Timeline</h2><p class='estimate'>One row per job; grey: waiting in the queue, "
        "red: an attempt that failed or was retried (hover for the reason).</p>"
        f"{timeline_svg(report)}"
        f"<h2>Per rule / step</h2>{_rules_table(report)}"
        f"<h2>Peak memory against requested</h2>{memory_svg(report)}"
        f"<h2>Retries and failures</h2>{_retries_table(report)}"
        f"{notes}</body></html>"
    )
