"""Each job script's success path and behaviour against a real local HTTP server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from werkzeug.wrappers import Response

ADMIN = "/api/v1/admin"
QUOTA_OK = {"success": True, "orgs_processed": 7, "orgs_created": 3, "orgs_skipped": 4, "message": "ok"}
ALL_ALERT_TYPES = [
    "cost_threshold",
    "absolute_threshold",
    "budget_percent",
    "budget_forecast",
    "hierarchy_budget",
    "anomaly_percent_change",
    "anomaly_std_deviation",
]


def status(state: str, tables: list[str]) -> dict:
    return {
        "status": state,
        "dataset_exists": bool(tables),
        "tables_expected": 3,
        "tables_existing": tables,
        "tables_missing": [t for t in ("a", "b", "c") if t not in tables],
        "tables_extra": [],
        "schema_diffs": {},
        "message": state.lower(),
    }


def paths(api) -> list[str]:
    return [f"{req.method} {req.path}" for req, _ in api.log]


@pytest.mark.parametrize(
    ("script", "path", "summary"),
    [
        ("jobs/daily/quota_reset_daily.py", "/quota/reset-daily", "Daily quota reset complete for 7 orgs"),
        ("jobs/daily/stale_cleanup.py", "/quota/cleanup-stale", "Cleaned up 3 stale concurrent counters"),
        (
            "jobs/monthly/quota_reset_monthly.py",
            "/quota/reset-monthly",
            "Monthly quota reset complete for 7 orgs",
        ),
    ],
)
def test_quota_jobs_post_with_the_key_and_print_their_summary(api, run_job, fake_key, script, path, summary):
    # docs/cloudact-api.md: on every call
    headers = {"X-CA-Root-Key": fake_key, "Content-Type": "application/json"}
    api.expect_request(ADMIN + path, method="POST", headers=headers).respond_with_json(QUOTA_OK)
    args = ("--force",) if "monthly" in script else ()
    result = run_job(script, *args)
    assert result.returncode == 0, result.output
    assert result.stderr.rstrip().endswith(summary)
    assert paths(api) == [f"POST {ADMIN}{path}"]


def test_quota_job_reporting_failure_exits_1(api, run_job):
    api.expect_request(ADMIN + "/quota/reset-daily").respond_with_json({**QUOTA_OK, "success": False})
    result = run_job("jobs/daily/quota_reset_daily.py")
    assert result.returncode == 1
    assert "daily quota reset reported failure: ok" in result.stderr


def test_quota_monthly_does_nothing_unless_the_1st(api, run_job):
    api.expect_request(ADMIN + "/quota/reset-monthly", method="POST").respond_with_json(QUOTA_OK)
    result = run_job("jobs/monthly/quota_reset_monthly.py")
    assert result.returncode == 0, result.output
    if datetime.now(UTC).day == 1:  # the scheduled day: it must reset
        assert "Monthly quota reset complete for 7 orgs" in result.stderr
    else:
        assert api.log == []
        assert "is not the 1st of the month" in result.stderr
        assert "--force" in result.stderr


def test_org_sync_all_success(api, run_job, fake_key):
    api.expect_request(
        ADMIN + "/org-sync-all", method="POST", json={}, headers={"X-CA-Root-Key": fake_key}
    ).respond_with_json(
        {
            "success": True,
            "orgs_processed": 4,
            "orgs_synced": 4,
            "orgs_failed": 0,
            "failed_orgs": [],
            "message": "",
        }
    )
    result = run_job("jobs/manual/org_sync_all.py")
    assert result.returncode == 0, result.output
    assert result.stderr.rstrip().endswith("Synced 4 org datasets")


def test_org_sync_all_named_orgs_and_failures_exit_1_naming_them(api, run_job):
    api.expect_request(
        ADMIN + "/org-sync-all", method="POST", json={"org_slugs": ["acme_inc", "globex"]}
    ).respond_with_json(
        {
            "success": False,
            "orgs_processed": 2,
            "orgs_synced": 0,
            "orgs_failed": 2,
            "failed_orgs": [
                {"org_slug": "acme_inc", "error": "dataset locked"},
                {"org_slug": "globex", "error": "quota exceeded"},
            ],
            "message": "2 failed",
        }
    )
    result = run_job("jobs/manual/org_sync_all.py", "--org-slug", "globex", "--org-slug", "acme_inc")
    assert result.returncode == 1
    assert "Synced 0 org datasets" in result.stderr
    assert "2 of 2 orgs failed to sync: acme_inc (dataset locked), globex (quota exceeded)" in result.stderr


def test_alerts_default_body_and_summary(api, run_job):
    body = {"alert_types": ALL_ALERT_TYPES, "send_notifications": True, "dry_run": False}
    api.expect_request(ADMIN + "/alerts/process-all", method="POST", json=body).respond_with_json(
        {
            "success": True,
            "orgs_processed": 5,
            "alerts_triggered": 2,
            "notifications_sent": 2,
            "errors": 0,
            "org_errors": [],
            "message": "",
        }
    )
    result = run_job("jobs/daily/alerts_daily.py")
    assert result.returncode == 0, result.output
    assert result.stderr.rstrip().endswith("Processed alerts for 5 orgs")


def test_alerts_dry_run_for_one_org_sends_no_notifications(api, run_job):
    body = {
        "alert_types": ALL_ALERT_TYPES,
        "send_notifications": False,
        "dry_run": True,
        "org_slug": "acme_inc",
    }
    api.expect_request(ADMIN + "/alerts/process-all", method="POST", json=body).respond_with_json(
        {"success": True, "orgs_processed": 1, "alerts_triggered": 1, "notifications_sent": 0, "errors": 0}
    )
    result = run_job("jobs/daily/alerts_daily.py", "--dry-run", "--org-slug", "acme_inc")
    assert result.returncode == 0, result.output
    assert "Processed alerts for 1 orgs (dry run)" in result.stderr


def test_alerts_unknown_org_is_a_usage_error(api, run_job):
    api.expect_request(ADMIN + "/alerts/process-all").respond_with_json(
        {"detail": "org not found"}, status=404
    )
    result = run_job("jobs/daily/alerts_daily.py", "--org-slug", "nosuchorg")
    assert result.returncode == 2
    assert "--org-slug 'nosuchorg': no such organization" in result.stderr


def test_alerts_org_errors_are_logged_without_failing(api, run_job):
    api.expect_request(ADMIN + "/alerts/process-all").respond_with_json(
        {
            "success": True,
            "orgs_processed": 3,
            "errors": 1,
            "org_errors": [{"org_slug": "globex", "error": "no budget"}],
        }
    )
    result = run_job("jobs/daily/alerts_daily.py")
    assert result.returncode == 0, result.output
    assert "ERROR alerts failed for org globex (no budget)" in result.stderr


BOOT = ADMIN + "/bootstrap"


def test_bootstrap_fresh(api, run_job, fake_key):
    api.expect_ordered_request(
        BOOT + "/status", method="GET", headers={"X-CA-Root-Key": fake_key}
    ).respond_with_json(status("NOT_BOOTSTRAPPED", []))
    api.expect_ordered_request(
        BOOT, method="POST", json={"force_recreate_dataset": False, "force_recreate_tables": False}
    ).respond_with_json(
        {
            "status": "SUCCESS",
            "dataset_created": True,
            "tables_created": ["a", "b", "c"],
            "tables_existed": [],
            "total_tables": 3,
            "message": "",
            "schema_validation": {"valid": True, "errors": [], "warnings": []},
        }
    )
    result = run_job("jobs/manual/bootstrap_smart.py")
    assert result.returncode == 0, result.output
    assert result.stderr.rstrip().endswith("Bootstrap completed: 3 tables synced")
    assert paths(api) == [f"GET {BOOT}/status", f"POST {BOOT}"]


def expect_sync(api, after: dict) -> None:
    api.expect_ordered_request(
        BOOT + "/sync", method="POST", json={"sync_missing_tables": True, "sync_missing_columns": True}
    ).respond_with_json(
        {
            "status": "SUCCESS",
            "tables_created": ["c"],
            "columns_added": {"a": ["x"]},
            "errors": [],
            "message": "",
        }
    )
    api.expect_ordered_request(BOOT + "/status", method="GET").respond_with_json(after)


def test_bootstrap_409_falls_back_to_sync(api, run_job):
    api.expect_ordered_request(BOOT + "/status").respond_with_json(status("NOT_BOOTSTRAPPED", []))
    api.expect_ordered_request(BOOT, method="POST").respond_with_json(
        {"detail": "already bootstrapped"}, status=409
    )
    expect_sync(api, status("SYNCED", ["a", "b", "c"]))
    result = run_job("jobs/manual/bootstrap_smart.py")
    assert result.returncode == 0, result.output
    assert "already bootstrapped (409): syncing instead" in result.stderr
    assert result.stderr.rstrip().endswith("Bootstrap completed: 3 tables synced")
    assert paths(api) == [f"GET {BOOT}/status", f"POST {BOOT}", f"POST {BOOT}/sync", f"GET {BOOT}/status"]


def test_bootstrap_out_of_sync_syncs(api, run_job):
    api.expect_ordered_request(BOOT + "/status").respond_with_json(status("OUT_OF_SYNC", ["a", "b"]))
    expect_sync(api, status("SYNCED", ["a", "b", "c"]))
    result = run_job("jobs/manual/bootstrap_smart.py")
    assert result.returncode == 0, result.output
    assert paths(api) == [f"GET {BOOT}/status", f"POST {BOOT}/sync", f"GET {BOOT}/status"]


def test_bootstrap_sync_that_leaves_tables_missing_fails(api, run_job):
    expect_sync(api, status("OUT_OF_SYNC", ["a", "b"]))
    result = run_job("jobs/manual/bootstrap_smart.py", "--force-sync")
    assert result.returncode == 1
    assert "after sync 1 tables are still missing: c" in result.stderr


def test_bootstrap_force_fresh_skips_detection_and_uses_the_endpoint_path(api, run_job):
    base = "/v2/admin/boot"
    api.expect_ordered_request(base, method="POST").respond_with_json({"detail": "exists"}, status=409)
    api.expect_ordered_request(base + "/sync", method="POST").respond_with_json({"errors": []})
    api.expect_ordered_request(base + "/status").respond_with_json(status("SYNCED", ["a", "b", "c"]))
    result = run_job("jobs/manual/bootstrap_smart.py", "--force-fresh", API_ENDPOINT_PATH=base)
    assert result.returncode == 0, result.output
    assert paths(api) == [f"POST {base}", f"POST {base}/sync", f"GET {base}/status"]


def test_bootstrap_flags_exclude_each_other(run_job):
    result = run_job("jobs/manual/bootstrap_smart.py", "--force-fresh", "--force-sync")
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr


@pytest.mark.parametrize(
    "script",
    [
        "jobs/manual/bootstrap_smart.py",
        "jobs/manual/org_sync_all.py",
        "jobs/daily/quota_reset_daily.py",
        "jobs/daily/stale_cleanup.py",
        "jobs/daily/alerts_daily.py",
        "jobs/monthly/quota_reset_monthly.py",
    ],
)
def test_help_names_exit_codes(run_job, script):
    result = run_job(script, "--help")
    assert result.returncode == 0
    assert "Exit codes: 0 done, 1 failed" in result.stdout


def test_unexpected_response_shape_fails_clearly(api, run_job):
    api.expect_request(ADMIN + "/quota/cleanup-stale").respond_with_json(["not", "an", "object"])
    result = run_job("jobs/daily/stale_cleanup.py")
    assert result.returncode == 1
    assert "expected a JSON object, got list" in result.stderr


def test_key_echoed_in_a_401_body_is_redacted(api, run_job, fake_key):
    echo = {"detail": f"invalid root key {fake_key}; Authorization: Bearer abc.def-ghi"}
    api.expect_request(ADMIN + "/quota/reset-daily").respond_with_response(
        Response(str(echo).replace("'", '"'), 401)
    )
    result = run_job("jobs/daily/quota_reset_daily.py")
    assert result.returncode == 1
    assert "401 UNAUTHORIZED" in result.stderr
    assert "check CA_ROOT_API_KEY" in result.stderr
    assert "[REDACTED]" in result.stderr
    assert "abc.def-ghi" not in result.output
    assert len(api.log) == 1  # a 401 is final
