"""localcloud's core in-process (no subprocess, no databases): dispatch, errors, the Cloud API of services."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from werkzeug.wrappers import Request, Response

from localcloud.auth import Auth
from localcloud.client import AdminClient, LocalCloudError
from localcloud.server import LocalCloud
from localcloud.service import Service, Unauthenticated, json_response


class Probe(Service):
    """A service for the core's own tests: echoes, fails, authenticates, counts clock changes."""

    name = "probe"
    hosts = ("probe.googleapis.com",)

    def __init__(self, cloud):
        super().__init__(cloud)
        self.clock_changes = 0

    def handle(self, request: Request) -> Response:
        if request.path == "/boom":
            raise RuntimeError("kaboom")
        if request.path == "/whoami":
            return json_response({"principal": self.cloud.authenticate(request)})
        return json_response(
            {
                "method": request.method,
                "path": request.path,
                "args": request.args.to_dict(),
                "body": request.get_data(as_text=True),
                "host": request.host,
                "scheme": request.scheme,
            }
        )

    def handle_admin(self, request: Request, subpath: str) -> Response:
        return json_response({"admin": subpath, "method": request.method})

    def clock_changed(self) -> None:
        self.clock_changes += 1


@pytest.fixture(scope="module")
def cloud():
    root = Path(tempfile.mkdtemp(prefix="localcloud-test-"))
    lc = LocalCloud(
        root / "state",
        0,
        service_specs=["oauth2:OAuth2", "secretmanager:SecretManager", "logging_v2:Logging"],
    )
    lc.register(Probe(lc))
    lc.start()
    try:
        yield lc
    finally:
        lc.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def session(cloud):
    s = requests.Session()
    s.trust_env = False
    s.proxies = {"https": cloud.proxy_url}
    s.verify = str(cloud.ca_file)
    s.headers["Authorization"] = (
        f"Bearer {cloud.mint_token('cloudact-operator@cloudact-local.iam.gserviceaccount.com')}"
    )
    with s:
        yield s


def test_a_service_exception_is_a_logged_500_and_the_connection_lives_on(cloud, session, caplog):
    with caplog.at_level(logging.ERROR, logger="localcloud"):
        resp = session.get("https://probe.googleapis.com/boom")
    assert resp.status_code == 500
    error = resp.json()["error"]
    assert error["status"] == "INTERNAL" and "RuntimeError: kaboom" in error["message"]
    assert any("probe failed on GET /boom" in r.getMessage() for r in caplog.records)
    assert session.get("https://probe.googleapis.com/echo").status_code == 200


def test_requests_reach_the_service_as_sent(session):
    resp = session.post(
        "https://probe.googleapis.com/v2/projects/p/jobs/j%20x:run?a=1&b=two%20words", data=b"payload"
    )
    assert resp.json() == {
        "method": "POST",
        "path": "/v2/projects/p/jobs/j x:run",
        "args": {"a": "1", "b": "two words"},
        "body": "payload",
        "host": "probe.googleapis.com",
        "scheme": "https",
    }
    head = session.head("https://probe.googleapis.com/echo")
    assert head.status_code == 200 and int(head.headers["Content-Length"]) > 0 and head.content == b""


def test_minted_tokens_name_their_principal(cloud, session):
    assert session.get("https://probe.googleapis.com/whoami").json() == {
        "principal": "cloudact-operator@cloudact-local.iam.gserviceaccount.com"
    }
    cloud.iam.create_account("cloudact-local", "scheduler-invoker", {})  # a token needs its account
    other = cloud.mint_token("scheduler-invoker@cloudact-local.iam.gserviceaccount.com")
    resp = session.get("https://probe.googleapis.com/whoami", headers={"Authorization": f"Bearer {other}"})
    assert resp.json()["principal"] == "scheduler-invoker@cloudact-local.iam.gserviceaccount.com"
    with pytest.raises(ValueError, match="cloudact-elsewhere"):
        cloud.mint_token("cloudact-jobs@cloudact-elsewhere.iam.gserviceaccount.com")
    resp = session.get("https://probe.googleapis.com/whoami", headers={"Authorization": ""})
    assert resp.status_code == 401 and resp.json()["error"]["status"] == "UNAUTHENTICATED"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_admin_calls_reach_the_service_and_clock_changes_are_announced(cloud):
    probe = cloud.service("probe")
    assert requests.put(f"{cloud.proxy_url}/_localcloud/probe/x/y", timeout=10).json() == {
        "admin": "x/y",
        "method": "PUT",
    }
    before = probe.clock_changes
    requests.post(
        f"{cloud.proxy_url}/_localcloud/clock", json={"advance": "60s"}, timeout=10
    ).raise_for_status()
    assert probe.clock_changes == before + 1
    with pytest.raises(KeyError, match="no localcloud service named 'nope'"):
        cloud.service("nope")


def test_secret_value_for_services(cloud):
    sm = cloud.service("secretmanager")
    value = cloud.secret_value("ca-root-api-key-local")
    assert value is not None and len(value) >= 32
    assert cloud.secret_value("projects/cloudact-local/secrets/ca-root-api-key-local", "1") == value
    assert cloud.secret_value("ca-root-api-key-local", "2") is None
    assert cloud.secret_value("no-such-secret") is None
    assert cloud.secret_value("ca-root-api-key-local", project="other-project") is None
    name = "projects/cloudact-local/secrets/ca-root-api-key-local"
    sm._secrets[name]["_versions"][0]["state"] = "DISABLED"  # as :disable would
    try:
        assert cloud.secret_value("ca-root-api-key-local") is None
    finally:
        sm._secrets[name]["_versions"][0]["state"] = "ENABLED"


def test_logging_write_for_services(cloud):
    log = cloud.service("logging")
    stored = log.write(
        [
            {"logName": "projects/cloudact-local/logs/inproc", "textPayload": "a", "severity": 500},
            {"logName": "projects/cloudact-local/logs/inproc", "textPayload": "b"},
        ]
    )
    assert stored[0]["severity"] == "ERROR" and stored[0]["insertId"] and stored[0]["timestamp"]
    assert stored[0]["insertId"] < stored[1]["insertId"]  # arrival order breaks timestamp ties
    entries, token = log.list(["cloudact-local"], 'logName="projects/cloudact-local/logs/inproc"')
    assert [e["textPayload"] for e in entries] == ["a", "b"] and token == ""
    with pytest.raises(ValueError, match="entry 0: logName 'inproc'"):
        log.write([{"logName": "inproc", "textPayload": "x"}])
    with pytest.raises(ValueError, match="bad severity 'LOUD'"):
        log.write([{"logName": "projects/cloudact-local/logs/inproc", "severity": "LOUD"}])


def test_a_delay_fault_holds_the_request_then_lets_it_through(cloud, session):
    fault = cloud.faults.add({"host": "probe.googleapis.com", "path": "/slow*", "delay": 0.2})
    assert fault.status is None  # a delay alone does not fail the request
    started = time.monotonic()
    resp = session.get("https://probe.googleapis.com/slow/path?x=1")
    assert resp.status_code == 200 and resp.json()["path"] == "/slow/path"
    assert time.monotonic() - started >= 0.2  # the injected delay itself, not a performance goal
    assert cloud.faults.list() == []
    both = cloud.faults.add({"host": "probe.*", "path": "/slow", "delay": 0.01, "status": 500, "count": 2})
    assert [session.get("https://probe.googleapis.com/slow").status_code for _ in range(3)] == [500, 500, 200]
    assert both.fired == 2


def test_the_clock_can_be_set_and_advanced(cloud):
    # Here, not on the shared session server: jumping the clock there would fire other tests' triggers.
    admin = AdminClient(cloud.proxy_url)
    assert admin.set_time("2026-11-27T00:00:00Z").isoformat().startswith("2026-11-27T00:00:0")
    assert cloud.now().isoformat().startswith("2026-11-27T00:00:0")
    assert admin.advance(3600).isoformat().startswith("2026-11-27T01:00:0")
    assert admin.advance("1h").isoformat().startswith("2026-11-27T02:00:0")
    assert admin.now() >= datetime(2026, 11, 27, 2, tzinfo=UTC)
    with pytest.raises(LocalCloudError, match="time only moves forward"):
        admin.advance("-60s")
    with pytest.raises(LocalCloudError, match="expected"):
        admin.call("POST", "clock", {"set": "2026-11-27T00:00:00Z", "advance": "1s"})


def test_granted_tokens_persist_hashed_and_expire(tmp_path):
    auth = Auth(tmp_path / "keys", tmp_path / "auth", "cloudact-local")
    email = "cloudact-jobs@cloudact-local.iam.gserviceaccount.com"
    token = auth.mint(email)
    stored = (tmp_path / "auth" / "tokens.jsonl").read_text()
    assert token not in stored  # only its hash is on disk
    reloaded = Auth(tmp_path / "keys", tmp_path / "auth", "cloudact-local")
    assert reloaded.authenticate(f"Bearer {token}", "run.googleapis.com") == email
    digest = next(iter(reloaded._tokens))
    reloaded._tokens[digest] = (email, time.time() - 1)  # as if an hour had passed
    with pytest.raises(Unauthenticated, match="access token expired"):
        reloaded.authenticate(f"Bearer {token}", "run.googleapis.com")
    reloaded._rewrite_tokens()
    assert (
        Auth(tmp_path / "keys", tmp_path / "auth", "cloudact-local")._tokens == {}
    )  # expired: compacted away
