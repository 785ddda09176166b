"""module_utils/run_execution log helpers: the Logging filter, flat entries and printed lines (data cases)."""

from __future__ import annotations

import sys

import pytest

from toolkit import ROOT

sys.path.insert(0, str(ROOT / "collections"))
from ansible_collections.cloudact.gcp.plugins.module_utils import run_execution as rx

JOB = "cloudact-manual-bootstrap"
EXEC = JOB + "-x7k2p"
LABELS = {
    "run.googleapis.com/execution_name": EXEC,
    "run.googleapis.com/task_index": "0",
    "run.googleapis.com/task_attempt": "1",
}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((JOB,), f'resource.type="cloud_run_job" AND resource.labels.job_name="{JOB}"'),
        (
            (JOB, EXEC),
            f'resource.type="cloud_run_job" AND resource.labels.job_name="{JOB}"'
            f' AND labels."run.googleapis.com/execution_name"="{EXEC}"',
        ),
        (
            (JOB, None, "2026-11-26T00:00:00Z", "ERROR"),
            f'resource.type="cloud_run_job" AND resource.labels.job_name="{JOB}"'
            ' AND timestamp>="2026-11-26T00:00:00Z" AND severity>=ERROR',
        ),
    ],
    ids=["job", "execution", "since-and-severity"],
)
def test_log_filter(args, expected):
    assert rx.log_filter(*args) == expected


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"textPayload": "bootstrap: 21 tables, status SYNCED"}, "bootstrap: 21 tables, status SYNCED"),
        ({"jsonPayload": {"message": "synced", "orgs": 3}}, "synced"),
        ({"jsonPayload": {"orgs": 3, "a": 1}}, '{"a": 1, "orgs": 3}'),
        ({}, ""),
    ],
    ids=["text", "json-message", "json-without-message", "empty"],
)
def test_log_message(entry, message):
    assert rx.log_message(entry) == message


def test_flatten_entry_and_lines_name_the_execution_only_without_one():
    raw = [
        {"timestamp": "2026-11-26T01:02:03.4Z", "severity": "INFO", "textPayload": "start", "labels": LABELS},
        {"timestamp": "2026-11-26T01:02:04Z", "textPayload": "done", "labels": LABELS},
    ]
    entries = [rx.flatten_entry(e) for e in raw]
    assert entries[1] == {
        "timestamp": "2026-11-26T01:02:04Z",
        "severity": "DEFAULT",
        "message": "done",
        "execution": EXEC,
        "task_index": "0",
        "attempt": "1",
    }
    assert rx.log_lines(entries, JOB, EXEC) == [
        "2026-11-26 01:02:03 INFO    start",
        "2026-11-26 01:02:04 DEFAULT done",
    ]
    assert rx.log_lines(entries, JOB) == [
        "2026-11-26 01:02:03 INFO    [x7k2p] start",
        "2026-11-26 01:02:04 DEFAULT [x7k2p] done",
    ]
