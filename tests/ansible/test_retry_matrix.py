"""The retry matrix (tests/retry_matrix.py) through every operator-side entry point that calls an API.

A `:run` whose answer is lost is not resent blindly (module_utils/verbs.py): the module looks for the
execution carrying its run id, which this server lists once the work is done, and adopts it.

The job scripts run the same cases in tests/jobs/test_retry_matrix.py. Here the entry points are
`make status` (toolkit.live_status, a CLI) and each cloudact.gcp module family, run as an operator
runs one (`ansible localhost -m ...`, which runs the module on the controller). A real local server
(pytest-httpserver) stands in for the Google APIs, behind the matrix's TCP `Front` (which can reset
a connection); the entry points reach it through the client's documented endpoint overrides
($CLOUDACT_API_ENDPOINTS), as a user points them at a private endpoint. Every entry point must
behave as the case says: retried (after Retry-After, when given) and done, or, for a call that is
not idempotent and may have reached the server, not repeated and named "may have been applied".
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.wrappers import Request, Response

from tests.retry_matrix import CASES, Case, Fault, Front, applies

from .conftest import BIN, ROOT, base_env, environment_vars

PROJECT = "cloudact-testing-1"
REGION = "us-central1"
JOBS = f"/v2/projects/{PROJECT}/locations/{REGION}/jobs"
TRIGGERS = f"/v1/projects/{PROJECT}/locations/{REGION}/jobs"
EXECUTION = {"name": f"projects/{PROJECT}/locations/{REGION}/jobs/j/executions/j-1", "taskCount": 1}
TOKEN = "matrix-token"


class Server:
    """The normal answer of every call the entry points make, for one test: the run ids its :run calls
    carried (the work done) are listed as the job's executions."""

    def __init__(self) -> None:
        self.run_ids: list[str] = []

    def answer(self, request: Request) -> Response:
        path = request.path
        if path.endswith(":run"):
            env = ((request.get_json().get("overrides") or {}).get("containerOverrides") or [{}])[0].get(
                "env"
            ) or []
            self.run_ids.extend(e["value"] for e in env if e["name"] == "CLOUDACT_RUN_ID")
            body = {"name": "operations/o1", "metadata": EXECUTION}
        elif path.endswith("/jobs/j/executions"):
            body = {
                "executions": [
                    dict(
                        EXECUTION,
                        createTime=_now(),
                        template={"containers": [{"env": [{"name": "CLOUDACT_RUN_ID", "value": r}]}]},
                    )
                    for r in self.run_ids
                ]
            }
        elif path == "/health":
            body = {"status": "healthy", "version": "matrix", "environment": "staging"}
        elif path.startswith("/v1/projects/") and "/secrets/" in path:
            body = {"name": path.removeprefix("/v1/")}
        else:
            body = EXECUTION if path.endswith("/executions/j-1") else {}
        return Response(json.dumps(body), mimetype="application/json")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Entry:
    id: str  # a cloudact.gcp module, run with `args`; or make-status
    method: str  # the call under test
    path: str
    idempotent: bool
    args: str = ""
    looks: bool = False  # a lost answer is looked for and adopted (a :run), not an error
    action: bool = False  # a controller-side action: run with the stage environment (not auth options)

    def matches(self, method: str, path: str, _body: bytes) -> bool:
        return (method, path) == (self.method, self.path)


SECRET = f"/v1/projects/{PROJECT}/secrets/s"
WHERE = f"location={REGION}"
ENTRIES = [
    Entry("make-status", "GET", JOBS, True),
    Entry("cloud_run_job_info", "GET", JOBS, True, WHERE),
    Entry("cloud_scheduler_job_info", "GET", TRIGGERS, True, WHERE),
    Entry("cloud_logging_entries_info", "POST", "/v2/entries:list", True, "job=j"),
    Entry("secret_manager_secret_info", "GET", SECRET, True, "names=s"),
    Entry("cloudact_api_info", "GET", "/health", True, "api_url={front}", action=True),
    Entry("bigquery_dataset_info", "GET", f"/bigquery/v2/projects/{PROJECT}/datasets", True, action=True),
    Entry("cloud_run_execution", "POST", f"{JOBS}/j:run", False, "job=j", looks=True, action=True),
]
RUNS = [(e, c) for e in ENTRIES for c in CASES if applies(c, e.idempotent)]


@pytest.fixture
def key_file(tmp_path: Path, httpserver) -> Path:
    """A service-account key of the stage project whose token endpoint is the local server."""
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = tmp_path / "key.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": "k1",
                "private_key": pem.decode(),
                "client_email": f"ops@{PROJECT}.iam.gserviceaccount.com",
                "token_uri": httpserver.url_for("/token"),
            }
        )
    )
    return path


def run(entry: Entry, case: Case, front: Front, key_file: Path) -> subprocess.CompletedProcess:
    """The entry point run as an operator runs it: make status's CLI; a real module with google.cloud's
    auth options (GCP_*); an action with the stage environment a play's cloudact_env role builds, its
    credentials the matrix's key."""
    hosts = ("run.googleapis.com", "cloudscheduler.googleapis.com", "logging.googleapis.com")
    hosts += ("secretmanager.googleapis.com", "artifactregistry.googleapis.com", "bigquery.googleapis.com")
    env = base_env(None, CLOUDACT_API_ENDPOINTS=json.dumps(dict.fromkeys(hosts, front.url)))
    if entry.id == "make-status":
        env["GCP_SERVICE_ACCOUNT_FILE"] = str(key_file)
        cmd = [sys.executable, "-m", "toolkit.live_status", "stage"]
    else:
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.minimal"
        args = entry.args.format(front=front.url)
        cmd = [str(BIN / "ansible"), "localhost", "-m", f"cloudact.gcp.{entry.id}", "-a", args]
        if entry.action:
            credentials = {"kind": "serviceaccount", "file": str(key_file)}
            cmd += environment_vars("stage", None, key_file.parent, credentials)
        else:
            env.update(GCP_AUTH_KIND="accesstoken", GCP_ACCESS_TOKEN=TOKEN, GCP_PROJECT=PROJECT)
    if case.fault == "read-timeout":  # attempts bounded below the matrix's HOLD: a read timeout
        env["CLOUDACT_HTTP_TIMEOUT"] = "1.5"
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("entry", "case"), RUNS, ids=[f"{e.id}-{c.id}" for e, c in RUNS])
def test_the_matrix_through_each_operator_entry_point(entry: Entry, case: Case, httpserver, key_file):
    fault = Fault(case, entry.matches)
    httpserver.expect_request("/token", method="POST").respond_with_json(
        {"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"}
    )
    httpserver.expect_request(_anything()).respond_with_handler(fault.handler(Server().answer))
    with Front(httpserver.port, fault.should_reset) as front:
        proc = run(entry, case, front, key_file)
    output = proc.stdout + proc.stderr
    assert TOKEN not in output
    if entry.looks and not case.retried:  # the work was done and its answer lost: found, adopted
        assert proc.returncode == 0, output[-3000:]
        assert len(fault.arrivals) == 1  # never sent twice
        assert "nothing was sent twice" in output
    elif case.retried:
        assert proc.returncode == 0, output[-3000:]
        assert len(fault.arrivals) == 2, fault.arrivals
        assert fault.gap() >= case.min_gap
    else:
        assert proc.returncode != 0, output[-3000:]
        assert len(fault.arrivals) == 1  # never sent twice
        assert case.error in output


def _anything() -> Callable[[str], bool]:
    from pytest_httpserver.httpserver import URIPattern

    class Any(URIPattern):
        def match(self, uri: str) -> bool:
            return True

    return Any()


def test_every_case_runs_through_some_operator_entry_point():
    assert {c.id for _, c in RUNS} == {c.id for c in CASES}
