"""A localcloud of a test module's own, and make run on it as an operator's shell runs it.

make gets no proxy, CA or key of localcloud in its environment: HTTPS_PROXY is a dead port and GCP_*
is unset, so whatever reaches localcloud got there through the play's (or the CLI's) own client
environment (ENV=local, or REHEARSE=1), and nothing can reach a real host. The request log
(`log`, `writes`) is localcloud's (GET /_localcloud/requests/log); what counts as a write is the
product's own rule, module_utils/verbs.py `is_write`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from ansible_collections.cloudact.gcp.plugins.module_utils import verbs
from google.auth.transport.requests import AuthorizedSession, Request
from google.oauth2 import service_account

from localcloud.client import AdminClient, LocalCloudProcess
from toolkit import ROOT

DEAD_PROXY = "http://127.0.0.1:9"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
RUN = "https://run.googleapis.com/v2/projects/{}/locations/us-central1"
SCHEDULER = "https://cloudscheduler.googleapis.com/v1/projects/{}/locations/us-central1"


@dataclass
class Cloud:
    state_dir: Path
    client_env: dict[str, str]
    keys: dict[str, str]
    admin: AdminClient

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.lower().endswith("_proxy")
            and not k.startswith(("GCP_", "GOOGLE_"))
            and k not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CONFIRM", "PRUNE", "REHEARSE")
        }
        env.update(
            LOCALCLOUD_STATE_DIR=str(self.state_dir),
            HTTPS_PROXY=DEAD_PROXY,
            NO_PROXY="127.0.0.1,localhost",
            NO_COLOR="1",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
        )
        env.update(extra)
        return env

    def run(self, cmd: list[str], stdin: str = "", timeout: float = 300, **extra: str):
        result = subprocess.run(
            cmd,
            cwd=ROOT,
            env=self.env(**extra),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        result.out = " ".join((result.stdout + result.stderr).split())  # type: ignore[attr-defined]
        return result

    def make(self, *args: str, stdin: str = "", timeout: float = 300, **extra: str):
        return self.run(["make", "-s", "--no-print-directory", *args], stdin=stdin, timeout=timeout, **extra)

    def playbook(self, playbook: str, inventory: str, *args: str, stdin: str = "", **extra: str):
        cmd = [str(ROOT / ".venv/bin/ansible-playbook"), "-i", f"inventories/{inventory}", playbook, *args]
        return self.run(cmd, stdin=stdin, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), **extra)

    # ---- what the cloud saw -----------------------------------------------------------------------

    def mark(self) -> int:
        return self.admin.request_seq()

    def log(self, after: int) -> list[dict]:
        return self.admin.request_log(after=after)

    def writes(self, after: int) -> list[str]:
        """The requests since `after` that the product's read-only rule calls writes."""
        return [
            f"{e['method']} {e['host']}{e['path']}"
            for e in self.log(after)
            if verbs.is_write(e["method"], f"https://{e['host']}{e['path']}", e["body"])
        ]

    def calls(self, after: int, method: str, suffix: str) -> list[dict]:
        return [e for e in self.log(after) if e["method"] == method and e["path"].endswith(suffix)]

    # ---- Google's side, as the project's owner --------------------------------------------------------

    def session(self, project: str) -> AuthorizedSession:
        creds = service_account.Credentials.from_service_account_file(self.keys[project], scopes=SCOPES)
        plain = requests.Session()
        plain.trust_env = False
        plain.proxies = {"https": self.client_env["HTTPS_PROXY"]}
        plain.verify = self.client_env["REQUESTS_CA_BUNDLE"]
        authed = AuthorizedSession(creds, auth_request=Request(session=plain))
        authed.trust_env = False
        authed.proxies = plain.proxies
        authed.verify = plain.verify
        return authed

    def api(self, project: str, method: str, url: str, **kwargs):
        resp = self.session(project).request(method, url, timeout=60, **kwargs)
        resp.raise_for_status()
        return resp.json() if resp.content else {}

    def jobs(self, project: str) -> dict[str, dict]:
        found = self.api(project, "GET", RUN.format(project) + "/jobs").get("jobs") or []
        return {j["name"].rsplit("/", 1)[1]: j for j in found}

    def executions(self, project: str, job: str) -> list[dict]:
        return (
            self.api(project, "GET", RUN.format(project) + f"/jobs/{job}/executions").get("executions") or []
        )

    def triggers(self, project: str) -> dict[str, dict]:
        found = self.api(project, "GET", SCHEDULER.format(project) + "/jobs").get("jobs") or []
        return {j["name"].rsplit("/", 1)[1]: j for j in found}

    def wait_for(self, predicate, what: str, timeout: float = 120, interval: float = 0.5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@contextlib.contextmanager
def own_localcloud(prefix: str) -> Iterator[Cloud]:
    """A localcloud of the caller's own, stopped by its pid (and its state removed) whatever happens.

    Outside pytest's basetemp (tests/conftest.py says why: pgserver as root)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    proc = LocalCloudProcess(root / "state")
    proc.start(timeout=120)
    try:
        assert proc.admin is not None and proc.pid is not None
        proc.files.pid.write_text(f"{proc.pid}\n")  # as `localcloud up` leaves it: make finds it up
        keys = json.loads(proc.files.keys_index.read_text())
        yield Cloud(proc.state_dir, proc.client_env, keys, proc.admin)
    finally:
        proc.stop()
        shutil.rmtree(root, ignore_errors=True)
