"""Cloud Run's execution retention on localcloud: per job the newest 1,000 executions plus any younger
than 7 days on the emulated clock are kept, older ones deleted (https://cloud.google.com/run/docs/execute/jobs).

Its own localcloud (stopped by pid), since it moves the clock by days and leaves 1,000 executions."""

from __future__ import annotations

import time

import pytest
from google.cloud import run_v2
from google.protobuf import duration_pb2

from localcloud.client import LocalCloudProcess

PARENT = "projects/cloudact-local/locations/us-central1"


@pytest.fixture
def cloud(localcloud_state, monkeypatch):
    proc = LocalCloudProcess(localcloud_state)
    try:
        proc.start()
        for name, value in proc.client_env.items():
            monkeypatch.setenv(name, value)
        yield proc
    finally:
        proc.stop()


def run_many(jobs: run_v2.JobsClient, executions: run_v2.ExecutionsClient, job: str, count: int) -> None:
    """Start `count` executions and wait until every one of the job's executions finished."""
    operations = [jobs.run_job(name=job) for _ in range(count)]
    operations[-1].result(timeout=300)  # the last one started; then the rest, listed (a big page) rarely
    deadline = time.monotonic() + 300
    while any(not e.completion_time for e in listed(executions, job)):
        assert time.monotonic() < deadline, "executions did not finish in 300 s"
        time.sleep(2)


def listed(executions: run_v2.ExecutionsClient, job: str) -> list[run_v2.Execution]:
    return list(executions.list_executions(request={"parent": job, "page_size": 1000}))


# Slow for now: Cloud Run's state file is rewritten whole at every execution event (RunState._save,
# run_base.py), so 1,200 executions cost O(n^2) in JSON dumps (68 s of 75 s for 500 here); the
# executions themselves (one `true` process each) take ~50 ms apiece.
@pytest.mark.timeout(900)
def test_newest_1000_and_the_last_7_days_are_kept(cloud) -> None:
    jobs = run_v2.JobsClient(transport="rest")
    executions = run_v2.ExecutionsClient(transport="rest")
    # A job whose container is the shortest real process: each execution still runs it, logs and exits.
    template = run_v2.TaskTemplate(
        containers=[
            run_v2.Container(image="us-docker.pkg.dev/cloudact-local/jobs/test:latest", command=["true"])
        ],
        timeout=duration_pb2.Duration(seconds=30),
        max_retries=0,
    )
    job = jobs.create_job(
        parent=PARENT, job=run_v2.Job(template=run_v2.ExecutionTemplate(template=template)), job_id="fast"
    ).result(timeout=30)
    other = jobs.create_job(
        parent=PARENT, job=run_v2.Job(template=run_v2.ExecutionTemplate(template=template)), job_id="other"
    ).result(timeout=30)

    run_many(jobs, executions, job.name, 300)
    first = sorted(listed(executions, job.name), key=lambda e: e.create_time)
    run_many(jobs, executions, other.name, 1)
    cloud.admin.advance("3d")
    run_many(jobs, executions, job.name, 900)
    # 1,200 executions, every one younger than 7 days: all kept.
    assert len(listed(executions, job.name)) == 1200

    cloud.admin.advance("5d")  # the first 300 are 8 days old now, the 900 are 5
    kept = listed(executions, job.name)
    assert len(kept) == 1000
    names = {e.name for e in kept}
    assert not names & {e.name for e in first[:200]}  # the oldest are gone
    assert {e.name for e in first[200:]} <= names  # the newest 1,000 stay, old or not
    assert len(listed(executions, other.name)) == 1  # per job: the other job's old one stays

    run_many(jobs, executions, job.name, 1)  # a new one pushes the oldest old one out
    kept = listed(executions, job.name)
    assert len(kept) == 1000 and first[200].name not in {e.name for e in kept}
    assert jobs.get_job(name=job.name).execution_count == 1201
