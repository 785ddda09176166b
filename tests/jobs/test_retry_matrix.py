"""The retry matrix (tests/retry_matrix.py) through every job entry point that calls an HTTP API.

Each entry point runs as a user runs it (`python -m jobs...` in a subprocess) against one threaded
pytest-httpserver that answers all of its calls, reached through a `Front` (which plays the reset
cases); the call under test gets the case's first attempt. The entry points:

- the CloudAct API jobs, through API_SERVICE_URL: each script's call, alerts both with --dry-run
  (idempotent) and without (not: notifications);
- the root key read from Secret Manager: its URL is fixed (https://secretmanager.googleapis.com), so
  the job reaches it as it reaches the real one, through HTTPS_PROXY (a `ConnectProxy`) and a CA
  bundle, the `Front` terminating TLS with a trustme certificate for that host; the token comes
  from the key file's token_uri, here the same local server;
- supabase_migrate's Management API calls, through SUPABASE_API_URL: its first read (idempotent)
  and a migration file's request (not idempotent: after a lost answer the job reads the tracking
  table, finds the file's row, and counts it applied, so it ends 0 without sending it again);
- quota_cleanup's BigQuery calls, through HTTPS_PROXY to bigquery.googleapis.com: the first query's
  jobs.insert (idempotent: the client names the job, and a repeat finds the same job). Its retry is
  google-cloud-bigquery's own policy, with Retry-After honoured (jobs/runtime/google_retry.py).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import ssl
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Request, Response

from tests.retry_matrix import CASES, Case, ConnectProxy, Fault, Front, applies

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "cloudact-local"
FAKE_KEY = "ca-root-FAKEKEY-7f3a9c1e5b2d4680"
SUPABASE_TOKEN = "sbp_FAKETOKEN_0123456789abcdef0123456789abcdef"
GOOGLE_TOKEN = "ya29.matrix-FAKE-access-token"
SECRETS = (FAKE_KEY, SUPABASE_TOKEN, GOOGLE_TOKEN)
SECRET_PATH = f"/v1/projects/{PROJECT}/secrets/ca-root-api-key/versions/latest:access"
COUNTED = {"success": True, "orgs_processed": 2, "orgs_created": 2, "orgs_skipped": 0, "message": ""}
HTTP = {  # small budgets: a read timeout well under the matrix's HOLD, a backoff well under its gaps
    "HTTP_CONNECT_TIMEOUT_SECONDS": "2",
    "HTTP_TIMEOUT_SECONDS": "1",
    "HTTP_MAX_ATTEMPTS": "4",
    "HTTP_DEADLINE_SECONDS": "10",
    "HTTP_BACKOFF_SECONDS": "0.05",
    "HTTP_BACKOFF_MAX_SECONDS": "0.2",
}


def json_response(data, status: int = 200) -> Response:
    return Response(json.dumps(data), status, mimetype="application/json")


def call(method: str, path: str, contains: str = "") -> Callable[[str, str, bytes], bool]:
    """A matcher: this method and path, and a body containing `contains`."""
    return lambda m, p, body: m == method and p == path and contains.encode() in body


# --------------------------------------------------------------------------- the CloudAct API jobs


def api_answers(request: Request) -> Response:
    """What the CloudAct API answers each job (docs/cloudact-api.md shapes)."""
    path = request.path
    if path.endswith("/bootstrap/status"):
        return json_response({"status": "SYNCED", "tables_existing": ["a"], "tables_missing": []})
    if path.endswith("/bootstrap/sync"):
        return json_response({"status": "SUCCESS", "tables_created": [], "columns_added": {}, "errors": []})
    if path.endswith("/org-sync-all"):
        return json_response({"success": True, "orgs_processed": 2, "orgs_synced": 2, "failed_orgs": []})
    if path.endswith("/alerts/process-all"):
        return json_response({**COUNTED, "alerts_triggered": 1, "notifications_sent": 1, "errors": 0})
    return json_response(COUNTED)


# --------------------------------------------------------------------------- Supabase


class Supabase:
    """The Management API's database/query over a pretend database: the tracking table and its rows."""

    def __init__(self, migration: str):
        self.checksum = hashlib.sha256(migration.encode()).hexdigest()
        self.applied = False

    def __call__(self, request: Request) -> Response:
        sql = json.loads(request.get_data())["query"]
        if "to_regclass" in sql:
            return json_response([{"present": True}], 201)
        if "SELECT filename, checksum" in sql:
            rows = [{"filename": "01_first.sql", "checksum": self.checksum}] if self.applied else []
            return json_response(rows, 201)
        if "count(*) AS n" in sql:
            return json_response(
                [{"n": int(self.applied), "checksum": self.checksum if self.applied else None}], 201
            )
        if "RETURNING execution_time_ms" in sql:
            self.applied = True
            return json_response([{"execution_time_ms": 3}], 201)
        return json_response({"message": f"unexpected query: {sql[:80]}"}, 400)


MIGRATION = "CREATE TABLE first (id int);\n"
QUERY_PATH = "/v1/projects/local/database/query"


# --------------------------------------------------------------------------- BigQuery


class BigQuery:
    """jobs.insert, jobs.get and getQueryResults of BigQuery v2, enough for quota_cleanup's two queries."""

    def __init__(self):
        self.jobs: dict[str, dict] = {}

    def __call__(self, request: Request) -> Response:
        path = request.path
        if request.method == "POST" and path.endswith("/jobs"):
            job = json.loads(request.get_data())
            job_id = job["jobReference"]["jobId"]
            count = "COUNT(*)" in job["configuration"]["query"]["query"]
            self.jobs[job_id] = {
                **job,
                "id": f"{PROJECT}:US.{job_id}",
                "jobReference": {**job["jobReference"], "location": "US"},
                "status": {"state": "DONE"},
                "statistics": {"query": {} if count else {"numDmlAffectedRows": "3"}},
                "count": count,
            }
            return json_response(self._job(job_id))
        job_id = path.rsplit("/", 1)[-1]
        if job_id not in self.jobs:
            return json_response({"error": {"code": 404, "message": f"Not found: Job {job_id}"}}, 404)
        if "/queries/" in path:
            result = {"kind": "bigquery#getQueryResultsResponse", "jobComplete": True}
            result["jobReference"] = self.jobs[job_id]["jobReference"]
            if self.jobs[job_id]["count"]:
                result |= {"schema": {"fields": [{"name": "n", "type": "INTEGER", "mode": "NULLABLE"}]}}
                result |= {"rows": [{"f": [{"v": "3"}]}], "totalRows": "1"}
            else:
                result |= {"numDmlAffectedRows": "3", "totalRows": "0"}
            return json_response(result)
        return json_response(self._job(job_id))

    def _job(self, job_id: str) -> dict:
        return {k: v for k, v in self.jobs[job_id].items() if k != "count"}


# --------------------------------------------------------------------------- the entry points


@dataclass(frozen=True)
class Entry:
    id: str
    module: str
    args: tuple[str, ...]
    idempotent: bool  # the call under test
    matches: Callable[[str, str, bytes], bool]
    done: str  # in the output when the job succeeded
    via: str = "api"  # how the server is reached: api, secret-manager, supabase, bigquery
    not_retried_exit: int = 1  # the exit code when the call's answer was lost and it was not repeated
    env: dict[str, str] = field(default_factory=dict)
    honours_retry_after: bool = True


ENTRIES = [
    Entry(
        "bootstrap",
        "jobs.manual.bootstrap_smart",
        (),
        True,
        call("POST", "/api/v1/admin/bootstrap/sync"),
        "Bootstrap completed: 1 tables synced",
    ),
    Entry(
        "org-sync-all",
        "jobs.manual.org_sync_all",
        (),
        True,
        call("POST", "/api/v1/admin/org-sync-all"),
        "Synced 2 org datasets",
    ),
    Entry(
        "quota-reset-daily",
        "jobs.daily.quota_reset_daily",
        (),
        True,
        call("POST", "/api/v1/admin/quota/reset-daily"),
        "Daily quota reset complete for 2 orgs",
    ),
    Entry(
        "stale-cleanup",
        "jobs.daily.stale_cleanup",
        (),
        True,
        call("POST", "/api/v1/admin/quota/cleanup-stale"),
        "Cleaned up 2 stale concurrent counters",
    ),
    Entry(
        "quota-reset-monthly",
        "jobs.monthly.quota_reset_monthly",
        ("--force",),
        True,
        call("POST", "/api/v1/admin/quota/reset-monthly"),
        "Monthly quota reset complete for 2 orgs",
    ),
    Entry(
        "alerts-dry-run",
        "jobs.daily.alerts_daily",
        ("--dry-run",),
        True,
        call("POST", "/api/v1/admin/alerts/process-all"),
        "Processed alerts for 2 orgs (dry run)",
    ),
    Entry(
        "alerts",
        "jobs.daily.alerts_daily",
        (),
        False,
        call("POST", "/api/v1/admin/alerts/process-all"),
        "Processed alerts for 2 orgs",
    ),
    Entry(
        "root-key-from-secret-manager",
        "jobs.daily.stale_cleanup",
        (),
        True,
        call("GET", SECRET_PATH),
        "Cleaned up 2 stale concurrent counters",
        via="secret-manager",
        env={"CA_ROOT_API_KEY_SECRET": "ca-root-api-key"},
    ),
    Entry(
        "supabase-migrate-read",
        "jobs.manual.supabase_migrate",
        (),
        True,
        call("POST", QUERY_PATH, "to_regclass"),
        "0 migrations already applied, 1 new: applied 1",
        via="supabase",
    ),
    Entry(
        "supabase-migrate-apply",
        "jobs.manual.supabase_migrate",
        (),
        False,
        call("POST", QUERY_PATH, "RETURNING execution_time_ms"),
        "0 migrations already applied, 1 new: applied 1",
        via="supabase",
        not_retried_exit=0,  # it reads the tracking table, finds the row, and counts the file applied
    ),
    Entry(
        "quota-cleanup-bigquery",
        "jobs.daily.quota_cleanup",
        (),
        True,
        call("POST", f"/bigquery/v2/projects/{PROJECT}/jobs", "COUNT(*)"),
        "Deleted 3 quota records older than 90 days",
        via="bigquery",
    ),
]

RUNS = [
    pytest.param(entry, case, id=f"{entry.id}-{case.id}")
    for entry in ENTRIES
    for case in CASES
    if applies(case, entry.idempotent)
]


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def server():
    """One threaded server per run, so a held answer holds no other request."""
    httpserver = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    httpserver.start()
    yield httpserver
    httpserver.clear()
    httpserver.stop()


@pytest.fixture(scope="module")
def private_key() -> bytes:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture
def key_file(tmp_path, server, private_key) -> Path:
    """A service-account key whose token endpoint is the local server (the job reads it as ADC)."""
    path = tmp_path / "key.json"
    key = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "k1",
        "private_key": private_key.decode(),
        "client_email": f"jobs@{PROJECT}.iam.gserviceaccount.com",
        "token_uri": server.url_for("/token"),
    }
    path.write_text(json.dumps(key))
    return path


def answers_for(entry: Entry) -> Callable[[Request], Response]:
    if entry.via == "supabase":
        return Supabase(MIGRATION)
    if entry.via == "bigquery":
        return BigQuery()
    if entry.via == "secret-manager":

        def secret_then_api(request: Request) -> Response:
            if request.path == SECRET_PATH:
                return json_response({"payload": {"data": base64.b64encode(FAKE_KEY.encode()).decode()}})
            return api_answers(request)

        return secret_then_api

    return api_answers


@pytest.mark.parametrize(("entry", "case"), RUNS)
def test_the_matrix_through_each_job_entry_point(entry: Entry, case: Case, server, key_file, ca, tmp_path):
    fault = Fault(case, entry.matches)
    answer = answers_for(entry)

    def token_or(request: Request) -> Response:
        if request.path == "/token":  # google-auth's token exchange, never faulted
            return json_response({"access_token": GOOGLE_TOKEN, "expires_in": 3600, "token_type": "Bearer"})
        return answer(request)

    server.expect_request(re.compile(".*")).respond_with_handler(fault.handler(token_or))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "GCP_PROJECT_ID": PROJECT,
        "ENVIRONMENT": "local",
        "NO_PROXY": "127.0.0.1,localhost",
        "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
        **HTTP,
        **entry.env,
    }
    host = {"secret-manager": "secretmanager.googleapis.com", "bigquery": "bigquery.googleapis.com"}.get(
        entry.via
    )
    with contextlib.ExitStack() as stack:
        tls = None
        if host:  # a fixed Google endpoint: reached through HTTPS_PROXY, with our CA for its host
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert(host).configure_cert(tls)
        front = stack.enter_context(Front(server.port, fault.should_reset, tls))
        if host:
            proxy = stack.enter_context(ConnectProxy({f"{host}:443": front.port}))
            ca_file = tmp_path / "ca.pem"
            ca.cert_pem.write_to_path(str(ca_file))
            env.update(HTTPS_PROXY=proxy.url, REQUESTS_CA_BUNDLE=str(ca_file))
        if entry.via == "api":
            env.update(API_SERVICE_URL=front.url, CA_ROOT_API_KEY=FAKE_KEY)
        if entry.via == "secret-manager":
            env["API_SERVICE_URL"] = server.url_for("/").rstrip("/")
        if entry.via == "supabase":
            migrations = tmp_path / "migrations"
            migrations.mkdir()
            (migrations / "01_first.sql").write_text(MIGRATION)
            env.update(
                SUPABASE_ACCESS_TOKEN=SUPABASE_TOKEN,
                SUPABASE_PROJECT_REF="local",
                SUPABASE_API_URL=front.url,
                MIGRATIONS_DIR=str(migrations),
            )
        proc = subprocess.run(
            [sys.executable, "-m", entry.module, *entry.args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        if host:
            assert proxy.tunnels, "the job did not go through HTTPS_PROXY"
    output = proc.stdout + proc.stderr
    assert not [s for s in SECRETS if s in output], "a secret leaked into the output"
    if case.retried:
        assert proc.returncode == 0, output
        assert entry.done in output
        assert len(fault.arrivals) == 2, output
        if entry.honours_retry_after:
            assert fault.gap() >= case.min_gap, f"retried after {fault.gap():.2f}s, not >= {case.min_gap}s"
    else:
        assert proc.returncode == entry.not_retried_exit, output
        assert len(fault.arrivals) == 1, output  # never sent twice
        assert case.error in output
        if entry.not_retried_exit == 0:
            assert entry.done in output


def test_every_case_runs_through_some_job_entry_point():
    ran = {param.values[1].id for param in RUNS}
    assert ran == {case.id for case in CASES}
