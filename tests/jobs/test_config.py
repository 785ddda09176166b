"""Bad configuration and usage: exit 2 with one line naming the variable or flag, before any request."""

from __future__ import annotations

import json

import pytest

RESET = "jobs/daily/quota_reset_daily.py"

CASES = [
    ("missing project", {"GCP_PROJECT_ID": None}, "GCP_PROJECT_ID is not set"),
    (
        "bad project",
        {"GCP_PROJECT_ID": "Cloud Act!"},
        "GCP_PROJECT_ID='Cloud Act!' is not a valid project id",
    ),
    ("missing url", {"API_SERVICE_URL": None}, "API_SERVICE_URL is not set; it is required when ENVIRONMENT"),
    (
        "url without scheme",
        {"API_SERVICE_URL": "api.cloudact.ai"},
        "API_SERVICE_URL='api.cloudact.ai' is not",
    ),
    (
        "url bad scheme",
        {"API_SERVICE_URL": "ftp://api.cloudact.ai"},
        "API_SERVICE_URL='ftp://api.cloudact.ai'",
    ),
    ("url bad port", {"API_SERVICE_URL": "https://api:99999"}, "API_SERVICE_URL='https://api:99999' is not"),
    (
        "url query",
        {"API_SERVICE_URL": "https://api.cloudact.ai/?k=1"},
        "has no credentials, query or fragment",
    ),
    (
        "plain http off loopback",
        {"API_SERVICE_URL": "http://api.cloudact.ai"},
        "plain http is allowed only to localhost",
    ),
    ("bad environment", {"ENVIRONMENT": "prod"}, "ENVIRONMENT='prod' is not valid; use one of local,"),
    ("no key", {"CA_ROOT_API_KEY": None}, "CA_ROOT_API_KEY is not set (nor CA_ROOT_API_KEY_SECRET"),
    (
        "bad secret ref",
        {"CA_ROOT_API_KEY": None, "CA_ROOT_API_KEY_SECRET": "a/b"},
        "CA_ROOT_API_KEY_SECRET='a/b'",
    ),
    (
        "bad attempts",
        {"HTTP_MAX_ATTEMPTS": "three"},
        "HTTP_MAX_ATTEMPTS='three' is not valid; use an integer",
    ),
    ("zero deadline", {"HTTP_DEADLINE_SECONDS": "0"}, "HTTP_DEADLINE_SECONDS='0' is not valid; use a number"),
    ("bad timeout", {"HTTP_TIMEOUT_SECONDS": "nan"}, "HTTP_TIMEOUT_SECONDS='nan' is not valid"),
    ("bad endpoint", {"API_ENDPOINT_PATH": "admin/x y"}, "API_ENDPOINT_PATH='admin/x y' is not valid"),
    ("bad log level", {"LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD' is not valid"),
    ("key with a newline", {"CA_ROOT_API_KEY": "abc\ndef"}, "CA_ROOT_API_KEY holds whitespace or control"),
]


@pytest.mark.parametrize(("env", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_configuration_exits_2_naming_it(api, run_job, env, message):
    result = run_job(RESET, **env)
    assert result.returncode == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "configuration error" in result.stderr
    assert api.log == []


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("jobs/daily/alerts_daily.py", ["--org-slug", "Acme Inc"], "'Acme Inc' is not an org slug"),
        ("jobs/daily/alerts_daily.py", ["--alert-type", "nope"], "invalid choice: 'nope'"),
        ("jobs/manual/org_sync_all.py", ["--org-slug", "x;drop"], "'x;drop' is not an org slug"),
        ("jobs/daily/stale_cleanup.py", ["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_flags_exit_2(api, run_job, script, args, message):
    result = run_job(script, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert api.log == []


def test_configuration_error_is_a_json_line_in_cloud_run(api, run_job):
    result = run_job(RESET, GCP_PROJECT_ID=None, CLOUD_RUN_JOB="cloudact-daily-quota-reset")
    assert result.returncode == 2
    (entry,) = result.json_lines()
    assert entry["severity"] == "ERROR"
    assert (
        entry["message"] == "configuration error: GCP_PROJECT_ID is not set: the GCP project the job runs in"
    )


def test_json_log_lines_in_cloud_run(api, run_job):
    api.expect_request("/api/v1/admin/quota/reset-daily").respond_with_json(
        {"success": True, "orgs_processed": 9, "orgs_created": 9, "orgs_skipped": 0, "message": "done"}
    )
    result = run_job(
        RESET,
        CLOUD_RUN_JOB="cloudact-daily-quota-reset",
        CLOUD_RUN_EXECUTION="cloudact-daily-quota-reset-abc12",
        CLOUD_RUN_TASK_INDEX="0",
        CLOUD_RUN_TASK_ATTEMPT="1",
    )
    assert result.returncode == 0, result.output
    assert result.stderr == ""
    lines = result.json_lines()
    assert lines[-1]["message"] == "Daily quota reset complete for 9 orgs"
    for entry in lines:
        assert entry["severity"] == "INFO"
        assert entry["job"] == "cloudact-daily-quota-reset"
        assert entry["execution"] == "cloudact-daily-quota-reset-abc12"
        assert entry["task_index"] == 0
        assert entry["attempt"] == 1
        assert entry["time"].endswith("+00:00")
    assert json.dumps(lines).count("Daily quota reset complete") == 1


def test_retry_warnings_carry_the_http_attempt_in_cloud_run(api, run_job):
    api.expect_oneshot_request("/api/v1/admin/quota/reset-daily").respond_with_data("", status=502)
    api.expect_request("/api/v1/admin/quota/reset-daily").respond_with_json(
        {"success": True, "orgs_processed": 1}
    )
    result = run_job(RESET, CLOUD_RUN_JOB="cloudact-daily-quota-reset")
    assert result.returncode == 0, result.output
    (warning,) = [e for e in result.json_lines() if e["severity"] == "WARNING"]
    assert warning["http_attempt"] == 1
    assert warning["http_status"] == 502
