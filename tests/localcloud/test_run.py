"""Cloud Run Admin API v2 on localcloud, driven by google-cloud-run's own REST clients through the proxy."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import google.auth
import pytest
import requests
from google.api import launch_stage_pb2
from google.api_core import exceptions
from google.auth.transport.requests import AuthorizedSession, Request
from google.cloud import run_v2, secretmanager
from google.oauth2 import service_account
from google.protobuf import duration_pb2

PROJECT = "cloudact-local"
PARENT = f"projects/{PROJECT}/locations/us-central1"
SCRIPT = "tests/localcloud/scripts/task.py"
RUN_HOST = "https://run.googleapis.com"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


@pytest.fixture
def jobs(localcloud_env):
    return run_v2.JobsClient(transport="rest")


@pytest.fixture
def executions(localcloud_env):
    return run_v2.ExecutionsClient(transport="rest")


@pytest.fixture
def session(localcloud_env):
    credentials, _ = google.auth.default(scopes=SCOPES)
    with AuthorizedSession(credentials) as authed:
        yield authed


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def task_job(
    *args: str, max_retries: int | None = 0, timeout: str = "20s", env=None, task_count: int = 1
) -> run_v2.Job:
    task = run_v2.TaskTemplate(
        containers=[
            run_v2.Container(
                image="us-docker.pkg.dev/cloudact-local/jobs/test:latest",
                command=["python", SCRIPT],
                args=list(args),
                env=env or [],
            )
        ],
        timeout=duration_pb2.Duration(seconds=int(timeout.rstrip("s"))),
    )
    if max_retries is not None:
        task.max_retries = max_retries
    return run_v2.Job(template=run_v2.ExecutionTemplate(task_count=task_count, template=task))


def create(jobs: run_v2.JobsClient, job: run_v2.Job, prefix: str = "t") -> run_v2.Job:
    return jobs.create_job(parent=PARENT, job=job, job_id=unique(prefix)).result(timeout=30)


def entries(session: AuthorizedSession, execution_id: str) -> list[dict]:
    body = {
        "resourceNames": [f"projects/{PROJECT}"],
        "filter": f'resource.type="cloud_run_job"\nlabels."run.googleapis.com/execution_name"="{execution_id}"',  # noqa: E501
        "orderBy": "timestamp asc",
        "pageSize": 1000,
    }
    response = session.post("https://logging.googleapis.com/v2/entries:list", json=body, timeout=30)
    response.raise_for_status()
    return response.json().get("entries", [])


def condition(execution: run_v2.Execution, kind: str) -> run_v2.Condition:
    return next(c for c in execution.conditions if c.type_ == kind)


def test_job_lifecycle_with_defaults_generation_and_etag(jobs):
    job = task_job("--lines", "1", max_retries=None)
    job.template.template.timeout = None  # absent: the server fills 600s
    created = create(jobs, job)
    task = created.template.template
    assert (created.generation, task.max_retries, task.timeout.total_seconds()) == (1, 3, 600)
    assert created.template.task_count == 1 and created.launch_stage == launch_stage_pb2.GA
    assert dict(task.containers[0].resources.limits) == {"cpu": "1000m", "memory": "512Mi"}
    assert created.terminal_condition.state.name == "CONDITION_SUCCEEDED"

    got = jobs.get_job(name=created.name)
    assert got.etag == created.etag and got.uid == created.uid

    got.template.template.containers[0].args[:] = ["--lines", "2"]
    updated = jobs.update_job(job=got).result(timeout=30)
    assert updated.generation == 2 and updated.etag != created.etag
    assert list(updated.template.template.containers[0].args) == ["--lines", "2"]
    again = jobs.update_job(job=updated).result(
        timeout=30
    )  # identical content still bumps, as Cloud Run does
    assert again.generation == 3 and again.etag != updated.etag

    with pytest.raises(exceptions.Conflict):
        jobs.create_job(parent=PARENT, job=job, job_id=created.name.rsplit("/", 1)[1]).result(timeout=30)

    jobs.delete_job(name=created.name).result(timeout=30)
    with pytest.raises(exceptions.NotFound) as missing:
        jobs.get_job(name=created.name)
    job_id = created.name.rsplit("/", 1)[1]
    where = "in region 'us-central1' in project 'cloudact-local'"
    assert f"Resource '{job_id}' of kind 'JOB' {where} does not exist." in missing.value.message


def test_update_allow_missing_creates_and_list_pages(jobs):
    names = []
    for _ in range(3):
        job = task_job()
        job.name = f"{PARENT}/jobs/{unique('page')}"
        names.append(jobs.update_job(request={"job": job, "allow_missing": True}).result(timeout=30).name)
    pager = jobs.list_jobs(request={"parent": PARENT, "page_size": 2})
    pages = list(pager.pages)
    listed = [job.name for page in pages for job in page.jobs]
    assert set(names) <= set(listed) and len(listed) == len(set(listed))
    assert all(len(page.jobs) <= 2 for page in pages) and len(pages) >= 2
    with pytest.raises(exceptions.NotFound):
        missing = task_job()
        missing.name = f"{PARENT}/jobs/{unique('absent')}"
        jobs.update_job(job=missing).result(timeout=30)
    for name in names:
        jobs.delete_job(name=name).result(timeout=30)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda job: job["template"]["template"]["containers"][0].pop("image"), "image"),
        (lambda job: job["template"]["template"].update(timeout="ten minutes"), "duration"),
        (lambda job: job.update(labels={"run.googleapis.com/x": "y"}), "reserved"),
        (
            lambda job: job["template"]["template"]["containers"][0].update(
                resources={"limits": {"memory": "lots"}}
            ),
            "memory",
        ),
        (lambda job: job.pop("template"), "template"),
    ],
    ids=["missing-image", "bad-duration", "reserved-label", "bad-memory", "no-template"],
)
def test_bad_fields_are_invalid_argument(session, mutate, needle):
    body = {"template": {"template": {"containers": [{"image": "img", "command": ["python", SCRIPT]}]}}}
    mutate(body)
    response = session.post(f"{RUN_HOST}/v2/{PARENT}/jobs?jobId={unique('bad')}", json=body, timeout=30)
    error = response.json()["error"]
    assert (response.status_code, error["status"]) == (400, "INVALID_ARGUMENT")
    assert needle in error["message"]


def test_invalid_argument_class_through_the_client(jobs):
    job = task_job()
    job.template.template.containers[0].image = ""
    with pytest.raises(exceptions.BadRequest, match="image"):
        jobs.create_job(parent=PARENT, job=job, job_id=unique("noimage")).result(timeout=30)


def test_no_token_is_401(localcloud_env):
    response = requests.get(f"{RUN_HOST}/v2/{PARENT}/jobs", timeout=30)
    assert response.status_code == 401 and response.json()["error"]["status"] == "UNAUTHENTICATED"


def test_run_with_overrides_runs_tasks_and_logs_lines(jobs, executions, session):
    job = create(jobs, task_job("--lines", "1", env=[run_v2.EnvVar(name="GREETING", value="hello")]), "runs")
    overrides = run_v2.RunJobRequest.Overrides(
        container_overrides=[
            run_v2.RunJobRequest.Overrides.ContainerOverride(
                args=[
                    "--lines",
                    "3",
                    "--json",
                    "--env",
                    "GREETING",
                    "--env",
                    "EXTRA",
                    "--env",
                    "CLOUD_RUN_JOB",
                    "--env",
                    "CLOUD_RUN_TASK_COUNT",
                    "--env",
                    "HTTPS_PROXY",
                ],
                env=[run_v2.EnvVar(name="EXTRA", value="x1")],
            )
        ],
        task_count=2,
    )
    operation = jobs.run_job(request={"name": job.name, "overrides": overrides})
    execution = operation.result(timeout=60)
    assert operation.metadata.name == execution.name
    assert (execution.task_count, execution.succeeded_count, execution.failed_count) == (2, 2, 0)
    assert all(c.state.name == "CONDITION_SUCCEEDED" for c in execution.conditions)
    exec_id = execution.name.rsplit("/", 1)[1]
    assert exec_id.startswith(job.name.rsplit("/", 1)[1] + "-") and len(exec_id.rsplit("-", 1)[1]) == 5

    got = jobs.get_job(name=job.name)
    assert got.execution_count == 1 and got.latest_created_execution.name == execution.name
    assert got.latest_created_execution.completion_status.name == "EXECUTION_SUCCEEDED"
    listed = list(executions.list_executions(parent=job.name))
    assert [e.name for e in listed] == [execution.name]

    logged = entries(session, exec_id)
    task0 = [e for e in logged if e["labels"]["run.googleapis.com/task_index"] == "0"]
    texts = [e.get("textPayload") for e in task0 if e["logName"].endswith("%2Fstdout") and "textPayload" in e]
    assert texts[:3] == ["line 0 of task 0", "line 1 of task 0", "line 2 of task 0"]
    assert "GREETING=hello" in texts and "EXTRA=x1" in texts and "CLOUD_RUN_TASK_COUNT=2" in texts
    assert f"CLOUD_RUN_JOB={job.name.rsplit('/', 1)[1]}" in texts
    assert any(t.startswith("HTTPS_PROXY=http://127.0.0.1:") for t in texts)
    structured = [e for e in task0 if "jsonPayload" in e]
    assert structured and structured[0]["severity"] == "WARNING"
    assert structured[0]["jsonPayload"]["message"] == "structured from task 0"
    assert all(
        "severity" not in e for e in task0 if "textPayload" in e and e["logName"].endswith("%2Fstdout")
    )
    first = task0[0]
    assert first["resource"] == {
        "type": "cloud_run_job",
        "labels": {"job_name": job.name.rsplit("/", 1)[1], "location": "us-central1", "project_id": PROJECT},
    }
    jobs.delete_job(name=job.name).result(timeout=30)


def test_failing_task_is_retried_then_fails(jobs, executions):
    job = create(jobs, task_job("--exit", "3", max_retries=1), "fails")
    operation = jobs.run_job(name=job.name)
    with pytest.raises(exceptions.GoogleAPICallError) as failed:
        operation.result(timeout=60)
    assert "exit code 3" in str(failed.value)
    execution = executions.get_execution(name=operation.metadata.name)
    assert (execution.retried_count, execution.failed_count, execution.succeeded_count) == (1, 1, 0)
    completed = condition(execution, "Completed")
    assert completed.state.name == "CONDITION_FAILED" and "0/1 tasks were a success" in completed.message
    assert jobs.get_job(name=job.name).latest_created_execution.completion_status.name == "EXECUTION_FAILED"
    # Two failures then a success in each of two tasks: retriedCount counts tasks, Task.retried retries.
    flaky = create(jobs, task_job("--fail-attempts", "2", max_retries=2, task_count=2), "flaky")
    execution = jobs.run_job(name=flaky.name).result(timeout=60)
    assert (execution.retried_count, execution.succeeded_count) == (2, 2)
    tasks = run_v2.TasksClient(transport="rest").list_tasks(parent=execution.name)
    assert [task.retried for task in tasks] == [2, 2]
    with pytest.raises(exceptions.BadRequest, match="already finished"):
        executions.cancel_execution(name=execution.name).result(timeout=30)
    for name in (job.name, flaky.name):
        jobs.delete_job(name=name).result(timeout=30)


def test_task_timeout_kills_the_process(jobs, executions, session):
    job = create(jobs, task_job("--sleep", "60", timeout="1s"), "slow")
    started = time.monotonic()
    operation = jobs.run_job(name=job.name)
    with pytest.raises(exceptions.GoogleAPICallError, match="timeout"):
        operation.result(timeout=60)
    assert time.monotonic() - started < 20  # killed, not waited for
    execution = executions.get_execution(name=operation.metadata.name)
    assert "timeout" in condition(execution, "Completed").message and execution.failed_count == 1
    logged = entries(session, execution.name.rsplit("/", 1)[1])
    assert any("maximum timeout" in e.get("textPayload", "") for e in logged)
    jobs.delete_job(name=job.name).result(timeout=30)


def test_missing_secret_fails_the_execution_without_running(jobs, executions):
    secret_env = run_v2.EnvVar(
        name="API_KEY",
        value_source=run_v2.EnvVarSource(
            secret_key_ref=run_v2.SecretKeySelector(secret=unique("no-such-secret"), version="latest")
        ),
    )
    job = create(jobs, task_job("--lines", "1", env=[secret_env]), "nosecret")
    operation = jobs.run_job(name=job.name)
    with pytest.raises(exceptions.GoogleAPICallError, match="not found"):
        operation.result(timeout=60)
    execution = executions.get_execution(name=operation.metadata.name)
    resources = condition(execution, "ResourcesAvailable")
    assert resources.state.name == "CONDITION_FAILED" and "secret" in resources.message.lower()
    assert execution.succeeded_count == 0 and execution.retried_count == 0
    jobs.delete_job(name=job.name).result(timeout=30)


def test_secret_env_is_resolved(jobs, session):
    secrets_client = secretmanager.SecretManagerServiceClient(transport="rest")
    secret_id = unique("test-secret")
    secret = secrets_client.create_secret(
        parent=f"projects/{PROJECT}", secret_id=secret_id, secret={"replication": {"automatic": {}}}
    )
    secrets_client.add_secret_version(parent=secret.name, payload={"data": b"dummy-value"})
    secret_env = run_v2.EnvVar(
        name="FROM_SECRET",
        value_source=run_v2.EnvVarSource(
            secret_key_ref=run_v2.SecretKeySelector(secret=secret_id, version="1")
        ),
    )
    job = create(jobs, task_job("--env", "FROM_SECRET", env=[secret_env]), "secret")
    execution = jobs.run_job(name=job.name).result(timeout=60)
    texts = [e.get("textPayload") for e in entries(session, execution.name.rsplit("/", 1)[1])]
    assert "FROM_SECRET=dummy-value" in texts
    jobs.delete_job(name=job.name).result(timeout=30)
    secrets_client.delete_secret(name=secret.name)


def test_cancel_kills_a_running_execution(jobs, executions):
    job = create(jobs, task_job("--sleep", "60", timeout="120s"), "cancel")
    operation = jobs.run_job(name=job.name)
    name = operation.metadata.name
    deadline = time.monotonic() + 20
    while executions.get_execution(name=name).running_count != 1:
        assert time.monotonic() < deadline, "the execution never started running"
        time.sleep(0.05)
    cancelled = executions.cancel_execution(name=name).result(timeout=30)
    assert cancelled.cancelled_count == 1 and cancelled.running_count == 0
    assert condition(cancelled, "Completed").execution_reason.name == "CANCELLED"
    assert (
        jobs.get_job(name=job.name).latest_created_execution.completion_status.name == "EXECUTION_CANCELLED"
    )
    executions.delete_execution(name=name).result(timeout=30)
    with pytest.raises(exceptions.NotFound):
        executions.get_execution(name=name)
    jobs.delete_job(name=job.name).result(timeout=30)


def test_parallel_tasks_and_execution_listing(jobs, executions, session):
    job = create(jobs, task_job("--lines", "1", task_count=3), "par")
    first = jobs.run_job(name=job.name).result(timeout=60)
    second = jobs.run_job(name=job.name).result(timeout=60)
    assert first.succeeded_count == second.succeeded_count == 3
    listed = [e.name for e in executions.list_executions(parent=job.name)]
    assert listed == [second.name, first.name]  # newest first
    everywhere = [e.name for e in executions.list_executions(parent=f"{PARENT}/jobs/-")]
    assert {first.name, second.name} <= set(everywhere)
    tasks = list(run_v2.TasksClient(transport="rest").list_tasks(parent=second.name))
    exec_id = second.name.rsplit("/", 1)[1]
    assert [t.name.rsplit("/", 1)[1] for t in tasks] == [f"{exec_id}-task{i}" for i in range(3)]
    assert [t.index for t in tasks] == [0, 1, 2]
    assert all(t.conditions[0].state.name == "CONDITION_SUCCEEDED" for t in tasks)
    assert run_v2.TasksClient(transport="rest").get_task(name=tasks[2].name).index == 2
    jobs.delete_job(name=job.name).result(timeout=30)


def test_operations_get_list_wait_delete(jobs, session):
    job = create(jobs, task_job("--sleep", "0.5"), "ops")
    run = session.post(f"{RUN_HOST}/v2/{job.name}:run", json={}, timeout=30).json()
    assert (
        "done" not in run and run["metadata"]["@type"] == "type.googleapis.com/google.cloud.run.v2.Execution"
    )
    waited = session.post(f"{RUN_HOST}/v2/{run['name']}:wait", json={"timeout": "30s"}, timeout=60).json()
    assert waited["done"] is True and waited["response"]["succeededCount"] == 1
    listed, token = [], ""
    while True:  # the session's project holds every test's operations: page through them all
        page = session.get(
            f"{RUN_HOST}/v2/{PARENT}/operations", params={"pageToken": token} if token else {}, timeout=30
        ).json()
        listed += page.get("operations") or []
        token = page.get("nextPageToken") or ""
        if not token:
            break
    assert run["name"] in [op["name"] for op in listed]
    assert session.delete(f"{RUN_HOST}/v2/{run['name']}", timeout=30).json() == {}
    assert session.get(f"{RUN_HOST}/v2/{run['name']}", timeout=30).status_code == 404
    jobs.delete_job(name=job.name).result(timeout=30)


def test_v1_run_url_returns_a_knative_execution_marked_as_scheduler_run(jobs, executions, session):
    job = create(jobs, task_job("--lines", "1"), "v1")
    job_id = job.name.rsplit("/", 1)[1]
    url = f"https://us-central1-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/{PROJECT}/jobs/{job_id}:run"
    headers = {"X-CloudScheduler": "true", "X-CloudScheduler-JobName": "some-trigger"}
    response = session.post(url, json={}, headers=headers, timeout=30)
    assert response.status_code == 200
    knative = response.json()
    assert (knative["apiVersion"], knative["kind"]) == ("run.googleapis.com/v1", "Execution")
    assert knative["metadata"]["labels"]["run.googleapis.com/job"] == job_id
    name = f"{job.name}/executions/{knative['metadata']['name']}"
    execution = executions.get_execution(name=name)
    assert execution.annotations["localcloud/triggered-by"] == "cloud-scheduler"
    assert execution.annotations["localcloud/scheduler-job"] == "some-trigger"
    missing = session.post(url.replace(job_id, unique("nojob")), json={}, timeout=30)
    assert missing.status_code == 404
    deadline = time.monotonic() + 30
    while not executions.get_execution(name=name).completion_time:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    jobs.delete_job(name=job.name).result(timeout=30)


def test_services_get_for_url_discovery(localcloud_env):
    services = run_v2.ServicesClient(transport="rest")
    api = services.get_service(name=f"{PARENT}/services/cloudact-api-service-local")
    assert api.uri == "https://cloudact-api-service-local-uc.a.run.app" and list(api.urls) == [api.uri]
    with pytest.raises(exceptions.NotFound):
        services.get_service(name=f"{PARENT}/services/{unique('nosvc')}")


def test_interrupted_execution_is_failed_at_next_start(tmp_path):
    """A localcloud of its own, stopped mid-execution and started again: the execution says why it failed."""
    from localcloud.server import LocalCloud

    specs = ["oauth2:OAuth2", "secretmanager:SecretManager", "logging_v2:Logging", "run:RunService"]
    state = tmp_path / "state"
    plain = requests.Session()  # this localcloud's proxy, not the session-wide one in the environment
    plain.trust_env = False
    cloud = LocalCloud(state, 0, specs)
    cloud.start()
    try:
        plain.proxies = {"https": cloud.proxy_url}
        plain.verify = str(cloud.ca_file)
        key = str(cloud.key_file)
        credentials = service_account.Credentials.from_service_account_file(key, scopes=SCOPES)
        authed = AuthorizedSession(credentials, auth_request=Request(session=plain))
        authed.trust_env = False
        authed.proxies, authed.verify = plain.proxies, plain.verify
        container = {"image": "i", "command": ["python", SCRIPT], "args": ["--sleep", "60"]}
        body = {"template": {"template": {"containers": [container]}}}
        created = authed.post(f"{RUN_HOST}/v2/{PARENT}/jobs?jobId=interrupted", json=body, timeout=30)
        assert created.status_code == 200, created.text
        run = authed.post(f"{RUN_HOST}/v2/{PARENT}/jobs/interrupted:run", json={}, timeout=30).json()
        name = run["metadata"]["name"]
        deadline = time.monotonic() + 20
        while authed.get(f"{RUN_HOST}/v2/{name}", timeout=30).json().get("runningCount") != 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        cloud.stop()
    pids = json.loads((state / "run" / "state.json").read_text())["pids"][name]
    assert pids and not any(Path(f"/proc/{pid}").exists() for pid in pids), "stop() left a task process"
    cloud = LocalCloud(state, 0, specs)
    cloud.start()
    try:
        plain.proxies["https"] = authed.proxies["https"] = cloud.proxy_url
        execution = authed.get(f"{RUN_HOST}/v2/{name}", timeout=30).json()
        completed = next(c for c in execution["conditions"] if c["type"] == "Completed")
        assert completed["state"] == "CONDITION_FAILED" and "localcloud stopped" in completed["message"]
        op = authed.get(f"{RUN_HOST}/v2/{run['name']}", timeout=30).json()
        assert op["done"] is True and "localcloud stopped" in op["error"]["message"]
    finally:
        cloud.stop()


def test_a_command_that_cannot_start_fails_without_retries(jobs, executions):
    job = task_job(max_retries=3)
    job.template.template.containers[0].command[:] = ["no-such-program-here"]
    created = create(jobs, job, "nostart")
    operation = jobs.run_job(name=created.name)
    with pytest.raises(exceptions.GoogleAPICallError, match="could not start: no-such-program-here"):
        operation.result(timeout=60)
    execution = executions.get_execution(name=operation.metadata.name)
    assert (execution.failed_count, execution.retried_count) == (1, 0)
    jobs.delete_job(name=created.name).result(timeout=30)


def test_delete_with_a_stale_etag_is_refused(jobs, session):
    created = create(jobs, task_job(), "etag")
    stale = session.delete(f"{RUN_HOST}/v2/{created.name}?etag=not-the-etag", timeout=30)
    assert stale.status_code == 409 and stale.json()["error"]["status"] == "ABORTED"
    deleted = session.delete(f"{RUN_HOST}/v2/{created.name}?etag={created.etag}", timeout=30).json()
    assert deleted["done"] is True and deleted["response"]["name"] == created.name
    assert session.get(f"{RUN_HOST}/v2/{created.name}", timeout=30).status_code == 404


def test_args_alone_replace_the_image_cmd_and_the_image_workdir_is_the_checkout(jobs, session):
    from localcloud.services.run_runner import image_defaults

    workdir = image_defaults()["workdir"].rstrip("/") + "/tests/localcloud"
    job = task_job()
    container = job.template.template.containers[0]
    container.command[:] = []
    container.args[:] = ["python", "scripts/task.py", "--lines", "1", "--env", "PYTHONUNBUFFERED"]
    container.working_dir = workdir
    created = create(jobs, job, "imagecmd")
    execution = jobs.run_job(name=created.name).result(timeout=60)
    texts = [e.get("textPayload") for e in entries(session, execution.name.rsplit("/", 1)[1])]
    assert "line 0 of task 0" in texts and "PYTHONUNBUFFERED=1" in texts
    jobs.delete_job(name=created.name).result(timeout=30)
