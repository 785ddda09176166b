"""`python -m localcloud up|down|reset|env|status` and `make local-*`: the background server and its state."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from google.api_core import exceptions
from google.auth.transport.requests import AuthorizedSession
from google.cloud import secretmanager
from google.oauth2 import service_account

from localcloud.client import LocalCloudProcess, pid_alive, stop_pid

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.localcloud


def cli(state: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "localcloud", "--state-dir", str(state), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.fixture
def state(localcloud_state):
    state = localcloud_state
    yield state
    # Whatever a test left running is stopped by its pid, also when the test failed.
    pid_file = state / "localcloud.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        if pid_alive(pid):
            stop_pid(pid)


def authed(env: dict[str, str]) -> AuthorizedSession:
    creds = service_account.Credentials.from_service_account_file(
        env["GCP_SERVICE_ACCOUNT_FILE"], scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    return AuthorizedSession(creds)


def exported(output: str) -> dict[str, str]:
    env = {}
    for line in output.splitlines():
        assert line.startswith("export "), line
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = shlex.split(value)[0]
    return env


def test_up_is_idempotent_and_state_survives_down_up_until_reset(state, monkeypatch):
    first = cli(state, "up")
    assert first.returncode == 0, first.stderr
    assert "localcloud up: pid" in first.stdout
    pid = int((state / "localcloud.pid").read_text())
    again = cli(state, "up")
    assert again.returncode == 0 and f"already up (pid {pid}" in again.stdout

    env_out = cli(state, "env")
    assert env_out.returncode == 0
    env = exported(env_out.stdout)
    assert list(env) == [
        "HTTPS_PROXY",
        "NO_PROXY",
        "REQUESTS_CA_BUNDLE",
        "SSL_CERT_FILE",
        "GCP_SERVICE_ACCOUNT_FILE",
        "CLOUDSDK_CONFIG",  # gcloud's own configuration directory (test_gcloud.py); not in client-env.json
        "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
    ]
    assert env["NO_PROXY"] == "127.0.0.1,localhost"
    assert env["CLOUDSDK_CONFIG"] == str(state / "gcloud")
    gcloud = {name: env.pop(name) for name in ("CLOUDSDK_CONFIG", "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE")}
    assert json.loads((state / "client-env.json").read_text()) == env
    status = cli(state, "status")
    assert status.returncode == 0 and "localcloud is up" in status.stdout and "secretmanager" in status.stdout

    # make -s local-env prints the same eval-able lines (and starts nothing new: it is up).
    make = subprocess.run(
        ["make", "-s", "local-env"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "LOCALCLOUD_STATE_DIR": str(state)},
    )
    assert make.returncode == 0, make.stderr
    assert exported(make.stdout) == {**env, **gcloud}

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", env["GCP_SERVICE_ACCOUNT_FILE"])
    client = secretmanager.SecretManagerServiceClient(transport="rest")
    secret = client.create_secret(
        parent="projects/cloudact-local", secret_id="kept", secret={"replication": {"automatic": {}}}
    )
    client.add_secret_version(parent=secret.name, payload={"data": b"survives"})
    seeded = client.access_secret_version(
        name="projects/cloudact-local/secrets/ca-root-api-key-local/versions/latest"
    )
    assert len(seeded.payload.data) >= 32
    marker = f"kept across restarts {os.getpid()}"
    log_entry = {"logName": "projects/cloudact-local/logs/cli-test", "textPayload": marker}
    write = authed(env).post("https://logging.googleapis.com/v2/entries:write", json={"entries": [log_entry]})
    assert write.status_code == 200, write.text
    clock = requests.post(f"{env['HTTPS_PROXY']}/_localcloud/clock", json={"advance": "86400s"}, timeout=10)
    clock_after = clock.json()["now"]

    down = cli(state, "down")
    assert down.returncode == 0 and f"stopped (pid {pid})" in down.stdout
    assert not pid_alive(pid)
    assert not (state / "localcloud.pid").exists()
    assert cli(state, "status").returncode == 1
    assert "not running" in cli(state, "down").stdout

    up = cli(state, "up")
    assert up.returncode == 0, up.stderr
    assert exported(cli(state, "env").stdout)["HTTPS_PROXY"] == env["HTTPS_PROXY"]  # the saved port is reused
    client = secretmanager.SecretManagerServiceClient(transport="rest")  # the same key file still works
    assert client.access_secret_version(name=f"{secret.name}/versions/latest").payload.data == b"survives"
    assert (
        client.access_secret_version(
            name="projects/cloudact-local/secrets/ca-root-api-key-local/versions/latest"
        ).payload.data
        == seeded.payload.data
    )
    listed = authed(env).post(
        "https://logging.googleapis.com/v2/entries:list",
        json={"resourceNames": ["projects/cloudact-local"], "filter": f'textPayload:"{marker}"'},
    )
    assert [e["textPayload"] for e in listed.json()["entries"]] == [marker]
    now = requests.get(f"{env['HTTPS_PROXY']}/_localcloud/clock", timeout=10).json()["now"]
    assert now >= clock_after  # the clock offset persisted too

    # The admin reset forgets every service's state in place; first-start secrets are seeded anew.
    requests.post(f"{env['HTTPS_PROXY']}/_localcloud/reset", timeout=30).raise_for_status()
    with pytest.raises(exceptions.NotFound):
        client.get_secret(name=secret.name)
    reseeded = client.access_secret_version(
        name="projects/cloudact-local/secrets/ca-root-api-key-local/versions/latest"
    )
    assert reseeded.payload.data != seeded.payload.data

    reset = cli(state, "reset")
    assert reset.returncode == 0 and "wiped" in reset.stdout
    assert not state.exists()
    assert cli(state, "status").returncode == 1  # reset stopped it too


def test_env_before_any_start_says_what_to_do(state):
    result = cli(state, "env")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "make local-up" in result.stderr


def test_reset_refuses_a_directory_that_is_not_localcloud_state(tmp_path):
    other = tmp_path / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    result = cli(other, "reset")
    assert result.returncode == 2
    assert "does not look like a localcloud state directory" in result.stderr
    assert (other / "notes.txt").exists()


def test_serve_refuses_a_bad_port(state):
    result = cli(state, "serve", "--port", "70000")
    assert result.returncode == 2
    assert "--port 70000" in result.stderr


def test_one_server_per_state_directory(state):
    """A foreground server (as the test fixture starts) holds the state directory: `up` finds it
    instead of starting a second server on the same files, and a second `serve` is refused."""
    first = LocalCloudProcess(state).start()
    try:
        second = cli(state, "serve")
        assert second.returncode == 1
        assert f"localcloud already serves {state} (pid {first.pid})" in second.stderr
        up = cli(state, "up")
        assert up.returncode == 0, up.stderr
        assert f"localcloud is already up (pid {first.pid}" in up.stdout + up.stderr
        assert pid_alive(first.pid)
    finally:
        first.stop()
    assert cli(state, "status").returncode != 0
