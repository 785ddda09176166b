"""Read-only means read-only: make status, history, logs, report, calendar, plan, doctor and incidents send
no write to any Google or CloudAct endpoint, on ENV=local and on a rehearsed stage, proven by localcloud's
request log and the product's own rule of what a write is (module_utils/verbs.py `is_write`).

They run after executions exist that the ledger lacks (their jobs' own ledger writes were refused), so a
command that appended to the ledger would show here. None of them needs the API's Cloud Run service
unless it calls the API. The doctor's alerts dry run (a POST) runs only with PROBE=alerts, once.
"""

from __future__ import annotations

import pytest

from tests.makecloud import RUN, own_localcloud
from toolkit import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.localcloud]

STAGE = "cloudact-testing-1"
STAGE_REF = "stagerehearsalref01"
SOURCE = f"-e cloudact_migrations_source={ROOT / 'migrations'}"
STAGE_ARGS = f"-e cloudact_supabase_project_ref={STAGE_REF}"
# The API's Cloud Run service missing: the inventory names one that does not exist.
NO_API = f"{STAGE_ARGS} -e cloudact_api_service=cloudact-api-service-gone"
COMMANDS = [
    ("status",),
    ("status", "VIA=ansible"),
    ("history", "JOB=quota-reset"),
    ("logs", "JOB=quota-reset", "SINCE=1d"),
    ("report",),
    ("calendar",),
    ("plan",),
    ("doctor",),
    ("incidents",),
]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with own_localcloud("localcloud-read-only-") as c:
        r = c.make("release", timeout=900)  # a fresh local environment, released
        assert r.returncode == 0, r.out[-4000:]
        r = c.make("image", "ENV=stage", f"ANSIBLE_ARGS={SOURCE}", REHEARSE="1", timeout=600)
        assert r.returncode == 0, r.out[-4000:]
        r = c.make("create-jobs", "ENV=stage", f"ANSIBLE_ARGS={STAGE_ARGS}", REHEARSE="1", timeout=600)
        assert r.returncode == 0, r.out[-4000:]
        c.out = tmp_path_factory.mktemp("report")  # type: ignore[attr-defined]
        for project in ("cloudact-local", STAGE):
            unrecorded_run(c, project)
        yield c


def unrecorded_run(cloud, project: str) -> None:
    """A run of quota-reset started outside the toolkit whose own ledger write is refused: Cloud Run
    has it, the ledger does not."""
    cloud.admin.fault("bigquery.googleapis.com", "*/insertAll", count=50, status=403)
    try:
        job = f"{RUN.format(project)}/jobs/cloudact-daily-quota-reset"
        op = cloud.api(project, "POST", f"{job}:run", json={})
        name = op["metadata"]["name"].rsplit("/", 1)[1]
        cloud.wait_for(
            lambda: cloud.api(project, "GET", f"{job}/executions/{name}").get("completionTime"),
            f"{name} to finish",
        )
    finally:
        cloud.admin.clear_faults()


def argv(command: tuple[str, ...], cloud, env: str) -> list[str]:
    args = [*command, f"ENV={env}"]
    if command[0] == "report":
        args.append(f"OUT={cloud.out / (env + '.html')}")
    return args


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_a_read_only_command_writes_nothing_on_local(cloud, command) -> None:
    mark = cloud.mark()
    r = cloud.make(*argv(command, cloud, "local"))
    assert r.returncode == 0, r.out[-3000:]
    assert cloud.writes(mark) == []
    assert len(cloud.log(mark)) > 0  # it did read the cloud


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_a_read_only_command_writes_nothing_on_a_rehearsed_stage(cloud, command) -> None:
    mark = cloud.mark()
    r = cloud.make(*argv(command, cloud, "stage"), f"ANSIBLE_ARGS={STAGE_ARGS}", REHEARSE="1")
    if command[0] == "doctor":  # stage was converged, never released: the doctor says so, with fixes
        assert "doctor of stage (cloudact-testing-1)" in r.out and "bootstrap status FAIL" in r.out, r.out
    else:
        assert r.returncode == 0, r.out[-3000:]
    assert cloud.writes(mark) == []


# The commands that never call the API. (The plan shows the URL the jobs get, and the doctor checks the
# API: both say the service is missing, and write nothing either.)
NO_API_COMMANDS = [c for c in COMMANDS if c[0] not in ("plan", "doctor")]


@pytest.mark.parametrize("command", NO_API_COMMANDS, ids=[" ".join(c) for c in NO_API_COMMANDS])
def test_a_command_that_never_calls_the_api_does_not_need_its_service(cloud, command) -> None:
    """On stage the API URL is discovered from the API's Cloud Run service; here that service does not
    exist (the inventory names one that is gone)."""
    mark = cloud.mark()
    r = cloud.make(*argv(command, cloud, "stage"), f"ANSIBLE_ARGS={NO_API}", REHEARSE="1")
    assert r.returncode == 0, r.out[-3000:]
    assert "cloudact-api-service-gone" not in r.out
    assert cloud.writes(mark) == []


def test_the_plan_and_the_doctor_name_a_missing_api_service_and_write_nothing(cloud) -> None:
    for command in (("plan",), ("doctor",)):
        mark = cloud.mark()
        r = cloud.make(*argv(command, cloud, "stage"), f"ANSIBLE_ARGS={NO_API}", REHEARSE="1")
        assert r.returncode != 0 and "cloudact-api-service-gone" in r.out, r.out[-3000:]
        assert cloud.writes(mark) == []


def test_the_report_shows_what_the_ledger_lacks_without_appending_it(cloud) -> None:
    mark = cloud.mark()
    r = cloud.make("report", f"OUT={cloud.out / 'again.html'}")
    assert r.returncode == 0, r.out[-3000:]
    assert "not in the ledger yet: shown from Cloud Run; make ledger-sync ENV=local records them" in r.out
    assert cloud.writes(mark) == []
    synced = cloud.make("ledger-sync")
    assert synced.returncode == 0, synced.out[-3000:]
    r = cloud.make("report", f"OUT={cloud.out / 'synced.html'}")
    assert "not in the ledger yet" not in r.out
    # Again a run the ledger lacks, as the module's fixture left it for the other tests (in any order).
    unrecorded_run(cloud, "cloudact-local")


def test_the_doctors_alerts_dry_run_runs_only_on_request_and_once(cloud) -> None:
    mark = cloud.mark()
    r = cloud.make("doctor")
    assert r.returncode == 0, r.out[-3000:]
    assert "organizations skipped" in r.out and "make doctor ENV=local PROBE=alerts" in r.out
    assert cloud.writes(mark) == []

    cloud.admin.fault("api.cloudact.local", "/api/v1/admin/alerts/process-all", status=502, applied=True)
    mark = cloud.mark()
    r = cloud.make("doctor", "PROBE=alerts")
    cloud.admin.clear_faults()
    assert (
        "organizations FAIL the CloudAct API: POST https://api.cloudact.local/api/v1/admin/alerts/process-all"
        in r.out
    )
    assert "answered 502" in r.out and "may have been applied" in r.out, r.out[-3000:]
    assert cloud.writes(mark) == ["POST api.cloudact.local/api/v1/admin/alerts/process-all"]  # never resent

    mark = cloud.mark()
    r = cloud.make("doctor", "PROBE=alerts")
    assert r.returncode == 0, r.out[-3000:]
    assert "organizations ok 3 organizations" in r.out
    assert cloud.writes(mark) == ["POST api.cloudact.local/api/v1/admin/alerts/process-all"]

    bad = cloud.make("doctor", "PROBE=everything")
    assert bad.returncode != 0 and "PROBE=everything: unknown probe; valid probes are alerts" in bad.out
