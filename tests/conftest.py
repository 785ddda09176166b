"""Shared fixtures: one localcloud server per test session, started in a tmp state dir, stopped by pid."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from localcloud.client import AdminClient, LocalCloudError, LocalCloudProcess

LOCALCLOUD_FIXTURES = {"localcloud", "localcloud_env", "localcloud_state"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A test that uses localcloud is marked so, so `-m "not localcloud"` leaves it out.
    for item in items:
        if LOCALCLOUD_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.localcloud)


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    # A test that failed with a fault still armed must not fail the tests after it on the shared server.
    cloud = getattr(item, "funcargs", {}).get("localcloud")
    if isinstance(cloud, LocalCloud) and cloud.process.proc is not None:
        try:
            if cloud.admin.faults():
                cloud.admin.clear_faults()
        except (LocalCloudError, requests.RequestException):
            pass


@dataclass(frozen=True)
class LocalCloud:
    """What a test needs of the running localcloud."""

    proxy_url: str
    ca_file: Path
    key_file: Path
    state_dir: Path
    client_env: dict[str, str]  # HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE, SSL_CERT_FILE, GCP_/GOOGLE_ keys
    admin: AdminClient
    pid: int
    process: LocalCloudProcess


def localcloud_state_dir() -> Path:
    """A fresh dir outside pytest's basetemp: pytest resets that tree to mode 0700 whenever another
    session starts, which races with pgserver opening the path to its unprivileged user (as root)."""
    return Path(tempfile.mkdtemp(prefix="localcloud-test-"))


@pytest.fixture
def localcloud_state():
    """An empty state directory path for a test's own localcloud (removed afterwards)."""
    root = localcloud_state_dir()
    yield root / "state"
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def localcloud():
    state_dir = localcloud_state_dir()
    proc = LocalCloudProcess(state_dir / "state")
    try:
        proc.start()
        assert proc.admin is not None and proc.pid is not None
        yield LocalCloud(
            proxy_url=proc.proxy_url,
            ca_file=proc.ca_file,
            key_file=proc.key_file,
            state_dir=proc.state_dir,
            client_env=proc.client_env,
            admin=proc.admin,
            pid=proc.pid,
            process=proc,
        )
    finally:
        code = proc.stop()
        log = proc.files.log.read_text(errors="replace") if proc.files.log.exists() else ""
        shutil.rmtree(state_dir, ignore_errors=True)
    # SIGTERM must shut every service down cleanly: anything else is a localcloud bug worth seeing.
    assert code == 0, f"localcloud exited {code} on SIGTERM; log tail:\n{log[-3000:]}"


@pytest.fixture
def localcloud_env(localcloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> LocalCloud:
    """os.environ pointed at localcloud for in-process Google clients (undone after the test)."""
    for name, value in localcloud.client_env.items():
        monkeypatch.setenv(name, value)
    # Lower-case proxy variables win in some clients: keep them from pointing elsewhere.
    for name in ("https_proxy", "http_proxy", "HTTP_PROXY", "ALL_PROXY", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return localcloud
