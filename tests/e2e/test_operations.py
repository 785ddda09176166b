"""Operations end to end: make run / release / status / history / logs / cancel on localcloud.

Each test stands alone, in any order: bad input runs on a fresh localcloud of its own; every other
test shares the module's localcloud (tests/e2e/conftest.py) through `released`, the release from a
fresh state (it creates the jobs) made once, and makes whatever else it needs itself (a failing
bootstrap and FROM, the prod guard, a job already running, scheduled runs with the clock, logs and
history). Before each test every execution has finished (`settled`), so none of another test's
runs is counted as this one's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml
from google.auth.transport.requests import AuthorizedSession, Request
from google.oauth2 import service_account

from tests.e2e.conftest import E2E, started_e2e

pytestmark = [pytest.mark.e2e, pytest.mark.localcloud]

API_HOST = "api.cloudact.local"
LOCAL_REGISTRY = "us-central1-docker.pkg.dev/cloudact-local/cloudact"
RUN_BASE = "https://run.googleapis.com/v2/projects/cloudact-local/locations/us-central1/jobs"
SCHEDULER_BASE = "https://cloudscheduler.googleapis.com/v1/projects/cloudact-local/locations/us-central1/jobs"


def run_calls(e2e, job: str | None = None) -> int:
    """How many :run calls localcloud has counted since the last reset (of one job, or of all)."""
    return sum(
        r["count"]
        for r in e2e.admin.requests()["requests"]
        if r["path"].endswith(":run") and (job is None or f"/jobs/{job}:" in r["path"])
    )


def session(e2e) -> AuthorizedSession:
    creds = service_account.Credentials.from_service_account_file(
        str(e2e.key_file), scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    sessions = []
    for _ in range(2):  # one for the token endpoint, one for the API: both only through localcloud
        s = requests.Session()
        s.trust_env = False
        s.proxies = {"https": e2e.client_env["HTTPS_PROXY"]}
        s.verify = e2e.client_env["REQUESTS_CA_BUNDLE"]
        sessions.append(s)
    authed = AuthorizedSession(creds, auth_request=Request(session=sessions[0]))
    authed.trust_env = False
    authed.proxies = sessions[1].proxies
    authed.verify = sessions[1].verify
    return authed


def executions(e2e, job: str) -> list[dict]:
    resp = session(e2e).get(f"{RUN_BASE}/{job}/executions", timeout=30)
    resp.raise_for_status()
    return resp.json().get("executions") or []


def row(output: str, shortcut: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(shortcut + " "))


def unfinished(e2e) -> list[str]:
    """The executions of every job of the project that have not finished."""
    resp = session(e2e).get(f"{RUN_BASE}/-/executions", params={"pageSize": 1000}, timeout=30)
    resp.raise_for_status()
    return [x["name"] for x in resp.json().get("executions") or [] if not x.get("completionTime")]


def trigger_state(e2e, trigger: str, state: str) -> None:
    """Put a trigger in `state` (ENABLED or PAUSED) by hand, when it is not (Scheduler refuses a
    second pause)."""
    url = f"{SCHEDULER_BASE}/{trigger}"
    google = session(e2e)
    found = google.get(url, timeout=30)
    found.raise_for_status()
    if found.json()["state"] != state:
        verb = "pause" if state == "PAUSED" else "resume"
        google.post(f"{url}:{verb}", json={}, timeout=30).raise_for_status()


@dataclass(frozen=True)
class Released:
    out: str  # the first release's output, from a fresh state
    migrate: str  # the execution of its migrate step


@pytest.fixture(scope="module")
def released(e2e) -> Released:
    """The release from a fresh state on the module's localcloud, made once: the jobs exist."""
    r = e2e.make("release", timeout=900)
    assert r.returncode == 0, r.out[-4000:]
    found = re.search(r"migrate: started (cloudact-manual-supabase-migrate-\w+)", r.out)
    assert found, r.out[-4000:]
    return Released(out=r.out, migrate=found.group(1))


@pytest.fixture(autouse=True)
def settled(request):
    """Before a test on the module's localcloud: no execution of an earlier test still running (its
    calls would be counted as this test's)."""
    if "released" in request.fixturenames:
        e2e = request.getfixturevalue("e2e")
        e2e.wait_for(lambda: not unfinished(e2e), "every execution to finish", timeout=300)


@pytest.fixture
def fresh(localcloud_state: Path):
    """A fresh localcloud of the test's own: no jobs, whatever the module's has by now."""
    with started_e2e(localcloud_state) as e2e:
        yield e2e


def test_bad_input_is_refused_before_anything_runs(fresh: E2E) -> None:
    e2e = fresh
    e2e.admin.reset_requests()
    r = e2e.make("run", "JOB=org-sinc")
    assert r.returncode != 0
    assert (
        "unknown job 'org-sinc': did you mean 'org-sync-all'? valid jobs are migrate, bootstrap, org-sync-all"
        in r.out
    )

    r = e2e.make("run", "ENV=dev", "JOB=alerts")
    assert r.returncode != 0
    assert "unknown environment 'dev': valid environments are local, prod, stage, test (= stage)" in r.out

    r = e2e.make("run", "JOB=alerts")  # a fresh localcloud has no jobs
    assert r.returncode != 0
    assert "cloudact-daily-alerts is not deployed in local (cloudact-local); deployed: none" in " ".join(
        r.out.split()
    )
    assert run_calls(e2e) == 0


def test_release_from_a_fresh_state_then_again(e2e, released: Released) -> None:
    out = released.out
    assert "local has no jobs yet: creating the 8 jobs and their triggers first" in out
    assert "0 migrations already applied, 3 new" in out
    assert "Bootstrap completed: " in out
    assert "Synced 3 org datasets" in out
    assert re.search(r"API /health\s+ok\s+healthy", out)
    assert re.search(r"bootstrap status\s+ok\s+SYNCED", out)
    assert re.search(r"org datasets \(\*_local\)\s+ok\s+3", out)

    r = e2e.make("release", timeout=900)
    assert r.returncode == 0, r.out[-4000:]
    assert "has no jobs yet" not in r.out
    assert "3 migrations already applied, 0 new" in r.out
    assert "sync: " in r.out and "Bootstrap completed: " in r.out
    assert re.search(r"bootstrap status\s+ok\s+SYNCED", r.out)


def test_a_failing_bootstrap_stops_the_release_and_from_resumes_it(e2e, released: Released) -> None:
    e2e.admin.reset_requests()
    e2e.admin.fault(API_HOST, "/api/v1/admin/bootstrap*", count=1000, status=500)
    try:
        r = e2e.make("release", timeout=900)
    finally:
        e2e.admin.clear_faults()
    assert r.returncode != 0
    text = " ".join(r.out.split())
    assert "release stopped at step bootstrap:" in text
    assert "not run: org-sync-all" in text
    assert "resume with: make release ENV=local FROM=bootstrap" in text
    assert run_calls(e2e, "cloudact-manual-org-sync-all") == 0

    # Run by hand out of order: warned, asked, and (no yes on a pipe) refused.
    r = e2e.make("run", "JOB=org-sync-all")
    assert r.returncode != 0
    text = " ".join(r.out.split())
    assert "org-sync-all depends on bootstrap, which has not succeeded since the last migrate" in text
    assert "nothing was started" in text
    assert run_calls(e2e, "cloudact-manual-org-sync-all") == 0

    e2e.admin.reset_requests()
    r = e2e.make("release", "FROM=bootstrap", timeout=900)
    assert r.returncode == 0, r.out[-4000:]
    assert "Synced 3 org datasets" in r.out
    assert run_calls(e2e, "cloudact-manual-supabase-migrate") == 0
    assert run_calls(e2e, "cloudact-manual-bootstrap") == 1


def test_prod_runs_only_after_a_yes(e2e, released: Released, tmp_path) -> None:
    e2e.admin.reset_requests()
    # Inputs before the question: this shell's key is the local project's, which prod refuses, naming both.
    r = e2e.make("run", "ENV=prod", "JOB=quota-reset", stdin="yes\n")
    assert r.returncode != 0 and "About to" not in r.out
    assert "is a key of project 'cloudact-local', but this environment's project is 'cloudact-prod'" in r.out
    assert e2e.admin.requests()["total"] == 0  # refused before any call, let alone a :run

    # prod's guard, with its facts pointed at this localcloud (a test never reaches a real project)
    facts = tmp_path / "prod-on-localcloud.yml"
    facts.write_text(
        yaml.safe_dump(
            {
                "cloudact_gcp_project": "cloudact-local",
                "cloudact_localcloud": True,
                "cloudact_secret_suffix": "local",
                "cloudact_api_url": f"https://{API_HOST}",
                "cloudact_credentials_file": str(e2e.key_file),
                # the local jobs' image repository (prod's own is cloudact-jobs-prod)
                "cloudact_image_repository": f"{LOCAL_REGISTRY}/cloudact-jobs-local",
            }
        )
    )
    for answer in ("no\n", ""):
        r = e2e.make("run", "ENV=prod", "JOB=quota-reset", f"ANSIBLE_ARGS=-e @{facts}", stdin=answer)
        assert r.returncode != 0
        assert 'prod needs a typed "yes"' in r.out and "nothing was changed" in r.out
    assert run_calls(e2e) == 0
    r = e2e.make("run", "ENV=prod", "JOB=quota-reset", f"ANSIBLE_ARGS=-e @{facts}", stdin="yes\n")
    assert r.returncode == 0, r.out[-3000:]
    # The question names the digest the job is pinned to: what runs.
    assert re.search(r"About to run quota-reset in prod on image \S+@sha256:[0-9a-f]{64} \(", r.out), r.out
    assert re.search(
        r"quota-reset: cloudact-daily-quota-reset-\w+ succeeded in [\d.]+s: Daily quota reset complete", r.out
    )
    assert run_calls(e2e, "cloudact-daily-quota-reset") == 1


def test_a_job_already_running_is_not_started_again(e2e, released: Released) -> None:
    # The API holds stale-cleanup's call for a while, so its execution keeps running.
    e2e.admin.fault(API_HOST, "/api/v1/admin/quota/cleanup-stale", count=1, delay=30)
    try:
        r = e2e.make("run", "JOB=stale", "WAIT=false")
        assert r.returncode == 0, r.out[-3000:]
        name = re.search(r"started (cloudact-daily-stale-cleanup-\w+) \(not waiting\)", r.out).group(1)
        e2e.admin.reset_requests()
        r = e2e.make("run", "JOB=stale")
        assert r.returncode != 0
        text = " ".join(r.out.split())
        assert f"cloudact-daily-stale-cleanup already has an execution running: {name}" in text
        assert "make cancel ENV=local JOB=stale-cleanup" in text and "FORCE=1" in text
        assert run_calls(e2e) == 0

        r = e2e.make("cancel", "JOB=stale", f"EXECUTION={name}")
        assert r.returncode == 0, r.out[-3000:]
        assert f"{name} cancelled (cancelled now)" in r.out
    finally:
        e2e.admin.clear_faults()


def _finished_since(e2e, job: str, since: datetime) -> dict | None:
    for ex in executions(e2e, job):
        created = datetime.fromisoformat(ex["createTime"].replace("Z", "+00:00"))
        if created >= since and ex.get("completionTime"):
            return ex
    return None


QUOTA_RESET_TRIGGER = "cloudact-daily-quota-reset-trigger"


def scheduled_run(e2e, job: str, at: datetime) -> dict:
    """Set the clock to `at`, just after the job's due time, and wait for the run its trigger starts."""
    e2e.admin.set_time(at)
    return e2e.wait_for(lambda: _finished_since(e2e, job, at.replace(second=0)), f"{job} at {at}")


def test_the_scheduler_runs_jobs_and_status_flags_a_paused_one_overdue(e2e, released: Released) -> None:
    trigger_state(e2e, QUOTA_RESET_TRIGGER, "ENABLED")
    try:
        check_scheduled_runs_and_overdue(e2e)
    finally:  # the trigger as the catalog has it, for the tests after this one
        trigger_state(e2e, QUOTA_RESET_TRIGGER, "ENABLED")


def check_scheduled_runs_and_overdue(e2e) -> None:
    day1 = (e2e.admin.now() + timedelta(days=1)).replace(hour=0, minute=0, second=20, microsecond=0)
    e2e.admin.set_time(day1)
    e2e.wait_for(
        lambda: _finished_since(e2e, "cloudact-daily-quota-reset", day1 - timedelta(seconds=20)),
        "quota-reset",
    )
    e2e.admin.set_time(day1.replace(hour=1))
    e2e.wait_for(
        lambda: _finished_since(e2e, "cloudact-daily-quota-cleanup", day1.replace(hour=1, second=0)),
        "quota-cleanup",
    )

    for via in ("VIA=python", "VIA=ansible"):  # toolkit.live_status, and playbooks/status.yml
        r = e2e.make("status", via)
        assert r.returncode == 0, r.out[-3000:]
        assert "succeeded (scheduler)" in row(r.out, "quota-reset"), via
        assert "succeeded (scheduler)" in row(r.out, "quota-cleanup"), via
        assert "8 of 8 jobs, 5 of 5 triggers" in r.out, via

    r = e2e.make("pause", "JOB=quota-reset", f"ANSIBLE_ARGS=-e cloudact_credentials_file={e2e.key_file}")
    assert r.returncode == 0, r.out[-3000:]
    e2e.admin.set_time(day1 + timedelta(days=1, minutes=30))
    r = e2e.make("status")
    assert r.returncode == 0
    line = row(r.out, "quota-reset")
    assert "paused" in line and line.endswith("OVERDUE")
    assert "quota-reset was due" in r.out and "(its trigger is paused)" in r.out

    r = e2e.make("status", "STRICT=1")
    assert r.returncode != 0
    assert "quota-reset: OVERDUE" in r.out


def test_logs_come_in_order_and_history_tells_manual_from_scheduled(e2e, released: Released) -> None:
    r = e2e.make("logs", "JOB=migrate", f"EXECUTION={released.migrate}")
    assert r.returncode == 0, r.out[-3000:]
    lines = [line for line in r.out.splitlines() if re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", line)]
    assert lines[0].endswith("project local, 3 migration files in migrations/supabase_db")
    assert "0 migrations already applied, 3 new" in r.out
    assert lines[-1].endswith("Container called exit(0).")
    assert lines == sorted(lines, key=lambda line: line[:19])

    # quota-reset run once by its trigger at the next midnight, then once by hand: the newest two.
    trigger_state(e2e, QUOTA_RESET_TRIGGER, "ENABLED")
    midnight = (e2e.admin.now() + timedelta(days=1)).replace(hour=0, minute=0, second=20, microsecond=0)
    by_trigger = scheduled_run(e2e, "cloudact-daily-quota-reset", midnight)
    r = e2e.make("run", "JOB=quota-reset")
    assert r.returncode == 0, r.out[-3000:]
    by_hand = re.search(r"quota-reset: (cloudact-daily-quota-reset-\w+) succeeded", r.out)
    assert by_hand, r.out[-3000:]

    r = e2e.make("history", "JOB=quota-reset", "N=10")
    assert r.returncode == 0, r.out[-3000:]
    rows = [line.split() for line in r.out.splitlines() if line.startswith("cloudact-daily-quota-reset-")]
    # The trigger column: `scheduler` (Cloud Run's creator is the trigger account), or `manual (<who>)`.
    triggers = {
        cells[0]: " ".join(cells[cells.index("scheduler") if "scheduler" in cells else -2 :])
        for cells in rows
    }
    assert triggers[by_trigger["name"].rsplit("/", 1)[1]] == "scheduler", r.out[-2000:]
    manual = triggers[by_hand.group(1)]
    assert manual.startswith("manual (") and manual.endswith(".iam.gserviceaccount.com)"), r.out[-2000:]
