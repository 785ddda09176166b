"""The calendar's fire times across DST changes, against times written out here by hand.

The expected times follow the documented semantics (module_utils/calendar.py's docstring): cron(8)
as cronsim's README states it for a job at a specific time, a skipped wall time runs right after
the jump and a repeated one runs once, at its first occurrence; a job with a `*` hour runs on
elapsed time (no run for a skipped time, both occurrences of a repeated one). America/New_York
in 2026: clocks go 02:00 EST -> 03:00 EDT on Sunday 2026-03-08 and 02:00 EDT -> 01:00 EST on
Sunday 2026-11-01. EST is UTC-5, EDT UTC-4. Nothing below is computed by the library under test.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ansible_collections.cloudact.gcp.plugins.module_utils import calendar as cal
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

NY = "America/New_York"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def shown(schedule: str, zone: str, start: str, n: int) -> list[tuple[str, str, str]]:
    """(UTC, local wall time with its abbreviation, note) per fire time."""
    return [
        (f["utc"].strftime("%Y-%m-%d %H:%M"), f"{f['local']:%Y-%m-%d %H:%M} {f['local'].tzname()}", f["note"])
        for f in cal.fire_times(schedule, zone, at(start), n)
    ]


SKIP_0230 = "skipped hour: 02:30 does not exist on 2026-03-08 in America/New_York (clocks go forward); "
REPEAT_0130 = "repeated hour: 01:30 occurs twice on 2026-11-01 in America/New_York (EDT, then EST); "

CASES = [
    pytest.param(
        "30 2 * * *",
        "2026-03-05T12:00:00",
        [
            ("2026-03-06 07:30", "2026-03-06 02:30 EST", ""),
            ("2026-03-07 07:30", "2026-03-07 02:30 EST", ""),
            ("2026-03-08 07:00", "2026-03-08 03:00 EDT", SKIP_0230 + "runs at 03:00 EDT instead"),
            ("2026-03-09 06:30", "2026-03-09 02:30 EDT", ""),
            ("2026-03-10 06:30", "2026-03-10 02:30 EDT", ""),
            ("2026-03-11 06:30", "2026-03-11 02:30 EDT", ""),
            ("2026-03-12 06:30", "2026-03-12 02:30 EDT", ""),
        ],
        id="02:30 daily, spring forward: runs at 03:00 EDT on the short day",
    ),
    pytest.param(
        "30 1 * * *",
        "2026-03-05T12:00:00",
        [
            ("2026-03-06 06:30", "2026-03-06 01:30 EST", ""),
            ("2026-03-07 06:30", "2026-03-07 01:30 EST", ""),
            ("2026-03-08 06:30", "2026-03-08 01:30 EST", ""),
            ("2026-03-09 05:30", "2026-03-09 01:30 EDT", ""),
        ],
        id="01:30 daily, spring forward: untouched (01:30 exists), an hour earlier in UTC after",
    ),
    pytest.param(
        "30 1 * * *",
        "2026-10-29T12:00:00",
        [
            ("2026-10-30 05:30", "2026-10-30 01:30 EDT", ""),
            ("2026-10-31 05:30", "2026-10-31 01:30 EDT", ""),
            (
                "2026-11-01 05:30",
                "2026-11-01 01:30 EDT",
                REPEAT_0130 + "this is the first; runs once, at the first",
            ),
            ("2026-11-02 06:30", "2026-11-02 01:30 EST", ""),
            ("2026-11-03 06:30", "2026-11-03 01:30 EST", ""),
            ("2026-11-04 06:30", "2026-11-04 01:30 EST", ""),
            ("2026-11-05 06:30", "2026-11-05 01:30 EST", ""),
        ],
        id="01:30 daily, fall back: once, at the first (EDT) occurrence",
    ),
    pytest.param(
        "30 2 * * *",
        "2026-10-29T12:00:00",
        [
            ("2026-10-30 06:30", "2026-10-30 02:30 EDT", ""),
            ("2026-10-31 06:30", "2026-10-31 02:30 EDT", ""),
            ("2026-11-01 07:30", "2026-11-01 02:30 EST", ""),
            ("2026-11-02 07:30", "2026-11-02 02:30 EST", ""),
        ],
        id="02:30 daily, fall back: untouched (02:30 happens once), an hour later in UTC",
    ),
    pytest.param(
        "30 * * * *",
        "2026-03-08T05:00:00",
        [
            ("2026-03-08 05:30", "2026-03-08 00:30 EST", ""),
            ("2026-03-08 06:30", "2026-03-08 01:30 EST", ""),
            ("2026-03-08 07:30", "2026-03-08 03:30 EDT", SKIP_0230 + "no run for it"),
            ("2026-03-08 08:30", "2026-03-08 04:30 EDT", ""),
        ],
        id="hourly at :30, spring forward: 02:30 has no run",
    ),
    pytest.param(
        "30 * * * *",
        "2026-11-01T04:00:00",
        [
            ("2026-11-01 04:30", "2026-11-01 00:30 EDT", ""),
            ("2026-11-01 05:30", "2026-11-01 01:30 EDT", REPEAT_0130 + "this is the first; runs at both"),
            ("2026-11-01 06:30", "2026-11-01 01:30 EST", REPEAT_0130 + "this is the second; runs at both"),
            ("2026-11-01 07:30", "2026-11-01 02:30 EST", ""),
        ],
        id="hourly at :30, fall back: both occurrences of 01:30",
    ),
    pytest.param(
        "5 0 1 * *",
        "2026-02-15T00:00:00",
        [
            ("2026-03-01 05:05", "2026-03-01 00:05 EST", ""),
            ("2026-04-01 04:05", "2026-04-01 00:05 EDT", ""),
        ],
        id="monthly 00:05: far from the change, only the offset moves",
    ),
]


@pytest.mark.parametrize(("schedule", "start", "expected"), CASES)
def test_new_york_dst_week(schedule: str, start: str, expected: list[tuple[str, str, str]]) -> None:
    assert shown(schedule, NY, start, len(expected)) == expected


def test_utc_has_no_notes_and_no_local_column() -> None:
    fires = cal.fire_times("0 2 * * *", "UTC", at("2026-03-07T12:00:00"), 2)
    assert [cal.fire_line(f) for f in fires] == ["2026-03-08 02:00 UTC", "2026-03-09 02:00 UTC"]


def test_lines_say_the_zone_the_note_and_googles_caveat_once() -> None:
    jobs = [
        {"name": "cloudact-daily-stale-cleanup", "shortcut": "stale-cleanup", "schedule": "30 2 * * *",
         "time_zone": NY, "trigger": "cloudact-daily-stale-cleanup-trigger"},
        {"name": "cloudact-manual-bootstrap", "shortcut": "bootstrap", "schedule": None, "time_zone": "UTC"},
    ]  # fmt: skip
    entries = cal.trigger_calendar(jobs, at("2026-03-07T12:00:00"), 2)
    deployed = {
        "cloudact-daily-stale-cleanup-trigger": {
            "spec": {"schedule": "0 2 * * *", "time_zone": "UTC"},
            "paused": True,
            "schedule_time": "2026-03-08T02:00:00Z",
        }
    }
    assert cal.lines(entries, deployed) == [
        "cloudact-daily-stale-cleanup-trigger (stale-cleanup): 30 2 * * * America/New_York"
        " (deployed: 0 2 * * * UTC; make create-jobs converges it) (paused: no run until make resume)",
        "  2026-03-08 07:00 UTC   2026-03-08 03:00 EDT   " + SKIP_0230 + "runs at 03:00 EDT instead",
        "  2026-03-09 06:30 UTC   2026-03-09 02:30 EDT",
        cal.GOOGLE_DST,
    ]
    assert cal.lines(entries, {})[0].endswith("(not deployed: make create-jobs creates it)")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "N='0': expected a whole number of fire times from 1 to 100, e.g. N=5"),
        ("five", "N='five': expected a whole number of fire times from 1 to 100, e.g. N=5"),
    ],
)
def test_bad_count_is_one_line(value: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        cal.check_count(value)
    assert str(info.value) == message


def test_bad_at_is_one_line() -> None:
    assert cal.check_at("") is None
    assert cal.check_at("2026-03-06T00:00:00Z") == at("2026-03-06T00:00:00")
    with pytest.raises(InputError) as info:
        cal.check_at("tomorrow")
    assert str(info.value) == (
        "AT='tomorrow': expected an RFC 3339 time, e.g. AT=2026-03-06T00:00:00Z (empty: the cloud's clock)"
    )
