"""Cloud Scheduler v1 on localcloud: google-cloud-scheduler's REST client, google.cloud's Ansible module,
and triggers fired by the emulated clock that start Cloud Run executions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta

import google.auth
import pytest
import requests
from google.api_core import exceptions
from google.auth.transport.requests import AuthorizedSession
from google.cloud import run_v2, scheduler_v1
from google.protobuf import field_mask_pb2

PROJECT = "cloudact-local"
PARENT = f"projects/{PROJECT}/locations/us-central1"
SA = f"cloudact-jobs@{PROJECT}.iam.gserviceaccount.com"
SCRIPT = "tests/localcloud/scripts/task.py"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run_url(job_id: str) -> str:
    return f"https://us-central1-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/{PROJECT}/jobs/{job_id}:run"


def trigger(job_id: str, uri: str, schedule: str = "0 0 * * *", **fields) -> scheduler_v1.Job:
    return scheduler_v1.Job(
        name=f"{PARENT}/jobs/{job_id}",
        schedule=schedule,
        http_target=scheduler_v1.HttpTarget(
            uri=uri,
            http_method=scheduler_v1.HttpMethod.POST,
            oauth_token=scheduler_v1.OAuthToken(service_account_email=SA),
        ),
        **fields,
    )


@pytest.fixture
def scheduler(localcloud_env):
    return scheduler_v1.CloudSchedulerClient(transport="rest")


@pytest.fixture
def jobs(localcloud_env):
    return run_v2.JobsClient(transport="rest")


@pytest.fixture
def run_job(jobs):
    """A Cloud Run job whose task prints three lines; deleted afterwards."""
    task = run_v2.TaskTemplate(
        containers=[run_v2.Container(image="img", command=["python", SCRIPT], args=["--lines", "3"])],
        max_retries=0,
    )
    job_id = unique("fired")
    job = jobs.create_job(
        parent=PARENT, job=run_v2.Job(template=run_v2.ExecutionTemplate(template=task)), job_id=job_id
    ).result(timeout=30)
    yield job
    jobs.delete_job(name=job.name).result(timeout=30)


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_crud_pause_resume_with_the_rest_client(scheduler, localcloud):
    job_id = unique("crud")
    created = scheduler.create_job(
        parent=PARENT, job=trigger(job_id, run_url("whatever"), description="first")
    )
    assert created.state == scheduler_v1.Job.State.ENABLED and created.time_zone == "Etc/UTC"
    assert created.attempt_deadline.total_seconds() == 180
    assert created.http_target.http_method == scheduler_v1.HttpMethod.POST
    assert created.http_target.oauth_token.scope == "https://www.googleapis.com/auth/cloud-platform"
    assert (
        created.retry_config.min_backoff_duration.total_seconds() == 5
        and created.retry_config.max_doublings == 5
    )
    now = localcloud.admin.now()
    next_midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert created.schedule_time == next_midnight

    with pytest.raises(exceptions.Conflict):
        scheduler.create_job(parent=PARENT, job=trigger(job_id, run_url("whatever")))
    assert scheduler.get_job(name=created.name).description == "first"

    other = scheduler.create_job(parent=PARENT, job=trigger(unique("crud"), run_url("whatever")))
    pages = list(scheduler.list_jobs(request={"parent": PARENT, "page_size": 1}).pages)
    names = [job.name for page in pages for job in page.jobs]
    assert {created.name, other.name} <= set(names) and all(len(page.jobs) == 1 for page in pages)

    change = scheduler_v1.Job(
        name=created.name, schedule="30 6 * * 1", time_zone="Europe/Berlin", description="x"
    )
    updated = scheduler.update_job(
        job=change, update_mask=field_mask_pb2.FieldMask(paths=["schedule", "time_zone"])
    )
    assert (updated.schedule, updated.time_zone, updated.description) == (
        "30 6 * * 1",
        "Europe/Berlin",
        "first",
    )
    assert updated.http_target.uri == run_url("whatever")
    assert updated.user_update_time >= created.user_update_time

    paused = scheduler.pause_job(name=created.name)
    assert paused.state == scheduler_v1.Job.State.PAUSED
    with pytest.raises(exceptions.BadRequest):
        scheduler.pause_job(name=created.name)
    assert scheduler.resume_job(name=created.name).state == scheduler_v1.Job.State.ENABLED

    for name in (created.name, other.name):
        scheduler.delete_job(name=name)
    with pytest.raises(exceptions.NotFound):
        scheduler.get_job(name=created.name)


@pytest.mark.parametrize(
    ("schedule", "time_zone", "needle"),
    [
        ("0 0 * *", "Etc/UTC", "schedule"),
        ("61 0 * * *", "Etc/UTC", "schedule"),
        ("0 0 * * *", "Mars/Olympus", "zone"),
    ],
)
def test_bad_schedule_or_time_zone_is_invalid_argument(scheduler, schedule, time_zone, needle):
    job = trigger(unique("bad"), run_url("x"), schedule=schedule, time_zone=time_zone)
    with pytest.raises(exceptions.BadRequest, match=needle):
        scheduler.create_job(parent=PARENT, job=job)


def test_run_records_a_failed_attempt(scheduler):
    job = scheduler.create_job(parent=PARENT, job=trigger(unique("missing"), run_url(unique("nojob"))))
    scheduler.run_job(name=job.name)
    attempted = wait_for(
        lambda: (got := scheduler.get_job(name=job.name)).last_attempt_time and got, what="attempt"
    )
    assert attempted.status.code == 5  # NOT_FOUND: the target Cloud Run job does not exist
    scheduler.delete_job(name=job.name)


def test_clock_fires_the_trigger_once_and_the_execution_logs_in_order(
    scheduler, jobs, run_job, localcloud_env
):
    executions = run_v2.ExecutionsClient(transport="rest")
    job_id = run_job.name.rsplit("/", 1)[1]
    created = scheduler.create_job(parent=PARENT, job=trigger(f"{job_id}-trigger", run_url(job_id)))
    # Three missed midnights: Scheduler fires once, for the latest, not three times.
    mark = localcloud_env.admin.request_seq()
    localcloud_env.admin.advance(3 * 24 * 3600)
    try:
        check_fired_once(scheduler, jobs, executions, run_job, created, localcloud_env.admin, mark)
    finally:  # other tests share this localcloud: give its clock back
        localcloud_env.admin.set_time(localcloud_env.admin.now() - timedelta(days=3))
        scheduler.delete_job(name=created.name)


def check_fired_once(scheduler, jobs, executions, run_job, created, admin, mark):
    job_id = run_job.name.rsplit("/", 1)[1]
    execution = wait_for(
        lambda: next(iter(executions.list_executions(parent=run_job.name)), None), what="a run"
    )
    assert execution.annotations["localcloud/triggered-by"] == "cloud-scheduler"
    assert execution.annotations["localcloud/scheduler-job"] == f"{job_id}-trigger"
    finished = wait_for(lambda: (e := executions.get_execution(name=execution.name)).completion_time and e)
    assert finished.succeeded_count == 1
    fired = wait_for(
        lambda: (j := scheduler.get_job(name=created.name)).last_attempt_time and j, what="status"
    )
    assert fired.status.code == 0 and fired.schedule_time > fired.last_attempt_time
    # No second run for the other missed midnights, without waiting to see: the ticker fires a trigger
    # only once its scheduleTime has passed, and the one firing moved it to the first midnight after
    # the clock's now (a trigger that replayed missed runs would still be due, at a midnight passed).
    now = admin.now()
    assert now < fired.schedule_time <= now + timedelta(days=1), (fired.schedule_time, now)
    assert fired.schedule_time.hour == fired.schedule_time.minute == fired.schedule_time.second == 0
    # ... and one dispatch reached the job (localcloud's request log), one execution was made.
    runs = [
        r
        for r in admin.request_log(after=mark)
        if r["method"] == "POST" and r["path"].endswith(f"/jobs/{job_id}:run")
    ]
    assert len(runs) == 1, runs
    assert jobs.get_job(name=run_job.name).execution_count == 1

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    with AuthorizedSession(credentials) as session:
        body = {
            "resourceNames": [f"projects/{PROJECT}"],
            "filter": f'resource.type="cloud_run_job" AND resource.labels.job_name="{job_id}" AND '
            f'labels."run.googleapis.com/execution_name"="{execution.name.rsplit("/", 1)[1]}"',
            "orderBy": "timestamp asc",
        }
        response = session.post("https://logging.googleapis.com/v2/entries:list", json=body, timeout=30)
    lines = [e["textPayload"] for e in response.json()["entries"] if e["logName"].endswith("%2Fstdout")]
    assert lines == ["line 0 of task 0", "line 1 of task 0", "line 2 of task 0"]


def test_dispatch_sends_schedulers_headers_a_valid_token_and_retries(scheduler, httpserver, localcloud_env):
    """A loopback target (pytest-httpserver): what Scheduler sends, and a retry after a 503."""
    httpserver.expect_ordered_request("/hook", method="PUT").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/hook", method="PUT").respond_with_data("done")
    name = f"{PARENT}/jobs/{unique('hook')}"
    job = scheduler_v1.Job(
        name=name,
        schedule="0 0 * * *",
        http_target=scheduler_v1.HttpTarget(
            uri=httpserver.url_for("/hook"),
            http_method=scheduler_v1.HttpMethod.PUT,
            body=b'{"org": "acme"}',
            headers={"Content-Type": "application/json"},
            oidc_token=scheduler_v1.OidcToken(service_account_email=SA),
        ),
        retry_config=scheduler_v1.RetryConfig(
            retry_count=1, min_backoff_duration=timedelta(milliseconds=100)
        ),
    )
    scheduler.create_job(parent=PARENT, job=job)
    scheduler.run_job(name=name)
    done = wait_for(
        lambda: (j := scheduler.get_job(name=name)).last_attempt_time and j.status.code == 0 and j
    )
    assert done.status.code == 0 and len(httpserver.log) == 2
    request = httpserver.log[1][0]
    assert request.get_data() == b'{"org": "acme"}' and request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "Google-Cloud-Scheduler"
    assert request.headers["X-CloudScheduler"] == "true"
    assert request.headers["X-CloudScheduler-JobName"] == name.rsplit("/", 1)[1]
    assert request.headers["X-CloudScheduler-ScheduleTime"].endswith("Z")
    token = request.headers["Authorization"].removeprefix("Bearer ")
    # The token is one localcloud minted for the service account: its Google APIs accept it.
    listed = requests.get(
        f"https://run.googleapis.com/v2/{PARENT}/jobs",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert listed.status_code == 200
    scheduler.delete_job(name=name)


PLAYBOOK = """
- name: Converge one Cloud Scheduler trigger with google.cloud's module
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
    trigger: &trigger
      name: "{{ trigger_name }}"
      project: cloudact-local
      region: us-central1
      auth_kind: serviceaccount
      service_account_file: "{{ key_file }}"
      time_zone: Etc/UTC
      http_target:
        uri: "{{ uri }}"
        http_method: POST
        oauth_token:
          service_account_email: "{{ sa }}"
  tasks:
    - name: Create the trigger
      google.cloud.gcp_cloudscheduler_job:
        <<: *trigger
        schedule: "0 0 * * *"
    - name: Converge it again unchanged
      google.cloud.gcp_cloudscheduler_job:
        <<: *trigger
        schedule: "0 0 * * *"
    - name: Change its schedule
      google.cloud.gcp_cloudscheduler_job:
        <<: *trigger
        schedule: "0 1 * * *"
    - name: Delete it
      google.cloud.gcp_cloudscheduler_job:
        <<: *trigger
        schedule: "0 1 * * *"
        state: absent
"""


def test_google_cloud_ansible_module_creates_is_idempotent_updates_deletes(scheduler, localcloud, tmp_path):
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    (tmp_path / "ansible.cfg").write_text(
        "[defaults]\nlocalhost_warning = False\nstdout_callback = ansible.posix.json\n"
        "[connection]\npipelining = True\n"
    )
    name = unique("ansible")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"),
        "ANSIBLE_HOME": str(tmp_path / ".ansible"),
        **localcloud.client_env,
    }
    extra = {
        "trigger_name": name,
        "key_file": str(localcloud.key_file),
        "uri": run_url("whatever"),
        "sa": SA,
    }
    playbook = [
        os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
        "-i",
        "localhost,",
        "play.yml",
    ]
    result = subprocess.run(
        [*playbook, "-e", json.dumps(extra)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    tasks = json.loads(result.stdout)["plays"][0]["tasks"]
    results = dict(
        zip(("create", "again", "update", "delete"), (t["hosts"]["localhost"] for t in tasks), strict=True)
    )
    assert results["create"]["changed"] is True and results["create"]["name"] == name
    assert results["again"]["changed"] is False
    assert results["update"]["changed"] is True and results["update"]["schedule"] == "0 1 * * *"
    assert results["delete"]["changed"] is True
    with pytest.raises(exceptions.NotFound):
        scheduler.get_job(name=f"{PARENT}/jobs/{name}")


def test_clock_set_back_reschedules_without_firing(tmp_path):
    """A localcloud of its own (the session's clock stays untouched): set the clock back by ten days."""
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    from localcloud.client import AdminClient
    from localcloud.server import LocalCloud

    cloud = LocalCloud(tmp_path / "state", 0, ["oauth2:OAuth2", "scheduler:SchedulerService"])
    cloud.start()
    try:
        plain = requests.Session()
        plain.trust_env = False
        plain.proxies, plain.verify = {"https": cloud.proxy_url}, str(cloud.ca_file)
        scopes = ["https://www.googleapis.com/auth/cloud-platform"]
        credentials = service_account.Credentials.from_service_account_file(
            str(cloud.key_file), scopes=scopes
        )
        authed = AuthorizedSession(credentials, auth_request=Request(session=plain))
        authed.trust_env = False
        authed.proxies, authed.verify = plain.proxies, plain.verify
        body = {
            "name": f"{PARENT}/jobs/back",
            "schedule": "0 0 * * *",
            "httpTarget": {"uri": run_url("nojob")},
        }
        base = "https://cloudscheduler.googleapis.com/v1"
        created = authed.post(f"{base}/{PARENT}/jobs", json=body, timeout=30).json()
        admin = AdminClient(cloud.proxy_url)
        earlier = admin.set_time(admin.now() - timedelta(days=10))
        expected = (earlier + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)

        def rescheduled():
            job = authed.get(f"{base}/{created['name']}", timeout=30).json()
            return job if job["scheduleTime"] != created["scheduleTime"] else None

        job = wait_for(rescheduled, what="a new scheduleTime")
        assert datetime.fromisoformat(job["scheduleTime"].replace("Z", "+00:00")) == expected
        assert "lastAttemptTime" not in job
    finally:
        cloud.stop()
