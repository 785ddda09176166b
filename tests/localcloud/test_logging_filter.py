"""The Logging filter subset as data: each case is a filter and whether it matches one Cloud Run entry."""

from __future__ import annotations

import pytest

from localcloud.services.logging_v2 import ApiError, parse_filter, term_matches

ENTRY = {
    "logName": "projects/cloudact-local/logs/run.googleapis.com%2Fstdout",
    "resource": {
        "type": "cloud_run_job",
        "labels": {"job_name": "cloudact-daily-alerts", "location": "us-central1"},
    },
    "labels": {
        "run.googleapis.com/execution_name": "cloudact-daily-alerts-x7k2p",
        "run.googleapis.com/task_index": "0",
    },
    "timestamp": "2026-11-26T08:00:01.123456789Z",
    "severity": "WARNING",
    "textPayload": "Processed alerts for 3 orgs",
}

CASES = [
    ('resource.type="cloud_run_job"', True),
    ('resource.type = "cloud_run_job"', True),
    ("resource.type=cloud_run_job", True),
    ('resource.type="cloud_run_revision"', False),
    ('resource.labels.job_name="cloudact-daily-alerts"', True),
    ('labels."run.googleapis.com/execution_name"="cloudact-daily-alerts-x7k2p"', True),
    ('labels."run.googleapis.com/execution_name"="cloudact-daily-alerts-aaaaa"', False),
    ("severity>=WARNING", True),
    ("severity>=ERROR", False),
    ("severity>=400", True),
    ("severity<WARNING", False),
    ("severity=WARNING", True),
    ('timestamp>="2026-11-26T08:00:01Z"', True),
    ('timestamp>="2026-11-26T08:00:02Z"', False),
    ('timestamp<"2026-11-26T08:00:02Z"', True),
    ('timestamp<"2026-11-26T09:00:00+01:00"', False),
    ('textPayload:"alerts for"', True),
    ('textPayload:"ALERTS"', True),
    ('textPayload:"quota"', False),
    ('textPayload="Processed alerts for 3 orgs"', True),
    ("textPayload:*", True),
    ("jsonPayload:*", False),
    ('jsonPayload.message="x"', False),
    ('jsonPayload.message!="x"', True),
    ('resource.type="cloud_run_job" AND severity>=ERROR', False),
    ('resource.type="cloud_run_job" AND severity>=INFO AND textPayload:"orgs"', True),
    ('resource.type="cloud_run_job"\nseverity>=INFO\n\ntextPayload:"orgs"', True),
    ('resource.type="cloud_run_job" severity>=INFO', True),
    ("NOT severity>=ERROR", True),
    ('-resource.labels.job_name="cloudact-daily-alerts"', False),
    ("", True),
]


@pytest.mark.parametrize(("filter_", "expected"), CASES, ids=[c[0] or "empty" for c in CASES])
def test_filter_cases(filter_, expected):
    assert all(term_matches(t, ENTRY) for t in parse_filter(filter_)) is expected


@pytest.mark.parametrize(
    ("filter_", "message"),
    [
        ('severity>=ERROR OR textPayload:"x"', "not OR"),
        ("(severity>=ERROR)", "Unsupported filter"),
        ("severity>=LOUD", "bad severity 'LOUD'"),
        ('timestamp>="last tuesday"', "bad timestamp 'last tuesday'"),
        ('"just text"', "Unsupported filter"),
    ],
)
def test_unsupported_or_bad_filters_are_refused_naming_the_problem(filter_, message):
    with pytest.raises(ApiError) as err:
        parse_filter(filter_)
    assert err.value.code == 400 and message in err.value.message
