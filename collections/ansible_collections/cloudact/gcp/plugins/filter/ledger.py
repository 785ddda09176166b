# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the ledger: make history's table, Cloud Run's live executions merged with the ledger's rows.

Logic in Python rather than Jinja (README.md, Architecture); pure functions, unit-tested as data.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ansible_collections.cloudact.gcp.plugins.module_utils import status
from ansible_collections.cloudact.gcp.plugins.module_utils.table import table
from ansible_collections.cloudact.gcp.plugins.module_utils.timefmt import parse_time, seconds, when

DOCUMENTATION = ""

_STATE = {"running": "RUNNING", "succeeded": "SUCCEEDED", "failed": "FAILED", "cancelled": "CANCELLED"}


def _ledger_trigger(row):
    how = row.get("trigger") or "-"
    detail = row.get("release_id") if how == "release" else row.get("principal") if how == "manual" else ""
    return "%s (%s)" % (how, detail) if detail else how


def merged_history(job, live, rows, now, trigger_account="", limit=None):
    """[{execution, result, started, duration, trigger, source, created}] newest first, at most `limit`.

    `live`: Cloud Run's execution summaries (cloud_run_execution_info); `rows`: the ledger's rows of the
    job (ledger_info). A row's source is `live` (Cloud Run only: not yet in the ledger), `ledger` (gone
    from Cloud Run, or not listed this far back) or `both`; live values win where both have one.
    """
    now_dt = parse_time(now) or datetime.now(UTC)
    out = {}
    for row in rows or []:
        started = parse_time(row.get("started") or row.get("created"))
        out[row["execution"]] = {
            "execution": row["execution"],
            "result": row.get("result") or "-",
            "started": started,
            "duration": row.get("duration_s"),
            "trigger": _ledger_trigger(row),
            "source": "ledger",
            "created": parse_time(row.get("created")),
        }
    for ex in live or []:
        found = out.get(ex["name"])
        entry = {
            "execution": ex["name"],
            "result": str(ex.get("state") or "-").lower(),
            "started": parse_time(ex.get("start_time") or ex.get("create_time")),
            "duration": status.duration_of(ex, now_dt),
            "trigger": status.trigger_text(job, ex, trigger_account),
            "source": "both" if found else "live",
            "created": parse_time(ex.get("create_time")),
        }
        out[ex["name"]] = entry
    ordered = sorted(
        out.values(),
        key=lambda e: (e["created"] or datetime.min.replace(tzinfo=UTC), e["execution"]),
        reverse=True,
    )
    return ordered[: int(limit)] if limit else ordered


def history_lines(job, live, rows, now, trigger_account="", limit=None, ledger_exists=True):
    """make history's lines: a count line, the table, and where the rows came from."""
    entries = merged_history(job, live, rows, now, trigger_account, limit)
    name = job["name"]
    if not entries:
        return ["%s: no executions yet" % name]
    counts = {k: sum(1 for e in entries if e["source"] == k) for k in ("both", "live", "ledger")}
    lines = [
        "%s: last %d execution(s): %d in Cloud Run and the ledger, %d in Cloud Run only, %d in the ledger"
        % (name, len(entries), counts["both"], counts["live"], counts["ledger"])
    ]
    body = [
        [
            e["execution"],
            e["source"],
            e["result"],
            when(e["started"]),
            seconds(e["duration"]),
            e["trigger"],
        ]
        for e in entries
    ]
    # The trigger stays last: `manual (<who>)` is the widest cell.
    lines += table(["execution", "from", "result", "started (UTC)", "duration", "trigger"], body)
    if not ledger_exists:
        lines.append("the execution ledger does not exist yet: make create-jobs converges it")
    return lines


class FilterModule:
    def filters(self):
        return {"history_lines": history_lines}
