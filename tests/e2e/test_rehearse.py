"""REHEARSE=1: the unchanged stage and prod inventories, through make, on localcloud's copies of their
projects (cloudact-testing-1, cloudact-prod); and without it, a stage or prod play never receives
localcloud's client environment or keys.

A localcloud of this module's own. make runs as an operator's shell would, with no proxy, CA or key
of localcloud in its environment: HTTPS_PROXY is a dead port and GCP_* is unset, so whatever reaches
localcloud got there through the play's (or the CLI's) client environment, and nothing can reach a
real Google host.

The stage and prod inventories leave `cloudact_supabase_project_ref` and `cloudact_migrations_source`
to the operator: the rehearsals give them as an operator would, `-e` on the command line (a ref, and a
copy of the checkout's fixture migrations outside the repository). The image carries the migrations at
/app/migrations/supabase_db, where the migrate job finds them. Nothing in the inventory changes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from google.cloud import run_v2, scheduler_v1
from google.oauth2 import service_account

from localcloud.client import AdminClient, LocalCloudProcess
from toolkit import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.localcloud]

DEAD_PROXY = "http://127.0.0.1:9"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
REGION = "us-central1"
STAGE_URL = re.compile(r"https://cloudact-api-service-test-[a-z0-9]{10}-uc\.a\.run\.app")
PROD_REF = "rehearsalprodref0001"
STAGE_REF = "rehearsalstageref001"
PROD_ARGS = f"-e cloudact_supabase_project_ref={PROD_REF}"
STAGE_ARGS = f"-e cloudact_supabase_project_ref={STAGE_REF}"


@dataclass
class Rehearsal:
    state_dir: Path
    client_env: dict[str, str]
    keys: dict[str, str]
    admin: AdminClient

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.lower().endswith("_proxy")
            and not k.startswith(("GCP_", "GOOGLE_"))
            and k not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CONFIRM", "PRUNE", "REHEARSE")
        }
        env.update(
            LOCALCLOUD_STATE_DIR=str(self.state_dir),
            HTTPS_PROXY=DEAD_PROXY,
            NO_PROXY="127.0.0.1,localhost",
            NO_COLOR="1",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
        )
        env.update(extra)
        return env

    def run(self, cmd: list[str], stdin: str = "", **extra: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            cmd, cwd=ROOT, env=self.env(**extra), input=stdin, capture_output=True, text=True, timeout=280
        )
        result.out = result.stdout + result.stderr  # type: ignore[attr-defined]
        return result

    def make(self, *args: str, stdin: str = "", **extra: str) -> subprocess.CompletedProcess:
        return self.run(["make", "-s", "--no-print-directory", *args], stdin=stdin, **extra)

    def creds(self, project: str):
        return service_account.Credentials.from_service_account_file(self.keys[project], scopes=SCOPES)

    def runs(self) -> int:
        return sum(r["count"] for r in self.admin.requests()["requests"] if r["path"].endswith(":run"))


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> str:
    """CloudAct's migrations as an operator has them: a checkout of their own, outside this repository
    (the fixture migrations stand in), given to make image as `-e cloudact_migrations_source=...`."""
    directory = tmp_path_factory.mktemp("cloudact") / "supabase_db"
    shutil.copytree(ROOT / "migrations", directory)
    git = ["git", "-C", str(directory), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "migrations"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    return f"-e cloudact_migrations_source={directory}"


@pytest.fixture(scope="module")
def rehearsal():
    # Outside pytest's basetemp, as tests/conftest.py's localcloud_state_dir says why (pgserver as root).
    root = Path(tempfile.mkdtemp(prefix="localcloud-rehearse-"))
    proc = LocalCloudProcess(root / "state")
    proc.start(timeout=120)
    try:
        assert proc.admin is not None and proc.pid is not None
        proc.files.pid.write_text(f"{proc.pid}\n")  # as `localcloud up` leaves it: make finds it up
        keys = json.loads(proc.files.keys_index.read_text())
        yield Rehearsal(proc.state_dir, proc.client_env, keys, proc.admin)
    finally:
        proc.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def stage_converged(rehearsal, source) -> subprocess.CompletedProcess:
    """make image and make create-jobs ENV=stage with REHEARSE=1, once for the module (the tests that need
    stage converged take it, in any order): create-jobs' result."""
    built = rehearsal.make("image", "ENV=stage", f"ANSIBLE_ARGS={source}", REHEARSE="1")
    assert built.returncode == 0, built.out  # jobs are pinned to a build of the project's registry
    result = rehearsal.make("create-jobs", "ENV=stage", f"ANSIBLE_ARGS={STAGE_ARGS}", REHEARSE="1")
    assert result.returncode == 0, result.out
    return result


@pytest.fixture(scope="module")
def prod_refusals(rehearsal, source) -> dict:
    """On an empty cloudact-prod, before prod_released (which takes it) whichever test asks first: a
    release and an image missing their inputs (with a piped yes), an image built with a piped yes, and
    create-jobs answered no and nothing; the results and the writes to Cloud Run and Scheduler they made."""
    mark = rehearsal.admin.request_seq()
    missing_ref = rehearsal.make("release", "ENV=prod", REHEARSE="1", stdin="yes\n")
    missing_source = rehearsal.make("image", "ENV=prod", REHEARSE="1", stdin="yes\n")
    built = rehearsal.make("image", "ENV=prod", f"ANSIBLE_ARGS={source}", REHEARSE="1", stdin="yes\n")
    unanswered = [
        rehearsal.make("create-jobs", "ENV=prod", f"ANSIBLE_ARGS={PROD_ARGS}", REHEARSE="1", stdin=answer)
        for answer in ("no\n", "")
    ]
    wrote = [
        e
        for e in rehearsal.admin.request_log(after=mark)
        if e["method"] != "GET" and ("run.googleapis.com" in e["host"] or "cloudscheduler" in e["host"])
    ]
    return {
        "missing_ref": missing_ref,
        "missing_source": missing_source,
        "built": built,
        "unanswered": unanswered,
        "wrote": wrote,
    }


@pytest.fixture(scope="module")
def prod_released(rehearsal, source, prod_refusals) -> dict:
    """prod built (CONFIRM=yes), converged (a piped yes), a release refused without a yes, then released
    with one, once for the module: each command's result, and the :run requests the refused one sent."""
    built = rehearsal.make("image", "ENV=prod", f"ANSIBLE_ARGS={source}", REHEARSE="1", CONFIRM="yes")
    assert built.returncode == 0, built.out
    created = rehearsal.make(
        "create-jobs", "ENV=prod", f"ANSIBLE_ARGS={PROD_ARGS}", REHEARSE="1", stdin="yes\n"
    )
    before = rehearsal.runs()
    refused = rehearsal.make("release", "ENV=prod", f"ANSIBLE_ARGS={PROD_ARGS}", REHEARSE="1", stdin="\n")
    refused_runs = rehearsal.runs() - before
    result = rehearsal.make("release", "ENV=prod", f"ANSIBLE_ARGS={PROD_ARGS}", REHEARSE="1", stdin="yes\n")
    return {"created": created, "refused": refused, "refused_runs": refused_runs, "released": result}


@pytest.fixture
def google(rehearsal, monkeypatch):
    """Google's own clients in this process, through localcloud's proxy."""
    for name in ("HTTPS_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.setenv(name, rehearsal.client_env[name])

    def clients(project: str):
        creds = rehearsal.creds(project)
        return (
            run_v2.JobsClient(transport="rest", credentials=creds),
            run_v2.ExecutionsClient(transport="rest", credentials=creds),
            scheduler_v1.CloudSchedulerClient(transport="rest", credentials=creds),
        )

    return clients


def names(pager) -> list[str]:
    return sorted(item.name.rsplit("/", 1)[1] for item in pager)


def cloudact_jobs(google, project: str) -> list[str]:
    jobs, _, _ = google(project)
    return [
        n for n in names(jobs.list_jobs(parent=f"projects/{project}/locations/{REGION}")) if "cloudact" in n
    ]


def triggers(google, project: str) -> list[str]:
    _, _, scheduler = google(project)
    return names(scheduler.list_jobs(parent=f"projects/{project}/locations/{REGION}"))


def client_env_of_play(rehearsal, tmp_path, inventory: str, **extra: str) -> dict:
    out = tmp_path / f"client-env-{inventory}.json"
    result = rehearsal.run(
        [
            str(Path(ROOT) / ".venv/bin/ansible-playbook"),
            "-i",
            f"inventories/{inventory}",
            "tests/e2e/playbooks/client-env.yml",
            "-e",
            f"client_env_out={out}",
        ],
        **extra,
    )
    assert result.returncode == 0, result.out
    return json.loads(out.read_text())


@pytest.mark.parametrize("inventory", ["stage", "prod"])
def test_without_rehearse_a_stage_or_prod_play_gets_no_localcloud_env_or_key(rehearsal, tmp_path, inventory):
    seen = client_env_of_play(rehearsal, tmp_path, inventory)
    assert seen["facts"] == {} and seen["state"] is None
    text = json.dumps(seen["seen"])
    assert str(rehearsal.state_dir) not in text  # no CA, no key of localcloud's
    assert rehearsal.client_env["HTTPS_PROXY"] not in text
    assert f"HTTPS_PROXY={DEAD_PROXY}" in seen["seen"]  # only what the shell itself had
    assert not any(line.startswith(("GCP_SERVICE_ACCOUNT_FILE=", "GOOGLE_")) for line in seen["seen"])
    if inventory == "stage":  # REHEARSE=0 is not a rehearsal either
        assert client_env_of_play(rehearsal, tmp_path, inventory, REHEARSE="0")["facts"] == {}


def test_rehearse_gives_a_play_localcloud_env_with_the_projects_own_key(rehearsal, tmp_path):
    for inventory, project in (("stage", "cloudact-testing-1"), ("prod", "cloudact-prod")):
        seen = client_env_of_play(rehearsal, tmp_path, inventory, REHEARSE="1")
        assert seen["facts"]["GCP_SERVICE_ACCOUNT_FILE"] == rehearsal.keys[project]
        assert seen["facts"]["GCP_SERVICE_ACCOUNT_FILE"] != rehearsal.keys["cloudact-local"]
        assert seen["state"]["rehearse"] is True and seen["state"]["up"] is True
        assert f"HTTPS_PROXY={rehearsal.client_env['HTTPS_PROXY']}" in seen["seen"]
        assert f"GCP_SERVICE_ACCOUNT_FILE={rehearsal.keys[project]}" in seen["seen"]
    # The local inventory is unchanged by REHEARSE=1: its own key.
    local = client_env_of_play(rehearsal, tmp_path, "local", REHEARSE="1")
    assert local["facts"] == {
        k: v for k, v in rehearsal.client_env.items() if k != "GOOGLE_APPLICATION_CREDENTIALS"
    }


def test_without_rehearse_make_stage_never_reaches_localcloud(rehearsal):
    rehearsal.admin.reset_requests()
    result = rehearsal.make("plan", "ENV=stage")
    assert result.returncode != 0, result.out
    assert rehearsal.admin.requests()["total"] == 0, result.out


def test_rehearse_create_jobs_stage_discovers_the_api_url_and_converges_cloudact_testing_1(
    rehearsal, google, stage_converged
):
    result = stage_converged
    found = re.search(
        r"API URL discovered from Cloud Run service cloudact-api-service-test: (\S+)", result.out
    )
    assert found and STAGE_URL.fullmatch(found.group(1)), result.out
    assert "jobs: 8 created" in result.out and "triggers: 5 created" in result.out, result.out
    assert len(cloudact_jobs(google, "cloudact-testing-1")) == 8
    assert len(triggers(google, "cloudact-testing-1")) == 5
    assert cloudact_jobs(google, "cloudact-local") == [] and triggers(google, "cloudact-local") == []
    # The jobs carry the stage inventory's facts: the discovered URL, the -test / -stage secrets.
    jobs, _, _ = google("cloudact-testing-1")
    migrate = jobs.get_job(
        name=f"projects/cloudact-testing-1/locations/{REGION}/jobs/cloudact-manual-supabase-migrate"
    )
    env = {e.name: e for e in migrate.template.template.containers[0].env}
    assert env["API_SERVICE_URL"].value == found.group(1)
    assert env["ENVIRONMENT"].value == "staging" and env["GCP_PROJECT_ID"].value == "cloudact-testing-1"
    assert env["SUPABASE_ACCESS_TOKEN"].value_source.secret_key_ref.secret == "supabase-access-token-stage"
    bootstrap = jobs.get_job(name=migrate.name.replace("supabase-migrate", "bootstrap"))
    env = {e.name: e for e in bootstrap.template.template.containers[0].env}
    assert env["CA_ROOT_API_KEY"].value_source.secret_key_ref.secret == "ca-root-api-key-test"
    again = rehearsal.make("create-jobs", "ENV=test", f"ANSIBLE_ARGS={STAGE_ARGS}", REHEARSE="1")
    assert "test is stage (cloudact-testing-1)" in again.out  # one environment, said once
    assert "jobs: 0 created, 0 updated, 8 unchanged" in again.out, again.out
    # test and stage no longer overwrite each other: a plan of test after stage changes nothing.
    plan = rehearsal.make("plan", "ENV=test", f"ANSIBLE_ARGS={STAGE_ARGS}", REHEARSE="1")
    assert plan.returncode == 0, plan.out
    assert "jobs: 0 would be created, 0 would be updated, 8 unchanged, 0 would be pruned" in plan.out
    assert "triggers: 0 would be created, 0 would be updated, 5 unchanged, 0 would be pruned" in plan.out
    status = rehearsal.make("status", "ENV=stage", REHEARSE="1")
    assert status.returncode == 0 and "status of stage (cloudact-testing-1)" in status.out, status.out


def test_rehearse_prod_refuses_missing_inputs_before_it_asks_and_without_a_yes_changes_nothing(
    prod_refusals,
):
    missing_ref, missing_source, built, unanswered, wrote = (
        prod_refusals[k] for k in ("missing_ref", "missing_source", "built", "unanswered", "wrote")
    )
    # Inputs first: the release's migrate needs the Supabase project ref the prod inventory leaves empty.
    assert missing_ref.returncode != 0 and "Type yes" not in missing_ref.out, missing_ref.out
    assert (
        "cloudact_supabase_project_ref='': migrate needs the Supabase project ref of prod" in missing_ref.out
    )
    # An image without its migrations source is refused for that, not for want of a yes.
    assert missing_source.returncode != 0 and "Type yes" not in missing_source.out, missing_source.out
    assert "ENV=prod: cloudact_migrations_source is empty" in missing_source.out
    assert built.returncode == 0, built.out  # a piped yes answers make image too
    assert re.search(r"About to build and push cloudact-jobs-prod:\S+ \(git-\w+\); create bucket", built.out)
    # The converge asks, naming what it would pin; anything but yes changes nothing.
    question = r"About to converge the job catalog onto prod, pinning every job to \S+@sha256:[0-9a-f]{64} \("
    for result in unanswered:
        assert result.returncode != 0, result.out
        assert re.search(question, result.out) and "Type yes to go on" in result.out, result.out
    # Nothing reached Cloud Run or Cloud Scheduler but reads (the build wrote its image only).
    assert [(e["method"], e["host"], e["path"]) for e in wrote] == []


def test_rehearse_prod_release_runs_the_three_steps_and_validates_on_cloudact_prod(
    rehearsal, google, prod_released
):
    created, refused = prod_released["created"], prod_released["refused"]
    assert created.returncode == 0 and "jobs: 8 created" in created.out, created.out
    assert "API URL discovered" not in created.out  # prod's URL is the inventory's, https://api.cloudact.ai
    assert refused.returncode != 0 and prod_released["refused_runs"] == 0, refused.out  # no yes: no :run
    _, executions, _ = google("cloudact-prod")
    parent = f"projects/cloudact-prod/locations/{REGION}/jobs/-"

    result = prod_released["released"]
    assert result.returncode == 0, result.out
    assert "release prod (project cloudact-prod" in result.out
    # make's prompt names the digest the release will run (the jobs are pinned to it), and its tags.
    prompt = (
        r"About to release to prod: migrate -> bootstrap -> org-sync-all on image \S+@sha256:[0-9a-f]{64} \("
    )
    assert re.search(prompt, result.out), result.out[-2000:]
    for line in ("migrate: cloudact-manual-supabase-migrate-", "bootstrap: cloudact-manual-bootstrap-"):
        assert line in result.out, result.out
    assert "org-sync-all: cloudact-manual-org-sync-all-" in result.out
    # The image's own migrations, where the image carries them (MIGRATIONS_DIR=/app/migrations/supabase_db,
    # which localcloud resolves in its copy of the image's files).
    found = re.search(rf"project {PROD_REF}, 3 migration files in (\S+)", result.out)
    assert found and found.group(1).endswith("/app/migrations/supabase_db"), result.out
    assert re.search(r"API /health\s+ok\s+healthy \(version \S+, production\)", result.out), result.out
    assert re.search(r"bootstrap status\s+ok\s+SYNCED", result.out), result.out
    assert re.search(r"org datasets \(\*_prod\)\s+ok\s+3", result.out), result.out
    # The release's three runs, one each (a trigger's scheduled run may have run since, in another test).
    release_jobs = (
        "cloudact-manual-bootstrap",
        "cloudact-manual-org-sync-all",
        "cloudact-manual-supabase-migrate",
    )
    done = sorted(e.job for e in executions.list_executions(parent=parent) if e.job in release_jobs)
    assert done == [
        "cloudact-manual-bootstrap",
        "cloudact-manual-org-sync-all",
        "cloudact-manual-supabase-migrate",
    ]
    local = google("cloudact-local")[1].list_executions(
        parent=f"projects/cloudact-local/locations/{REGION}/jobs/-"
    )
    assert list(local) == []
    # Secrets never printed: no issued key's contents and no seeded secret in the output.
    for path in rehearsal.keys.values():
        private = json.loads(Path(path).read_text())["private_key"].splitlines()[1]
        assert private not in result.out and private not in created.out


def test_each_projects_triggers_fire_into_its_own_project_with_its_own_key(
    rehearsal, google, stage_converged, prod_released
):
    """The clock past midnight: quota-reset's trigger of cloudact-testing-1 and of cloudact-prod each
    runs its own project's job (an OAuth token of that project's account), none in cloudact-local;
    prod's (bootstrapped by the release above) succeeds against prod's API with prod's root key."""
    midnight = (rehearsal.admin.now() + timedelta(days=1)).replace(hour=0, minute=0, second=20, microsecond=0)
    rehearsal.admin.set_time(midnight)

    def scheduled(project: str):
        _, executions, _ = google(project)
        parent = f"projects/{project}/locations/{REGION}/jobs/cloudact-daily-quota-reset"
        done = [e for e in executions.list_executions(parent=parent) if e.completion_time]
        return done[0] if done else None

    deadline = time.monotonic() + 120
    found = {}
    while time.monotonic() < deadline and len(found) < 2:
        found.update({p: e for p in ("cloudact-testing-1", "cloudact-prod") if (e := scheduled(p))})
        time.sleep(0.5)
    assert set(found) == {"cloudact-testing-1", "cloudact-prod"}, found
    for execution in found.values():
        assert execution.annotations.get("localcloud/triggered-by") == "cloud-scheduler"
    assert found["cloudact-prod"].succeeded_count == 1, found["cloudact-prod"]
    local = google("cloudact-local")[1].list_executions(
        parent=f"projects/cloudact-local/locations/{REGION}/jobs/-"
    )
    assert list(local) == []
