"""The operator side's retry matrix: the same server behaviour through each entry point, the same outcome.

A real local HTTP server (pytest-httpserver) stands in for the Google APIs; the entry points reach
it through the client's documented endpoint overrides ($CLOUDACT_API_ENDPOINTS), as a user would
point them at a private endpoint. Each case is one misbehaviour of the first attempt:
- 429 with Retry-After in seconds, and as an HTTP date: retried after at least that long;
- 503 then success: retried;
- a read timeout on a non-idempotent call (Cloud Run's :run): not retried, the error says the call
  may have been applied.
The entry points: `make status` (toolkit.live_status, a CLI: three GETs) and the
cloud_run_execution module/action (`ansible localhost -m`: a POST :run, then a GET).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from email.utils import formatdate
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.wrappers import Response

from .conftest import BIN, ROOT, base_env

PROJECT = "cloudact-testing-1"
REGION = "us-central1"
JOBS = f"/v2/projects/{PROJECT}/locations/{REGION}/jobs"
TRIGGERS = f"/v1/projects/{PROJECT}/locations/{REGION}/jobs"


def first_attempt(case: str) -> Response:
    if case == "retry-after-seconds":
        return Response('{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}', 429, {"Retry-After": "1"})
    if case == "retry-after-date":
        return Response(
            '{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}',
            429,
            {"Retry-After": formatdate(time.time() + 2, usegmt=True)},
        )
    return Response('{"error": {"code": 503, "status": "UNAVAILABLE"}}', 503)


MIN_GAP = {"retry-after-seconds": 0.9, "retry-after-date": 0.9, "unavailable": 0.0}
CASES = list(MIN_GAP)


def flaky(case: str, body: dict, seen: list[float]):
    def handler(request):
        seen.append(time.monotonic())
        if len(seen) == 1:
            return first_attempt(case)
        return Response(json.dumps(body), 200, mimetype="application/json")

    return handler


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
    httpserver.expect_request("/token", method="POST").respond_with_json(
        {"access_token": "matrix-token", "expires_in": 3600, "token_type": "Bearer"}
    )
    return path


def overrides(httpserver) -> str:
    base = httpserver.url_for("/").rstrip("/")
    return json.dumps({"run.googleapis.com": base, "cloudscheduler.googleapis.com": base})


@pytest.mark.parametrize("case", CASES)
def test_make_status_retries_as_the_policy_says(httpserver, key_file, case):
    seen: list[float] = []
    httpserver.expect_request(JOBS).respond_with_handler(flaky(case, {"jobs": []}, seen))
    httpserver.expect_request(TRIGGERS).respond_with_json({"jobs": []})
    httpserver.expect_request(f"{JOBS}/-/executions").respond_with_json({})
    env = base_env(None, GCP_SERVICE_ACCOUNT_FILE=str(key_file), CLOUDACT_API_ENDPOINTS=overrides(httpserver))
    proc = subprocess.run(
        [sys.executable, "-m", "toolkit.live_status", "stage"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 of 8 jobs" in proc.stdout
    assert len(seen) == 2 and seen[1] - seen[0] >= MIN_GAP[case]
    assert "matrix-token" not in proc.stdout + proc.stderr


def run_module(httpserver, args: str) -> subprocess.CompletedProcess:
    env = base_env(
        None,
        CLOUDACT_API_ENDPOINTS=overrides(httpserver),
        GCP_AUTH_KIND="accesstoken",
        GCP_ACCESS_TOKEN="matrix-token",
        GCP_PROJECT=PROJECT,
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.minimal",
    )
    return subprocess.run(
        [str(BIN / "ansible"), "localhost", "-m", "cloudact.gcp.cloud_run_execution", "-a", args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


EXECUTION = {"name": f"projects/{PROJECT}/locations/{REGION}/jobs/j/executions/j-1", "taskCount": 1}


@pytest.mark.parametrize("case", CASES)
def test_a_run_is_retried_when_the_server_refused_it(httpserver, case):
    seen: list[float] = []
    operation = {"name": "operations/o1", "metadata": EXECUTION}
    httpserver.expect_request(f"{JOBS}/j:run", method="POST").respond_with_handler(
        flaky(case, operation, seen)
    )
    httpserver.expect_request(f"{JOBS}/j/executions/j-1").respond_with_json(EXECUTION)
    proc = run_module(httpserver, f"job=j location={REGION}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(seen) == 2 and seen[1] - seen[0] >= MIN_GAP[case]
    assert "matrix-token" not in proc.stdout + proc.stderr


def test_a_run_that_timed_out_after_it_was_sent_is_not_repeated(httpserver):
    seen: list[float] = []

    def slow(request):
        seen.append(time.monotonic())
        time.sleep(3)
        return Response(
            json.dumps({"name": "operations/o1", "metadata": EXECUTION}), mimetype="application/json"
        )

    httpserver.expect_request(f"{JOBS}/j:run", method="POST").respond_with_handler(slow)
    proc = run_module(httpserver, f"job=j location={REGION} request_deadline=1.5")
    assert proc.returncode != 0
    assert len(seen) == 1  # never sent twice
    assert "may have been applied" in proc.stdout + proc.stderr
