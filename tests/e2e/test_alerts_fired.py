"""Alerts fired, not assumed: on a localcloud of its own, `make create-jobs ENV=local` converges the local
inventory's webhook channel (localcloud's receiver, hooks.cloudact.local/cloudact-local) and a failure
policy per job; a job made to fail (its API calls refused) opens an incident that reaches the webhook
naming the job with its `make logs` line, `make incidents` lists it, and once the 300 s window holds
no failed point the webhook gets `closed` for the same incident_id; a failed attempt retried into success
sends nothing. `make doctor` has its alerts row.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest

API_HOST = "api.cloudact.local"
RECEIVER = "cloudact-local"  # the path of the URL localcloud seeds as secret cloudact-alerts-webhook-local
JOB = "cloudact-daily-stale-cleanup"
POLICY = f"{JOB} failed (local)"


def incidents(e2e) -> list[dict]:
    return [r["body"]["incident"] for r in e2e.admin.webhooks(RECEIVER)]


def step(e2e, seconds: float = 30) -> datetime:
    e2e.admin.advance(seconds)
    e2e.admin.monitoring_tick()
    return e2e.admin.now()


@pytest.mark.timeout(1800)
def test_a_failed_job_opens_an_incident_on_the_webhook_listed_by_make_incidents_then_closes(e2e):
    result = e2e.make("create-jobs", "ENV=local", timeout=1500)
    assert result.returncode == 0, result.out[-4000:]
    assert "alert policies: 8 created" in result.out, result.out[-3000:]
    result = e2e.make("incidents", "ENV=local")
    assert result.returncode == 0, result.out[-2000:]
    assert "no incident" in result.out
    result = e2e.make("doctor", "ENV=local")
    (row,) = [line for line in result.out.splitlines() if "alert policies" in line]
    assert re.search(r"\bok\b.*8 jobs, each with its failure policy notifying cloudact-local-hooks", row), row

    e2e.admin.fault(API_HOST, "/api/v1/admin/quota/cleanup-stale", count=100, status=403)
    try:
        result = e2e.make("run", "ENV=local", "JOB=stale-cleanup")
    finally:
        e2e.admin.clear_faults()
    assert result.returncode != 0, result.out[-2000:]
    failed_at = now = e2e.admin.now()

    while not incidents(e2e):
        now = step(e2e)
        assert (now - failed_at).total_seconds() < 180 + 300 + 60 + 60, (
            "no incident within ingestDelay + alignment + 60 s"
        )
    waited = (now - failed_at).total_seconds()
    print(f"emulated seconds from the failed run's end to the webhook: {waited:.0f}")
    (opened,) = incidents(e2e)
    assert opened["state"] == "open" and opened["policy_name"] == POLICY
    assert opened["resource"]["labels"]["job_name"] == JOB
    assert "`make logs ENV=local JOB=stale-cleanup`" in opened["documentation"]["content"]
    assert opened["policy_user_labels"]["cloudact_job"] == "stale-cleanup"

    result = e2e.make("incidents", "ENV=local")
    assert result.returncode == 0, result.out[-2000:]
    (row,) = [line for line in result.out.splitlines() if opened["incident_id"] in line]
    assert row.startswith("OPEN") and "stale-cleanup" in row and POLICY in row

    while len(incidents(e2e)) < 2:
        now = step(e2e)
        assert (now - failed_at).total_seconds() < 180 + 300 + 60 + 400, "the incident did not close"
    closed = incidents(e2e)[1]
    assert closed["state"] == "closed" and closed["incident_id"] == opened["incident_id"]
    result = e2e.make("incidents", "ENV=local")
    assert result.returncode == 0, result.out[-2000:]
    (row,) = [line for line in result.out.splitlines() if opened["incident_id"] in line]
    assert row.startswith("CLOSED")

    # A failed attempt that is retried and then succeeds (max_retries 1) sends nothing.
    fault = e2e.admin.fault(API_HOST, "/api/v1/admin/quota/cleanup-stale", count=1, status=403)
    try:
        result = e2e.make("run", "ENV=local", "JOB=stale-cleanup")
        fired = e2e.admin.fired_faults(fault)
    finally:
        e2e.admin.clear_faults()
    assert result.returncode == 0, result.out[-2000:]
    assert len(fired) == 1, e2e.admin.faults()  # the first attempt was refused, its retry succeeded
    retried_at = e2e.admin.now()
    while (step(e2e, 60) - retried_at).total_seconds() < 180 + 300 + 60 + 60:
        pass
    assert len(incidents(e2e)) == 2  # the open and the close of the first failure only
