"""Fire times of the catalog's triggers (`make calendar`, and the report's "next 5"), with DST notes.

Cloud Scheduler evaluates a job's unix-cron schedule in its `timeZone` on wall-clock time. Google's
documentation ("Configure cron job schedules", Time zone) says only this about daylight saving
time: because Cloud Scheduler runs on wall-clock time, DST can make jobs run or not run
unexpectedly; where a time can occur twice (clocks go back) and a job is scheduled at that time,
the job may observe execution anomalies; UTC is recommended to avoid the problem. It documents
no rule for a time that does not exist (clocks go forward) nor which occurrence of a repeated
time runs. So there is no documented Google rule that differs from the library's; the times
here are cronsim's (already what status.py's OVERDUE check and localcloud's Scheduler ticker use,
so the calendar, the flags and the emulated cloud agree), and every fire time that a DST change
touches carries a note saying so, with Google's caveat.

cronsim's semantics (its README, "DST Transitions": it follows Debian cron, cron(8)): for a job
at a specific time (minute and hour fields that do not start with `*`, 5-field expressions):
- a wall time skipped when clocks go forward runs once, immediately after the jump (02:30 on a
  day whose clocks go 02:00 -> 03:00 runs at 03:00 of the new offset);
- a wall time repeated when clocks go back runs once, at its first occurrence (the earlier
  offset).
Jobs that run more often (a `*` minute or hour, e.g. hourly `0 * * * *`) are scheduled normally,
on elapsed time: a skipped wall time has no run, a repeated one runs at both occurrences.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import Any

from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError
from ansible_collections.cloudact.gcp.plugins.module_utils.libraries import cron
from ansible_collections.cloudact.gcp.plugins.module_utils.timefmt import parse_time

# Google's caveat, printed once under a calendar that has any DST note.
GOOGLE_DST = (
    "Cloud Scheduler runs on wall-clock time; Google documents only that a time which occurs twice "
    "may see execution anomalies and recommends UTC. Times above follow cron(8)/cronsim: a skipped "
    "time runs right after the jump, a repeated one once, at its first occurrence."
)
MAX_COUNT = 100
_WALK_LIMIT = 2000  # wall-clock matches looked at between two fire times (an every-minute cron: 1)


def check_count(value: Any) -> int:
    """N as an int from 1 to MAX_COUNT, else one line naming the value."""
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_COUNT:
        raise InputError(f"N={text!r}: expected a whole number of fire times from 1 to {MAX_COUNT}, e.g. N=5")
    return int(text)


def check_at(value: Any) -> datetime | None:
    """AT (the calendar's start) as an aware datetime; '' means the cloud's clock."""
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise InputError(
            f"AT={text!r}: expected an RFC 3339 time, e.g. AT=2026-03-06T00:00:00Z (empty: the cloud's clock)"
        ) from None


def _zone(name: str | None) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name or "UTC")


def _imaginary(wall: datetime, zone: zoneinfo.ZoneInfo) -> bool:
    """Whether a naive wall time does not exist in `zone` (it falls in a spring-forward gap)."""
    aware = wall.replace(tzinfo=zone)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall


def _ambiguous(local: datetime) -> bool:
    """Whether an aware local time occurs twice (it falls in a fall-back repeat)."""
    return local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset()


def _skipped_between(
    schedule: str, zone: zoneinfo.ZoneInfo, start: datetime, end: datetime
) -> list[datetime]:
    """The cron's naive wall-clock matches in (start, end] that do not exist in `zone`."""
    out = []
    it = cron(schedule, start)  # naive: pure wall clock, no DST handling
    for _step in range(_WALK_LIMIT):
        wall = next(it)
        if wall > end:
            break
        if _imaginary(wall, zone):
            out.append(wall)
    return out


def _hm(value: datetime) -> str:
    return value.strftime("%H:%M")


def fire_times(schedule: str, time_zone: str | None, after: datetime, n: int) -> list[dict[str, Any]]:
    """The next `n` fire times strictly after `after`: [{utc, local, note}] (note "" unless DST applies)."""
    zone = _zone(time_zone)
    start = after.astimezone(zone)
    it = cron(schedule, start)
    # One more than asked, to tell whether a repeated time also runs at its second occurrence;
    # astimezone sets the fold and offset of each (cronsim may hand back a fold-less time).
    local = [next(it).astimezone(zone) for _fire in range(n + 1)]
    walls = [fire.replace(tzinfo=None) for fire in local]
    out = []
    prev_wall = start.replace(tzinfo=None)
    for i, fire in enumerate(local[:n]):
        wall = walls[i]
        notes = []
        if str(zone) != "UTC":
            own_slot = next(cron(schedule, wall - timedelta(seconds=1))) == wall
            for gone in _skipped_between(schedule, zone, prev_wall, wall):
                what = f"skipped hour: {_hm(gone)} does not exist on {gone:%Y-%m-%d} in {zone} "
                what += "(clocks go forward); "
                notes.append(
                    what + ("no run for it" if own_slot else f"runs at {_hm(wall)} {fire.tzname()} instead")
                )
            if _ambiguous(fire):
                twice = wall in walls[max(0, i - 1) : i] + walls[i + 1 : i + 2]
                notes.append(
                    f"repeated hour: {_hm(wall)} occurs twice on {wall:%Y-%m-%d} in {zone} "
                    f"({fire.replace(fold=0).tzname()}, then {fire.replace(fold=1).tzname()}); "
                    f"this is the {'first' if fire.fold == 0 else 'second'}; "
                    f"{'runs at both' if twice else 'runs once, at the first'}"
                )
        out.append({"utc": fire.astimezone(UTC), "local": fire, "note": "; ".join(notes)})
        prev_wall = wall
    return out


def trigger_calendar(catalog_jobs: list[dict[str, Any]], now: datetime, n: int) -> list[dict[str, Any]]:
    """Per scheduled catalog job: {trigger, shortcut, schedule, time_zone, fires}."""
    return [
        {
            "trigger": job.get("trigger") or f"{job['name']}-trigger",
            "shortcut": job["shortcut"],
            "schedule": job["schedule"],
            "time_zone": job.get("time_zone") or "UTC",
            "fires": fire_times(job["schedule"], job.get("time_zone"), now, n),
        }
        for job in catalog_jobs
        if job.get("schedule")
    ]


def fire_line(fire: dict[str, Any]) -> str:
    """'2026-03-08 07:00 UTC   2026-03-08 03:00 EDT   <note>' (the local column only off UTC)."""
    utc = fire["utc"].strftime("%Y-%m-%d %H:%M UTC")
    local = fire["local"]
    text = utc if str(local.tzinfo) == "UTC" else f"{utc}   {local:%Y-%m-%d %H:%M} {local.tzname()}"
    return f"{text}   {fire['note']}" if fire["note"] else text


def lines(
    entries: list[dict[str, Any]], deployed: dict[str, dict[str, Any]] | None = None, from_now: bool = True
) -> list[str]:
    """The calendar for operators. `deployed`: trigger name -> Cloud Scheduler's summary of it
    (module_utils/cloud_scheduler.py `summary`), to tell a trigger that is missing, paused, or
    converged to another schedule, and (`from_now`: the calendar starts at the cloud's clock)
    Cloud Scheduler's own next time (its `scheduleTime`) when it differs from the first one here."""
    out = []
    noted = False
    for entry in entries:
        head = f"{entry['trigger']} ({entry['shortcut']}): {entry['schedule']} {entry['time_zone']}"
        live = (deployed or {}).get(entry["trigger"])
        if deployed is not None and live is None:
            head += " (not deployed: make create-jobs creates it)"
        elif live:
            spec = live.get("spec") or {}
            if (spec.get("schedule"), spec.get("time_zone") or "UTC") != (
                entry["schedule"],
                entry["time_zone"],
            ):
                have = f"{spec.get('schedule')} {spec.get('time_zone') or 'UTC'}"
                head += f" (deployed: {have}; make create-jobs converges it)"
            if live.get("paused"):
                head += " (paused: no run until make resume)"
        out.append(head)
        for fire in entry["fires"]:
            out.append("  " + fire_line(fire))
            noted = noted or bool(fire["note"])
        google = parse_time((live or {}).get("schedule_time"))
        if (
            from_now
            and google
            and entry["fires"]
            and google != entry["fires"][0]["utc"]
            and not (live or {}).get("paused")
        ):
            out.append(f"  Cloud Scheduler's own next time: {google:%Y-%m-%d %H:%M} UTC")
    if noted:
        out.append(GOOGLE_DST)
    return out


def as_data(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The calendar as plain data (RFC 3339 strings) for a registered result."""
    return [
        dict(
            entry,
            fires=[
                {
                    "utc": f["utc"].strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "local": f["local"].isoformat(),
                    "note": f["note"],
                }
                for f in entry["fires"]
            ],
        )
        for entry in entries
    ]
