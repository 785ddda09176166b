"""The report's inline SVG: a job's timeline (one mark per execution) and its durations chart.

Written here rather than by a charting library: the page must be one file with no JavaScript and
no network resource, and every mark must be an element of its own carrying `data-job`,
`data-result` and `data-trigger` with its hover text in an SVG `<title>`. pygal's tooltips are
JavaScript it loads from a CDN by default, matplotlib's SVG has no per-mark attributes (and is a
large dependency for a controller), and drawsvg would add a dependency to the collection for
the five element kinds used here (circle, rect, polygon, line, text) plus the same escaping.
Escaping is the standard library's (`html.escape`).
"""

from __future__ import annotations

import math
from datetime import datetime
from html import escape
from typing import Any

from ansible_collections.cloudact.gcp.plugins.module_utils.timefmt import seconds

WIDTH = 960
PAD_LEFT = 64
PAD_RIGHT = 16
TIMELINE_HEIGHT = 74
DURATION_HEIGHT = 130
SHAPES = {"scheduler": "circle", "manual": "square", "release": "diamond"}
RESULTS = ("succeeded", "failed", "running", "cancelled")
_LAYER = {"succeeded": 0, "cancelled": 1, "running": 2, "failed": 3}


def attr(value: Any) -> str:
    return escape(str(value), quote=True)


def _x(at: datetime, since: datetime, until: datetime) -> float:
    span = max((until - since).total_seconds(), 1.0)
    frac = min(max((at - since).total_seconds() / span, 0.0), 1.0)
    return round(PAD_LEFT + frac * (WIDTH - PAD_LEFT - PAD_RIGHT), 1)


def mark(shape: str, x: float, y: float, attrs: dict[str, Any], title: str) -> str:
    """One mark: a circle (scheduled), a square (manual) or a diamond (release step), with its <title>."""
    extra = " ".join(f'{k}="{attr(v)}"' for k, v in attrs.items())
    tip = f"<title>{escape(title)}</title>"
    if shape == "circle":
        return f'<circle cx="{x}" cy="{y}" r="4.5" {extra}>{tip}</circle>'
    if shape == "square":
        return f'<rect x="{round(x - 4, 1)}" y="{round(y - 4, 1)}" width="8" height="8" {extra}>{tip}</rect>'
    points = f"{x},{y - 5.5} {x + 5.5},{y} {x},{y + 5.5} {x - 5.5},{y}"
    return f'<polygon points="{points}" {extra}>{tip}</polygon>'


def _day_ticks(since: datetime, until: datetime, top: float, bottom: float, labels_at: float) -> list[str]:
    out = []
    days = max(1, round((until - since).total_seconds() / 86400))
    step = 1 if days <= 14 else 7 if days <= 120 else 30
    start = since.replace(hour=0, minute=0, second=0, microsecond=0)
    i = 0
    while True:
        day = start.fromordinal(start.toordinal() + i).replace(tzinfo=since.tzinfo)
        i += 1
        if day > until:
            break
        if day < since:
            continue
        x = _x(day, since, until)
        out.append(f'<line class="grid" x1="{x}" y1="{top}" x2="{x}" y2="{bottom}"/>')
        if (day.toordinal() - start.toordinal()) % step == 0:
            out.append(f'<text class="tick" x="{x}" y="{labels_at}" text-anchor="middle">{day:%m-%d}</text>')
    return out


def timeline(job: str, marks: list[dict[str, Any]], since: datetime, until: datetime) -> str:
    """The timeline SVG of one job; `marks`: {created, result, trigger, title} per execution."""
    lanes = {"scheduler": 20, "manual": 44, "release": 44}
    body = [
        f'<svg class="timeline" width="{WIDTH}" height="{TIMELINE_HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {TIMELINE_HEIGHT}" '
        f'role="img" aria-label="{attr(job)}: executions over time">',
        f'<text class="lane" x="4" y="{lanes["scheduler"] + 4}">scheduled</text>',
        f'<text class="lane" x="4" y="{lanes["manual"] + 4}">by hand</text>',
        *_day_ticks(since, until, 8, 56, 70),
    ]
    # Failures drawn last, so that on a dense timeline (an hourly job) they are on top.
    for m in sorted(marks, key=lambda m: (_LAYER.get(m["result"], 1), m["created"])):
        trigger = m["trigger"] if m["trigger"] in SHAPES else "manual"
        result = m["result"] if m["result"] in RESULTS else "running"
        body.append(
            mark(
                SHAPES[trigger],
                _x(m["created"], since, until),
                lanes[trigger],
                {
                    "class": f"mark r-{result}",
                    "data-job": job,
                    "data-result": m["result"],
                    "data-trigger": m["trigger"],
                    "data-execution": m.get("execution", ""),
                },
                m["title"],
            )
        )
    body.append("</svg>")
    return "".join(body)


# Duration axis: a log scale, so a 2 s run and a 60 min timeout fit one chart.
_TICKS = [(1, "1s"), (10, "10s"), (60, "1m"), (600, "10m"), (3600, "1h"), (36000, "10h")]


def durations(
    points: list[tuple[datetime, float]],
    p50: float | None,
    p95: float | None,
    timeout_s: float,
    since: datetime,
    until: datetime,
) -> str:
    """The durations SVG: one dot per finished execution, p50 and p95 lines, the task timeout as a line."""
    top, bottom = 10.0, DURATION_HEIGHT - 22.0
    high = max([timeout_s, *[d for _at, d in points]]) * 1.25
    lo_log, hi_log = math.log10(0.5), math.log10(max(high, 1.0))

    def y(value: float) -> float:
        v = math.log10(max(value, 0.5))
        return round(bottom - (v - lo_log) / (hi_log - lo_log) * (bottom - top), 1)

    body = [
        f'<svg class="durations" width="{WIDTH}" height="{DURATION_HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {DURATION_HEIGHT}" '
        f'role="img" aria-label="durations">',
        *_day_ticks(since, until, top, bottom, DURATION_HEIGHT - 6),
    ]
    for value, label in _TICKS:
        if value <= high:
            body.append(
                f'<text class="tick" x="{PAD_LEFT - 6}" y="{y(value) + 4}" text-anchor="end">{label}</text>'
            )
    right = WIDTH - PAD_RIGHT
    for value, cls, label in (
        (timeout_s, "timeout", f"task timeout {seconds(timeout_s)}"),
        (p95, "p95", f"p95 {seconds(p95)}"),
        (p50, "p50", f"p50 {seconds(p50)}"),
    ):
        if value is None:
            continue
        body.append(f'<line class="{cls}" x1="{PAD_LEFT}" y1="{y(value)}" x2="{right}" y2="{y(value)}"/>')
        at = (
            f'x="{PAD_LEFT + 4}" text-anchor="start"'
            if cls == "p50"
            else f'x="{right - 4}" text-anchor="end"'
        )
        body.append(f'<text class="{cls}-label" {at} y="{y(value) - 3}">{label}</text>')
    for at, value in points:
        body.append(
            f'<circle class="dur" cx="{_x(at, since, until)}" cy="{y(value)}" r="2.5">'
            f"<title>{escape(f'{at:%Y-%m-%d %H:%M} UTC: {seconds(value)}')}</title></circle>"
        )
    if not points:
        body.append(
            f'<text class="empty" x="{PAD_LEFT + 8}" y="{bottom - 8}">'
            "no finished execution in the window</text>"
        )
    body.append("</svg>")
    return "".join(body)


def legend() -> str:
    """Shapes (trigger) and colours (result), drawn with the same marks as the timelines (no data-job)."""
    items = []
    x = 8
    for trigger, shape in SHAPES.items():
        items.append(mark(shape, x + 6, 12, {"class": "mark r-none"}, trigger))
        items.append(f'<text class="tick" x="{x + 16}" y="16">{trigger}</text>')
        x += 100
    for result in RESULTS:
        items.append(mark("circle", x + 6, 12, {"class": f"mark r-{result}"}, result))
        items.append(f'<text class="tick" x="{x + 16}" y="16">{result}</text>')
        x += 100
    return f'<svg class="legend" width="{x}" height="24" viewBox="0 0 {x} 24">' + "".join(items) + "</svg>"
