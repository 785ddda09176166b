"""A localcloud of its own stopped while a build runs and started again: the build ended as
INTERNAL_ERROR saying why (its process killed by pid), while objects, repositories and images stay."""

from __future__ import annotations

import os
import time

import requests
from google.auth.transport.requests import AuthorizedSession, Request
from google.oauth2 import service_account

from localcloud.client import LocalCloudProcess, pid_alive

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
PROJECT = "cloudact-local"
BUILDS = f"https://cloudbuild.googleapis.com/v1/projects/{PROJECT}/locations/global/builds"
STORAGE = "https://storage.googleapis.com"


def session(proc: LocalCloudProcess) -> AuthorizedSession:
    plain = requests.Session()  # this localcloud's proxy, not the session-wide one in the environment
    plain.trust_env = False
    plain.proxies, plain.verify = {"https": proc.proxy_url}, str(proc.ca_file)
    creds = service_account.Credentials.from_service_account_file(str(proc.key_file), scopes=SCOPES)
    authed = AuthorizedSession(creds, auth_request=Request(session=plain))
    authed.trust_env = False
    authed.proxies, authed.verify = plain.proxies, plain.verify
    return authed


def test_a_build_running_at_stop_is_internal_error_and_storage_survives(localcloud_state, tmp_path):
    marker = tmp_path / "pid"
    proc = LocalCloudProcess(localcloud_state)
    proc.start()
    try:
        s = session(proc)
        assert s.post(f"{STORAGE}/storage/v1/b", params={"project": PROJECT}, json={"name": "restart-b"}).ok
        upload = s.post(
            f"{STORAGE}/upload/storage/v1/b/restart-b/o",
            params={"uploadType": "media", "name": "kept"},
            data=b"k",
        )
        assert upload.ok, upload.text
        script = f"echo $$$$ > {marker}; sleep 60"
        body = {"steps": [{"name": "bash", "args": ["-c", script]}, {"name": "bash", "args": ["-c", "true"]}]}
        build = s.post(BUILDS, json=body).json()["metadata"]["build"]
        deadline = time.monotonic() + 20
        while not marker.exists() or not marker.read_text().strip():
            assert time.monotonic() < deadline, "the step never started"
            time.sleep(0.05)
        step_pid = int(marker.read_text())
    finally:
        proc.stop()
    assert not pid_alive(step_pid)  # killed with localcloud, by its process group
    proc.start()
    try:
        s = session(proc)
        after = s.get(f"{BUILDS}/{build['id']}").json()
        assert after["status"] == "INTERNAL_ERROR"
        assert after["statusDetail"] == "localcloud stopped while the build was running"
        assert [step.get("status") for step in after["steps"]] == ["CANCELLED", "QUEUED"]
        kept = s.get(f"{STORAGE}/storage/v1/b/restart-b/o/kept", params={"alt": "media"})
        assert kept.status_code == 200 and kept.content == b"k"
    finally:
        proc.stop()
    assert not os.path.exists(localcloud_state / "cloudbuild" / "work" / build["id"])
