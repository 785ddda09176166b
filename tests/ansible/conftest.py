"""Helpers for the Ansible tests: run ansible-playbook / ansible / molecule as an operator would.

Every run talks to the test session's localcloud: LOCALCLOUD_STATE_DIR points the play at it
(the cloudact_env role reads its client-env.json). HTTPS_PROXY of the ansible process itself
is a dead port, so a call that bypassed the play's `environment:` would fail at once and could
never reach a real Google host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COLLECTIONS = ROOT / "collections"
DEAD_PROXY = "http://127.0.0.1:9"

if str(COLLECTIONS) not in sys.path:  # module_utils and plugins importable as ansible would load them
    sys.path.insert(0, str(COLLECTIONS))


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def base_env(state_dir: Path | None, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and not k.startswith("GCP_")
    }
    env.update(
        PATH=f"{BIN}:{env.get('PATH', '')}",
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PY_COLORS="0",
        HTTPS_PROXY=DEAD_PROXY,
        NO_PROXY="127.0.0.1,localhost",
    )
    env.pop("CONFIRM", None)
    env.pop("PRUNE", None)
    if state_dir is not None:
        env["LOCALCLOUD_STATE_DIR"] = str(state_dir)
    env.update(extra)
    return env


def run(cmd: list[str], env: dict[str, str], timeout: float = 600, stdin: str | None = None) -> Result:
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        env=env,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def playbook(env: dict[str, str], name: str, *args: str, inventory: str = "local", **kw) -> Result:
    cmd = [str(BIN / "ansible-playbook"), "-i", f"inventories/{inventory}", f"playbooks/{name}", *args]
    return run(cmd, env, **kw)


def environment_vars(
    word: str, state_dir: Path | None, directory: Path, credentials: dict | None = None
) -> list[str]:
    """`-e @<file>` carrying the run's environment (the fact cloudact.gcp.env_facts publishes), for an
    ad hoc `ansible localhost -m cloudact.gcp.<action>`: what a play's cloudact_env and preflight roles
    give every action. `credentials` ({kind, file}) replaces the ones chosen for the environment."""
    from ansible_collections.cloudact.gcp.plugins.module_utils import environment

    environ = dict(os.environ)
    environ.pop("GCP_SERVICE_ACCOUNT_FILE", None)
    if state_dir is not None:
        environ["LOCALCLOUD_STATE_DIR"] = str(state_dir)
    built = environment.Environment.load(word, ROOT, environ=environ)
    if credentials is not None:
        built.credentials = {"path": credentials.get("file") or "", "check": None, **credentials}
    else:
        built.choose_credentials(environ=environ)
    path = directory / f"environment-{word}.json"
    path.write_text(json.dumps({environment.FACT: built.to_fact()}))
    return ["-e", f"@{path}"]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def ansible_env(localcloud) -> dict[str, str]:
    """The environment of an operator's shell for ENV=local against the session's localcloud."""
    return base_env(localcloud.state_dir)


@pytest.fixture(scope="session")
def google(localcloud):
    """An authorised requests session through localcloud's proxy, for checks outside Ansible."""
    import requests
    from google.auth.transport.requests import AuthorizedSession, Request
    from google.oauth2 import service_account

    def through_proxy(session: requests.Session) -> requests.Session:
        session.trust_env = False  # never the process's proxy settings: only localcloud
        session.proxies = {"https": localcloud.proxy_url}
        session.verify = str(localcloud.ca_file)
        return session

    creds = service_account.Credentials.from_service_account_file(
        str(localcloud.key_file), scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    token_session = through_proxy(requests.Session())
    session = through_proxy(AuthorizedSession(creds, auth_request=Request(token_session)))
    yield session
    session.close()
    token_session.close()
