"""toolkit.status: OVERDUE / FAILED / STUCK / MISSING rules and the status table, as data cases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ansible_collections.cloudact.gcp.plugins.module_utils import runs as run
from ansible_collections.cloudact.gcp.plugins.module_utils import status
from ansible_collections.cloudact.gcp.plugins.module_utils.catalog import load_catalog
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError as ToolkitError

from toolkit import ROOT

JOBS = [j.as_dict() for j in load_catalog(root=ROOT).jobs]
BY = {j["shortcut"]: j for j in JOBS}


def short(text: str) -> str:
    """'11-26 05:00' -> '2026-11-26T05:00'."""
    return "2026-" + text.replace(" ", "T")


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "tz", "now", "due"),
    [
        ("0 0 * * *", "UTC", "2026-11-26T05:00:00", "2026-11-26T00:00:00"),
        ("0 0 * * *", "UTC", "2026-11-26T00:00:00", "2026-11-26T00:00:00"),  # due now counts
        ("0 0 * * *", "UTC", "2026-11-25T23:59:59", "2026-11-25T00:00:00"),
        ("5 0 1 * *", "UTC", "2026-11-26T05:00:00", "2026-11-01T00:05:00"),
        ("0 8 * * *", "Europe/Berlin", "2026-11-26T07:30:00", "2026-11-26T07:00:00"),  # 08:00 CET = 07:00 UTC
        ("0 8 * * *", "Europe/Berlin", "2026-07-01T06:30:00", "2026-07-01T06:00:00"),  # CEST
    ],
)
def test_last_due_is_the_latest_fire_time_in_the_jobs_time_zone(schedule, tz, now, due) -> None:
    assert status.last_due(schedule, tz, t(now)) == t(due)


FLAG_CASES = [
    # id, job, deployed, job created, trigger (ON/OFF/None), last (state, created), now (2026, UTC),
    # expected flags
    ("ran-since-due", "quota-reset", True, None, "ON", ("OK", "11-26 00:00:03"), "11-26 05:00", []),
    ("not-since-due", "quota-reset", True, None, "ON", ("OK", "11-25 00:00:03"), "11-26 05:00", ["OVERDUE"]),
    ("paused-overdue", "quota-reset", True, None, "OFF", ("OK", "11-25 00:00"), "11-26 05:00", ["OVERDUE"]),
    ("within-grace", "quota-reset", True, None, "ON", ("OK", "11-25 00:00:03"), "11-26 00:05", []),
    ("deployed-after-due", "quota-reset", True, "11-26 03:00:00", "ON", None, "11-26 05:00", []),
    ("never-ran-old-job", "quota-reset", True, "11-01 03:00:00", "ON", None, "11-26 05:00", ["OVERDUE"]),
    ("failed", "alerts", True, None, "ON", ("FAIL", "11-26 08:00:01"), "11-26 09:00", ["FAILED"]),
    ("cancelled-ok", "alerts", True, None, "ON", ("CANCELLED", "11-26 08:00:01"), "11-26 09:00", []),
    # alerts: 30m timeout x (1 retry + 1) = 60m, plus 10m grace
    ("running-in-time", "alerts", True, None, "ON", ("RUNNING", "11-26 08:00:00"), "11-26 09:05", []),
    ("stuck", "alerts", True, None, "ON", ("RUNNING", "11-26 08:00:00"), "11-26 09:11", ["STUCK"]),
    ("manual-never-overdue", "bootstrap", True, None, None, None, "11-26 09:00", []),
    ("manual-failed", "bootstrap", True, None, None, ("FAIL", "11-26 08:00:00"), "11-26 09:00", ["FAILED"]),
    ("not-deployed", "alerts", False, None, None, None, "11-26 09:00", ["MISSING"]),
    ("trigger-missing", "alerts", True, None, None, ("OK", "11-26 08:00:01"), "11-26 09:00", ["MISSING"]),
    ("monthly-due", "quota-monthly", True, None, "ON", ("OK", "10-01 00:05:02"), "11-26 09:00", ["OVERDUE"]),
    ("monthly-ok", "quota-monthly", True, None, "ON", ("OK", "11-01 00:05:02"), "11-26 09:00", []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("job", "deployed", "job_created", "trigger", "last", "now", "expected"),
    [c[1:] for c in FLAG_CASES],
    ids=[c[0] for c in FLAG_CASES],
)
def test_flags(job, deployed, job_created, trigger, last, now, expected) -> None:
    last_ex = None
    if last:
        state = {"OK": "SUCCEEDED", "FAIL": "FAILED"}.get(last[0], last[0])
        last_ex = {"name": f"{job}-abcde", "state": state, "create_time": short(last[1]) + "Z"}
    got, notes = status.flags(
        BY[job],
        deployed=deployed,
        job_created=t(short(job_created)) if job_created else None,
        trigger_state={"ON": "ENABLED", "OFF": "PAUSED"}.get(trigger),
        last=last_ex,
        now=t(short(now)),
    )
    assert got == expected
    assert len(notes) == len(expected)


def _execution(job: str, state: str, created: str, trigger: str = "", elapsed: float | None = 3.0) -> dict:
    return {
        "name": f"{BY[job]['name']}-x{created[11:13]}{created[14:16]}",
        "job": BY[job]["name"],
        "state": state,
        "create_time": created,
        "start_time": created,
        "completion_time": created if state in status.FINISHED else None,
        "elapsed_seconds": elapsed,
        "trigger": trigger,
    }


def test_report_table_counts_and_extras() -> None:
    deployed = [
        {"name": j["name"], "resource": {"createTime": "2026-11-01T00:00:00Z"}}
        for j in JOBS
        if j["shortcut"] != "alerts"
    ]
    deployed.append({"name": "cloudact-bootstrap"})
    triggers = [{"name": j["trigger"], "state": "ENABLED"} for j in JOBS if j["trigger"]]
    triggers[0]["state"] = "PAUSED"
    executions = [
        _execution("quota-reset", "SUCCEEDED", "2026-11-26T00:00:02Z"),
        _execution("quota-cleanup", "SUCCEEDED", "2026-11-26T01:00:01Z"),
        _execution("bootstrap", "FAILED", "2026-11-26T04:00:00Z", trigger="manual"),
    ]
    rep = status.report(JOBS, deployed, triggers, executions, "2026-11-26T05:00:00Z")
    lines = rep["lines"]
    assert lines[0].split()[:3] == ["job", "category", "schedule"]
    assert len({len(line) for line in lines[:1]}) == 1
    row = {line.split()[0]: line for line in lines[1:9]}
    assert "succeeded (scheduler)" in row["quota-reset"] and "paused" in row["quota-reset"]
    assert "failed (manual)" in row["bootstrap"] and row["bootstrap"].endswith("FAILED")
    assert row["alerts"].endswith("MISSING")
    assert row["stale-cleanup"].endswith("OVERDUE")  # due 02:00, deployed long before, never ran
    assert lines[9] == (
        "7 of 8 jobs, 5 of 5 triggers; missing: cloudact-daily-alerts; not in the catalog: cloudact-bootstrap"
    )
    assert rep["problem"] is True
    assert rep["flagged"] == ["alerts", "bootstrap", "quota-monthly", "stale-cleanup"]


def test_report_without_problems() -> None:
    deployed = [{"name": j["name"], "resource": {"createTime": "2026-11-26T04:00:00Z"}} for j in JOBS]
    triggers = [{"name": j["trigger"], "state": "ENABLED"} for j in JOBS if j["trigger"]]
    rep = status.report(JOBS, deployed, triggers, [], "2026-11-26T05:00:00Z")
    assert rep["problem"] is False and rep["flags"] == {}
    assert rep["lines"][-1] == "8 of 8 jobs, 5 of 5 triggers"


SCHEDULER = "cloudact-scheduler@cloudact-local.iam.gserviceaccount.com"
OPERATOR = "ops@cloudact-local.iam.gserviceaccount.com"


@pytest.mark.parametrize(
    ("created", "trigger", "creator", "expected"),
    [
        # Cloud Run's own record: the trigger account created it -> scheduler; anyone else -> manual.
        ("2026-11-26T03:00:00Z", "", SCHEDULER, ("scheduler", "")),
        ("2026-11-26T00:00:02Z", "", OPERATOR, ("manual", OPERATOR)),
        # The toolkit's mark in the overrides wins: manual, or release with its id.
        ("2026-11-26T00:00:02Z", "manual", OPERATOR, ("manual", OPERATOR)),
        (
            "2026-11-26T03:00:00Z",
            "release:rel-20261126T030000Z",
            OPERATOR,
            ("release", "rel-20261126T030000Z"),
        ),
        # No creator (a summary from latestCreatedExecution): just after a due time counts as scheduled.
        ("2026-11-26T00:00:02Z", "", "", ("scheduler", "")),
        ("2026-11-26T00:09:00Z", "", "", ("scheduler", "")),
        ("2026-11-26T03:00:00Z", "", "", ("manual", "")),
    ],
)
def test_trigger_of(created, trigger, creator, expected) -> None:
    execution = {"create_time": created, "trigger": trigger, "creator": creator}
    assert status.trigger_of(BY["quota-reset"], execution, SCHEDULER) == expected
    assert status.run_by(BY["quota-reset"], execution, SCHEDULER) == expected[0]


def test_a_run_by_the_trigger_account_is_manual_when_the_account_is_not_the_environments() -> None:
    execution = {"create_time": "2026-11-26T03:00:00Z", "creator": SCHEDULER}
    assert status.run_by(BY["quota-reset"], execution, "other@p.iam.gserviceaccount.com") == "manual"


# ---- toolkit.run ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        (None, []),
        ("--dry-run", ["--dry-run"]),
        ("--org-slug 'acme corp' -x", ["--org-slug", "acme corp", "-x"]),
    ],
)
def test_parse_args(text, expected) -> None:
    assert run.parse_args(text) == expected


def test_parse_args_and_env_refuse_bad_input_naming_it() -> None:
    with pytest.raises(ToolkitError, match=r"ARGS='--x \"unbalanced': No closing quotation"):
        run.parse_args('--x "unbalanced')
    assert run.parse_env("DRY_RUN=1 NAME='a b'") == {"DRY_RUN": "1", "NAME": "a b"}
    with pytest.raises(ToolkitError, match="RUN_ENV item '1BAD=x': expected NAME=value"):
        run.parse_env("1BAD=x")


FAILURE_CASES = [
    ("cancelled", {"state": "CANCELLED"}, [], "cancelled"),
    (
        "exit",
        {"state": "FAILED", "max_retries": 0},
        ["boom", "Container called exit(1)."],
        "non-zero exit (code 1)",
    ),
    (
        "retries",
        {"state": "FAILED", "max_retries": 1, "retried": 1},
        ["Container called exit(1).", "Container called exit(1)."],
        "non-zero exit (code 1), retries exhausted (2 attempts)",
    ),
    (
        "timeout",
        {"state": "FAILED", "max_retries": 0, "timeout": "5s"},
        ["Terminating task because it has reached the maximum timeout of 5 seconds."],
        "task timeout (5s)",
    ),
    (
        "secret",
        {
            "state": "FAILED",
            "max_retries": 0,
            "message": "Secret ca-root-api-key-local version latest not found",
        },
        [],
        "missing secret",
    ),
]


@pytest.mark.parametrize(
    ("execution", "messages", "reason"), [c[1:] for c in FAILURE_CASES], ids=[c[0] for c in FAILURE_CASES]
)
def test_failure_is_named_with_the_logs_command(execution, messages, reason) -> None:
    text = run.failure(
        {"name": "job-abcde", **execution}, messages, "make logs ENV=local JOB=x EXECUTION=job-abcde"
    )
    first, second = text.splitlines()
    assert reason in first
    assert second == "full logs: make logs ENV=local JOB=x EXECUTION=job-abcde"


def test_summary_line_is_the_last_matching_line() -> None:
    lines = ["starting", "Bootstrap completed: 3 tables synced", "Container called exit(0)."]
    assert run.summary_line(lines) == "Bootstrap completed: 3 tables synced"
    assert run.summary_line(["nothing here"]) == ""


def test_release_plan_and_from() -> None:
    assert [j["shortcut"] for j in run.release_plan(JOBS)] == ["migrate", "bootstrap", "org-sync-all"]
    assert [j["shortcut"] for j in run.release_plan(JOBS, "bootstrap-sync")] == ["bootstrap", "org-sync-all"]
    with pytest.raises(
        ToolkitError,
        match="FROM='alerts' is not a release step: valid steps are migrate, bootstrap, org-sync-all",
    ):
        run.release_plan(JOBS, "alerts")


def test_dependency_warning() -> None:
    mig = {
        "job": BY["migrate"]["name"],
        "name": "m-1",
        "state": "SUCCEEDED",
        "create_time": "2026-11-26T01:00:00Z",
    }
    boot_old = {
        "job": BY["bootstrap"]["name"],
        "name": "b-0",
        "state": "SUCCEEDED",
        "create_time": "2026-11-25T01:00:00Z",
    }
    boot_new = {**boot_old, "name": "b-1", "create_time": "2026-11-26T02:00:00Z"}
    assert run.dependency_warning(BY["migrate"], JOBS, []) == ""
    assert run.dependency_warning(BY["bootstrap"], JOBS, [mig]) == ""
    assert (
        run.dependency_warning(BY["bootstrap"], JOBS, [])
        == "bootstrap depends on migrate, which has not succeeded (it never ran)"
    )
    warn = run.dependency_warning(BY["org-sync-all"], JOBS, [mig, boot_old])
    assert warn == (
        "org-sync-all depends on bootstrap, which has not succeeded since the last migrate "
        "(its last run b-0 succeeded)"
    )
    assert run.dependency_warning(BY["org-sync-all"], JOBS, [mig, boot_old, boot_new]) == ""


def test_wait_budget() -> None:
    assert run.wait_budget(900, 1) == 900 * 2 + 60
    assert run.wait_budget(60, 0, task_count=4, parallelism=2) == 60 * 2 + 60


def test_a_trigger_refused_on_run_is_denied_with_its_fix() -> None:
    deployed = [{"name": j["name"], "resource": {"createTime": "2026-11-26T04:00:00Z"}} for j in JOBS]
    triggers = [{"name": j["trigger"], "state": "ENABLED"} for j in JOBS if j["trigger"]]
    denied = {"code": 7, "message": "Permission 'run.jobs.run' denied"}
    triggers = [
        dict(t, last_attempt_status=denied) if t["name"].startswith("cloudact-daily-alerts") else t
        for t in triggers
    ]
    rep = status.report(JOBS, deployed, triggers, [], "2026-11-26T05:00:00Z", env="stage")
    assert rep["flags"] == {"alerts": ["DENIED"]}
    assert "alerts: trigger PERMISSION_DENIED on :run, make create-jobs ENV=stage restores it" in rep["notes"]
    assert rep["strict_message"] == "alerts: DENIED (STRICT=1)"
