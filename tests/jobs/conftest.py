"""Run the job scripts as a user does: `python -m jobs.<category>.<script>` in a subprocess.

Tests name a script by its file, as the catalog does (`jobs/daily/alerts_daily.py`); `module_of`
turns that into the module the container command runs.
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
# Recognisable so a leak is easy to spot; the tests assert it never appears in any output.
FAKE_KEY = "ca-root-FAKEKEY-7f3a9c1e5b2d4680"
# Small budgets so failure paths end fast.
FAST_HTTP = {
    "HTTP_CONNECT_TIMEOUT_SECONDS": "1",
    "HTTP_TIMEOUT_SECONDS": "1",
    "HTTP_MAX_ATTEMPTS": "4",
    "HTTP_DEADLINE_SECONDS": "8",
    "HTTP_BACKOFF_SECONDS": "0.05",
    "HTTP_BACKOFF_MAX_SECONDS": "0.2",
}


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def job_env(api_url: str | None, **overrides: str | None) -> dict[str, str]:
    """A clean environment (no proxies or credentials of the caller) plus the job's variables."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    env.update({"GCP_PROJECT_ID": "cloudact-local", "ENVIRONMENT": "local", "CA_ROOT_API_KEY": FAKE_KEY})
    if api_url:
        env["API_SERVICE_URL"] = api_url
    env.update(FAST_HTTP)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def module_of(script: str) -> str:
    """`jobs/daily/alerts_daily.py` -> `jobs.daily.alerts_daily`, as converge builds the command."""
    return script.removesuffix(".py").replace("/", ".")


def run_script(script: str, *args: str, env: dict[str, str], timeout: float = 60) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", module_of(script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def fake_key() -> str:
    return FAKE_KEY


@pytest.fixture
def api(httpserver):
    """The pytest-httpserver standing in for the CloudAct API; its base URL without a slash."""
    httpserver.api_url = httpserver.url_for("/").rstrip("/")
    yield httpserver
    httpserver.clear()


@pytest.fixture
def job_environment(api):
    """job_environment(**overrides): the environment run_job uses, for tests that start python themselves."""

    def make(**env: str | None) -> dict[str, str]:
        return job_env(api.api_url, **env)

    return make


@pytest.fixture
def run_job(api):
    """run_job(script, *args, **env_overrides) against the `api` server."""

    def run(script: str, *args: str, timeout: float = 60, **env: str | None) -> Result:
        result = run_script(script, *args, env=job_env(api.api_url, **env), timeout=timeout)
        assert FAKE_KEY not in result.output, "the root key leaked into the output"
        return result

    return run
