"""Job status for operators, once: the reads, the rules, the table and the STRICT verdict.

`make status` (toolkit/live_status.py) and `VIA=ansible` (the cloudact.gcp.status action) both call
`gather` (three reads through the collection's client: the jobs, which carry each one's
latestCreatedExecution, the triggers, and one page of the newest executions of all jobs, job `-`)
and `report`. The rules take plain data (catalog entries as `Job.as_dict()`, job, trigger and
execution summaries), so every rule is unit-tested as data. "now" is the cloud's clock (the API's
Date header), never this machine's.

Rules:
- OVERDUE: a scheduled job whose last due time (its cron in its time zone) is more than `grace`
  ago and that has no execution created at or after that due time. A job deployed after its last
  due time is not overdue. A paused trigger does not excuse it: that is what the flag is for.
- FAILED: the last execution failed (a cancelled one is shown, not flagged).
- STUCK: the last execution still runs past timeout x (retries + 1) + grace, the longest an
  execution of that job can legitimately take.
- MISSING: a catalog job that is not deployed, or a scheduled job without its trigger.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ansible_collections.cloudact.gcp.plugins.module_utils import cloud_run, cloud_scheduler
from ansible_collections.cloudact.gcp.plugins.module_utils import run_execution as rx
from ansible_collections.cloudact.gcp.plugins.module_utils.libraries import cron
from ansible_collections.cloudact.gcp.plugins.module_utils.table import table
from ansible_collections.cloudact.gcp.plugins.module_utils.timefmt import FINISHED, parse_time, seconds, when

GRACE = timedelta(minutes=10)
# latestCreatedExecution.completionStatus (names, or ints from GAPIC clients) -> state word.
_COMPLETION = {
    "EXECUTION_SUCCEEDED": "SUCCEEDED",
    "EXECUTION_FAILED": "FAILED",
    "EXECUTION_RUNNING": "RUNNING",
    "EXECUTION_PENDING": "PENDING",
    "EXECUTION_CANCELLED": "CANCELLED",
    1: "SUCCEEDED",
    2: "FAILED",
    3: "RUNNING",
    4: "PENDING",
    5: "CANCELLED",
}


PERMISSION_DENIED = 7  # google.rpc.Code


def last_due(schedule: str, time_zone: str, now: datetime) -> datetime:
    """The latest time at or before `now` that the cron fires, evaluated in `time_zone`."""
    local = now.astimezone(zoneinfo.ZoneInfo(time_zone))
    # cronsim's reverse iteration starts strictly before dt; a second later makes `now` itself count.
    return next(cron(schedule, local + timedelta(seconds=1), reverse=True)).astimezone(UTC)


def scheduled_trigger(schedule: str, time_zone: str, created: datetime, window: timedelta = GRACE) -> bool:
    """Whether an execution created at `created` falls within `window` after a due time of the cron."""
    return created - last_due(schedule, time_zone, created) <= window


def run_by(job: dict[str, Any], execution: dict[str, Any], trigger_account: str = "") -> str:
    """How a run started: 'release' or 'manual' (the toolkit's mark in its overrides), 'scheduler'
    (Cloud Run's `creator` is the trigger account), else 'manual' (someone ran it: console, gcloud).

    Without a creator (a summary from latestCreatedExecution), a run created just after a due time
    of the job's cron counts as scheduled.
    """
    return trigger_of(job, execution, trigger_account)[0]


def trigger_of(job: dict[str, Any], execution: dict[str, Any], trigger_account: str = "") -> tuple[str, str]:
    """(trigger, detail): the release id of a release run, the principal of a manual one, else ''."""
    mark = str(execution.get("trigger") or "")
    creator = str(execution.get("creator") or "")
    if mark.startswith("release"):
        return "release", mark.partition(":")[2]
    if mark:
        return "manual", creator
    if creator:
        return ("scheduler", "") if trigger_account and creator == trigger_account else ("manual", creator)
    created = parse_time(execution.get("create_time"))
    if (
        job.get("schedule")
        and created
        and scheduled_trigger(job["schedule"], job.get("time_zone") or "UTC", created)
    ):
        return "scheduler", ""
    return "manual", ""


@dataclass
class JobStatus:
    job: dict[str, Any]
    deployed: bool
    trigger_state: str | None  # ENABLED / PAUSED / ...; None: no trigger (or none expected)
    last: dict[str, Any] | None
    flags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def flags(
    job: dict[str, Any],
    *,
    deployed: bool,
    job_created: datetime | None,
    trigger_state: str | None,
    last: dict[str, Any] | None,
    now: datetime,
    grace: timedelta = GRACE,
    trigger_status: dict[str, Any] | None = None,
    env: str = "<env>",
) -> tuple[list[str], list[str]]:
    """(flags, notes explaining each) for one catalog job.

    `trigger_status`: the trigger's last attempt ({code, message}, google.rpc codes): a trigger whose
    `:run` was refused (7, PERMISSION_DENIED: its account may not run the job) is DENIED.
    """
    out: list[str] = []
    notes: list[str] = []
    if not deployed:
        return ["MISSING"], [f"{job['name']} is not deployed"]
    if job.get("schedule") and trigger_state is None:
        out.append("MISSING")
        notes.append(f"trigger {job['name']}-trigger does not exist")
    if job.get("schedule") and int((trigger_status or {}).get("code") or 0) == PERMISSION_DENIED:
        out.append("DENIED")
        notes.append(
            f"{job['shortcut']}: trigger PERMISSION_DENIED on :run, make create-jobs ENV={env} restores it"
        )
    state = (last or {}).get("state")
    created = parse_time((last or {}).get("create_time"))
    if job.get("schedule"):
        due = last_due(job["schedule"], job.get("time_zone") or "UTC", now)
        if now - due > grace and not (job_created and job_created > due) and not (created and created >= due):
            out.append("OVERDUE")
            cron = f"{job['schedule']} {job.get('time_zone') or 'UTC'}"
            paused = " (its trigger is paused)" if trigger_state == "PAUSED" else ""
            notes.append(f"{job['shortcut']} was due {when(due)} UTC ({cron}) and has not run since{paused}")
    if state == "FAILED":
        out.append("FAILED")
        notes.append(f"{job['shortcut']}: last execution {last.get('name')} failed")  # type: ignore[union-attr]
    if state in ("RUNNING", "PENDING", "CANCELLING") and created:
        limit = timedelta(
            seconds=int(job.get("timeout_seconds") or 600) * (int(job.get("max_retries") or 0) + 1)
        )
        if now - created > limit + grace:
            out.append("STUCK")
            notes.append(
                f"{job['shortcut']}: {last.get('name')} has run {seconds((now - created).total_seconds())}, "  # type: ignore[union-attr]
                f"past timeout x (retries + 1) = {seconds(limit.total_seconds())}"
            )
    return out, notes


def last_from_job(summary: dict[str, Any]) -> dict[str, Any] | None:
    """A last-execution dict from a job's latestCreatedExecution (when no execution list was read)."""
    latest = summary.get("latest_execution") or {}
    if not latest or not latest.get("name"):
        return None
    status = latest.get("completion_status")
    return {
        "name": latest["name"],
        "state": _COMPLETION.get(status, "RUNNING" if not latest.get("completion_time") else "SUCCEEDED"),
        "create_time": latest.get("create_time"),
        "start_time": latest.get("create_time"),
        "completion_time": latest.get("completion_time"),
        "trigger": "",
    }


def duration_of(execution: dict[str, Any], now: datetime) -> float | None:
    if execution.get("elapsed_seconds") is not None and execution.get("state") in FINISHED:
        return float(execution["elapsed_seconds"])
    start = parse_time(execution.get("start_time") or execution.get("create_time"))
    if not start:
        return None
    end = parse_time(execution.get("completion_time")) or now
    return max(0.0, (end - start).total_seconds())


def collect(
    catalog_jobs: list[dict[str, Any]],
    deployed: list[dict[str, Any]],
    triggers: list[dict[str, Any]],
    executions: list[dict[str, Any]] | None,
    now: datetime,
    grace: timedelta = GRACE,
    env: str = "<env>",
) -> tuple[list[JobStatus], list[str]]:
    """Per-job status and the names not in the catalog.

    `deployed`: job summaries ({name, resource?, latest_execution?}); `triggers`: {name, state};
    `executions`: execution summaries (None: use each job's latestCreatedExecution).
    """
    by_name = {d["name"]: d for d in deployed}
    trig = {t["name"]: t for t in triggers}
    latest: dict[str, dict[str, Any]] = {}
    for ex in executions or []:
        current = latest.get(ex["job"])
        if current is None or (ex.get("create_time") or "") > (current.get("create_time") or ""):
            latest[ex["job"]] = ex
    rows: list[JobStatus] = []
    for job in catalog_jobs:
        summary = by_name.get(job["name"])
        trigger = trig.get(f"{job['name']}-trigger") if job.get("schedule") else None
        last = latest.get(job["name"]) if executions is not None else (summary and last_from_job(summary))
        resource = (summary or {}).get("resource") or {}
        job_flags, notes = flags(
            job,
            deployed=summary is not None,
            job_created=parse_time(resource.get("createTime")),
            trigger_state=(trigger or {}).get("state") if trigger else None,
            last=last,
            now=now,
            grace=grace,
            trigger_status=(trigger or {}).get("last_attempt_status"),
            env=env,
        )
        rows.append(JobStatus(job, summary is not None, (trigger or {}).get("state"), last, job_flags, notes))
    known_jobs = {j["name"] for j in catalog_jobs}
    known_triggers = {f"{j['name']}-trigger" for j in catalog_jobs if j.get("schedule")}
    extra = sorted(n for n in by_name if n not in known_jobs) + sorted(
        n for n in trig if n not in known_triggers
    )
    return rows, extra


def count_line(rows: list[JobStatus], extra: list[str], catalog_jobs: list[dict[str, Any]]) -> str:
    want_jobs = len(catalog_jobs)
    want_triggers = sum(1 for j in catalog_jobs if j.get("schedule"))
    jobs = sum(1 for r in rows if r.deployed)
    triggers = sum(1 for r in rows if r.trigger_state is not None)
    line = f"{jobs} of {want_jobs} jobs, {triggers} of {want_triggers} triggers"
    missing = [r.job["name"] for r in rows if not r.deployed]
    missing += [
        f"{r.job['name']}-trigger"
        for r in rows
        if r.deployed and r.job.get("schedule") and r.trigger_state is None
    ]
    if missing:
        line += "; missing: " + ", ".join(missing)
    if extra:
        line += "; not in the catalog: " + ", ".join(extra)
    return line


def report(
    catalog_jobs: list[dict[str, Any]],
    deployed: list[dict[str, Any]],
    triggers: list[dict[str, Any]],
    executions: list[dict[str, Any]] | None,
    now: Any,
    grace_seconds: int = int(GRACE.total_seconds()),
    trigger_account: str = "",
    env: str = "<env>",
    image: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """{lines, flagged, flags}: the status table, the count line and one line per flag.

    `trigger_account`: the environment's trigger account; a run it created is `scheduler`.
    `env`: the ENV word the fixes name. `image`: `image_state`'s answer (an image column, STALE).
    """
    now_dt = parse_time(now) or datetime.now(UTC)
    rows, extra = collect(
        catalog_jobs, deployed, triggers, executions, now_dt, timedelta(seconds=grace_seconds), env
    )
    image_cells, image_notes = stale_flags(rows, image)
    body = []
    for r in rows:
        last = r.last or {}
        body.append(
            [
                r.job["shortcut"],
                r.job["category"],
                r.job.get("schedule") or "-",
                (r.trigger_state or ("missing" if r.job.get("schedule") else "-")).lower(),
                last.get("name") or "-",
                (last.get("state") or "-").lower()
                + (f" ({run_by(r.job, last, trigger_account)})" if last.get("create_time") else ""),
                when(parse_time(last.get("start_time") or last.get("create_time"))),
                seconds(duration_of(last, now_dt)) if last else "-",
                *([image_cells.get(r.job["name"], "-")] if image_cells is not None else []),
                " ".join(r.flags),
            ]
        )
    headers = [
        "job",
        "category",
        "schedule",
        "trigger",
        "last execution",
        "result",
        "started (UTC)",
        "duration",
        *(["image"] if image_cells is not None else []),
        "flags",
    ]
    lines = table(headers, body)
    lines.append(count_line(rows, extra, catalog_jobs))
    notes = [n for r in rows for n in r.notes] + image_notes
    flagged = sorted({r.job["shortcut"] for r in rows if r.flags})
    if extra:
        notes.append("not in the catalog (converge prunes legacy names): " + ", ".join(extra))
    return {
        "lines": lines,
        "notes": notes,
        "flagged": flagged,
        "flags": {r.job["shortcut"]: r.flags for r in rows if r.flags},
        "problem": bool(flagged or extra),
        "now": now_dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "strict_message": strict_message(rows, extra),
    }


# The environment's facts the image column reads (module_utils/image.py `resolve`).
def image_state(
    api: Any, facts: dict[str, Any], catalog_jobs: list[dict[str, Any]], jobs: list[dict[str, Any]]
):
    """The image of each deployed job and the stale findings (module_utils/image.py), for `report`.

    `facts`: the environment's (cloudact_image, _repository, _tag, cloudact_root, ...); `jobs`: the
    job summaries `gather` read. A tag that cannot be resolved is a note, never a failed status.
    """
    from ansible_collections.cloudact.gcp.plugins.module_utils import image
    from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError
    from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

    deployed = [{"name": j["name"], "image": (j.get("spec") or {}).get("image", "")} for j in jobs]
    try:
        got = image.resolve(api, facts, [j["name"] for j in catalog_jobs], deployed=deployed)
    except (InputError, ApiError) as exc:
        return {
            "cells": {d["name"]: d["image"].rsplit("/", 1)[-1] for d in deployed},
            "stale": [],
            "error": str(exc),
        }
    cells = {d["name"]: image.short_cell(got["deployed"].get(d["name"]), d["image"]) for d in deployed}
    return {"cells": cells, "stale": got["stale"], "error": ""}


def stale_flags(
    rows: list[JobStatus], image: dict[str, Any] | None
) -> tuple[dict[str, str] | None, list[str]]:
    """(the image column by job name, notes): STALE on each job a stale finding names; (None, [])
    without image state, so the table keeps its columns."""
    if image is None:
        return None, []
    named = {job for finding in image.get("stale") or [] for job in finding["jobs"]}
    for r in rows:
        if r.job["name"] in named and r.deployed:
            r.flags.append("STALE")
    notes = ["stale image: %s" % f["line"] for f in image.get("stale") or []]
    if image.get("error"):
        notes.append("image: %s" % image["error"])
    return dict(image.get("cells") or {}), notes


def strict_message(rows: list[JobStatus], extra: list[str]) -> str:
    """Why STRICT=1 fails: 'alerts: OVERDUE, bootstrap: FAILED+STUCK (STRICT=1)'; '' if nothing is."""
    flagged = ", ".join(f"{r.job['shortcut']}: {'+'.join(r.flags)}" for r in rows if r.flags)
    if not flagged and not extra:
        return ""
    return f"{flagged or 'jobs not in the catalog'} (STRICT=1)"


# Executions read in one page of `jobs/-/executions` (newest first): enough for the last run of
# every job unless one job ran this many times since another's last run; that one then shows its
# job's latestCreatedExecution (result and times, no trigger mark).
RECENT_EXECUTIONS = 100


def gather(
    api: Any,
    project: str,
    region: str,
    catalog_jobs: list[dict[str, Any]],
    image_facts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """{jobs, triggers, executions, now}: the status inputs, in three reads (plus the token)."""
    jobs = [
        cloud_run.summary(j, project)
        for j in api.list_all(
            cloud_run.jobs_url(project, region), "jobs", f"Cloud Run jobs of {project}/{region}"
        )
    ]
    triggers = [
        cloud_scheduler.summary(t)
        for t in api.list_all(
            cloud_scheduler.jobs_url(project, region), "jobs", f"Cloud Scheduler jobs of {project}/{region}"
        )
    ]
    page = api.request(
        "GET",
        rx.executions_url(project, region, "-"),
        f"executions of {project}/{region}",
        params={"pageSize": RECENT_EXECUTIONS},
    )
    now = rx.server_now(api)
    recent = {e["name"]: e for e in (rx.summary(x, now) for x in (page or {}).get("executions") or [])}
    wanted = {j["name"] for j in catalog_jobs}
    last = []
    for job in jobs:
        latest = job.get("latest_execution") or {}
        if job["name"] not in wanted or not latest.get("name"):
            continue
        found = recent.get(latest["name"]) or last_from_job(job)
        last.append(dict(found, job=job["name"]))
    found = {
        "jobs": jobs,
        "triggers": triggers,
        "executions": last,
        "now": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if image_facts is not None:  # the image column and STALE: Artifact Registry's tags and the checkout
        found["image"] = image_state(api, image_facts, catalog_jobs, jobs)
    return found


def trigger_text(job: dict[str, Any], execution: dict[str, Any], trigger_account: str = "") -> str:
    """`scheduler`, `manual (<principal>)`, `release (<release id>)`: the history's trigger column."""
    how, detail = trigger_of(job, execution, trigger_account)
    return f"{how} ({detail})" if detail else how


def of(environment, grace_minutes=10):
    """The status report of an environment (module_utils/environment.py's Environment): its three
    reads and the rules, once, for `make status` (toolkit.live_status) and the status action alike.
    {now, lines, notes, problem, strict_message, ...}, the heading line first in `lines`."""
    found = gather(
        environment.client(),
        environment.project,
        environment.region,
        environment.jobs,
        image_facts=environment.image_facts(),
    )
    out = report(
        environment.jobs,
        found["jobs"],
        found["triggers"],
        found["executions"],
        found["now"],
        grace_minutes * 60,
        environment.get("cloudact_trigger_account", ""),
        environment.word,
        image=found.get("image"),
    )
    out["heading"] = "status of %s (%s) at %s" % (environment.word, environment.project, out["now"])
    return out
