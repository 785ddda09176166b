"""The real gcloud CLI against localcloud, as operators write the commands.

Each command's `--format=json` output is compared field by field with Google's Python clients' view of
the same resource (run_v2 / scheduler_v1 / secretmanager over REST, Logging's entries:list). gcloud
runs on a configuration directory in the session localcloud's state directory (`<state>/gcloud`, made
by `localcloud.cli.gcloud_config`, as `make local-env` makes it), never the operator's own. No
secret value is ever printed: `versions access` output is compared in a variable, not in an assert.
"""

from __future__ import annotations

import hmac
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.api_core import exceptions
from google.auth.transport.requests import AuthorizedSession
from google.cloud import run_v2, scheduler_v1, secretmanager
from google.iam.v1 import iam_policy_pb2
from google.oauth2 import service_account

from localcloud.cli import gcloud_config, gcloud_env
from localcloud.config import StateFiles

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROJECT = "cloudact-local"
REGION = "us-central1"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
SA = f"cloudact-jobs@{PROJECT}.iam.gserviceaccount.com"
OPERATOR = f"cloudact-operator@{PROJECT}.iam.gserviceaccount.com"  # the issued key's account
SCRIPT = "tests/localcloud/scripts/task.py"
IMAGE = "us-docker.pkg.dev/cloudact-local/jobs/test:latest"
V1 = f"https://{REGION}-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/{PROJECT}"
STATE_LABEL = "run.googleapis.com/runningState"
SYSTEM_PREFIXES = ("run.googleapis.com/", "cloud.googleapis.com/", "client.knative.dev/")


def unique(prefix: str = "g") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Gcloud:
    exe: str
    env: dict[str, str]

    def run(self, *args: str, check: bool = True, timeout: float = 180, quiet_stdout: bool = False):
        proc = subprocess.run(
            [self.exe, *args],
            env=self.env,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            shown = "" if quiet_stdout else proc.stdout.decode(errors="replace")[-2000:]
            raise AssertionError(
                f"gcloud {shlex.join(args)} exited {proc.returncode}:\n"
                f"{proc.stderr.decode(errors='replace')[-4000:]}\n{shown}"
            )
        return proc

    def text(self, *args: str, **kw) -> str:
        return self.run(*args, **kw).stdout.decode()

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--format=json").stdout)


@pytest.fixture(scope="session")
def gcloud(localcloud) -> Gcloud:
    exe = shutil.which("gcloud")
    if exe is None:
        pytest.fail(
            "gcloud is not on the PATH: these tests need the real gcloud CLI (Google Cloud SDK, 528 here); "
            "install google-cloud-cli (apt) and run them again",
            pytrace=False,
        )
    files = StateFiles(localcloud.state_dir)
    exports = gcloud_config(files)
    assert (files.root / "gcloud" / "localcloud-activated").exists(), "gcloud did not activate the key"
    env = gcloud_env(Path(exports["CLOUDSDK_CONFIG"]))
    env.update(exports)
    for name in list(env):  # gcloud's proxy is its configuration's, nothing of this process
        if name.lower().endswith("_proxy"):
            env.pop(name)
    return Gcloud(exe, env)


@pytest.fixture
def run_clients(localcloud_env):
    return (
        run_v2.JobsClient(transport="rest"),
        run_v2.ExecutionsClient(transport="rest"),
        run_v2.TasksClient(transport="rest"),
    )


@pytest.fixture
def session(localcloud) -> AuthorizedSession:
    creds = service_account.Credentials.from_service_account_file(
        str(localcloud.key_file), scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    authed = AuthorizedSession(creds)
    authed.trust_env = False
    authed.proxies = {"https": localcloud.proxy_url}
    authed.verify = str(localcloud.ca_file)
    yield authed
    authed.close()


@pytest.fixture
def made(run_clients):
    """Job IDs a test created: deleted at its end (the session's localcloud is shared)."""
    names: list[str] = []
    yield names
    jobs = run_clients[0]
    for name in names:
        try:
            jobs.delete_job(name=f"{PARENT}/jobs/{name}").result(timeout=30)
        except exceptions.NotFound:
            pass


def create_with_gcloud(gcloud: Gcloud, made: list[str], name: str, *args: str, flags: tuple = ()) -> None:
    made.append(name)
    gcloud.run(
        "run", "jobs", "create", name, f"--image={IMAGE}", "--command=python",
        f"--args={','.join([SCRIPT, *args])}", f"--region={REGION}", "--quiet", *flags,
    )  # fmt: skip


def ts(value: Any) -> datetime:
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def user_keys(values: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in (values or {}).items() if not k.startswith(SYSTEM_PREFIXES)}


V1_STATUS = {
    "CONDITION_SUCCEEDED": "True",
    "CONDITION_FAILED": "False",
    "CONDITION_PENDING": "Unknown",
    "CONDITION_RECONCILING": "Unknown",
}


def compare_conditions(v1: list[dict], v2) -> None:
    by_type = {c["type"]: c for c in v1}
    assert set(by_type) == {c.type_ for c in v2}
    for c in v2:
        mine = by_type[c.type_]
        assert mine["status"] == V1_STATUS[c.state.name], c.type_
        assert mine.get("message", "") == c.message
        assert ts(mine["lastTransitionTime"]) == c.last_transition_time


def compare_containers(v1: list[dict], v2) -> None:
    assert len(v1) == len(v2)
    for mine, theirs in zip(v1, v2, strict=True):
        assert mine["image"] == theirs.image
        assert mine.get("command", []) == list(theirs.command)
        assert mine.get("args", []) == list(theirs.args)
        assert mine["resources"]["limits"] == dict(theirs.resources.limits)
        env_v1 = {
            e["name"]: e.get("value", "")
            if "valueFrom" not in e
            else (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
            for e in mine.get("env", [])
        }
        env_v2 = {
            e.name: e.value
            if not e.value_source.secret_key_ref.secret
            else (e.value_source.secret_key_ref.secret, e.value_source.secret_key_ref.version)
            for e in theirs.env
        }
        assert env_v1 == env_v2


def compare_task_template(v1: dict, v2) -> None:
    compare_containers(v1["containers"], v2.containers)
    assert v1["maxRetries"] == v2.max_retries
    assert int(v1["timeoutSeconds"]) == v2.timeout.total_seconds()
    assert v1.get("serviceAccountName", "") == v2.service_account


def compare_job(v1: dict, v2: run_v2.Job) -> None:
    """gcloud's view of a job (v1) against the v2 client's, field by field."""
    assert (v1["apiVersion"], v1["kind"]) == ("run.googleapis.com/v1", "Job")
    meta = v1["metadata"]
    assert meta["name"] == v2.name.rsplit("/", 1)[1]
    assert meta["namespace"] == PROJECT
    assert meta["uid"] == v2.uid
    assert meta["resourceVersion"] == v2.etag
    assert meta["generation"] == v2.generation
    assert ts(meta["creationTimestamp"]) == v2.create_time
    assert user_keys(meta.get("labels", {})) == dict(v2.labels)
    assert meta["labels"]["cloud.googleapis.com/location"] == REGION
    assert user_keys(meta.get("annotations", {})) == dict(v2.annotations)
    assert meta["annotations"]["run.googleapis.com/creator"] == v2.creator
    assert meta["annotations"]["run.googleapis.com/lastModifier"] == v2.last_modifier
    execution_spec = v1["spec"]["template"]["spec"]
    assert execution_spec["taskCount"] == v2.template.task_count
    assert execution_spec.get("parallelism", 0) == v2.template.parallelism
    assert user_keys(v1["spec"]["template"]["metadata"].get("labels", {})) == dict(v2.template.labels)
    compare_task_template(execution_spec["template"]["spec"], v2.template.template)
    status = v1["status"]
    assert status["observedGeneration"] == v2.observed_generation
    assert status.get("executionCount", 0) == v2.execution_count
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == V1_STATUS[v2.terminal_condition.state.name]
    latest = status.get("latestCreatedExecution")
    if v2.latest_created_execution.name:
        assert latest["name"] == v2.latest_created_execution.name.rsplit("/", 1)[1]
        assert ts(latest["creationTimestamp"]) == v2.latest_created_execution.create_time
        assert latest["completionStatus"] == v2.latest_created_execution.completion_status.name
    else:
        assert not latest


def compare_execution(v1: dict, v2: run_v2.Execution) -> None:
    assert (v1["apiVersion"], v1["kind"]) == ("run.googleapis.com/v1", "Execution")
    meta = v1["metadata"]
    assert meta["name"] == v2.name.rsplit("/", 1)[1]
    assert meta["uid"] == v2.uid
    assert meta["namespace"] == PROJECT
    assert meta["labels"]["run.googleapis.com/job"] == v2.job
    assert ts(meta["creationTimestamp"]) == v2.create_time
    assert meta["annotations"]["run.googleapis.com/creator"] == v2.creator
    assert v1["spec"]["taskCount"] == v2.task_count
    compare_task_template(v1["spec"]["template"]["spec"], v2.template)
    status = v1["status"]
    for key, value in (
        ("runningCount", v2.running_count),
        ("succeededCount", v2.succeeded_count),
        ("failedCount", v2.failed_count),
        ("cancelledCount", v2.cancelled_count),
        ("retriedCount", v2.retried_count),
    ):
        assert status.get(key, 0) == value, key
    for key, value in (("startTime", v2.start_time), ("completionTime", v2.completion_time)):
        assert (ts(status[key]) if key in status else None) == value, key
    assert status["logUri"] == v2.log_uri
    compare_conditions(status["conditions"], v2.conditions)


def compare_task(v1: dict, v2: run_v2.Task) -> None:
    assert (v1["apiVersion"], v1["kind"]) == ("run.googleapis.com/v1", "Task")
    meta = v1["metadata"]
    assert meta["name"] == v2.name.rsplit("/", 1)[1]
    assert meta["uid"] == v2.uid
    assert meta["labels"]["run.googleapis.com/execution"] == v2.execution
    assert meta["labels"]["run.googleapis.com/job"] == v2.job
    status = v1["status"]
    assert status.get("index", 0) == v2.index
    assert status.get("retried", 0) == v2.retried
    for key, value in (("startTime", v2.start_time), ("completionTime", v2.completion_time)):
        assert (ts(status[key]) if key in status else None) == value, key
    assert status.get("lastAttemptResult", {}).get("exitCode", 0) == v2.last_attempt_result.exit_code
    compare_conditions(status["conditions"], v2.conditions)
    compare_task_template(v1["spec"], v2)


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


# --- the configuration --------------------------------------------------------------------------------


def test_local_env_points_gcloud_at_localcloud_and_never_at_the_operators_config(localcloud, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    # An operator's shell: its own HOME, the machine's CA bundle set for gcloud, no CLOUDSDK_CONFIG.
    base = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSDK_")}
    base.update(HOME=str(home), CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE="/etc/ssl/certs/ca-certificates.crt")
    env_cmd = shlex.join(
        [sys.executable, "-m", "localcloud", "--state-dir", str(localcloud.state_dir), "env"]
    )
    script = f'eval "$({env_cmd})" && gcloud config list --format=json && gcloud run jobs list --format=json'
    proc = subprocess.run(
        ["bash", "-c", script], env=base, capture_output=True, text=True, timeout=180, cwd=ROOT, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    decoder = json.JSONDecoder()
    properties, end = decoder.raw_decode(proc.stdout)
    listed, _ = decoder.raw_decode(proc.stdout[end:].lstrip())
    port = (localcloud.state_dir / "port").read_text().strip()
    assert properties["proxy"] == {"type": "http", "address": "127.0.0.1", "port": port}
    assert properties["core"]["custom_ca_certs_file"] == str(localcloud.ca_file)
    assert properties["core"]["project"] == PROJECT
    assert properties["core"]["account"] == OPERATOR
    assert properties["run"]["region"] == REGION
    assert isinstance(listed, list)
    assert not (home / ".config" / "gcloud").exists(), "gcloud touched the operator's configuration"
    config = localcloud.state_dir / "gcloud" / "configurations" / "config_default"
    before = (
        config.stat().st_mtime_ns,
        (localcloud.state_dir / "gcloud" / "localcloud-activated").read_text(),
    )
    again = subprocess.run(
        ["bash", "-c", env_cmd], env=base, capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert (
        again.returncode == 0 and f"export CLOUDSDK_CONFIG={localcloud.state_dir / 'gcloud'}" in again.stdout
    )
    after = (
        config.stat().st_mtime_ns,
        (localcloud.state_dir / "gcloud" / "localcloud-activated").read_text(),
    )
    assert after == before  # created once and kept


# --- Cloud Run jobs -----------------------------------------------------------------------------------


def test_jobs_create_describe_list_match_the_v2_client_both_ways(gcloud, run_clients, made):
    jobs, _, _ = run_clients
    name = unique()
    create_with_gcloud(
        gcloud, made, name, "--lines", "2",
        flags=("--set-env-vars=A=1,B=two", "--set-secrets=KEY=ca-root-api-key-local:latest", "--memory=768Mi",
               "--cpu=2", "--max-retries=1", "--task-timeout=45s", "--tasks=2", "--labels=team=ops"),
    )  # fmt: skip
    v2 = jobs.get_job(name=f"{PARENT}/jobs/{name}")
    assert v2.template.template.containers[0].resources.limits["memory"] == "768Mi"
    assert dict(v2.labels) == {"team": "ops"} and v2.template.task_count == 2
    described = gcloud.json("run", "jobs", "describe", name)
    compare_job(described, v2)
    listed = {job["metadata"]["name"]: job for job in gcloud.json("run", "jobs", "list")}
    compare_job(listed[name], v2)
    assert set(listed) == {job.name.rsplit("/", 1)[1] for job in jobs.list_jobs(parent=PARENT)}
    text = gcloud.text("run", "jobs", "describe", name)
    assert "768Mi" in text and "KEY" in text and "ca-root-api-key-local:latest" in text

    # The other way: a job the v2 client created is the job gcloud describes.
    other = unique()
    made.append(other)
    job = run_v2.Job(
        labels={"made-by": "v2"},
        template=run_v2.ExecutionTemplate(
            template=run_v2.TaskTemplate(
                containers=[run_v2.Container(image=IMAGE, command=["python", SCRIPT], args=["--lines", "1"])],
                max_retries=0,
            )
        ),
    )
    created = jobs.create_job(parent=PARENT, job=job, job_id=other).result(timeout=30)
    compare_job(gcloud.json("run", "jobs", "describe", other), created)


def test_update_memory_replaces_in_place_and_keeps_the_rest(gcloud, run_clients, made):
    jobs, _, _ = run_clients
    name = unique()
    create_with_gcloud(gcloud, made, name, "--lines", "1", flags=("--set-env-vars=A=1", "--cpu=2"))
    before = jobs.get_job(name=f"{PARENT}/jobs/{name}")
    gcloud.run("run", "jobs", "update", name, "--memory=1Gi", f"--region={REGION}", "--quiet")
    after = jobs.get_job(name=f"{PARENT}/jobs/{name}")
    assert after.uid == before.uid and after.generation == before.generation + 1
    limits = after.template.template.containers[0].resources.limits
    assert dict(limits) == {"cpu": "2", "memory": "1Gi"}
    assert list(after.template.template.containers[0].args) == [SCRIPT, "--lines", "1"]
    assert [(e.name, e.value) for e in after.template.template.containers[0].env] == [("A", "1")]
    compare_job(gcloud.json("run", "jobs", "describe", name), after)
    # deploy: create-or-update (it would check Service Usage; the configuration turns that prompt off)
    gcloud.run("run", "jobs", "deploy", name, f"--image={IMAGE}", "--memory=768Mi", f"--region={REGION}")
    deployed = jobs.get_job(name=f"{PARENT}/jobs/{name}")
    assert deployed.uid == before.uid and deployed.generation == after.generation + 1
    assert deployed.template.template.containers[0].resources.limits["memory"] == "768Mi"


def test_execute_wait_then_executions_list_describe_and_tasks_match(gcloud, run_clients, made, session):
    jobs, executions, tasks = run_clients
    name = unique()
    create_with_gcloud(gcloud, made, name, "--lines", "1", flags=("--tasks=2", "--max-retries=0"))
    for _ in range(3):
        gcloud.run("run", "jobs", "execute", name, "--wait", f"--region={REGION}")
    v2_list = list(executions.list_executions(parent=f"{PARENT}/jobs/{name}"))
    assert len(v2_list) == 3 and all(e.succeeded_count == 2 for e in v2_list)
    listed = gcloud.json(
        "run", "jobs", "executions", "list", f"--job={name}", f"--region={REGION}", "--limit=5"
    )
    by_name = {e["metadata"]["name"]: e for e in listed}
    assert set(by_name) == {e.name.rsplit("/", 1)[1] for e in v2_list}
    for execution in v2_list:
        compare_execution(by_name[execution.name.rsplit("/", 1)[1]], execution)
    assert len(gcloud.json("run", "jobs", "executions", "list", f"--job={name}", "--limit=2")) == 2
    paged = gcloud.json("run", "jobs", "executions", "list", f"--job={name}", "--page-size=1")
    assert {e["metadata"]["name"] for e in paged} == set(by_name)
    latest = v2_list[0]
    exec_id = latest.name.rsplit("/", 1)[1]
    compare_execution(gcloud.json("run", "jobs", "executions", "describe", exec_id), latest)
    compare_job(gcloud.json("run", "jobs", "describe", name), jobs.get_job(name=f"{PARENT}/jobs/{name}"))
    gtasks = {
        t["metadata"]["name"]: t
        for t in gcloud.json("run", "jobs", "executions", "tasks", "list", f"--execution={exec_id}")
    }
    v2_tasks = list(tasks.list_tasks(parent=latest.name))
    assert set(gtasks) == {t.name.rsplit("/", 1)[1] for t in v2_tasks} and len(v2_tasks) == 2
    for task in v2_tasks:
        compare_task(gtasks[task.name.rsplit("/", 1)[1]], task)
    one = v2_tasks[1].name.rsplit("/", 1)[1]
    compare_task(gcloud.json("run", "jobs", "executions", "tasks", "describe", one), v2_tasks[1])

    # The v1 API's Kubernetes-style selector and paging, as gcloud sends them.
    selector = f"run.googleapis.com/job = {name}"
    first = session.get(f"{V1}/executions", params={"labelSelector": selector, "limit": 2}, timeout=30).json()
    assert (first["kind"], len(first["items"])) == ("ExecutionsList", 2) and first["metadata"]["continue"]
    rest = session.get(
        f"{V1}/executions",
        params={"labelSelector": selector, "limit": 2, "continue": first["metadata"]["continue"]},
        timeout=30,
    ).json()
    assert len(rest["items"]) == 1 and "continue" not in rest["metadata"]
    assert [e["metadata"]["name"] for e in first["items"] + rest["items"]] == [
        e.name.rsplit("/", 1)[1] for e in v2_list
    ]  # newest first, as v2
    others = session.get(
        f"{V1}/executions", params={"labelSelector": f"run.googleapis.com/job notin ({name})"}
    )
    assert name not in {e["metadata"]["labels"]["run.googleapis.com/job"] for e in others.json()["items"]}
    bad = session.get(f"{V1}/executions", params={"labelSelector": "a in b"}, timeout=30)
    assert bad.status_code == 400
    succeeded = session.get(
        f"{V1}/tasks",
        params={"labelSelector": f"run.googleapis.com/execution = {exec_id},{STATE_LABEL} in (Succeeded)"},
        timeout=30,
    ).json()
    assert len(succeeded["items"]) == 2


def test_execute_wait_exits_nonzero_for_a_failing_job(gcloud, run_clients, made, localcloud):
    jobs, executions, _ = run_clients
    name = unique()
    create_with_gcloud(gcloud, made, name, "--exit", "3", flags=("--max-retries=0",))
    failed = gcloud.run("run", "jobs", "execute", name, "--wait", f"--region={REGION}", check=False)
    assert failed.returncode != 0
    assert b"The execution failed" in failed.stderr
    [execution] = list(executions.list_executions(parent=f"{PARENT}/jobs/{name}"))
    assert execution.failed_count == 1 and execution.completion_time
    v1 = gcloud.json("run", "jobs", "executions", "describe", execution.name.rsplit("/", 1)[1])
    compare_execution(v1, execution)
    completed = next(c for c in v1["status"]["conditions"] if c["type"] == "Completed")
    assert (completed["status"], completed["reason"]) == ("False", "NonZeroExitCode")
    assert jobs.get_job(name=f"{PARENT}/jobs/{name}").latest_created_execution.completion_status.name == (
        "EXECUTION_FAILED"
    )

    # A job that would succeed, but Cloud Run refuses the run (fault injection): non-zero too, no execution.
    ok = unique()
    create_with_gcloud(gcloud, made, ok, "--lines", "1", flags=("--max-retries=0",))
    localcloud.admin.fault(
        f"{REGION}-run.googleapis.com",
        f"/apis/run.googleapis.com/v1/namespaces/*/jobs/{ok}:run",
        count=1,
        status=429,
    )
    refused = gcloud.run("run", "jobs", "execute", ok, "--wait", f"--region={REGION}", check=False)
    localcloud.admin.clear_faults()
    assert refused.returncode != 0
    assert b"Resource exhausted" in refused.stderr
    assert list(executions.list_executions(parent=f"{PARENT}/jobs/{ok}")) == []


def test_cancel_then_delete_execution_and_job(gcloud, run_clients, made):
    jobs, executions, _ = run_clients
    name = unique()
    create_with_gcloud(gcloud, made, name, "--sleep", "60", flags=("--max-retries=0",))
    gcloud.run("run", "jobs", "execute", name, "--async", f"--region={REGION}")
    [execution] = list(executions.list_executions(parent=f"{PARENT}/jobs/{name}"))
    exec_id = execution.name.rsplit("/", 1)[1]
    wait_for(lambda: executions.get_execution(name=execution.name).running_count == 1, what="the task to run")
    out = gcloud.run("run", "jobs", "executions", "cancel", exec_id, f"--region={REGION}", "--quiet")
    assert b"Cancelled execution" in out.stderr
    cancelled = executions.get_execution(name=execution.name)
    assert cancelled.cancelled_count == 1 and cancelled.completion_time
    compare_execution(gcloud.json("run", "jobs", "executions", "describe", exec_id), cancelled)
    gcloud.run("run", "jobs", "executions", "delete", exec_id, f"--region={REGION}", "--quiet")
    with pytest.raises(exceptions.NotFound):
        executions.get_execution(name=execution.name)
    gcloud.run("run", "jobs", "delete", name, f"--region={REGION}", "--quiet")
    with pytest.raises(exceptions.NotFound):
        jobs.get_job(name=f"{PARENT}/jobs/{name}")
    missing = gcloud.run("run", "jobs", "describe", name, check=False)
    assert missing.returncode != 0


def test_a_job_gcloud_created_is_converged_in_place_by_create_jobs_keeping_its_history(
    gcloud, run_clients, made, localcloud
):
    jobs, executions, _ = run_clients
    name = "cloudact-manual-org-sync-all"  # a catalog job without a trigger
    full = f"{PARENT}/jobs/{name}"
    try:
        jobs.delete_job(name=full).result(timeout=30)  # another test of the session may have made it
    except exceptions.NotFound:
        pass
    create_with_gcloud(gcloud, [], name, "--lines", "1", flags=("--max-retries=0", "--memory=1Gi"))
    gcloud.run("run", "jobs", "execute", name, "--wait", f"--region={REGION}")
    before = jobs.get_job(name=full)
    [execution] = list(executions.list_executions(parent=full))

    env = {
        k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and not k.startswith("GCP_")
    }
    env.update(
        PATH=f"{BIN}:{env.get('PATH', '')}",
        LOCALCLOUD_STATE_DIR=str(localcloud.state_dir),
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        HTTPS_PROXY="http://127.0.0.1:9",  # only the play's environment reaches localcloud
        NO_PROXY="127.0.0.1,localhost",
    )
    env.pop("CONFIRM", None)
    env.pop("PRUNE", None)
    play = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "inventories/local", "playbooks/create-jobs.yml"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert play.returncode == 0, (play.stdout + play.stderr)[-4000:]
    after = jobs.get_job(name=full)
    assert after.uid == before.uid, "create-jobs recreated the job instead of converging it in place"
    assert after.generation > before.generation
    container = after.template.template.containers[0]
    assert any("org_sync_all" in part for part in [*container.command, *container.args])  # the catalog's
    assert after.execution_count == before.execution_count == 1
    assert [e.name for e in executions.list_executions(parent=full)] == [execution.name]
    compare_job(gcloud.json("run", "jobs", "describe", name), after)
    listed = gcloud.json(
        "run", "jobs", "executions", "list", f"--job={name}", f"--region={REGION}", "--limit=5"
    )
    assert [e["metadata"]["name"] for e in listed] == [execution.name.rsplit("/", 1)[1]]

    # gcloud shows what the toolkit converged: the catalog's 8 jobs and its triggers, as the catalog says.
    data = yaml.safe_load((ROOT / "catalog" / "jobs.yml").read_text())
    catalog = data["jobs"]
    gjobs = {j["metadata"]["name"]: j for j in gcloud.json("run", "jobs", "list")}
    assert {job["name"] for job in catalog} <= set(gjobs)
    scheduled = gcloud.json("scheduler", "jobs", "list", f"--location={REGION}")
    triggers = {t["name"].rsplit("/", 1)[1]: t for t in scheduled}
    for job in catalog:
        task = gjobs[job["name"]]["spec"]["template"]["spec"]["template"]["spec"]
        assert task["maxRetries"] == job.get("max_retries", data["job_defaults"]["max_retries"])
        if job.get("schedule"):
            trigger = triggers[f"{job['name']}-trigger"]
            assert trigger["schedule"] == job["schedule"]
            assert trigger["httpTarget"]["uri"].endswith(f"/jobs/{job['name']}:run")


# --- Scheduler, Secret Manager, Logging ---------------------------------------------------------------


def test_scheduler_list_describe_pause_resume_run(gcloud, run_clients, made, localcloud_env):
    _, executions, _ = run_clients
    target = unique()
    create_with_gcloud(gcloud, made, target, "--lines", "1", flags=("--max-retries=0",))
    scheduler = scheduler_v1.CloudSchedulerClient(transport="rest")
    trigger_id = unique("trigger")
    created = scheduler.create_job(
        parent=PARENT,
        job=scheduler_v1.Job(
            name=f"{PARENT}/jobs/{trigger_id}",
            schedule="0 3 * * *",
            time_zone="UTC",
            http_target=scheduler_v1.HttpTarget(
                uri=f"{V1}/jobs/{target}:run",
                http_method=scheduler_v1.HttpMethod.POST,
                oauth_token=scheduler_v1.OAuthToken(service_account_email=SA),
            ),
        ),
    )
    try:
        listed = {j["name"]: j for j in gcloud.json("scheduler", "jobs", "list", f"--location={REGION}")}
        assert set(listed) == {j.name for j in scheduler.list_jobs(parent=PARENT)}
        described = gcloud.json("scheduler", "jobs", "describe", trigger_id, f"--location={REGION}")
        for got in (described, listed[created.name]):
            assert got["name"] == created.name
            assert got["schedule"] == created.schedule and got["timeZone"] == created.time_zone
            assert got["state"] == created.state.name == "ENABLED"
            assert got["httpTarget"]["uri"] == created.http_target.uri
            assert got["httpTarget"]["httpMethod"] == created.http_target.http_method.name
            assert got["httpTarget"]["oauthToken"]["serviceAccountEmail"] == SA
        gcloud.run("scheduler", "jobs", "pause", trigger_id, f"--location={REGION}")
        assert scheduler.get_job(name=created.name).state == scheduler_v1.Job.State.PAUSED
        assert (
            gcloud.json("scheduler", "jobs", "describe", trigger_id, f"--location={REGION}")["state"]
            == "PAUSED"
        )
        gcloud.run("scheduler", "jobs", "resume", trigger_id, f"--location={REGION}")
        assert scheduler.get_job(name=created.name).state == scheduler_v1.Job.State.ENABLED
        gcloud.run("scheduler", "jobs", "run", trigger_id, f"--location={REGION}")
        [execution] = wait_for(
            lambda: list(executions.list_executions(parent=f"{PARENT}/jobs/{target}")),
            what="the trigger's run",
        )
        assert execution.annotations["localcloud/triggered-by"] == "cloud-scheduler"
        v1 = gcloud.json("run", "jobs", "executions", "list", f"--job={target}", f"--region={REGION}")
        assert [e["metadata"]["name"] for e in v1] == [execution.name.rsplit("/", 1)[1]]
    finally:
        scheduler.delete_job(name=created.name)


def test_secrets_list_and_versions_access_latest(gcloud, localcloud_env):
    client = secretmanager.SecretManagerServiceClient(transport="rest")
    listed = {s["name"]: s for s in gcloud.json("secrets", "list")}
    secrets = {s.name: s for s in client.list_secrets(parent=f"projects/{PROJECT}")}
    assert set(listed) == set(secrets)
    assert f"projects/{PROJECT}/secrets/ca-root-api-key-local" in listed
    for name, secret in secrets.items():
        assert ts(listed[name]["createTime"]) == secret.create_time
        assert ("automatic" in listed[name]["replication"]) == (
            "automatic" in secretmanager.Replication.to_dict(secret.replication)
        )
    for secret_id in ("ca-root-api-key-local", "supabase-access-token-local"):
        out = gcloud.run(
            "secrets", "versions", "access", "latest", f"--secret={secret_id}", quiet_stdout=True
        )
        expected = client.access_secret_version(
            name=f"projects/{PROJECT}/secrets/{secret_id}/versions/latest"
        ).payload.data
        same = hmac.compare_digest(out.stdout, expected)  # never shown: the assert sees only the boolean
        assert same, (
            f"gcloud secrets versions access latest --secret={secret_id} differs from the client's payload"
        )
        del out, expected


def test_logging_read_a_jobs_entries_as_entries_list_returns_them(gcloud, run_clients, made, session):
    name = unique()
    create_with_gcloud(gcloud, made, name, "--lines", "3", flags=("--max-retries=0",))
    gcloud.run("run", "jobs", "execute", name, "--wait", f"--region={REGION}")
    log_filter = f'resource.type="cloud_run_job" AND resource.labels.job_name="{name}"'
    read = gcloud.json("logging", "read", log_filter, "--limit=100")
    body = {
        "resourceNames": [f"projects/{PROJECT}"],
        "filter": log_filter,
        "orderBy": "timestamp desc",
        "pageSize": 100,
    }
    reply = session.post("https://logging.googleapis.com/v2/entries:list", json=body, timeout=30)
    reply.raise_for_status()
    entries = reply.json()["entries"]
    assert [e["insertId"] for e in read] == [e["insertId"] for e in entries]
    for got, want in zip(read, entries, strict=True):
        assert got.get("textPayload") == want.get("textPayload")
        assert got["resource"] == want["resource"]
        assert got.get("severity") == want.get("severity")
        assert ts(got["timestamp"]) == ts(want["timestamp"])
    texts = {e.get("textPayload") for e in read}
    assert {"line 0 of task 0", "line 1 of task 0", "line 2 of task 0"} <= texts

    # The run surface's own log readers (Logging underneath): the job's and the execution's.
    [execution] = list(run_clients[1].list_executions(parent=f"{PARENT}/jobs/{name}"))
    for command in (
        ("run", "jobs", "logs", "read", name, f"--region={REGION}"),
        ("beta", "run", "jobs", "executions", "logs", "read", execution.name.rsplit("/", 1)[1]),
    ):
        lines = gcloud.text(*command).splitlines()
        assert all(any(line.endswith(f"line {i} of task 0") for line in lines) for i in range(3)), command


def test_unknown_v1_field_is_refused_as_google_refuses_it(session, made):
    name = unique()
    made.append(name)
    body = {
        "apiVersion": "run.googleapis.com/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": PROJECT},
        "spec": {
            "template": {"spec": {"template": {"spec": {"containers": [{"image": IMAGE, "imag": "x"}]}}}}
        },
    }
    reply = session.post(f"{V1}/jobs", json=body, timeout=30)
    assert reply.status_code == 400
    assert 'Unknown name "imag"' in reply.json()["error"]["message"]
    body["spec"]["template"]["spec"]["template"]["spec"]["containers"][0].pop("imag")
    created = session.post(f"{V1}/jobs", json=body, timeout=30)
    assert created.status_code == 200, created.text
    again = session.post(f"{V1}/jobs", json=body, timeout=30)
    assert again.status_code == 409
    stale = {**created.json(), "metadata": {**created.json()["metadata"], "resourceVersion": "stale"}}
    assert session.put(f"{V1}/jobs/{name}", json=stale, timeout=30).status_code == 409
    deleted = session.delete(f"{V1}/jobs/{name}", timeout=30)
    assert deleted.status_code == 200 and deleted.json()["status"] == "Success"
    assert session.get(f"{V1}/jobs/{name}", timeout=30).status_code == 404


def test_iam_service_accounts_create_describe_and_projects_add_iam_policy_binding(
    gcloud, session, localcloud_env
):
    account_id = unique("gsa")
    email = f"{account_id}@{PROJECT}.iam.gserviceaccount.com"
    created = gcloud.json("iam", "service-accounts", "create", account_id, "--display-name=made by gcloud")
    described = gcloud.json("iam", "service-accounts", "describe", email)
    rest = session.get(f"https://iam.googleapis.com/v1/projects/{PROJECT}/serviceAccounts/{email}").json()
    # gcloud prints bytes fields (the etag) in URL-safe base64; the same bytes.
    assert {**described, "etag": described["etag"].replace("-", "+").replace("_", "/")} == rest
    assert created["email"] == email and described["displayName"] == "made by gcloud"
    assert len(described["uniqueId"]) == 21
    again = gcloud.run("iam", "service-accounts", "create", account_id, check=False)
    assert again.returncode != 0 and b"already exists within project" in again.stderr
    missing = gcloud.run(
        "iam", "service-accounts", "describe", f"nobody@{PROJECT}.iam.gserviceaccount.com", check=False
    )
    assert missing.returncode != 0 and b"NOT_FOUND" in missing.stderr
    member = f"serviceAccount:{email}"
    policy = gcloud.json(
        "projects",
        "add-iam-policy-binding",
        PROJECT,
        f"--member={member}",
        "--role=roles/run.invoker",
        "--condition=None",
    )
    read = session.post(
        f"https://cloudresourcemanager.googleapis.com/v3/projects/{PROJECT}:getIamPolicy",
        json={"options": {"requestedPolicyVersion": 3}},
    ).json()
    assert policy["etag"].replace("-", "+").replace("_", "/") == read["etag"]
    invokers = [b for b in read["bindings"] if b["role"] == "roles/run.invoker" and not b.get("condition")]
    assert any(member in b["members"] for b in invokers), read["bindings"]
    assert gcloud.json("projects", "get-iam-policy", PROJECT)["bindings"] == read["bindings"]
    removed = gcloud.json(
        "projects",
        "remove-iam-policy-binding",
        PROJECT,
        f"--member={member}",
        "--role=roles/run.invoker",
        "--condition=None",
    )
    assert all(member not in b["members"] for b in removed.get("bindings", []))
    gcloud.run("iam", "service-accounts", "delete", email, "--quiet")


def test_run_jobs_add_iam_policy_binding_is_the_policy_googles_client_reads(gcloud, run_clients, made):
    name = unique()
    create_with_gcloud(gcloud, made, name, "--lines", "1")
    member = f"serviceAccount:{OPERATOR}"
    gcloud.run(
        "run", "jobs", "add-iam-policy-binding", name, f"--member={member}", "--role=roles/run.invoker",
        f"--region={REGION}", "--quiet",
    )  # fmt: skip
    policy = run_clients[0].get_iam_policy(
        request=iam_policy_pb2.GetIamPolicyRequest(resource=f"{PARENT}/jobs/{name}")
    )
    assert [(b.role, list(b.members)) for b in policy.bindings] == [("roles/run.invoker", [member])]
    shown = gcloud.json("run", "jobs", "get-iam-policy", name, f"--region={REGION}")
    assert shown["bindings"] == [{"role": "roles/run.invoker", "members": [member]}]
