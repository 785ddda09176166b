"""The execution ledger end to end through make, on a localcloud of its own: a week of scheduled ticks
with no toolkit command run is in the ledger through the jobs' own writes; and the ledger keeps what
Cloud Run's retention drops (1,200 executions of one fast job: Cloud Run keeps 1,000, the ledger
1,200, and make history N=1200 lists them, saying where each row came from)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import timedelta

import pytest
from ansible_collections.cloudact.gcp.plugins.module_utils import bigquery as bq
from ansible_collections.cloudact.gcp.plugins.module_utils import client, ledger, timefmt
from ansible_collections.cloudact.gcp.plugins.module_utils import run_execution as rx

from localcloud.client import LocalCloudProcess
from toolkit import ROOT

PROJECT = "cloudact-local"
REGION = "us-central1"
# The daily triggers' due times (catalog/jobs.yml): (hour, job).
DAILY = [
    (0, "cloudact-daily-quota-reset"),
    (1, "cloudact-daily-quota-cleanup"),
    (2, "cloudact-daily-stale-cleanup"),
    (8, "cloudact-daily-alerts"),
]


class Ledger:
    def __init__(self, proc: LocalCloudProcess):
        self.proc = proc
        self.admin = proc.admin
        self.api = client.Client(client.credentials("serviceaccount", str(proc.key_file)))

    def make(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k.lower() not in ("https_proxy", "http_proxy")}
        env.update(self.proc.client_env, LOCALCLOUD_STATE_DIR=str(self.proc.state_dir), NO_COLOR="1")
        env.pop("CONFIRM", None)
        result = subprocess.run(
            ["make", "-s", "--no-print-directory", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        result.out = result.stdout + result.stderr  # type: ignore[attr-defined]
        return result

    def executions(self, job: str) -> list[dict]:
        return self.api.list_all(
            rx.executions_url(PROJECT, REGION, job), "executions", job, params={"pageSize": 1000}
        )

    def observations(self) -> list[dict]:
        sql = f"SELECT execution, source, summary FROM `{PROJECT}.{ledger.DATASET}.{ledger.TABLE}`"  # noqa: S608
        return bq.query(self.api, PROJECT, sql)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    proc = LocalCloudProcess(tmp_path_factory.mktemp("ledger") / "state")
    proc.start(timeout=120)
    saved = dict(os.environ)
    try:
        proc.files.pid.write_text(f"{proc.pid}\n")  # make's `localcloud up` finds this one running
        os.environ.update(proc.client_env)  # the in-process client goes through this localcloud
        here = Ledger(proc)
        result = here.make("release")  # creates the jobs, triggers and the ledger, bootstraps the API
        assert result.returncode == 0, result.out[-3000:]
        yield here
    finally:
        os.environ.clear()
        os.environ.update(saved)
        proc.stop()


def wait_for(predicate, what: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def test_a_week_of_scheduled_runs_is_in_the_ledger_through_the_jobs_own_writes(cloud):
    start = (cloud.admin.now() + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    before = {e["name"] for job in (j for _, j in DAILY) for e in cloud.executions(job)}
    for day in range(7):
        for hour, job in DAILY:
            due = start + timedelta(days=day, hours=hour)
            cloud.admin.set_time(due + timedelta(seconds=20))

            def finished(job=job, due=due):
                return [
                    e
                    for e in cloud.executions(job)
                    if e.get("completionTime") and timefmt.parse_time(e["createTime"]) >= due
                ]

            wait_for(finished, f"{job} at {due}")
    scheduled = {
        e["name"].rsplit("/", 1)[-1]: e
        for job in (j for _, j in DAILY)
        for e in cloud.executions(job)
        if e["name"] not in before
    }
    assert len(scheduled) == 7 * len(DAILY)
    assert all(rx.state(e) == "SUCCEEDED" for e in scheduled.values())
    observed = [o for o in cloud.observations() if o["execution"] in scheduled]
    # Every execution is there, every observation is the job's own: no toolkit command ran.
    assert {o["execution"] for o in observed} == set(scheduled)
    assert {o["source"] for o in observed} == {"job"}
    rows = {r["execution"]: r for r in ledger.read_rows(cloud.api, PROJECT, executions=list(scheduled))}
    assert set(rows) == set(scheduled)
    assert all(r["result"] == "succeeded" and r["summary"] for r in rows.values()), rows
    # Reconciliation then adds Cloud Run's own record (creator, image, exact times) once.
    result = cloud.make("ledger-sync")
    assert result.returncode == 0, result.out[-3000:]
    again = cloud.make("ledger-sync")
    assert "0 observation(s) appended" in again.out, again.out[-2000:]
    rows = {r["execution"]: r for r in ledger.read_rows(cloud.api, PROJECT, executions=list(scheduled))}
    assert {r["trigger"] for r in rows.values()} == {"scheduler"}
    assert all(r["summary"] for r in rows.values())  # the job's summary line stays


FAST = "cloudact-daily-alerts"
REAL_RUNS = 5
TOTAL = 1200


def fast_job(cloud) -> None:
    """FAST's command turned into `true`: a job that succeeds at once."""
    job = cloud.api.request("GET", rx.job_url(PROJECT, REGION, FAST), "job")
    job["template"]["template"]["containers"][0].update(command=["true"], args=[])
    op = cloud.api.request(
        "PATCH", rx.job_url(PROJECT, REGION, FAST), "job", json={"template": job["template"]}
    )
    cloud.api.wait_operation(op, rx.BASE, "job")


def run_many(cloud, count: int) -> list[dict]:
    url = rx.job_url(PROJECT, REGION, FAST) + ":run"
    names = [cloud.api.request("POST", url, "run", json={})["metadata"]["name"] for _ in range(count)]
    done = []
    for name in names:
        short = name.rsplit("/", 1)[-1]
        done.append(
            wait_for(
                lambda short=short: (lambda e: e if rx.state(e) in timefmt.FINISHED else None)(
                    cloud.api.request("GET", rx.execution_url(PROJECT, REGION, FAST, short), "execution")
                ),
                short,
            )
        )
    return done


def clone_executions(state_dir, model: dict, count: int) -> None:
    """`count` more finished executions of FAST like `model`, a minute apart before it, written into
    Cloud Run's state file while localcloud is down (see the test's docstring for why)."""
    path = state_dir / "run" / "state.json"
    state = json.loads(path.read_text())
    base = timefmt.parse_time(model["createTime"])
    parent = model["name"].rsplit("/", 1)[0]
    for index in range(count):
        name = f"{parent}/{FAST}-c{index:05d}"
        shift = timedelta(minutes=index + 1)
        clone = json.loads(json.dumps(model))
        clone["name"], clone["uid"] = name, f"clone-{index}"
        for key in ("createTime", "startTime", "completionTime", "updateTime"):
            clone[key] = (timefmt.parse_time(model[key]) - shift).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert timefmt.parse_time(clone["createTime"]) < base
        state["executions"][name] = clone
        state["tasks"][name] = state["tasks"][model["name"]]
    path.write_text(json.dumps(state))


def test_the_ledger_keeps_what_cloud_runs_retention_drops(cloud):
    """1,200 executions of one fast job: Cloud Run keeps 1,000, the ledger 1,200, make history N=1200
    lists them. REAL_RUNS of them run for real; the rest are copies of one of those, written into
    localcloud's Cloud Run state while it is down, because every :run costs localcloud time in
    proportion to the executions it holds (measured on this machine: 50 runs of a `true` job took
    3.7 s from none and 9.6 s from 150, so 1,200 real runs take many minutes: bench/ledger.py
    --retention runs them all for real and reports the figures). Cloud Run's own retention, on the
    emulated clock, then drops the oldest 200. (Afterwards the catalog's alerts job and every trigger
    are put back, for the test of scheduled runs.)"""
    try:
        check_retention(cloud)
    finally:
        assert cloud.make("create-jobs").returncode == 0  # alerts runs its script again
        assert cloud.make("resume").returncode == 0


def check_retention(cloud) -> None:
    fast_job(cloud)
    real = run_many(cloud, REAL_RUNS)
    already = len(cloud.executions(FAST))
    cloud.proc.stop()
    clone_executions(cloud.proc.state_dir, real[0], TOTAL - already)
    cloud.proc.start(timeout=120)
    cloud.proc.files.pid.write_text(f"{cloud.proc.pid}\n")  # as `localcloud up` leaves it, for make
    cloud.admin = cloud.proc.admin
    assert len(cloud.executions(FAST)) == TOTAL
    result = cloud.make("ledger-sync")
    assert result.returncode == 0, result.out[-3000:]

    assert cloud.make("pause").returncode == 0  # no trigger fires while the clock jumps
    cloud.admin.set_time(cloud.admin.now() + timedelta(days=8))  # all past 7 days: the newest 1,000 stay
    assert len(cloud.executions(FAST)) == 1000  # Cloud Run keeps the newest 1,000
    result = cloud.make("ledger-sync")
    assert result.returncode == 0 and "0 observation(s) appended" in result.out, result.out[-3000:]
    assert len(ledger.read_rows(cloud.api, PROJECT, job=FAST)) == TOTAL  # the ledger keeps all

    result = cloud.make("history", "JOB=alerts", f"N={TOTAL}")
    assert result.returncode == 0, result.out[-3000:]
    counts = "1000 in Cloud Run and the ledger, 0 in Cloud Run only, 200 in the ledger"
    assert f"{FAST}: last {TOTAL} execution(s): {counts}" in result.out
    rows = [line.split() for line in result.out.splitlines() if line.startswith(f"{FAST}-")]
    assert len(rows) == TOTAL
    assert [r[1] for r in rows].count("ledger") == 200 and [r[1] for r in rows].count("both") == 1000
