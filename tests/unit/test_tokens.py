"""One OAuth token per key and scope, shared by a run's processes (module_utils/tokens.py), against a
real local token endpoint (pytest-httpserver)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from ansible_collections.cloudact.gcp.plugins.module_utils import client, tokens
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

TOKEN = "ya29.test-token-never-printed"


@pytest.fixture
def key_file(tmp_path: Path, httpserver) -> Path:
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = tmp_path / "key.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "cloudact-testing-1",
                "private_key_id": "k1",
                "private_key": pem.decode(),
                "client_email": "ops@cloudact-testing-1.iam.gserviceaccount.com",
                "token_uri": httpserver.url_for("/token"),
            }
        )
    )
    httpserver.expect_request("/token", method="POST").respond_with_json(
        {"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"}
    )
    httpserver.expect_request("/api").respond_with_json({})
    return path


def calls(httpserver, path: str) -> int:
    return sum(1 for request, _ in httpserver.log if request.path == path)


def test_processes_of_a_run_share_one_token(tmp_path, key_file, httpserver, monkeypatch) -> None:
    state = tmp_path / "state"
    monkeypatch.setenv(tokens.STATE_VARIABLE, str(state))
    code = (
        "import sys\n"
        "from ansible_collections.cloudact.gcp.plugins.module_utils import client\n"
        "api = client.Client(lambda: client.credentials('serviceaccount', sys.argv[1]))\n"
        "api.request('GET', sys.argv[2], 'the test API')\n"
    )
    env = dict(os.environ, **{tokens.STATE_VARIABLE: str(state)})
    for _ in range(3):  # three processes, as toolkit.ask, ansible-playbook and a worker are
        subprocess.run(
            [sys.executable, "-c", code, str(key_file), httpserver.url_for("/api")], env=env, check=True
        )
    assert calls(httpserver, "/token") == 1
    assert calls(httpserver, "/api") == 3
    [cached] = (state / "tokens").iterdir()
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600
    assert stat.S_IMODE((state / "tokens").stat().st_mode) == 0o700


def test_a_token_about_to_expire_is_not_used_and_the_new_one_is_kept(tmp_path, key_file, httpserver) -> None:
    creds = client.credentials("serviceaccount", str(key_file))
    folder = tmp_path / "state"
    path = folder / "tokens" / (tokens.fingerprint(creds, str(key_file), client.SCOPES) + ".json")
    tokens.save(str(path), "old-token", tokens._now() + timedelta(minutes=2))
    creds = tokens.shared(creds, str(key_file), client.SCOPES, str(folder))
    assert creds.token is None  # within the last five minutes: not used
    session = client.Client(creds)
    session.request("GET", httpserver.url_for("/api"), "the test API")
    assert calls(httpserver, "/token") == 1
    assert tokens.load(str(path))[0] == TOKEN


def test_another_key_or_scope_is_another_token(key_file) -> None:
    creds = client.credentials("serviceaccount", str(key_file))
    one = tokens.fingerprint(creds, str(key_file), client.SCOPES)
    assert one != tokens.fingerprint(creds, str(key_file), ["https://www.googleapis.com/auth/bigquery"])
    assert one != tokens.fingerprint(creds, str(key_file) + ".other", client.SCOPES)


def test_an_unwritable_state_costs_a_token_request_not_a_failure(tmp_path, key_file, httpserver) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the directory would be")
    creds = tokens.shared(
        client.credentials("serviceaccount", str(key_file)), str(key_file), client.SCOPES, str(blocked)
    )
    client.Client(creds).request("GET", httpserver.url_for("/api"), "the test API")
    assert calls(httpserver, "/token") == 1


def test_the_state_directory() -> None:
    assert tokens.state_dir("/repo", environ={}) == "/repo/.cloudact"
    assert tokens.state_dir("/repo", environ={tokens.STATE_VARIABLE: "/tmp/s"}) == "/tmp/s"
    assert tokens.state_dir(None, environ={}) is None
