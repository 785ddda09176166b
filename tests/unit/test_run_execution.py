"""module_utils/run_execution: an Execution resource -> state word, summary, overrides (data cases)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import pytest

from toolkit import ROOT

sys.path.insert(0, str(ROOT / "collections"))
from ansible_collections.cloudact.gcp.plugins.module_utils import run_execution as rx

NAME = "projects/p/locations/us-central1/jobs/cloudact-daily-alerts/executions/cloudact-daily-alerts-ab12c"


def completed(state, reason=None, message=""):
    cond = {"type": "Completed", "state": state, "message": message}
    if reason is not None:
        cond["executionReason"] = reason
    return {"conditions": [{"type": "Started", "state": "CONDITION_SUCCEEDED"}, cond]}


T0, T9 = "2026-11-26T00:00:01Z", "2026-11-26T00:00:09Z"
OK, FAIL, WAIT = "CONDITION_SUCCEEDED", "CONDITION_FAILED", "CONDITION_PENDING"
STATES = [
    ("pending", {}, "PENDING"),
    ("running", {"startTime": T0, "runningCount": 1, **completed(WAIT)}, "RUNNING"),
    ("cancelling", {"runningCount": 1, **completed(WAIT, "CANCELLING")}, "CANCELLING"),
    ("succeeded", {"completionTime": T9, "succeededCount": 1, **completed(OK)}, "SUCCEEDED"),
    ("failed", {"completionTime": T9, "failedCount": 1, **completed(FAIL, "NON_ZERO_EXIT_CODE")}, "FAILED"),
    ("cancelled", {"completionTime": T9, "cancelledCount": 1, **completed(FAIL, "CANCELLED")}, "CANCELLED"),
    ("int-enums", {"completionTime": T9, **completed(3, 2)}, "FAILED"),
    ("int-cancelled", {"completionTime": T9, **completed(3, 3)}, "CANCELLED"),
]


@pytest.mark.parametrize(("execution", "expected"), [c[1:] for c in STATES], ids=[c[0] for c in STATES])
def test_state(execution, expected) -> None:
    assert rx.state(execution) == expected


def test_summary_of_a_failed_manual_run() -> None:
    execution = {
        "name": NAME,
        "createTime": "2026-11-26T00:00:00.123456789Z",
        "startTime": "2026-11-26T00:00:01Z",
        "completionTime": "2026-11-26T00:01:16Z",
        "taskCount": 1,
        "failedCount": 1,
        "retriedCount": 1,
        "template": {
            "timeout": "1800s",
            "maxRetries": 1,
            "containers": [{"image": "i", "env": [{"name": rx.TRIGGER_ENV, "value": "manual"}]}],
        },
        **completed(
            "CONDITION_FAILED", "NON_ZERO_EXIT_CODE", "Task cloudact-daily-alerts-ab12c-task0 failed"
        ),
    }
    s = rx.summary(execution, now=datetime(2026, 11, 26, 1, tzinfo=UTC))
    assert s["name"] == "cloudact-daily-alerts-ab12c" and s["job"] == "cloudact-daily-alerts"
    assert (s["state"], s["failed"], s["retried"], s["elapsed_seconds"]) == ("FAILED", 1, 1, 75.0)
    assert (s["timeout"], s["max_retries"], s["trigger"]) == ("1800s", 1, "manual")
    assert s["reason"] == "NON_ZERO_EXIT_CODE" and "task0 failed" in s["message"]


def test_running_elapsed_counts_to_now_and_unmarked_runs_have_no_trigger() -> None:
    s = rx.summary(
        {"name": NAME, "startTime": "2026-11-26T00:00:00Z"}, now=datetime(2026, 11, 26, 0, 2, tzinfo=UTC)
    )
    assert (s["state"], s["elapsed_seconds"], s["trigger"]) == ("RUNNING", 120.0, "")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, {"containerOverrides": [{"env": [{"name": "CLOUDACT_TRIGGER", "value": "manual"}]}]}),
        (
            {"args": ["--dry-run"], "env": {"B": 2, "A": "1"}, "task_count": 2, "timeout": "15m"},
            {
                "containerOverrides": [
                    {
                        "args": ["--dry-run"],
                        "env": [
                            {"name": "A", "value": "1"},
                            {"name": "B", "value": "2"},
                            {"name": "CLOUDACT_TRIGGER", "value": "manual"},
                        ],
                    }
                ],
                "taskCount": 2,
                "timeout": "900s",
            },
        ),
        (
            {"clear_args": True, "trigger": ""},
            {"containerOverrides": [{"clearArgs": True}]},
        ),
    ],
    ids=["marker-only", "args-env-tasks-timeout", "clear-args"],
)
def test_overrides(kwargs, expected) -> None:
    assert rx.overrides(**kwargs) == expected
