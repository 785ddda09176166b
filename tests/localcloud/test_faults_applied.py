"""Faults that strike after the service did the work (`applied`), their fired history, and the request log.

An applied fault is the answer Google's front end can lose after a `:run` started its execution: the
client sees a 502, a dropped connection or a timeout, and yet the execution exists. The request log
lists every proxied request in arrival order, with JSON bodies and no credentials.
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import google.auth
import pytest
import requests
from google.auth.transport.requests import AuthorizedSession
from google.cloud import run_v2
from google.protobuf import duration_pb2

from localcloud.client import LocalCloudError
from localcloud.faults import parse_fault
from localcloud.requestlog import REDACTED, redact, redact_query, stored_body

PROJECT = "cloudact-local"
PARENT = f"projects/{PROJECT}/locations/us-central1"
RUN = "https://run.googleapis.com"
SM = "https://secretmanager.googleapis.com"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
SCRIPT = "tests/localcloud/scripts/task.py"


@pytest.fixture
def admin(localcloud):
    yield localcloud.admin
    if localcloud.admin.faults():  # a fault this test armed and did not meet
        localcloud.admin.clear_faults()


@pytest.fixture
def session(localcloud_env):
    credentials, _ = google.auth.default(scopes=SCOPES)
    with AuthorizedSession(credentials) as authed:
        yield authed


@pytest.fixture
def job(localcloud_env):
    """A one-task job that prints a line; deleted (with its executions) afterwards."""
    jobs = run_v2.JobsClient(transport="rest")
    task = run_v2.TaskTemplate(
        containers=[
            run_v2.Container(
                image="us-docker.pkg.dev/cloudact-local/jobs/test:latest",
                command=["python", SCRIPT],
                args=["--lines", "1"],
            )
        ],
        timeout=duration_pb2.Duration(seconds=20),
        max_retries=0,
    )
    created = jobs.create_job(
        parent=PARENT,
        job=run_v2.Job(template=run_v2.ExecutionTemplate(task_count=1, template=task)),
        job_id=f"applied-{uuid.uuid4().hex[:8]}",
    ).result(timeout=30)
    yield created.name
    jobs.delete_job(name=created.name).result(timeout=30)


def run_path(job: str) -> str:
    return f"/v2/{job}:run"


def executions(session: AuthorizedSession, job: str) -> list[dict]:
    resp = session.get(f"{RUN}/v2/{job}/executions", timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json().get("executions", [])


def test_an_applied_502_on_run_loses_the_answer_but_the_execution_started(admin, session, job):
    session.get(f"{RUN}/v2/{job}", timeout=30).raise_for_status()  # token fetched before the fault
    mark = admin.request_seq()
    fault = admin.fault("run.googleapis.com", run_path(job), method="POST", status=502, applied=True, count=2)

    resp = session.post(f"{RUN}{run_path(job)}", json={}, timeout=30)
    assert resp.status_code == 502
    assert resp.json()["error"]["message"].startswith(f"localcloud: injected fault {fault} (502 for")
    assert len(executions(session, job)) == 1  # the work was done: one execution started
    [armed] = admin.faults()
    assert (armed["id"], armed["applied"], armed["count"], armed["fired"]) == (fault, True, 1, 1)
    assert armed["answered"] == [200]  # what the service answered, before the 502 replaced it

    assert session.post(f"{RUN}{run_path(job)}", json={}, timeout=30).status_code == 502
    assert len(executions(session, job)) == 2  # one more per :run, each answer lost
    assert admin.faults() == []  # consumed; the hits stay in the fired history
    hits = admin.fired_faults(fault)
    assert [(h["applied"], h["status"], h["answered"], h["drop"]) for h in hits] == [
        (True, 502, 200, False)
    ] * 2
    assert {(h["host"], h["method"], h["path"]) for h in hits} == {
        ("run.googleapis.com", "POST", run_path(job))
    }

    runs = [e for e in admin.request_log(after=mark) if e["path"] == run_path(job)]
    assert [(e["status"], e["fault"], e["body"]) for e in runs] == [(502, fault, {})] * 2
    assert [h["seq"] for h in hits] == [e["seq"] for e in runs]


def test_an_applied_drop_on_run_closes_the_connection_after_the_execution_started(admin, session, job):
    session.get(f"{RUN}/v2/{job}", timeout=30).raise_for_status()
    mark = admin.request_seq()
    fault = admin.fault("run.googleapis.com", run_path(job), method="POST", drop=True, applied=True)
    with pytest.raises(requests.exceptions.ConnectionError):
        session.post(f"{RUN}{run_path(job)}", json={}, timeout=30)
    assert len(executions(session, job)) == 1
    [hit] = admin.fired_faults(fault)
    assert (hit["drop"], hit["status"], hit["answered"]) == (True, None, 200)
    [logged] = [e for e in admin.request_log(after=mark) if e["path"] == run_path(job)]
    assert (logged["status"], logged["fault"]) == (None, fault)  # nothing was sent back


def test_an_applied_delay_sends_the_real_operation_late(admin, session, job):
    session.get(f"{RUN}/v2/{job}", timeout=30).raise_for_status()
    # Slower than the client's read timeout: the client gives up, the execution exists all the same.
    fault = admin.fault("run.googleapis.com", run_path(job), method="POST", delay=1.0, applied=True)
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.post(f"{RUN}{run_path(job)}", json={}, timeout=(10, 0.3))
    assert len(executions(session, job)) == 1
    [hit] = admin.fired_faults(fault)
    assert (hit["delay"], hit["status"], hit["answered"]) == (1.0, None, 200)

    # A client that waits gets the service's own answer: the operation of the execution it started.
    admin.fault("run.googleapis.com", run_path(job), method="POST", delay=0.3, applied=True)
    started = time.monotonic()
    resp = session.post(f"{RUN}{run_path(job)}", json={}, timeout=30)
    assert time.monotonic() - started >= 0.3
    assert resp.status_code == 200, resp.text
    operation = resp.json()
    assert operation["metadata"]["@type"] == "type.googleapis.com/google.cloud.run.v2.Execution"
    listed = executions(session, job)
    assert len(listed) == 2 and operation["metadata"]["name"] in [e["name"] for e in listed]


def test_a_fault_before_the_service_creates_nothing(admin, session, job):
    session.get(f"{RUN}/v2/{job}", timeout=30).raise_for_status()
    fault = admin.fault("run.googleapis.com", run_path(job), method="POST")  # 503, not applied
    resp = session.post(f"{RUN}{run_path(job)}", json={}, timeout=30)
    assert resp.status_code == 503 and resp.json()["error"]["status"] == "UNAVAILABLE"
    assert executions(session, job) == []
    [hit] = admin.fired_faults(fault)
    assert (hit["applied"], hit["status"], hit["answered"]) == (False, 503, None)  # the service never saw it


def test_an_applied_fault_on_a_create_leaves_the_resource_created(admin, session):
    secret_id = f"applied-{uuid.uuid4().hex[:8]}"
    secrets = f"{SM}/v1/projects/{PROJECT}/secrets"
    session.get(secrets, timeout=30).raise_for_status()
    admin.fault(
        "secretmanager.googleapis.com",
        f"/v1/projects/{PROJECT}/secrets",
        method="POST",
        status=503,
        retry_after=0,
        applied=True,
    )
    body = {"replication": {"automatic": {}}}
    resp = session.post(secrets, params={"secretId": secret_id}, json=body, timeout=30)
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "0"
    try:
        assert session.get(f"{secrets}/{secret_id}", timeout=30).status_code == 200
        # The caller's retry of the create meets what the lost answer hid.
        assert session.post(secrets, params={"secretId": secret_id}, json=body, timeout=30).status_code == 409
    finally:
        session.delete(f"{secrets}/{secret_id}", timeout=30)


@pytest.mark.parametrize("value", ["yes", 1, None, "true"])
def test_a_bad_applied_value_is_refused_in_one_line_naming_the_field(admin, value):
    with pytest.raises(LocalCloudError) as refused:
        admin.call("POST", "faults", {"host": "run.googleapis.com", "applied": value})
    message = str(refused.value)
    assert f"fault applied {value!r}: expected true or false" in message
    assert "\n" not in message
    assert admin.faults() == []


def test_the_request_log_lists_requests_in_order_without_credentials(admin, localcloud_env):
    secret_id = f"logged-{uuid.uuid4().hex[:8]}"
    value = f"s3cret-{uuid.uuid4().hex}".encode()
    data = base64.b64encode(value).decode()
    secrets = f"{SM}/v1/projects/{PROJECT}/secrets"
    mark = admin.request_seq()
    credentials, _ = google.auth.default(scopes=SCOPES)  # fresh: its token is fetched inside the log
    with AuthorizedSession(credentials) as session:
        created = session.post(
            secrets, params={"secretId": secret_id}, json={"replication": {"automatic": {}}}
        )
        assert created.status_code == 200, created.text
        added = session.post(f"{secrets}/{secret_id}:addVersion", json={"payload": {"data": data}})
        assert added.status_code == 200, added.text
        fault = admin.fault(
            "secretmanager.googleapis.com", f"/v1/projects/{PROJECT}/secrets", method="GET", status=429
        )
        assert session.get(secrets, params={"pageSize": 5}).status_code == 429
        session.delete(f"{secrets}/{secret_id}").raise_for_status()
    token = credentials.token
    assert token

    log = admin.request_log(after=mark)
    assert [e["seq"] for e in log] == sorted(e["seq"] for e in log) and log[0]["seq"] > mark
    mine = [e for e in log if e["host"] in ("oauth2.googleapis.com", "secretmanager.googleapis.com")]
    assert [(e["method"], e["host"], e["path"], e["status"]) for e in mine] == [
        ("POST", "oauth2.googleapis.com", "/token", 200),
        ("POST", "secretmanager.googleapis.com", f"/v1/projects/{PROJECT}/secrets", 200),
        (
            "POST",
            "secretmanager.googleapis.com",
            f"/v1/projects/{PROJECT}/secrets/{secret_id}:addVersion",
            200,
        ),
        ("GET", "secretmanager.googleapis.com", f"/v1/projects/{PROJECT}/secrets", 429),  # the fault's
        ("DELETE", "secretmanager.googleapis.com", f"/v1/projects/{PROJECT}/secrets/{secret_id}", 200),
    ]
    token_call, create, add, listed, delete = mine
    # The token endpoint's body (a signed assertion) is never kept, only its length and type.
    assert token_call["body"] is None and token_call["body_bytes"] > 0
    assert token_call["content_type"] == "application/x-www-form-urlencoded"
    assert create["body"] == {"replication": {"automatic": {}}} and create["query"] == f"secretId={secret_id}"
    assert create["content_type"] == "application/json" and create["body_bytes"] == len(
        json.dumps({"replication": {"automatic": {}}})
    )
    assert add["body"] == {"payload": {"data": REDACTED}} and add["body_bytes"] > len(data)
    assert (listed["query"], listed["fault"], listed["body"]) == ("pageSize=5", fault, None)
    assert (delete["body"], delete["body_bytes"], delete["fault"]) == (None, 0, None)
    assert all(e["time"].endswith("Z") and "T" in e["time"] for e in mine)
    assert set(log[0]) == {
        "seq",
        "time",
        "host",
        "method",
        "path",
        "query",
        "status",
        "fault",
        "body",
        "body_bytes",
        "content_type",
    }
    text = json.dumps(log)
    for secret in (token, data, value.decode(), "Bearer", "assertion", "eyJ"):
        assert secret not in text

    last = admin.request_seq()
    assert last >= delete["seq"]
    admin.reset_requests()  # DELETE /_localcloud/requests: counts and log
    assert [e for e in admin.request_log() if e["seq"] <= last] == []
    assert admin.request_seq() >= last  # seq keeps rising: an old mark stays valid
    assert secret_id not in json.dumps(admin.requests())  # the counts were reset with it
    with pytest.raises(LocalCloudError, match="after 'x': expected a request seq"):
        admin.call("GET", "requests/log?after=x")


def test_faults_delete_forgets_the_fired_history(admin, localcloud_env):
    session = requests.Session()  # no credentials needed: the fault answers before auth
    session.trust_env = True
    fault = admin.fault("secretmanager.googleapis.com", "/v1/fired-history", status=500)
    assert session.get(f"{SM}/v1/fired-history", timeout=30).status_code == 500
    assert [h["status"] for h in admin.fired_faults(fault)] == [500]
    assert admin.clear_faults() == 0  # nothing armed any more
    assert admin.fired_faults() == []


def test_redaction_rules():
    assert redact({"payload": {"data": "c2VjcmV0", "dataCrc32C": "1"}, "name": "x"}) == {
        "payload": {"data": REDACTED, "dataCrc32C": "1"},
        "name": "x",
    }
    key = {"keys": [{"privateKeyData": "LS0t", "name": "k"}], "private_key": "-----BEGIN"}
    assert redact(key) == {"keys": [{"privateKeyData": REDACTED, "name": "k"}], "private_key": REDACTED}
    assert redact({"payload": "a string payload (signJwt claims)"}) == {
        "payload": "a string payload (signJwt claims)"
    }
    assert stored_body("oauth2.googleapis.com", b'{"assertion": "x"}') is None
    assert stored_body("run.googleapis.com", b"not json") is None
    assert stored_body("run.googleapis.com", b"[" + b"1," * 40000 + b"1]") is None  # over 64 KiB
    assert stored_body("run.googleapis.com", b'{"a": 1}') == '{"a":1}'
    assert redact_query("access_token=ya29.x&pageSize=5&key=AIza") == (
        f"access_token={REDACTED}&pageSize=5&key={REDACTED}"
    )


def test_parse_fault_applied_defaults():
    assert parse_fault({"host": "h"}, 1).applied is False
    applied = parse_fault({"host": "h", "applied": True}, 1)
    assert (applied.applied, applied.status, applied.answered) == (True, 503, [])
    assert parse_fault({"host": "h", "applied": True, "drop": True}, 2).status is None
    assert parse_fault({"host": "h", "applied": True, "delay": 1}, 3).status is None
