"""End to end through make on a localcloud of their own (so "a fresh local state" is fresh).

`e2e` is one localcloud per test module: the state a module's tests share is made by its own
fixtures (test_operations.py's `released`), never by a test that happened to run before, so each
test passes alone and in any order (make test runs them in random order: pytest-randomly).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from localcloud.client import AdminClient, LocalCloudProcess
from toolkit import ROOT


@dataclass
class E2E:
    state_dir: Path
    key_file: Path
    client_env: dict[str, str]
    admin: AdminClient

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if k.lower() not in ("https_proxy", "http_proxy", "all_proxy")
        }
        # Every client of every make target goes to this localcloud: nothing can reach a real host.
        env.update(self.client_env)
        env.update(
            LOCALCLOUD_STATE_DIR=str(self.state_dir),
            NO_COLOR="1",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
        )
        env.pop("CONFIRM", None)
        env.update(extra)
        return env

    def make(
        self, *args: str, stdin: str = "", timeout: float = 600, **extra: str
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["make", "-s", "--no-print-directory", *args],
            cwd=ROOT,
            env=self.env(**extra),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        result.out = result.stdout + result.stderr  # type: ignore[attr-defined]
        return result

    def wait_for(self, predicate, what: str, timeout: float = 120, interval: float = 0.5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@contextlib.contextmanager
def started_e2e(state_dir: Path) -> Iterator[E2E]:
    """A localcloud started in `state_dir`, stopped by its pid whatever happens."""
    proc = LocalCloudProcess(state_dir)
    proc.start(timeout=120)
    try:
        assert proc.admin is not None and proc.pid is not None
        # As `localcloud up` leaves it, so that make's `localcloud up` finds this one running.
        proc.files.pid.write_text(f"{proc.pid}\n")
        yield E2E(
            state_dir=proc.state_dir, key_file=proc.key_file, client_env=proc.client_env, admin=proc.admin
        )
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory):
    with started_e2e(tmp_path_factory.mktemp("e2e") / "state") as e2e:
        yield e2e
