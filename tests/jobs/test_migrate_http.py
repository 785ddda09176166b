"""supabase_migrate as a process against a local HTTP server: configuration, auth, rate limits.

The database behaviour (exactly once, atomicity, drift) is tested on localcloud's real PostgreSQL
in test_migrate_localcloud.py; these cover what the job does before and around the API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from werkzeug.wrappers import Response

ROOT = Path(__file__).resolve().parents[2]
MODULE = "jobs.manual.supabase_migrate"
REF = "abcdefghijklmnopqrst"
QUERY_PATH = f"/v1/projects/{REF}/database/query"
TOKEN = "sbp_FAKETOKEN_0123456789abcdef0123456789abcdef"  # recognisable: must never be printed


@pytest.fixture
def migrations(tmp_path):
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "01_first.sql").write_text("CREATE TABLE first (id int);\n")
    return directory


@pytest.fixture
def run(httpserver, migrations):
    def run_migrate(*args: str, **overrides: str | None):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "SUPABASE_ACCESS_TOKEN": TOKEN,
            "SUPABASE_PROJECT_REF": REF,
            "MIGRATIONS_DIR": str(migrations),
            "SUPABASE_API_URL": httpserver.url_for("/").rstrip("/"),
            "HTTP_TIMEOUT_SECONDS": "2",
            "HTTP_MAX_ATTEMPTS": "3",
            "HTTP_DEADLINE_SECONDS": "10",
            "HTTP_BACKOFF_SECONDS": "0.05",
        }
        for name, value in overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        proc = subprocess.run(
            [sys.executable, "-m", MODULE, *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        output = proc.stdout + proc.stderr
        assert TOKEN not in output, "the access token leaked into the output"
        return proc.returncode, output

    return run_migrate


def queries(httpserver) -> list[dict]:
    return [json.loads(request.get_data()) for request, _ in httpserver.log]


@pytest.mark.parametrize("name", ["SUPABASE_ACCESS_TOKEN", "SUPABASE_PROJECT_REF"])
def test_a_missing_setting_is_exit_2_naming_it(run, httpserver, name):
    code, output = run(**{name: None})
    assert code == 2
    assert f"{name} is not set" in output
    assert httpserver.log == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SUPABASE_PROJECT_REF": "Bad Ref/.."}, "SUPABASE_PROJECT_REF='Bad Ref/..' is not valid"),
        ({"MIGRATIONS_DIR": "/nonexistent/dir"}, "MIGRATIONS_DIR='/nonexistent/dir' is not a directory"),
        ({"SUPABASE_API_URL": "http://api.example.com"}, "plain http is allowed only to localhost"),
        ({"SUPABASE_ACCESS_TOKEN": TOKEN + " extra"}, "SUPABASE_ACCESS_TOKEN is not valid"),
        ({"HTTP_MAX_ATTEMPTS": "many"}, "HTTP_MAX_ATTEMPTS='many' is not valid"),
    ],
)
def test_bad_configuration_is_exit_2_before_any_request(run, httpserver, overrides, message):
    code, output = run(**overrides)
    assert code == 2, output
    assert message in output
    assert httpserver.log == []


def test_a_badly_named_file_is_refused_before_any_request(run, httpserver, migrations):
    (migrations / "2_second.sql").write_text("SELECT 1;")
    code, output = run()
    assert code == 2
    assert "'2_second.sql'" in output and "NN_name.sql" in output
    assert httpserver.log == []


def test_usage_error_is_exit_2(run, httpserver):
    code, output = run("--no-such-flag")
    assert code == 2 and "unrecognized arguments" in output
    assert httpserver.log == []


def test_a_refused_token_is_exit_1_with_a_clear_message(run, httpserver):
    httpserver.expect_request(QUERY_PATH, method="POST").respond_with_json({"message": "Unauthorized"}, 401)
    code, output = run()
    assert code == 1
    assert "access token was refused" in output and "SUPABASE_ACCESS_TOKEN" in output
    assert len(httpserver.log) == 1  # 401 is final: not retried
    request = httpserver.log[0][0]
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_unknown_project_is_exit_1_naming_the_ref(run, httpserver):
    httpserver.expect_request(QUERY_PATH, method="POST").respond_with_json(
        {"message": f"Project {REF} not found"}, 404
    )
    code, output = run()
    assert code == 1
    assert f"404 for project {REF!r}" in output and "SUPABASE_PROJECT_REF" in output


def test_429_waits_for_the_rate_limit_reset_then_retries(run, httpserver):
    # Supabase's 429 carries X-RateLimit-Reset (seconds), not Retry-After.
    httpserver.expect_ordered_request(QUERY_PATH, method="POST").respond_with_response(
        Response(
            json.dumps({"message": "Too many requests"}),
            status=429,
            headers={"X-RateLimit-Limit": "120", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"},
            mimetype="application/json",
        )
    )
    httpserver.expect_ordered_request(QUERY_PATH, method="POST").respond_with_json([{"present": True}], 201)
    httpserver.expect_ordered_request(QUERY_PATH, method="POST").respond_with_json(
        [{"filename": "01_first.sql", "checksum": None, "applied_at": "2026-01-01", "applied_by": "x"}], 201
    )
    code, output = run("--plan")
    assert code == 0, output
    assert "retrying in 1.0s (Retry-After)" in output
    assert "1 migrations already applied, 0 new" in output
    assert "01_first.sql has no checksum recorded" in output
    sent = queries(httpserver)
    assert len(sent) == 3
    assert sent[0] == sent[1]  # the same read, repeated after the wait
    assert all(q.get("read_only") is True for q in sent)  # --plan only reads


def test_plan_on_a_project_without_the_tracking_table_only_reads(run, httpserver, migrations):
    (migrations / "02_second.sql").write_text(
        "-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY i ON first (id);\n"
    )
    httpserver.expect_request(QUERY_PATH, method="POST").respond_with_json([{"present": False}], 201)
    code, output = run("--plan")
    assert code == 0, output
    assert "0 migrations already applied, 2 new" in output
    assert "would apply 01_first.sql" in output
    assert "would apply 02_second.sql (no transaction" in output
    assert "nothing was changed" in output
    sent = queries(httpserver)
    assert len(sent) == 1 and sent[0]["read_only"] is True and "to_regclass" in sent[0]["query"]


def test_a_pending_file_that_cannot_run_is_refused_before_anything_is_written(run, httpserver, migrations):
    (migrations / "02_second.sql").write_text("BEGIN;\nCREATE TABLE second (id int);\nCOMMIT;\n")
    httpserver.expect_ordered_request(QUERY_PATH, method="POST").respond_with_json([{"present": True}], 201)
    httpserver.expect_ordered_request(QUERY_PATH, method="POST").respond_with_json([], 201)
    code, output = run()
    assert code == 2
    assert "02_second.sql line 1: BEGIN controls the transaction itself" in output
    assert all(q.get("read_only") is True for q in queries(httpserver))


def test_a_sql_error_names_the_file_the_sqlstate_and_the_line(run, httpserver, migrations):
    (migrations / "01_first.sql").write_text(
        "-- one\nCREATE TABLE first (id int);\nINSERT INTO nope VALUES (1);\n"
    )
    httpserver.expect_ordered_request(QUERY_PATH, method="POST").respond_with_json([{"present": True}], 201)
    httpserver.expect_ordered_request(QUERY_PATH, method="POST").respond_with_json([], 201)
    httpserver.expect_ordered_request(QUERY_PATH, method="POST").respond_with_json(
        {
            "message": 'Failed to run sql query: ERROR:  42P01: relation "nope" does not exist\n'
            "LINE 4: INSERT INTO nope VALUES (1);\n                    ^\n"
        },
        400,
    )
    code, output = run()
    assert code == 1
    assert '01_first.sql failed: 42P01: relation "nope" does not exist (at line 3 of 01_first.sql)' in output
    assert "nothing of it was applied" in output
    apply = queries(httpserver)[2]["query"]
    assert "pg_advisory_xact_lock" in apply.split("\n")[0]
    assert "INSERT INTO nope VALUES (1);" in apply
    assert len(httpserver.log) == 3  # a SQL error is final: never re-sent


# Runs the module as __main__, as `python -m` does, then reports what got imported.
WRAPPER = """
import json, runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
print(json.dumps({"exit": code, "modules": sorted(sys.modules)}))
"""


def test_migrate_loads_no_bigquery_nor_google_credentials(httpserver, migrations):
    httpserver.expect_request(QUERY_PATH, method="POST").respond_with_json([{"present": False}], 201)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SUPABASE_ACCESS_TOKEN": TOKEN,
        "SUPABASE_PROJECT_REF": REF,
        "MIGRATIONS_DIR": str(migrations),
        "SUPABASE_API_URL": httpserver.url_for("/").rstrip("/"),
    }
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, MODULE, "--plan"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["exit"] == 0, proc.stderr
    # A Supabase token, not Google credentials: no BigQuery, no credential discovery or token transport.
    credentials = ("google.cloud", "google.oauth2", "google.auth.transport")
    assert [m for m in report["modules"] if m.startswith(credentials)] == []
    assert "requests" in report["modules"] and "google.api_core.retry" in report["modules"]
