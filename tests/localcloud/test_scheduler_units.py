"""Scheduler pieces that need no running localcloud: cron due times in time zones, target defaults."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from localcloud.services.run_errors import ApiError
from localcloud.services.scheduler import last_due, next_run, normalize

CASES = [
    # schedule, tz, now (UTC), next run (UTC), most recent due (UTC)
    ("0 0 * * *", "Etc/UTC", "2026-03-10T12:00:00", "2026-03-11T00:00:00", "2026-03-10T00:00:00"),
    ("5 0 1 * *", "Etc/UTC", "2026-03-10T12:00:00", "2026-04-01T00:05:00", "2026-03-01T00:05:00"),
    (
        "0 8 * * *",
        "Europe/Berlin",
        "2026-03-28T12:00:00",
        "2026-03-29T06:00:00",
        "2026-03-28T07:00:00",
    ),  # DST
    ("0 0 * * *", "America/New_York", "2026-07-01T03:59:59", "2026-07-01T04:00:00", "2026-06-30T04:00:00"),
]


@pytest.mark.parametrize(("schedule", "tz", "now", "following", "previous"), CASES)
def test_due_times_follow_the_time_zone(schedule, tz, now, following, previous):
    moment = datetime.fromisoformat(now).replace(tzinfo=UTC)
    assert next_run(schedule, tz, moment) == datetime.fromisoformat(following).replace(tzinfo=UTC)
    assert last_due(schedule, tz, moment) == datetime.fromisoformat(previous).replace(tzinfo=UTC)


def body(**target):
    return {"schedule": "0 0 * * *", "httpTarget": {"uri": "https://example.test/run", **target}}


def test_stored_defaults_are_echoed():
    job = normalize(body(oauthToken={"serviceAccountEmail": "sa@p.iam.gserviceaccount.com"}, httpMethod=0))
    assert job["timeZone"] == "Etc/UTC" and job["attemptDeadline"] == "180s"
    assert job["retryConfig"] == {
        "maxRetryDuration": "0s",
        "minBackoffDuration": "5s",
        "maxBackoffDuration": "3600s",
        "maxDoublings": 5,
    }
    target = job["httpTarget"]
    assert target["httpMethod"] == "POST" and target["headers"] == {"User-Agent": "Google-Cloud-Scheduler"}
    assert target["oauthToken"]["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    with_body = normalize(body(body="e30="))["httpTarget"]
    assert with_body["headers"]["Content-Type"] == "application/octet-stream"


@pytest.mark.parametrize(
    ("job", "needle"),
    [
        ({**body(), "schedule": "every day"}, "Invalid schedule 'every day'"),
        ({**body(), "timeZone": "Nowhere/Land"}, "Invalid time zone 'Nowhere/Land'"),
        ({**body(), "timeZone": 5}, "Invalid time zone 5"),
        (body(uri="ftp://x"), "http_target.uri"),
        (body(httpMethod="GET", body="e30="), "only with POST"),
        ({**body(), "retryConfig": {"retryCount": 9}}, "0..5"),
        ({**body(), "attemptDeadline": "5s"}, "15s to 1800s"),
        ({"schedule": "0 0 * * *"}, "exactly one target"),
    ],
)
def test_bad_jobs_name_the_value(job, needle):
    with pytest.raises(ApiError) as err:
        normalize(job)
    assert err.value.code == 400 and needle in err.value.message
