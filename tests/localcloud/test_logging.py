"""Logging v2 entries:list on localcloud: filters, order, paging; plain requests and google-cloud-logging."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import google.auth
import pytest
from google.auth.transport.requests import AuthorizedSession
from google.cloud import logging as cloud_logging

PROJECT = "cloudact-local"
LIST = "https://logging.googleapis.com/v2/entries:list"
WRITE = "https://logging.googleapis.com/v2/entries:write"
BASE = datetime(2026, 11, 26, 8, 0, 0, tzinfo=UTC)


@pytest.fixture
def session(localcloud_env):
    creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    with AuthorizedSession(creds) as s:
        yield s


def ts(seconds: float) -> str:
    return (BASE + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def run_entry(job: str, execution: str, second: float, text: str, severity: str | None = None) -> dict:
    entry = {
        "logName": f"projects/{PROJECT}/logs/run.googleapis.com%2Fstdout",
        "resource": {"type": "cloud_run_job", "labels": {"job_name": job, "location": "us-central1"}},
        "labels": {"run.googleapis.com/execution_name": execution, "run.googleapis.com/task_index": "0"},
        "timestamp": ts(second),
        "textPayload": text,
    }
    if severity:
        entry["severity"] = severity
    return entry


@pytest.fixture
def job_logs(session):
    """Two executions of one job, and a line of another job, written through entries:write."""
    job = f"job-{uuid.uuid4().hex[:8]}"
    entries = [
        run_entry(job, f"{job}-aaaaa", 0, "starting", "INFO"),
        run_entry(job, f"{job}-aaaaa", 1, "warming up"),
        run_entry(job, f"{job}-aaaaa", 2, "disk almost full", "WARNING"),
        run_entry(job, f"{job}-aaaaa", 3, "request failed: 503", "ERROR"),
        run_entry(job, f"{job}-aaaaa", 4, "Synced 3 org datasets", "INFO"),
        run_entry(job, f"{job}-bbbbb", 10, "second run", "INFO"),
        run_entry(job, f"{job}-bbbbb", 10, "same timestamp, written after", "INFO"),
        run_entry(f"other-{job}", f"other-{job}-ccccc", 1, "not this job", "ERROR"),
    ]
    resp = session.post(WRITE, json={"entries": entries})
    assert resp.status_code == 200, resp.text
    return job


def listed(session, filter_: str, **body) -> list[dict]:
    resp = session.post(LIST, json={"resourceNames": [f"projects/{PROJECT}"], "filter": filter_, **body})
    assert resp.status_code == 200, resp.text
    return resp.json().get("entries", [])


def texts(entries: list[dict]) -> list[str]:
    return [e["textPayload"] for e in entries]


def test_filters_by_job_execution_severity_time_and_text(session, job_logs):
    job = job_logs
    by_job = f'resource.type="cloud_run_job" AND resource.labels.job_name="{job}"'
    assert texts(listed(session, by_job)) == [
        "starting",
        "warming up",
        "disk almost full",
        "request failed: 503",
        "Synced 3 org datasets",
        "second run",
        "same timestamp, written after",
    ]
    execution = f'{by_job} AND labels."run.googleapis.com/execution_name"="{job}-bbbbb"'
    assert texts(listed(session, execution)) == ["second run", "same timestamp, written after"]
    assert texts(listed(session, f"{by_job} AND severity>=WARNING")) == [
        "disk almost full",
        "request failed: 503",
    ]
    window = f'{by_job} AND timestamp>="{ts(1)}" AND timestamp<"{ts(4)}"'
    assert texts(listed(session, window)) == ["warming up", "disk almost full", "request failed: 503"]
    assert texts(listed(session, f'{by_job} AND textPayload:"synced"')) == ["Synced 3 org datasets"]
    newline = f'resource.labels.job_name="{job}"\nseverity>=ERROR\ntextPayload:"503"'
    assert texts(listed(session, newline)) == ["request failed: 503"]
    assert texts(listed(session, f'resource.labels.job_name="{job}" -severity>=INFO')) == ["warming up"]


def test_order_desc_and_paging(session, job_logs):
    by_job = f'resource.labels.job_name="{job_logs}"'
    desc = texts(listed(session, by_job, orderBy="timestamp desc"))
    assert desc[:2] == ["same timestamp, written after", "second run"] and desc[-1] == "starting"
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        body = {"resourceNames": [f"projects/{PROJECT}"], "filter": by_job, "pageSize": 3}
        if token:
            body["pageToken"] = token
        page = session.post(LIST, json=body).json()
        seen += texts(page.get("entries", []))
        pages += 1
        token = page.get("nextPageToken", "")
        if not token:
            break
    assert pages == 3
    assert seen == texts(listed(session, by_job))
    other = session.post(
        LIST, json={"resourceNames": [f"projects/{PROJECT}"], "filter": "severity>=ERROR", "pageToken": "abc"}
    )
    assert other.status_code == 400


def test_entries_are_filled_in_as_cloud_logging_does(session, job_logs):
    entries = listed(session, f'resource.labels.job_name="{job_logs}"')
    first = entries[0]
    assert first["logName"] == f"projects/{PROJECT}/logs/run.googleapis.com%2Fstdout"
    assert first["insertId"] and first["receiveTimestamp"] and first["timestamp"] == "2026-11-26T08:00:00Z"
    assert first["severity"] == "INFO"
    assert "severity" not in entries[1]  # DEFAULT is omitted, as proto3 JSON does
    assert len({e["insertId"] for e in entries}) == len(entries)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"filter": "severity>=ERROR"}, "resourceNames is required"),
        ({"resourceNames": ["folders/1"]}, "folders/1"),
        ({"resourceNames": [f"projects/{PROJECT}"], "filter": "severity>=LOUD"}, "LOUD"),
        ({"resourceNames": [f"projects/{PROJECT}"], "filter": 'a="1" OR b="2"'}, "not OR"),
        ({"resourceNames": [f"projects/{PROJECT}"], "filter": 'timestamp>="yesterday"'}, "yesterday"),
        ({"resourceNames": [f"projects/{PROJECT}"], "orderBy": "severity"}, "orderBy"),
        ({"resourceNames": [f"projects/{PROJECT}"], "pageSize": -1}, "pageSize"),
    ],
)
def test_bad_requests_are_400_naming_the_value(session, body, message):
    resp = session.post(LIST, json=body)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and message in error["message"]


def test_google_cloud_logging_client_lists_entries(localcloud_env, session, job_logs):
    client = cloud_logging.Client(project=PROJECT, _use_grpc=False)
    entries = list(
        client.list_entries(
            resource_names=[f"projects/{PROJECT}"],
            filter_=f'resource.labels.job_name="{job_logs}" AND timestamp>="{ts(0)}" AND severity>=WARNING',
            order_by=cloud_logging.DESCENDING,
            page_size=1,
        )
    )
    assert [e.payload for e in entries] == ["request failed: 503", "disk almost full"]
    assert entries[0].severity == "ERROR"
    assert entries[0].resource.labels["job_name"] == job_logs
