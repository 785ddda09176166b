"""`make report`: one self-contained HTML page over the ledger's rows (docs/ledger.md's row model).

`render(page)` is pure: it takes the rows (dicts with exactly the view's columns, timestamps as
aware datetimes), the catalog's jobs, the status model's flags and notes per job (from
module_utils/status.py, never recomputed here), each job's image and stale flag, and the next
fire times (module_utils/calendar.py), and returns the page. The page has inline CSS and inline
SVG (module_utils/report_svg.py says why no charting library), no JavaScript, no web font and no
URL of any kind, so it reads the same from disk, attached to a ticket, or with no network.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime, timedelta
from html import escape
from typing import Any

from ansible_collections.cloudact.gcp.plugins.module_utils import calendar as cal
from ansible_collections.cloudact.gcp.plugins.module_utils import report_svg as svg
from ansible_collections.cloudact.gcp.plugins.module_utils.timefmt import seconds

FINISHED = ("succeeded", "failed", "cancelled")
CAUSES = {
    "exit_code": "exit code",
    "timeout": "task timeout",
    "cancelled": "cancelled",
    "retries_exhausted": "retries exhausted",
    "missing_secret": "missing secret",
    "permission": "permission denied",
    "unknown": "unknown cause",
}

CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1f2328;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0}h3{font-size:14px;margin:12px 0 4px}
.meta{color:#57606a;margin:0 0 12px}
table{border-collapse:collapse;margin:4px 0 8px}
td,th{padding:2px 10px 2px 0;text-align:left;vertical-align:top}
th{color:#57606a;font-weight:600}
section.job{border-top:1px solid #d0d7de;padding:14px 0 8px}
.facts{display:flex;flex-wrap:wrap;gap:4px 28px;margin:6px 0}
.flag{display:inline-block;padding:0 6px;border-radius:4px;font-weight:700;color:#fff;background:#cf222e;
margin-right:4px}
.flag.OVERDUE{background:#bc4c00}.flag.STUCK{background:#8250df}.flag.MISSING{background:#57606a}
.flag.STALE{background:#9a6700}
.ok{color:#1a7f37;font-weight:600}.note{color:#57606a}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f6f8fa;padding:1px 4px;
border-radius:4px}
svg{display:block;margin:4px 0}
.grid{stroke:#eaeef2;stroke-width:1}.tick,.lane{font-size:10px;fill:#57606a}
.mark{stroke:#fff;stroke-width:.8}
.r-succeeded{fill:#2da44e}.r-failed{fill:#cf222e}.r-running{fill:#0969da}.r-cancelled{fill:#8c959f}
.r-none{fill:#fff;stroke:#57606a;stroke-width:1.2}
.dur{fill:#0969da;opacity:.7}
.p50{stroke:#1a7f37;stroke-width:1.2}.p95{stroke:#9a6700;stroke-width:1.2;stroke-dasharray:5 3}
.timeout{stroke:#cf222e;stroke-width:1.5}
.p50-label{fill:#1a7f37;font-size:10px}.p95-label{fill:#9a6700;font-size:10px}.timeout-label{fill:#cf222e;font-size:10px}
.empty{fill:#57606a;font-size:11px}
table.fires td:not(.note),table.releases td:nth-child(-n+2){white-space:nowrap}
footer{border-top:1px solid #d0d7de;margin-top:16px;padding-top:8px;color:#57606a}
"""


def _t(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "-"


def cause(row: dict[str, Any]) -> str:
    """A failed execution's named cause: 'exit code 1', 'task timeout', 'missing secret', ..."""
    name = row.get("failure_class") or "unknown"
    text = CAUSES.get(name, name.replace("_", " "))
    if name == "exit_code" and row.get("exit_code") is not None:
        text += f" {row['exit_code']}"
    return text


def title(row: dict[str, Any]) -> str:
    """A mark's hover text."""
    who = row.get("trigger") or "manual"
    if who == "manual" and row.get("principal"):
        who += f" by {row['principal']}"
    if who == "release" and row.get("release_id"):
        who += f" {row['release_id']}"
    parts = [
        row["execution"],
        row.get("result") or "running",
        _t(row.get("created")),
        seconds(row.get("duration_s")),
        who,
    ]
    if row.get("result") == "failed":
        parts.append(f"cause: {cause(row)}")
    if row.get("summary"):
        parts.append(row["summary"])
    return " · ".join(parts)


def percentile(values: list[float], pct: int) -> float | None:
    """The pct-th percentile (statistics.quantiles, inclusive); None without values."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def job_stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts, success rate, p50/p95 and the last failure of one job's rows."""
    finished = [r for r in rows if r.get("result") in FINISHED]
    done = [r for r in finished if r.get("duration_s") is not None]
    values = [float(r["duration_s"]) for r in done]
    failed = [r for r in rows if r.get("result") == "failed"]
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        counts[r.get("result") or "running"] += 1
    ok = sum(1 for r in finished if r.get("result") == "succeeded")
    return {
        "counts": dict(counts),
        "success_rate": ok / len(finished) if finished else None,
        "finished": len(finished),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "points": [(r["created"], float(r["duration_s"])) for r in done],
        "last_failure": max(failed, key=lambda r: r["created"]) if failed else None,
    }


def releases(rows: list[dict[str, Any]], jobs: list[dict[str, Any]], limit: int = 20) -> list[dict[str, Any]]:
    """Release runs by release id, newest first: {release_id, started, steps: [{shortcut, result, ...}]}."""
    order = {j["name"]: (j.get("release_order") or 99, j["shortcut"]) for j in jobs}
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("trigger") == "release":
            groups[r.get("release_id") or "(no release id)"].append(r)
    out = []
    for rid, steps in groups.items():
        steps.sort(key=lambda r: (order.get(r["job"], (99, r["job"]))[0], r["created"]))
        out.append(
            {
                "release_id": rid,
                "started": min(s["created"] for s in steps),
                "steps": [
                    {
                        "shortcut": order.get(s["job"], (99, s["job"]))[1],
                        "result": s.get("result") or "running",
                        "execution": s["execution"],
                        "cause": cause(s) if s.get("result") == "failed" else "",
                    }
                    for s in steps
                ],
            }
        )
    out.sort(key=lambda g: g["started"], reverse=True)
    return out[:limit]


def _header(page: dict[str, Any]) -> str:
    rel = releases(page["rows"], page["jobs"])
    head = [
        f"<h1>CloudAct jobs: {escape(page['env'])}</h1>",
        f'<p class="meta">project <code>{escape(page["project"])}</code> · '
        f"generated {_t(page['generated'])} · "
        f"last {page['days']} days ({_t(page['since'])} to {_t(page['generated'])}) · "
        f"{len(page['rows'])} executions from {escape(page['source'])}</p>",
        *(f'<p class="note">{escape(n)}</p>' for n in page.get("source_notes") or ()),
        "<h3>Release history</h3>",
    ]
    if not rel:
        head.append(f'<p class="note">no release runs in the last {page["days"]} days</p>')
    else:
        head.append(
            '<table class="releases"><tr><th>release</th><th>started</th><th>steps</th><th>result</th></tr>'
        )
        for g in rel:
            steps = ", ".join(
                f"{escape(s['shortcut'])}: {escape(s['result'])}"
                + (f" ({escape(s['cause'])})" if s["cause"] else "")
                for s in g["steps"]
            )
            results = {s["result"] for s in g["steps"]}
            overall = "failed" if "failed" in results else "running" if "running" in results else "succeeded"
            if results == {"cancelled"}:
                overall = "cancelled"
            head.append(
                f'<tr data-release="{svg.attr(g["release_id"])}">'
                f"<td><code>{escape(g['release_id'])}</code></td>"
                f"<td>{_t(g['started'])}</td><td>{steps}</td><td>{overall}</td></tr>"
            )
        head.append("</table>")
    head.append(svg.legend())
    return "".join(head)


def _image(page: dict[str, Any], job: dict[str, Any]) -> str:
    image = (page.get("images") or {}).get(job["name"]) or ""
    digest = image.split("@", 1)[1] if "@" in image else ""
    stale = page.get("stale")
    text = f"<code>{escape(digest or image or 'not deployed')}</code>"
    if digest == "" and image:
        text += ' <span class="note">(not pinned to a digest)</span>'
    if stale is None:
        text += (
            f' <span class="note">({escape(page.get("stale_note") or "stale check not available")})</span>'
        )
    elif stale.get(job["name"]):
        text += ' <span class="note">(stale: see the note at the top)</span>'
    elif digest:
        text += ' <span class="note">(current)</span>'
    return text


def _job(page: dict[str, Any], job: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    stats = job_stats(rows)
    since, until = page["since"], page["generated"]
    flags = (page.get("flags") or {}).get(job["shortcut"]) or []
    notes = (page.get("notes") or {}).get(job["shortcut"]) or []
    name = job["name"]
    parts = [
        f'<section class="job" id="job-{svg.attr(job["shortcut"])}" data-section="{svg.attr(name)}">',
        f"<h2>{escape(job['shortcut'])} <code>{escape(name)}</code> "
        + (
            "".join(f'<span class="flag {svg.attr(f)}">{escape(f)}</span>' for f in flags)
            or '<span class="ok">ok</span>'
        )
        + "</h2>",
    ]
    parts += [f'<p class="note">{escape(n)}</p>' for n in notes]
    rate = stats["success_rate"]
    counts = ", ".join(f"{n} {r}" for r, n in sorted(stats["counts"].items())) or "none"
    trig = f"{job['schedule']} {job.get('time_zone') or 'UTC'}" if job.get("schedule") else "manual"
    parts.append(
        '<div class="facts">'
        f"<span>trigger: <code>{escape(trig)}</code></span>"
        f"<span>executions: {len(rows)} ({escape(counts)})</span>"
        f"<span>success rate: {f'{rate:.0%}' if rate is not None else '-'}"
        f" of {stats['finished']} finished</span>"
        f"<span>p50 {seconds(stats['p50'])} · p95 {seconds(stats['p95'])} · "
        f"timeout {seconds(job['timeout_seconds'])}</span>"
        f"<span>image: {_image(page, job)}</span>"
        "</div>"
    )
    marks = [
        {
            "created": r["created"],
            "result": r.get("result") or "running",
            "trigger": r.get("trigger") or "manual",
            "execution": r["execution"],
            "title": title(r),
        }
        for r in rows
    ]
    parts.append(svg.timeline(name, marks, since, until))
    parts.append(
        svg.durations(
            stats["points"], stats["p50"], stats["p95"], float(job["timeout_seconds"]), since, until
        )
    )
    last = stats["last_failure"]
    if last:
        logs = f"make logs ENV={page['env']} JOB={job['shortcut']} EXECUTION={last['execution']}"
        parts.append(
            f'<p class="last-failure">last failure: <code>{escape(last["execution"])}</code> '
            f"at {_t(last['created'])}, "
            f"{escape(cause(last))}"
            + (f" — {escape(last['summary'])}" if last.get("summary") else "")
            + f"<br>logs: <code>{escape(logs)}</code></p>"
        )
    else:
        parts.append(f'<p class="note">no failure in the last {page["days"]} days</p>')
    fires = (page.get("fires") or {}).get(name)
    if fires:
        parts.append('<h3>Next fire times</h3><table class="fires">')
        for f in fires:
            local = f["local"]
            zone = "" if str(local.tzinfo) == "UTC" else f"{local:%Y-%m-%d %H:%M} {local.tzname()}"
            parts.append(
                f"<tr><td>{_t(f['utc'])}</td><td>{escape(zone)}</td>"
                f'<td class="note">{escape(f["note"])}</td></tr>'
            )
        parts.append("</table>")
        if any(f["note"] for f in fires):
            parts.append(f'<p class="note">{escape(cal.GOOGLE_DST)}</p>')
    parts.append("</section>")
    return "".join(parts)


def render(page: dict[str, Any]) -> str:
    """The page. `page`: env, project, generated (aware UTC), days, rows, jobs (catalog dicts), source,
    flags and notes ({shortcut: [...]}, from status.py), images ({job: image}), stale ({job: bool} or
    None with stale_note), fires ({job: calendar.fire_times(...)})."""
    page = dict(page)
    page.setdefault("since", page["generated"] - timedelta(days=page["days"]))
    by_job: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in sorted(page["rows"], key=lambda r: r["created"]):
        by_job[r["job"]].append(r)
    body = [_header(page)]
    known = {j["name"] for j in page["jobs"]}
    for job in page["jobs"]:
        body.append(_job(page, job, by_job.get(job["name"], [])))
    others = sorted(set(by_job) - known)
    if others:
        body.append(
            f'<p class="note">rows of jobs not in the catalog (not drawn): {escape(", ".join(others))}</p>'
        )
    body.append(
        f'<footer id="end">{len(page["jobs"])} jobs · generated by '
        f"<code>make report ENV={escape(page['env'])}</code>; "
        "no script, no web font, no network resource</footer>"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>CloudAct jobs: {escape(page['env'])} ({_t(page['generated'])})</title>"
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )
