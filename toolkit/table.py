"""Short aligned tables and human durations for operator output (no colour: the callback adds it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """Lines of a left-aligned table, two spaces between columns, no trailing blanks."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]


def seconds(value: float | None) -> str:
    """12 -> '12s', 75 -> '1m15s', 3720 -> '1h02m'; None -> '-'."""
    if value is None:
        return "-"
    total = round(value)
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    if total < 86400:
        return f"{total // 3600}h{total % 3600 // 60:02d}m"
    return f"{total // 86400}d{total % 86400 // 3600:02d}h"


def when(value: datetime | None) -> str:
    """'2026-11-26 00:00' in UTC, or '-'."""
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"
