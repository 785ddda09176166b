"""Shared fixtures: one localcloud server per test session, started in a tmp state dir, stopped by pid."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from localcloud.client import AdminClient, LocalCloudError, LocalCloudProcess

LOCALCLOUD_FIXTURES = {"localcloud", "localcloud_env", "localcloud_state"}
CONFORMANCE_LOG = "LOCALCLOUD_CONFORMANCE_LOG"


def pytest_configure(config: pytest.Config) -> None:
    # The run's shared OAuth tokens (module_utils/tokens.py) in a directory of the session's own, not
    # in the checkout's .cloudact/: every process a test starts (make, ansible, a CLI) inherits it.
    if "PYTEST_XDIST_WORKER" not in os.environ:
        os.environ["CLOUDACT_STATE_DIR"] = tempfile.mkdtemp(prefix="cloudact-state-")
        config.stash[_state_key] = Path(os.environ["CLOUDACT_STATE_DIR"])
    # Every localcloud this session starts (the session's, a test's own, an in-process one, those of
    # make and molecule) inherits the switch: each response that departs from Google's discovery
    # document is appended to one file, which must be empty when the session ends.
    if CONFORMANCE_LOG not in os.environ:
        fd, path = tempfile.mkstemp(prefix="localcloud-conformance-", suffix=".jsonl")
        os.close(fd)
        os.environ[CONFORMANCE_LOG] = path
        config.stash[_conformance_key] = Path(path)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(_state_key, None)
    if state is not None:
        shutil.rmtree(state, ignore_errors=True)
    path = session.config.stash.get(_conformance_key, None)
    if path is None:
        return
    lines = path.read_text().splitlines() if path.exists() else []
    path.unlink(missing_ok=True)
    if lines:
        session.config.stash[_violations_key] = [json.loads(line) for line in lines]
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    violations = config.stash.get(_violations_key, [])
    if not violations:
        return
    terminalreporter.section("localcloud conformance violations", sep="=", red=True)
    seen = set()
    for v in violations:
        key = (v["method"], v["at"], v["problem"])
        if key not in seen:
            seen.add(key)
            terminalreporter.write_line(
                f"{v['service']} {v['method'] or '(no method)'}: {v['at']}: {v['problem']} ({v['request']})"
            )
    terminalreporter.write_line(
        f"{len(violations)} responses departed from Google's discovery documents "
        f"({len(seen)} distinct): the session fails (localcloud/conformance.py)"
    )


_conformance_key = pytest.StashKey[Path]()
_state_key = pytest.StashKey[Path]()
_violations_key = pytest.StashKey[list]()


# The suites from the longest files to the shortest (seconds per file, measured): pytest-xdist's
# --dist loadfile hands each free worker the next file in order, so the long end-to-end files start
# first and the short unit files fill in at the end, instead of one worker finishing a long file alone.
SUITE_ORDER = ("e2e", "ansible", "localcloud", "jobs", "unit")


def _suite_rank(item: pytest.Item) -> int:
    parts = Path(str(item.path)).parts
    suite = parts[parts.index("tests") + 1] if "tests" in parts else ""
    return SUITE_ORDER.index(suite) if suite in SUITE_ORDER else len(SUITE_ORDER)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A test that uses localcloud is marked so, so `-m "not localcloud"` leaves it out.
    for item in items:
        if LOCALCLOUD_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.localcloud)
    # A stable sort by suite, on top of pytest-randomly's shuffle (which runs before this hook): the
    # files of a suite, and the tests of a file, keep the seed's random order.
    items.sort(key=_suite_rank)


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


# The session's shared project is prepared the way an operator prepares a project for ad hoc jobs
# (IAM is enforced, as on Google: a fresh project has only its owner and Compute's default account):
# the two accounts the catalog names exist, Compute's default account (what a job without a
# serviceAccount runs as) and the runtime account may read the project's secrets, and both accounts
# may run jobs. Tests of access itself use a fresh localcloud of their own (tests/ansible/test_access.py,
# tests/localcloud/test_iam*.py), where nothing is granted until a converge.
PREPARED_ACCOUNTS = ("cloudact-jobs", "cloudact-scheduler")
PREPARED_ROLES = {
    "roles/secretmanager.secretAccessor": ("compute", "cloudact-jobs"),
    "roles/run.invoker": ("compute", "cloudact-jobs", "cloudact-scheduler"),
    "roles/run.viewer": ("cloudact-jobs",),
    "roles/bigquery.dataEditor": ("compute", "cloudact-jobs"),
    "roles/bigquery.jobUser": ("compute", "cloudact-jobs"),
}


def prepare_project(proc: LocalCloudProcess, project: str = "cloudact-local") -> None:
    """Accounts and project-wide grants through IAM's own REST API, with the owner's key."""
    from google.auth.transport.requests import AuthorizedSession, Request
    from google.oauth2 import service_account

    def through_proxy(session: requests.Session) -> requests.Session:
        session.trust_env = False
        session.proxies = {"https": proc.proxy_url}
        session.verify = str(proc.ca_file)
        return session

    creds = service_account.Credentials.from_service_account_file(
        str(proc.key_file), scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    with through_proxy(
        AuthorizedSession(creds, auth_request=Request(through_proxy(requests.Session())))
    ) as google:
        for account in PREPARED_ACCOUNTS:
            reply = google.post(
                f"https://iam.googleapis.com/v1/projects/{project}/serviceAccounts",
                json={"accountId": account, "serviceAccount": {"displayName": account}},
            )
            assert reply.status_code in (200, 409), reply.text
        crm = f"https://cloudresourcemanager.googleapis.com/v1/projects/{project}"
        number = google.get(crm).json()["projectNumber"]
        emails = {"compute": f"{number}-compute@developer.gserviceaccount.com"}
        emails.update({a: f"{a}@{project}.iam.gserviceaccount.com" for a in PREPARED_ACCOUNTS})
        policy = google.post(f"{crm}:getIamPolicy", json={}).json()
        bindings = policy.setdefault("bindings", [])
        for role, who in PREPARED_ROLES.items():
            bindings.append({"role": role, "members": [f"serviceAccount:{emails[w]}" for w in who]})
        reply = google.post(f"{crm}:setIamPolicy", json={"policy": policy})
        assert reply.status_code == 200, reply.text


@pytest.fixture(scope="session")
def localcloud():
    state_dir = localcloud_state_dir()
    proc = LocalCloudProcess(state_dir / "state")
    try:
        proc.start()
        assert proc.admin is not None and proc.pid is not None
        prepare_project(proc)
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
