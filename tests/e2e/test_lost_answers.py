"""The fault matrix: each write of make run, release, pause, resume, cancel, create-jobs and image, under
each fault an answer can meet, through make on a localcloud of this module's own.

The faults (localcloud's POST /_localcloud/faults):
- a 503 before the service sees the request (it did nothing: resend);
- a 502 after the service applied it (`applied`: the answer Google's front end can lose after the
  execution started): never resent blindly, looked for and adopted;
- the connection dropped after the service applied it;
- a 429 with Retry-After (resend after it);
- an answer slower than the client's timeout (the service applied it; CLOUDACT_HTTP_TIMEOUT=2 s).

After each case: the end state is the catalog's, each intended run produced exactly one execution,
nothing is half-applied, and a rerun (or the plan) changes nothing. Black-box on purpose: make
targets, localcloud's fault API and its request log; no product code is imported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

from tests.makecloud import RUN, SCHEDULER, Cloud, own_localcloud

pytestmark = [pytest.mark.e2e, pytest.mark.localcloud]

PROJECT = "cloudact-local"
RUN_HOST = "run.googleapis.com"
SCHED_HOST = "cloudscheduler.googleapis.com"
JOBS_PATH = f"/v2/projects/{PROJECT}/locations/us-central1/jobs"
TRIGGERS_PATH = f"/v1/projects/{PROJECT}/locations/us-central1/jobs"
API_HOST = "api.cloudact.local"
SLOW_TIMEOUT = "2"  # seconds per attempt in the slow case; the answer comes 4 s late


@dataclass(frozen=True)
class Fault:
    id: str
    spec: dict
    env: dict = field(default_factory=dict)
    applied: bool = False  # the service acted on the first attempt: one request must be enough


FAULTS = [
    Fault("503-before", {"status": 503}),
    Fault("502-applied", {"status": 502, "applied": True}, applied=True),
    Fault("drop-applied", {"drop": True, "applied": True}, applied=True),
    Fault("429-retry-after", {"status": 429, "retry_after": 1}),
    Fault(
        "slow-applied", {"delay": 4, "applied": True}, {"CLOUDACT_HTTP_TIMEOUT": SLOW_TIMEOUT}, applied=True
    ),
]


@dataclass(frozen=True)
class Write:
    """One write a target makes: where the fault strikes (host, method, path glob) and what must hold."""

    id: str
    host: str
    method: str
    path: str
    once: bool = True  # not safe to repeat: after an applied fault exactly one such request


@pytest.fixture(scope="module")
def cloud():
    with own_localcloud("localcloud-lost-answers-") as c:
        # A fresh machine's release: the local image, the 8 jobs and 5 triggers, then the three steps.
        r = c.make("release", timeout=900)
        assert r.returncode == 0, r.out[-4000:]
        yield c


def arm(cloud: Cloud, write: Write, fault: Fault) -> int:
    return cloud.admin.fault(write.host, write.path, method=write.method, count=1, **fault.spec)


def sent(cloud: Cloud, mark: int, write: Write) -> list[dict]:
    import fnmatch

    return [
        e
        for e in cloud.log(mark)
        if e["host"] == write.host
        and e["method"] == write.method
        and fnmatch.fnmatchcase(e["path"], write.path)
    ]


def survived(cloud: Cloud, mark: int, write: Write, fault: Fault, fault_id: int) -> None:
    """The fault struck, and the write was sent again only when the server had not acted."""
    hits = cloud.admin.fired_faults(fault_id)
    assert len(hits) == 1, hits  # the fault struck this write
    tries = sent(cloud, mark, write)
    if fault.applied and write.once:
        assert len(tries) == 1, [e["seq"] for e in tries]  # looked and adopted: never resent
    elif not fault.applied:
        assert len(tries) >= 2, [e["seq"] for e in tries]  # the server did nothing: resent


# ---- make run and the release's steps ---------------------------------------------------------------

RUN_WRITE = Write("run :run", RUN_HOST, "POST", f"{JOBS_PATH}/cloudact-daily-quota-reset:run")
RELEASE_WRITE = Write("release :run", RUN_HOST, "POST", f"{JOBS_PATH}/cloudact-manual-org-sync-all:run")


@pytest.mark.parametrize("fault", FAULTS, ids=[f.id for f in FAULTS])
def test_make_run_starts_exactly_one_execution(cloud, fault) -> None:
    before = len(cloud.executions(PROJECT, "cloudact-daily-quota-reset"))
    mark = cloud.mark()
    fault_id = arm(cloud, RUN_WRITE, fault)
    r = cloud.make("run", "JOB=quota-reset", **fault.env)
    assert r.returncode == 0, r.out[-3000:]
    assert re.search(r"quota-reset: cloudact-daily-quota-reset-\w+ succeeded", r.out), r.out[-2000:]
    survived(cloud, mark, RUN_WRITE, fault, fault_id)
    assert len(cloud.executions(PROJECT, "cloudact-daily-quota-reset")) == before + 1
    if fault.applied:
        assert "nothing was sent twice" in r.out  # the lost answer is said, with what was adopted


@pytest.mark.parametrize("fault", FAULTS, ids=[f.id for f in FAULTS])
def test_a_release_step_starts_exactly_one_execution(cloud, fault) -> None:
    before = len(cloud.executions(PROJECT, "cloudact-manual-org-sync-all"))
    mark = cloud.mark()
    fault_id = arm(cloud, RELEASE_WRITE, fault)
    r = cloud.make("release", "FROM=org-sync-all", timeout=600, **fault.env)
    assert r.returncode == 0, r.out[-4000:]
    assert "Synced 3 org datasets" in r.out
    survived(cloud, mark, RELEASE_WRITE, fault, fault_id)
    assert len(cloud.executions(PROJECT, "cloudact-manual-org-sync-all")) == before + 1


# ---- pause, resume, cancel -----------------------------------------------------------------------------

TRIGGER = "cloudact-daily-alerts-trigger"


def trigger_state(cloud: Cloud) -> str:
    return cloud.triggers(PROJECT)[TRIGGER]["state"]


def set_trigger(cloud: Cloud, verb: str) -> None:
    """Pause or resume the trigger by hand (Scheduler refuses to pause a paused one: only when needed)."""
    if trigger_state(cloud) != ("PAUSED" if verb == "pause" else "ENABLED"):
        cloud.api(PROJECT, "POST", SCHEDULER.format(PROJECT) + f"/jobs/{TRIGGER}:{verb}", json={})


@pytest.mark.parametrize("verb", ["pause", "resume"])
@pytest.mark.parametrize("fault", FAULTS, ids=[f.id for f in FAULTS])
def test_pause_and_resume_set_the_state_once(cloud, fault, verb) -> None:
    set_trigger(cloud, "resume" if verb == "pause" else "pause")
    write = Write(verb, SCHED_HOST, "POST", f"{TRIGGERS_PATH}/{TRIGGER}:{verb}", once=False)
    mark = cloud.mark()
    fault_id = arm(cloud, write, fault)
    r = cloud.make(verb, "JOB=alerts", **fault.env)
    assert r.returncode == 0, r.out[-3000:]
    wanted = "PAUSED" if verb == "pause" else "ENABLED"
    assert trigger_state(cloud) == wanted
    survived(cloud, mark, write, fault, fault_id)
    again = cloud.make(verb, "JOB=alerts")
    assert again.returncode == 0 and "(already so)" in again.out, again.out[-2000:]
    set_trigger(cloud, "resume")


@pytest.mark.parametrize("fault", FAULTS, ids=[f.id for f in FAULTS])
def test_cancel_cancels_the_running_execution_once(cloud, fault) -> None:
    cloud.admin.fault(API_HOST, "/api/v1/admin/quota/cleanup-stale", count=1, delay=60)  # keeps it running
    r = cloud.make("run", "JOB=stale", "WAIT=false")
    assert r.returncode == 0, r.out[-3000:]
    name = re.search(r"started (cloudact-daily-stale-cleanup-\w+) \(not waiting\)", r.out).group(1)
    write = Write("cancel", RUN_HOST, "POST", f"{JOBS_PATH}/cloudact-daily-stale-cleanup/executions/*:cancel")
    write = Write(write.id, write.host, write.method, write.path, once=False)
    mark = cloud.mark()
    fault_id = arm(cloud, write, fault)
    try:
        r = cloud.make("cancel", "JOB=stale", f"EXECUTION={name}", **fault.env)
        assert r.returncode == 0, r.out[-3000:]
        assert f"{name} cancelled (cancelled now)" in r.out, r.out[-2000:]
        survived(cloud, mark, write, fault, fault_id)
    finally:
        cloud.admin.clear_faults()  # the fired history too: read it first
    again = cloud.make("cancel", "JOB=stale", f"EXECUTION={name}")
    assert again.returncode == 0 and "(had already finished)" in again.out, again.out[-2000:]


# ---- create-jobs: every write of a converge under one fault, in one run ------------------------------

CREATED_JOB = "cloudact-daily-stale-cleanup"
PATCHED_JOB = "cloudact-daily-quota-cleanup"
CREATED_TRIGGER = "cloudact-monthly-quota-reset-trigger"
PATCHED_TRIGGER = "cloudact-daily-quota-reset-trigger"
BOUND_JOB = "cloudact-daily-alerts"
TRIGGER_ACCOUNT = f"serviceAccount:cloudact-scheduler@{PROJECT}.iam.gserviceaccount.com"

CONVERGE_WRITES = [
    Write("jobs.create", RUN_HOST, "POST", JOBS_PATH),
    Write("jobs.patch", RUN_HOST, "PATCH", f"{JOBS_PATH}/{PATCHED_JOB}", once=False),
    Write("scheduler jobs.create", SCHED_HOST, "POST", TRIGGERS_PATH),
    Write("scheduler jobs.patch", SCHED_HOST, "PATCH", f"{TRIGGERS_PATH}/{PATCHED_TRIGGER}"),
    Write("jobs.setIamPolicy", RUN_HOST, "POST", f"{JOBS_PATH}/{BOUND_JOB}:setIamPolicy", once=False),
]


def unconverge(cloud: Cloud) -> None:
    """Put the environment off the catalog so that a converge makes each write of CONVERGE_WRITES."""
    base = RUN.format(PROJECT)
    sched = SCHEDULER.format(PROJECT)
    cloud.api(PROJECT, "DELETE", f"{base}/jobs/{CREATED_JOB}")
    cloud.wait_for(lambda: CREATED_JOB not in cloud.jobs(PROJECT), "the job's deletion")
    job = cloud.jobs(PROJECT)[PATCHED_JOB]
    job["template"]["template"]["timeout"] = "61s"
    cloud.api(PROJECT, "PATCH", f"{base}/jobs/{PATCHED_JOB}", json={"template": job["template"]})
    cloud.api(PROJECT, "DELETE", f"{sched}/jobs/{CREATED_TRIGGER}")
    cloud.api(
        PROJECT,
        "PATCH",
        f"{sched}/jobs/{PATCHED_TRIGGER}",
        params={"updateMask": "schedule"},
        json={"schedule": "7 7 * * *"},
    )
    policy = cloud.api(PROJECT, "GET", f"{base}/jobs/{BOUND_JOB}:getIamPolicy")
    policy["bindings"] = [
        dict(b, members=[m for m in b["members"] if m != TRIGGER_ACCOUNT]) for b in policy.get("bindings", [])
    ]
    policy["bindings"] = [b for b in policy["bindings"] if b["members"]]
    cloud.api(PROJECT, "POST", f"{base}/jobs/{BOUND_JOB}:setIamPolicy", json={"policy": policy})


def converged(cloud: Cloud) -> None:
    jobs = cloud.jobs(PROJECT)
    assert CREATED_JOB in jobs and jobs[CREATED_JOB]["labels"]["cloudact-env"] == "local"
    assert jobs[PATCHED_JOB]["template"]["template"]["timeout"] == "1800s"
    triggers = cloud.triggers(PROJECT)
    assert CREATED_TRIGGER in triggers
    assert triggers[PATCHED_TRIGGER]["schedule"] == "0 0 * * *"
    assert triggers[CREATED_TRIGGER]["description"].endswith("[cloudact-env=local]")
    policy = cloud.api(PROJECT, "GET", f"{RUN.format(PROJECT)}/jobs/{BOUND_JOB}:getIamPolicy")
    invokers = [b["members"] for b in policy.get("bindings", []) if b["role"] == "roles/run.invoker"]
    assert [TRIGGER_ACCOUNT] in invokers


@pytest.mark.parametrize("fault", FAULTS, ids=[f.id for f in FAULTS])
def test_a_converge_survives_every_write_losing_its_answer(cloud, fault) -> None:
    unconverge(cloud)
    mark = cloud.mark()
    armed = {w.id: arm(cloud, w, fault) for w in CONVERGE_WRITES}
    try:
        r = cloud.make("create-jobs", timeout=600, **fault.env)
        assert r.returncode == 0, r.out[-4000:]
        for write in CONVERGE_WRITES:
            survived(cloud, mark, write, fault, armed[write.id])
    finally:
        cloud.admin.clear_faults()
    converged(cloud)
    plan = cloud.make("plan")
    assert plan.returncode == 0, plan.out[-3000:]
    assert "jobs: 0 would be created, 0 would be updated, 8 unchanged, 0 would be pruned" in plan.out
    assert "triggers: 0 would be created, 0 would be updated, 5 unchanged, 0 would be pruned" in plan.out


# ---- make image: the build and its upload ------------------------------------------------------------

IMAGE_WRITES = [
    Write(
        "builds.create",
        "cloudbuild.googleapis.com",
        "POST",
        f"/v1/projects/{PROJECT}/locations/us-central1/builds",
    ),
    Write("objects.insert (upload)", "storage.googleapis.com", "POST", "/upload/storage/v1/b/*/o"),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.id for f in FAULTS])
def test_make_image_builds_once(cloud, fault) -> None:
    release = f"lost-{fault.id}"
    url = f"https://cloudbuild.googleapis.com/v1/projects/{PROJECT}/locations/us-central1/builds"
    before = len(cloud.api(PROJECT, "GET", url).get("builds") or [])
    mark = cloud.mark()
    armed = {w.id: arm(cloud, w, fault) for w in IMAGE_WRITES}
    try:
        r = cloud.make("image", f"RELEASE={release}", "DIRTY=1", timeout=600, **fault.env)
        assert r.returncode == 0, r.out[-4000:]
        assert re.search(rf"pushed \S+@sha256:[0-9a-f]{{64}} \(tags {release}, git-", r.out), r.out[-2000:]
        for write in IMAGE_WRITES:
            survived(cloud, mark, write, fault, armed[write.id])
    finally:
        cloud.admin.clear_faults()
    assert len(cloud.api(PROJECT, "GET", url).get("builds") or []) == before + 1  # one build per image
    again = cloud.make("image", f"RELEASE={release}", "DIRTY=1")
    assert again.returncode == 0, again.out[-2000:]
    assert "exists" in again.out and "nothing to build" in again.out
