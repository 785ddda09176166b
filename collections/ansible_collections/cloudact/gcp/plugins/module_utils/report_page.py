"""The report's inputs, gathered once: rows, status flags, images, fire times; then the page.

`build` makes the calls (through the collection's one client) and hands plain data to
report_html.render. The flags are the status model's (module_utils/status.py `gather` and
`collect`: the same rules as `make status`), the fire times the calendar's, "now" the cloud's
clock (the API's Date header).
"""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from ansible_collections.cloudact.gcp.plugins.module_utils import calendar as cal
from ansible_collections.cloudact.gcp.plugins.module_utils import ledger, report_html, status
from ansible_collections.cloudact.gcp.plugins.module_utils import run_execution as rx
from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError
from ansible_collections.cloudact.gcp.plugins.module_utils.timefmt import parse_time

MAX_DAYS = 400
NEXT_FIRES = 5
LIVE_SOURCE = "live Cloud Run executions"


def check_days(value: Any) -> int:
    """DAYS as an int from 1 to MAX_DAYS, else one line naming the value."""
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_DAYS:
        raise InputError(f"DAYS={text!r}: expected a whole number of days from 1 to {MAX_DAYS}, e.g. DAYS=30")
    return int(text)


def out_path(out: str | None, root: str | None, env: str) -> Path:
    """OUT, or reports/report-<env>.html in the checkout; a directory or a missing parent is refused."""
    path = Path(os.path.expanduser(out)) if out else Path(root or ".") / "reports" / f"report-{env}.html"
    if path.is_dir():
        raise InputError(f"OUT={out!r}: is a directory; give a file name, e.g. OUT={path / 'report.html'}")
    if out and not path.parent.is_dir():
        raise InputError(f"OUT={out!r}: the folder {path.parent} does not exist")
    return path


def write(path: Path, html: str) -> int:
    """Write the page atomically (a reader never sees half a file); its size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = html.encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=".report-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(data)


def live_rows(api, project, region, catalog_jobs, env, since, now, trigger_account=""):
    """Rows for the window from Cloud Run's own executions (one paged list of all jobs, `jobs/-`),
    each as the ledger would hold it (ledger.observation_from_execution)."""
    by_name = {j["name"]: j for j in catalog_jobs}
    items = api.list_all(
        rx.executions_url(project, region, "-"),
        "executions",
        f"executions of {project}/{region}",
        params={"pageSize": 1000},
    )
    out = []
    for x in items:
        job = by_name.get(x.get("job") or rx.summary(x)["job"])
        created = parse_time(x.get("createTime"))
        if job and created and created >= since:
            seen = ledger.observation_from_execution(
                x, job, env, source="reconcile", observed_at=now, trigger_account=trigger_account
            )
            out.append({c: seen[c] for c in ledger.COLUMNS})  # the view's columns, as read_rows gives
    return out


def build(
    api,
    *,
    env: str,
    project: str,
    region: str,
    catalog_jobs: list[dict[str, Any]],
    days: int,
    grace_seconds: int = int(status.GRACE.total_seconds()),
    trigger_account: str = "",
    dataset: str = ledger.DATASET,
    image_facts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """{html, line, notes, rows, source}: the page of `days` days and the line that says what it shows.

    Reads only (a report never writes, module_utils/verbs.py): rows come from the ledger's view
    (`ledger.read_rows`, created since the cloud's now - days), merged in memory with Cloud Run's own
    executions the ledger lacks (appending them is make ledger-sync's, run's and release's; a note
    counts them); where the ledger does not exist yet (create-jobs has not converged it), from Cloud
    Run's own executions alone, and the page and the line say so. `image_facts`: the environment's
    facts status.py's image_state reads (Environment.image_facts); with them the page flags STALE images
    as make status does.
    """
    notes = []
    found = status.gather(api, project, region, catalog_jobs, image_facts=image_facts)
    now = parse_time(found["now"])
    since = now - timedelta(days=days)
    live = live_rows(api, project, region, catalog_jobs, env, since, now, trigger_account)
    try:
        rows = ledger.read_rows(api, project, since=since, dataset=dataset)
        source = f"the ledger {project}.{dataset}.{ledger.VIEW}"
        known = {r.get("execution") for r in rows}
        missing = [r for r in live if r.get("execution") not in known]
        if missing:
            rows = sorted(rows + missing, key=lambda r: (r["created"], r["execution"]), reverse=True)
            notes.append(
                f"{len(missing)} execution(s) Cloud Run has are not in the ledger yet: shown from Cloud Run; "
                f"make ledger-sync ENV={env} records them"
            )
    except ApiError as exc:
        if exc.status != 404:
            raise
        rows = live
        source = LIVE_SOURCE
        notes.append(
            f"the ledger {project}.{dataset} does not exist yet (make create-jobs ENV={env} converges it): "
            f"the page shows Cloud Run's own executions, which it keeps only while they are among a job's "
            "newest 1,000 or younger than 7 days"
        )
    job_status, _extra = status.collect(
        catalog_jobs,
        found["jobs"],
        found["triggers"],
        found["executions"],
        now,
        timedelta(seconds=grace_seconds),
        env,
    )
    _cells, image_notes = status.stale_flags(job_status, found.get("image"))  # adds STALE to the flags
    notes.extend(image_notes)
    stale, stale_note = None, "no stale check: the environment's image facts were not given"
    if found.get("image") is not None:
        stale = {r.job["name"]: "STALE" in r.flags for r in job_status}
    page = {
        "env": env,
        "project": project,
        "generated": now,
        "days": days,
        "since": since,
        "rows": rows,
        "jobs": catalog_jobs,
        "source": source,
        "source_notes": notes,
        "flags": {r.job["shortcut"]: r.flags for r in job_status},
        "notes": {r.job["shortcut"]: r.notes for r in job_status},
        "images": {j["name"]: (j.get("spec") or {}).get("image", "") for j in found["jobs"]},
        "stale": stale,
        "stale_note": stale_note,
        "fires": {
            j["name"]: cal.fire_times(j["schedule"], j.get("time_zone"), now, NEXT_FIRES)
            for j in catalog_jobs
            if j.get("schedule")
        },
    }
    flagged = sum(1 for r in job_status if r.flags)
    line = (
        f"report of {env} ({project}) at {found['now']}: {len(rows)} executions of {len(catalog_jobs)} jobs "
        f"over {days} days from {source}; {flagged} job(s) flagged"
    )
    return {
        "html": report_html.render(page),
        "line": line,
        "notes": notes,
        "rows": len(rows),
        "source": source,
    }
