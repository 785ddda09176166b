"""Ledger rows (docs/ledger.md's view columns) for the report's tests and bench/report.py: deterministic.

Every scheduled job gets one row per due time of its cron in the window (a random few failed,
with a failure class, one cancelled), the release jobs a release every 5 days plus a few
manual runs, and the newest row of the first scheduled job is still running.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from cronsim import CronSim

# The view's columns as docs/ledger.md fixes them (module_utils/ledger.py owns the schema).
VIEW_COLUMNS = (
    "execution job environment trigger principal release_id creator image overrides created started "
    "completed duration_s result failure_class exit_code attempts retries task_count succeeded_count "
    "failed_count cancelled_count log_uri summary source observed_at"
).split()
CLASSES = ["exit_code", "timeout", "missing_secret", "permission", "retries_exhausted", "unknown"]


def row(job: str, execution: str, created: datetime, **fields: Any) -> dict[str, Any]:
    """One row with exactly the view's columns; `fields` override the defaults."""
    duration = fields.pop("duration_s", 12.0)
    result = fields.pop("result", "succeeded")
    started = created + timedelta(seconds=3)
    out = {
        "execution": execution,
        "job": job,
        "environment": "local",
        "trigger": "scheduler",
        "principal": "",
        "release_id": None,
        "creator": "cloudact-scheduler@cloudact-local.iam.gserviceaccount.com",
        "image": "us-central1-docker.pkg.dev/cloudact-local/cloudact/cloudact-jobs-local@sha256:" + "ab" * 32,
        "overrides": json.dumps({}),
        "created": created,
        "started": started,
        "completed": None if result == "running" else started + timedelta(seconds=duration),
        "duration_s": None if result == "running" else duration,
        "result": result,
        "failure_class": None,
        "exit_code": None,
        "attempts": 1,
        "retries": 0,
        "task_count": 1,
        "succeeded_count": 1 if result == "succeeded" else 0,
        "failed_count": 1 if result == "failed" else 0,
        "cancelled_count": 1 if result == "cancelled" else 0,
        "log_uri": f"https://console.cloud.google.com/run/jobs/executions/details/{execution}",
        "summary": None,
        "source": "job",
        "observed_at": created + timedelta(seconds=duration + 5),
    }
    out.update(fields)
    assert set(out) == set(VIEW_COLUMNS), sorted(set(out) ^ set(VIEW_COLUMNS))
    return out


def rows(jobs: list[dict[str, Any]], now: datetime, days: int = 30, seed: int = 14) -> list[dict[str, Any]]:
    """Rows for `jobs` (catalog dicts, schedules as given) over the `days` before `now`."""
    rnd = random.Random(seed)
    since = now - timedelta(days=days)
    out: list[dict[str, Any]] = []
    for job in jobs:
        name, n = job["name"], 0
        if job.get("schedule"):
            it = CronSim(job["schedule"], since.replace(tzinfo=UTC))
            for due in it:
                if due >= now:
                    break
                n += 1
                created = due + timedelta(seconds=rnd.randint(1, 20))
                pick = rnd.random()
                extra: dict[str, Any] = {"duration_s": round(rnd.uniform(2, 40), 1)}
                if pick < 0.06:
                    klass = rnd.choice(CLASSES)
                    extra.update(
                        result="failed", failure_class=klass, exit_code=1 if klass == "exit_code" else None
                    )
                elif pick < 0.08:
                    extra.update(result="cancelled", failure_class="cancelled")
                else:
                    extra["summary"] = f"Processed alerts for {rnd.randint(1, 9)} orgs"
                out.append(row(name, f"{name}-{n:05d}", created, **extra))
        else:
            start = since + timedelta(hours=5)
            while start < now:
                n += 1
                out.append(
                    row(
                        name,
                        f"{name}-{n:05d}",
                        start + timedelta(minutes=(job.get("release_order") or 1) * 2),
                        trigger="release",
                        release_id=f"r-{start:%Y%m%d}",
                        creator="ops@cloudact.ai",
                        duration_s=round(rnd.uniform(5, 90), 1),
                    )
                )
                start += timedelta(days=5)
            for k in range(3):
                n += 1
                failed = k == 1
                out.append(
                    row(
                        name,
                        f"{name}-{n:05d}",
                        since + timedelta(days=3 + 7 * k, hours=k),
                        trigger="manual",
                        principal="ops@cloudact.ai",
                        creator="ops@cloudact.ai",
                        result="failed" if failed else "succeeded",
                        failure_class="exit_code" if failed else None,
                        exit_code=1 if failed else None,
                    )
                )
    first = next(j for j in jobs if j.get("schedule"))
    latest = max((r for r in out if r["job"] == first["name"]), key=lambda r: r["created"])
    latest.update(result="running", completed=None, duration_s=None, succeeded_count=0, summary=None)
    return out
