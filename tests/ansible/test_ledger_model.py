"""The ledger's row model as data: observations from Cloud Run v2 Execution resources, what a writer
appends (only what changes the view), the view's SQL as localcloud's BigQuery translates it, the job
runtime's columns in step with the collection's schema, and make history's merge."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ansible_collections.cloudact.gcp.plugins.filter import ledger as history
from ansible_collections.cloudact.gcp.plugins.module_utils import ledger
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

from jobs.runtime import ledger as job_ledger

JOB = "cloudact-daily-alerts"
ALERTS = {"name": JOB, "shortcut": "alerts", "schedule": "0 8 * * *", "time_zone": "UTC"}
TRIGGER = "cloudact-scheduler@cloudact-local.iam.gserviceaccount.com"
NAME = f"projects/cloudact-local/locations/us-central1/jobs/{JOB}/executions/{JOB}-abc12"


def execution(state="SUCCEEDED", message="", retried=0, env=(), creator=TRIGGER, **extra):
    resource = {
        "name": NAME,
        "job": JOB,
        "creator": creator,
        "createTime": "2026-12-01T08:00:01.123456789Z",
        "startTime": "2026-12-01T08:00:02Z",
        "taskCount": 1,
        "template": {
            "containers": [
                {"image": "repo/cloudact-jobs-local@sha256:" + "a" * 64, "env": [dict(e) for e in env]}
            ],
            "timeout": "1800s",
            "maxRetries": 1,
        },
        "logUri": "https://console.cloud.google.com/logs/viewer?project=cloudact-local",
        "conditions": [],
    }
    if state != "RUNNING":
        resource["completionTime"] = "2026-12-01T08:00:12.5Z"
        resource["conditions"] = [
            {
                "type": "Completed",
                "state": "CONDITION_SUCCEEDED" if state == "SUCCEEDED" else "CONDITION_FAILED",
                "message": message,
                **({"executionReason": "CANCELLED"} if state == "CANCELLED" else {}),
            }
        ]
        key = {"SUCCEEDED": "succeededCount", "FAILED": "failedCount", "CANCELLED": "cancelledCount"}[state]
        resource[key] = 1
    else:
        resource["runningCount"] = 1
    if retried:
        resource["retriedCount"] = retried
    resource.update(extra)
    return resource


CASES = [
    (
        "scheduled success",
        execution(),
        {
            "result": "succeeded",
            "failure_class": None,
            "trigger": "scheduler",
            "principal": "",
            "duration_s": 10.5,
            "exit_code": None,
        },
    ),
    (
        "manual run, the toolkit's mark",
        execution(env=[{"name": "CLOUDACT_TRIGGER", "value": "manual"}], creator="ops@example.com"),
        {"trigger": "manual", "principal": "ops@example.com", "overrides": '{"env":["CLOUDACT_TRIGGER"]'},
    ),
    (
        "release step",
        execution(env=[{"name": "CLOUDACT_TRIGGER", "value": "release:rel-20261201T080000Z"}]),
        {"trigger": "release", "release_id": "rel-20261201T080000Z", "principal": ""},
    ),
    (
        "timed out, retried",
        execution(
            "FAILED",
            "Task x-task0 failed: the task exceeded its timeout of 1800s and was killed.",
            retried=1,
        ),
        {"result": "failed", "failure_class": "timeout", "attempts": 2, "retries": 1},
    ),
    (
        "non-zero exit",
        execution("FAILED", "Task x-task0 failed with exit code 3. Execution x has failed to complete."),
        {"result": "failed", "failure_class": "exit_code", "exit_code": 3},
    ),
    (
        "retries exhausted",
        execution("FAILED", "Task x-task0 failed with exit code 1.", retried=1),
        {"failure_class": "retries_exhausted", "exit_code": 1},
    ),
    (
        "missing secret",
        execution("FAILED", "secret ca-root-api-key-local not found"),
        {"failure_class": "missing_secret"},
    ),
    ("cancelled", execution("CANCELLED"), {"result": "cancelled", "failure_class": "cancelled"}),
    ("running", execution("RUNNING"), {"result": "running", "completed": None, "duration_s": None}),
]


@pytest.mark.parametrize(("resource", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_observation_from_an_execution(resource, expected):
    obs = ledger.observation_from_execution(resource, ALERTS, "local", trigger_account=TRIGGER)
    assert set(obs) == {f[0] for f in ledger.BASE_FIELDS}
    assert obs["execution"] == f"{JOB}-abc12" and obs["job"] == JOB and obs["environment"] == "local"
    assert obs["created"] == datetime(2026, 12, 1, 8, 0, 1, 123456, tzinfo=UTC)
    assert obs["image"].endswith("@sha256:" + "a" * 64)
    assert obs["source"] == "reconcile" and obs["schema_version"] == ledger.SCHEMA_VERSION
    for key, value in expected.items():
        if key == "overrides":
            assert obs[key].startswith(value), obs[key]
        else:
            assert obs[key] == value, (key, obs[key])


def test_env_values_never_reach_the_overrides():
    resource = execution(env=[{"name": "DRY_RUN", "value": "s3cr3t-looking"}])
    assert "s3cr3t" not in ledger.observation_from_execution(resource, ALERTS, "local")["overrides"]


def shown(obs, **changes):
    row = {c: obs.get(c) for c in ledger.COLUMNS}
    row.update(changes)
    return row


def test_a_writer_appends_only_what_changes_the_view():
    done = ledger.observation_from_execution(execution(), ALERTS, "local", trigger_account=TRIGGER)
    assert ledger.changes(done, None)  # not in the ledger yet
    assert not ledger.changes(done, shown(done))  # the same again: nothing to add
    assert not ledger.changes(dict(done, observed_at=datetime.now(UTC)), shown(done))
    assert ledger.changes(done, shown(done, result="running", completed=None))  # it finished since
    running = ledger.observation_from_execution(execution("RUNNING"), ALERTS, "local")
    assert not ledger.changes(running, shown(done))  # would not rank first: a finished one does
    # The job's own line after Cloud Run's record: only its summary is news.
    job_line = dict(done, source="job", summary=None, creator=None, completed=datetime.now(UTC))
    assert not ledger.changes(job_line, shown(done))
    assert ledger.changes(dict(job_line, summary="Processed alerts for 3 orgs"), shown(done))


def test_insert_ids_follow_the_observed_state():
    obs = ledger.observation_from_execution(execution(), ALERTS, "local")
    later = dict(obs, observed_at=datetime.now(UTC))
    assert ledger.insert_id(obs) == ledger.insert_id(later)
    assert ledger.insert_id(obs) != ledger.insert_id(dict(obs, result="failed"))


def test_the_view_sql_translates_for_localcloud_bigquery():
    from localcloud import bq_sql

    sql = ledger.view_sql("cloudact-local", "cloudact_ops")
    (translated,) = bq_sql.translate(sql, "cloudact-local", datetime.now(UTC))
    assert translated.statement_type == "SELECT"
    assert "QUALIFY" in translated.sql


@pytest.mark.parametrize(
    ("project", "dataset"), [("cloudact-local", "ops; DROP"), ("Bad_Project", "cloudact_ops")]
)
def test_names_spliced_into_sql_are_checked(project, dataset):
    with pytest.raises(InputError, match=r"project|dataset"):
        ledger.view_sql(project, dataset)


def test_the_jobs_row_has_the_ledgers_columns():
    environ = {
        "CLOUD_RUN_EXECUTION": f"{JOB}-abc12",
        "CLOUD_RUN_JOB": JOB,
        "CLOUD_RUN_TASK_COUNT": "1",
        "CLOUD_RUN_TASK_ATTEMPT": "1",
        "CLOUDACT_ENV": "local",
        "CLOUDACT_TRIGGER": "release:rel-1",
    }
    row = job_ledger.observation(0, "Processed alerts for 3 orgs", 1000.0, 1002.5, environ)
    assert set(row) <= {f[0] for f in ledger.BASE_FIELDS}
    assert job_ledger.SCHEMA_VERSION == ledger.SCHEMA_VERSION and job_ledger.TABLE == ledger.TABLE
    required = [f[0] for f in ledger.BASE_FIELDS if f[2] == "REQUIRED"]
    assert all(row[name] for name in required)
    assert row["result"] == "succeeded" and row["trigger"] == "release" and row["release_id"] == "rel-1"
    assert row["attempts"] == 2 and row["retries"] == 1 and row["duration_s"] == 2.5
    failed = job_ledger.observation(1, "job failed: boom", 1000.0, 1001.0, environ)
    assert (
        failed["result"] == "failed" and failed["exit_code"] == 1 and failed["failure_class"] == "exit_code"
    )


def test_history_says_where_each_row_came_from():
    live = [
        {"name": "e3", "state": "RUNNING", "create_time": "2026-12-03T08:00:00Z", "creator": TRIGGER},
        {"name": "e2", "state": "SUCCEEDED", "create_time": "2026-12-02T08:00:00Z", "creator": TRIGGER},
    ]
    rows = [
        {"execution": "e2", "result": "succeeded", "created": "2026-12-02T08:00:00Z", "trigger": "scheduler"},
        {
            "execution": "e1",
            "result": "failed",
            "created": "2026-12-01T08:00:00Z",
            "started": "2026-12-01T08:00:01Z",
            "duration_s": 75.0,
            "trigger": "manual",
            "principal": "ops@example.com",
        },
    ]
    merged = history.merged_history(ALERTS, live, rows, "2026-12-03T08:00:30Z", TRIGGER)
    assert [(e["execution"], e["source"]) for e in merged] == [
        ("e3", "live"),
        ("e2", "both"),
        ("e1", "ledger"),
    ]
    lines = history.history_lines(ALERTS, live, rows, "2026-12-03T08:00:30Z", TRIGGER, limit=2)
    assert lines[0].startswith(
        f"{JOB}: last 2 execution(s): 1 in Cloud Run and the ledger, 1 in Cloud Run only"
    )
    assert len(lines) == 4  # the count line, the header, two rows
    full = history.history_lines(ALERTS, live, rows, "2026-12-03T08:00:30Z", TRIGGER)
    assert full[-1].split()[1:3] == ["ledger", "failed"] and full[-1].endswith("manual (ops@example.com)")
    assert "1m15s" in full[-1]


def test_the_converge_summary_has_a_ledger_line():
    from ansible_collections.cloudact.gcp.plugins.filter import converge

    ops = ["create dataset cloudact_ops", "create table job_execution_observations"]
    planned = converge.converge_summary({}, {}, check=True, ledger={"operations": ops})
    assert (
        planned["lines"][0]
        == "ledger: would create dataset cloudact_ops; create table job_execution_observations"
    )
    assert converge.converge_summary({}, {}, ledger={"operations": []})["lines"][0] == "ledger: unchanged"
    assert not any(line.startswith("ledger") for line in converge.converge_summary({}, {})["lines"])
