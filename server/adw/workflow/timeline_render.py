"""A run's timeline drawn: plain text for the terminal, an SVG, and a self-contained HTML page (the SVG and a few
lines of script, nothing fetched). The editor's webview shows the same SVG, asked of the language server, so the
drawing exists once.

Colours are presentation attributes, not a style sheet, so the SVG looks the same in a file, a browser and a
webview whose content security policy forbids inline styles; text takes the surrounding colour (`currentColor`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape

from adw.workflow.models import Usage
from adw.workflow.timeline import Bar, BarState, Lane, Timeline

COLOURS = {
    BarState.QUEUED: "#b0b7c3",
    BarState.RUNNING: "#3b82f6",
    BarState.RETRIED: "#f59e0b",
    BarState.FAILED: "#dc2626",
    BarState.CANCELLED: "#6b7280",
    BarState.INTERRUPTED: "#8b5cf6",
    BarState.SUCCEEDED: "#16a34a",
}
_CRITICAL = "#facc15"
_WIDTH = 1100
_LABELS = 190  # the column of workflow and task names
_ROW = 20
_BAR = 13
_HEADER = 52
_FOOTER = 30


def text(timeline: Timeline) -> str:
    """The summary `adw timeline` prints: the figures, then each lane's bars in time order."""
    lines = [f"run {timeline.run_id}: {len(timeline.lanes)} workflow(s){' (still running)' if timeline.live else ''}"]
    lines += figures(timeline)
    for lane in timeline.lanes:
        lines.append("")
        lines.append(f"{lane.name} [{lane.workflow_id}]: {lane.state.value}{_usage(lane.usage, ', ')}")
        for bar in sorted(lane.bars, key=lambda b: (b.start, b.end)):
            attempt = f" (attempt {bar.attempt})" if bar.attempt > 1 else ""
            marks = " ◆ critical" if bar.critical else ""
            lines.append(
                f"  {bar.task_id:<14} {bar.start:8.2f}s → {bar.end:8.2f}s  {bar.duration:7.2f}s  "
                f"{bar.state.value}{attempt}{marks}{_usage(bar.usage, '  ')}"
            )
        if lane.ticks:
            lines.append("  checkpoints: " + ", ".join(f"{t.number} {t.when} {t.task_id}" for t in lane.ticks))
    return "\n".join(lines)


def figures(timeline: Timeline) -> list[str]:
    """The run's figures in words, one per line: speedup, slot waits, critical path, usage."""
    speedup = f"{timeline.speedup:.2f}×" if timeline.speedup is not None else "n/a"
    lines = [
        f"wall {timeline.wall:.2f}s, the same tasks one after another {timeline.sequential:.2f}s: speedup {speedup}",
        f"waited for an agent slot: {timeline.slot_wait:.2f}s in all",
    ]
    if timeline.critical_path:
        names = {lane.workflow_id: lane.name for lane in timeline.lanes}
        steps = (key.partition("/") for key in timeline.critical_path)
        lines.append("critical path: " + " → ".join(f"{names.get(wf, wf)}/{task}" for wf, _, task in steps))
    usage = _usage(timeline.usage, "")
    if usage:
        lines.append(f"usage: {usage}")
    return lines


def _usage(usage: Usage, lead: str) -> str:
    parts = []
    if usage.cost_usd is not None:
        parts.append(f"${usage.cost_usd:.4f}")
    if usage.input_tokens is not None or usage.output_tokens is not None:
        parts.append(f"{usage.input_tokens or 0} in / {usage.output_tokens or 0} out tokens")
    return lead + ", ".join(parts) if parts else ""


def svg(timeline: Timeline) -> str:
    """The timeline as one <svg> element. Every bar is a <rect class="adw-bar"> carrying its workflow, task,
    attempt and state as data attributes (what a script, or a test, reads) and a <title> (the tooltip)."""
    rows = [(lane, task) for lane in timeline.lanes for task in [None, *_task_rows(lane)]]
    height = _HEADER + len(rows) * _ROW + _FOOTER
    span = max(timeline.wall, 1e-3)
    plot = _WIDTH - _LABELS - 20

    def x(seconds: float) -> float:
        return _LABELS + seconds / span * plot

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="adw-timeline" viewBox="0 0 {_WIDTH} {height}" '
        f'width="{_WIDTH}" height="{height}" font-family="system-ui, sans-serif" font-size="12" '
        f'data-run="{escape(timeline.run_id)}" data-live="{str(timeline.live).lower()}">',
        f"<title>ADW run {escape(timeline.run_id)}</title>",
    ]
    out += _legend()
    out += _axis(span, x, height)
    for index, (lane, task_id) in enumerate(rows):
        top = _HEADER + index * _ROW
        if task_id is None:
            out.append(
                f'<text x="6" y="{top + 14}" font-weight="bold" fill="currentColor">{escape(lane.name)}'
                f'<tspan font-weight="normal" opacity="0.7"> — {escape(lane.state.value)}'
                f"{escape(_usage(lane.usage, ' · '))}</tspan></text>"
            )
            out.append(
                f'<line x1="0" x2="{_WIDTH}" y1="{top + 0.5}" y2="{top + 0.5}" stroke="currentColor" '
                'stroke-opacity="0.25"/>'
            )
            continue
        out.append(f'<text x="18" y="{top + 14}" fill="currentColor">{escape(task_id)}</text>')
        for bar in lane.bars:
            if bar.task_id == task_id:
                out.append(_bar(bar, x, top))
        for tick in lane.ticks:
            if tick.task_id == task_id:
                out.append(
                    f'<line class="adw-tick" x1="{x(tick.at):.1f}" x2="{x(tick.at):.1f}" y1="{top + 1}" '
                    f'y2="{top + _ROW - 1}" stroke="currentColor" stroke-width="2">'
                    f"<title>checkpoint {tick.number} {tick.when} {escape(tick.task_id)}</title></line>"
                )
    out.append("</svg>")
    return "\n".join(out)


def _task_rows(lane: Lane) -> list[str]:
    seen: dict[str, None] = {}
    for bar in sorted(lane.bars, key=lambda b: b.start):
        seen.setdefault(bar.task_id)
    return list(seen)


def _bar(bar: Bar, x: Callable[[float], float], top: float) -> str:
    left, right = x(bar.start), x(bar.end)
    width = max(right - left, 1.5)
    critical = f' stroke="{_CRITICAL}" stroke-width="3"' if bar.critical else ""
    queued = ' fill-opacity="0.6" stroke-dasharray="3 2" stroke="#6b7280"' if bar.state is BarState.QUEUED else ""
    tooltip = f"{bar.task_id} · {bar.state.value}"
    if bar.attempt > 1:
        tooltip += f" (attempt {bar.attempt})"
    tooltip += f" · {bar.duration:.2f}s · {bar.agent}"
    if bar.critical:
        tooltip += " · on the critical path"
    tooltip += _usage(bar.usage, " · ")
    if bar.reason:
        tooltip += f"\n{bar.reason}"
    return (
        f'<rect class="adw-bar" x="{left:.1f}" y="{top + (_ROW - _BAR) / 2}" width="{width:.1f}" height="{_BAR}" '
        f'rx="2" fill="{COLOURS[bar.state]}"{critical}{queued} data-workflow="{escape(bar.workflow_id)}" '
        f'data-task="{escape(bar.task_id)}" data-attempt="{bar.attempt}" data-state="{bar.state.value}" '
        f'data-critical="{str(bar.critical).lower()}"><title>{escape(tooltip)}</title></rect>'
    )


def _legend() -> list[str]:
    items = [(state.value, COLOURS[state], "") for state in BarState]
    items.append(("critical path", "none", f' stroke="{_CRITICAL}" stroke-width="3"'))
    out, left = [], 6.0
    for label, colour, extra in items:
        out.append(f'<rect x="{left}" y="6" width="12" height="12" rx="2" fill="{colour}"{extra}/>')
        out.append(f'<text x="{left + 16}" y="16" fill="currentColor">{escape(label)}</text>')
        left += 24 + 7 * len(label)
    return out


def _axis(span: float, x: Callable[[float], float], height: float) -> list[str]:
    step = _nice_step(span / 8)
    out = []
    for i in range(int(span / step) + 1):
        seconds = i * step
        left = x(seconds)
        out.append(
            f'<line x1="{left:.1f}" x2="{left:.1f}" y1="{_HEADER - 8}" y2="{height - _FOOTER}" '
            'stroke="currentColor" stroke-opacity="0.12"/>'
        )
        out.append(
            f'<text x="{left:.1f}" y="{_HEADER - 12}" text-anchor="middle" fill="currentColor" opacity="0.7">'
            f"{_seconds(seconds)}</text>"
        )
    return out


def _nice_step(rough: float) -> float:
    """1, 2 or 5 times a power of ten, at least `rough`."""
    if rough <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(rough))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= rough)


def _seconds(value: float) -> str:
    if value >= 60:
        return f"{int(value // 60)}m{value % 60:02.0f}s"
    return f"{value:g}s"


# The HTML page's script: a click on a bar shows its details under the picture.
_SCRIPT = """
document.querySelectorAll('.adw-bar').forEach((bar) => bar.addEventListener('click', () => {
  document.getElementById('detail').textContent = bar.querySelector('title').textContent;
}));
"""


def html(timeline: Timeline) -> str:
    """A page that opens in any browser, offline: the figures, the SVG, and the details of a clicked bar."""
    items = "".join(f"<li>{escape(line)}</li>" for line in figures(timeline))
    live = " (still running when written)" if timeline.live else ""
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>ADW timeline {escape(timeline.run_id)}</title></head>\n"
        '<body style="font-family: system-ui, sans-serif; margin: 1.5em; color: #1f2328">\n'
        f"<h1 style=\"font-size: 1.3em\">ADW run {escape(timeline.run_id)}{live}</h1>\n<ul>{items}</ul>\n"
        f"{svg(timeline)}\n"
        '<pre id="detail" style="min-height: 3em">Click a bar for its details.</pre>\n'
        f"<script>{_SCRIPT}</script>\n</body></html>\n"
    )
