"""create-jobs end to end on localcloud: the molecule scenario, a catalog edit planned then applied
with execution history kept and an operator's pause kept, the preflight refusals, the prod guard."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from .conftest import BIN, ROOT, base_env, playbook, read_json, run

PROJECT = "projects/cloudact-local/locations/us-central1"
RUN = f"https://run.googleapis.com/v2/{PROJECT}"
SCHEDULER = f"https://cloudscheduler.googleapis.com/v1/{PROJECT}"
MUTATING = {"POST", "PATCH", "DELETE", "PUT"}


def changes(localcloud) -> list[dict]:
    """Mutating requests to Cloud Run and Cloud Scheduler since the counter was reset."""
    hosts = {"run.googleapis.com", "cloudscheduler.googleapis.com"}
    return [
        r for r in localcloud.admin.requests()["requests"] if r["host"] in hosts and r["method"] in MUTATING
    ]


def make(env: dict[str, str], *args: str, stdin: str | None = None):
    # OPS_LOCAL= : the session's localcloud is already up (started by the fixture, not by `make local-up`).
    return run(["make", "--no-print-directory", *args, "OPS_LOCAL="], env, stdin=stdin)


@pytest.mark.molecule
def test_molecule_converge_idempotence_check_verify(localcloud, ansible_env, google):
    env = dict(ansible_env, MOLECULE_NO_LOG="false")
    env.pop("ANSIBLE_CONFIG")  # molecule writes its own; molecule.yml points it at our roles and collection
    result = run([str(BIN / "molecule"), "test", "-s", "default"], env, timeout=1200)
    assert result.rc == 0, result.output[-6000:]
    # No secret value anywhere in the job specs: only references.
    values = []
    for secret in ("ca-root-api-key-local", "supabase-access-token-local"):
        reply = google.get(
            f"https://secretmanager.googleapis.com/v1/projects/cloudact-local/secrets/{secret}/versions/latest:access"
        )
        reply.raise_for_status()
        values.append(base64.b64decode(reply.json()["payload"]["data"]).decode())
    jobs = google.get(f"{RUN}/jobs").json()["jobs"]
    assert len(jobs) == 8
    text = json.dumps(jobs)
    assert all(v and v not in text for v in values)


def test_catalog_edit_is_planned_then_applied_in_place_keeping_history_and_pause(
    localcloud, ansible_env, google, tmp_path
):
    summary = tmp_path / "summary.json"
    result = playbook(ansible_env, "create-jobs.yml", "-e", f"cloudact_summary_file={summary}")
    assert result.rc == 0, result.output[-4000:]

    # An execution before the change.
    op = google.post(f"{RUN}/jobs/cloudact-daily-stale-cleanup:run", json={}).json()
    execution = op["metadata"]["name"].rsplit("/", 1)[-1]

    # An operator pauses the alerts trigger.
    result = make(ansible_env, "pause", "ENV=local", "JOB=daily-alerts")
    assert result.rc == 0, result.output[-4000:]

    # The catalog edit: one schedule, one timeout.
    data = yaml.safe_load((ROOT / "catalog/jobs.yml").read_text())
    for job in data["jobs"]:
        if job["shortcut"] == "alerts":
            job["schedule"] = "30 7 * * *"
        if job["shortcut"] == "stale-cleanup":
            job["timeout"] = "12m"
    edited = tmp_path / "jobs.yml"
    edited.write_text(yaml.safe_dump(data, sort_keys=False))
    catalog = ["-e", f"cloudact_catalog_file={edited}", "-e", f"cloudact_summary_file={summary}"]

    localcloud.admin.reset_requests()
    result = playbook(ansible_env, "create-jobs.yml", "--check", "--diff", *catalog)
    assert result.rc == 0, result.output[-4000:]
    plan = read_json(summary)
    assert changes(localcloud) == []  # the plan changed nothing
    assert plan["check_mode"] is True
    assert plan["jobs"]["updated"] == {"cloudact-daily-stale-cleanup": ["timeout"]}
    assert plan["triggers"]["updated"] == {"cloudact-daily-alerts-trigger": ["schedule"]}
    for kind in ("jobs", "triggers"):
        assert plan[kind]["created"] == [] and plan[kind]["pruned"] == []
    # The diff shows each field's before and after (YAML or JSON, as the callback renders it).
    for before, after in (
        ("timeout.*600s", "timeout.*720s"),
        (r"schedule.*0 8 \* \* \*", r"schedule.*30 7 \* \* \*"),
    ):
        assert re.search(rf"^-.*{before}", result.stdout, re.M) and re.search(
            rf"^\+.*{after}", result.stdout, re.M
        )
    assert "changed=2" in result.stdout  # the job and the trigger task, nothing else

    result = playbook(ansible_env, "create-jobs.yml", *catalog)
    assert result.rc == 0, result.output[-4000:]
    applied = read_json(summary)
    assert applied["jobs"]["updated"] == plan["jobs"]["updated"]
    assert applied["triggers"]["updated"] == plan["triggers"]["updated"]
    assert "jobs: 0 created, 1 updated, 7 unchanged, 0 pruned" in result.stdout

    job = google.get(f"{RUN}/jobs/cloudact-daily-stale-cleanup").json()
    assert job["template"]["template"]["timeout"] == "720s"
    listed = google.get(f"{RUN}/jobs/cloudact-daily-stale-cleanup/executions").json().get("executions", [])
    assert execution in [e["name"].rsplit("/", 1)[-1] for e in listed]  # history survived the update
    trigger = google.get(f"{SCHEDULER}/jobs/cloudact-daily-alerts-trigger").json()
    assert trigger["schedule"] == "30 7 * * *"
    assert trigger["state"] == "PAUSED"  # the operator's pause survived the converge

    result = make(ansible_env, "resume", "ENV=local", "JOB=alerts")
    assert result.rc == 0, result.output[-4000:]
    assert google.get(f"{SCHEDULER}/jobs/cloudact-daily-alerts-trigger").json()["state"] == "ENABLED"

    # The real catalog again, for the tests after this one on the session's localcloud.
    result = playbook(ansible_env, "create-jobs.yml")
    assert result.rc == 0, result.output[-4000:]
    assert "jobs: 0 created, 1 updated, 7 unchanged, 0 pruned" in result.stdout


def other_project_key(localcloud, path: Path) -> Path:
    info = json.loads(Path(localcloud.key_file).read_text())
    info["project_id"] = "cloudact-prod"
    path.write_text(json.dumps(info))
    return path


@pytest.mark.parametrize("case", ["other-project", "missing-home-path", "missing-secret", "localcloud-down"])
def test_preflight_refuses_before_any_change(localcloud, ansible_env, tmp_path, case):
    env = dict(ansible_env, HOME=str(tmp_path))
    args: list[str] = []
    if case == "other-project":
        args = ["-e", f"cloudact_credentials_file={other_project_key(localcloud, tmp_path / 'k.json')}"]
        expected = "is a key of project 'cloudact-prod', but this environment's project is 'cloudact-local'"
    elif case == "missing-home-path":
        args = ["-e", "cloudact_credentials_file=~/keys/nope.json"]
        expected = f"credentials file ~/keys/nope.json ({tmp_path}/keys/nope.json) does not exist"
    elif case == "missing-secret":
        args = ["-e", "cloudact_secret_suffix=missing"]
        expected = "secret(s) ca-root-api-key-missing, supabase-access-token-missing do not exist in project"
    else:
        env["LOCALCLOUD_STATE_DIR"] = str(tmp_path / "never-started")
        expected = "localcloud is not running"
    localcloud.admin.reset_requests()
    result = playbook(env, "create-jobs.yml", *args)
    assert result.rc != 0
    assert expected in result.output, result.output[-3000:]
    assert changes(localcloud) == []


def test_preflight_accepts_a_key_under_home_and_only_warns_of_a_missing_secret_in_a_plan(
    localcloud, ansible_env, tmp_path
):
    (tmp_path / "keys").mkdir()
    shutil.copy(localcloud.key_file, tmp_path / "keys" / "local.json")
    env = dict(ansible_env, HOME=str(tmp_path))
    localcloud.admin.reset_requests()
    result = playbook(
        env,
        "create-jobs.yml",
        "--check",
        "-e",
        "cloudact_credentials_file=~/keys/local.json",
        "-e",
        "cloudact_secret_suffix=missing",
    )
    assert result.rc == 0, result.output[-4000:]
    assert "[WARNING]: secret(s) ca-root-api-key-missing" in result.output
    assert changes(localcloud) == []


def test_prod_is_guarded(localcloud, tmp_path):
    """Inputs first, then the question: prod without usable credentials is refused for that, naming it,
    before anything is asked or sent (the question names the digest the converge will pin, which needs
    the cloud: tests/e2e/test_guard.py asks it on a rehearsed prod)."""
    env = base_env(tmp_path / "no-localcloud")
    # Direct ansible-playbook: the preflight refuses the missing credentials before the guard's question.
    result = playbook(env, "create-jobs.yml", inventory="prod")
    assert result.rc != 0
    assert "no usable credentials" in result.output and "Type yes" not in result.output, result.output[-3000:]
    # make checks the same inputs before it asks: no question, whatever is piped.
    result = make(env, "create-jobs", "ENV=prod", stdin="yes\n")
    assert result.rc != 0 and "no usable credentials" in result.stderr and "About to" not in result.stderr
    # A key file that does not exist is named, by make and by the play.
    env["GCP_SERVICE_ACCOUNT_FILE"] = str(tmp_path / "prod-key.json")
    result = make(env, "create-jobs", "ENV=prod", stdin="yes\n")
    assert result.rc != 0
    assert f"credentials file {tmp_path}/prod-key.json does not exist" in result.output, result.output[-3000:]
    result = playbook(dict(env, CONFIRM="yes"), "create-jobs.yml", inventory="prod")
    assert result.rc != 0 and "prod-key.json does not exist" in result.output


def test_unknown_environment_and_job_words_are_refused_by_make(ansible_env):
    result = make(ansible_env, "plan", "ENV=dev")
    assert result.rc != 0
    assert (
        "unknown environment 'dev': valid environments are local, prod, stage, test (= stage)"
        in result.stderr
    )
    result = make(ansible_env, "pause", "ENV=local", "JOB=alrts")
    assert result.rc != 0
    assert "unknown job 'alrts': did you mean 'alerts'?" in result.stderr


def test_prune_unlisted_is_planned_then_applied_only_with_prune(localcloud, ansible_env, google, tmp_path):
    body = {
        "template": {
            "template": {"containers": [{"image": "localhost/x:1", "command": ["python", "-c", "0"]}]}
        }
    }
    op = google.post(f"{RUN}/jobs", params={"jobId": "cloudact-unlisted-job"}, json=body)
    assert op.status_code == 200, op.text
    summary = tmp_path / "summary.json"
    result = playbook(ansible_env, "create-jobs.yml", "--check", "-e", f"cloudact_summary_file={summary}")
    assert result.rc == 0, result.output[-4000:]
    assert "cloudact-unlisted-job" not in read_json(summary)["jobs"]["pruned"]  # not without PRUNE
    result = playbook(
        dict(ansible_env, PRUNE="1"), "create-jobs.yml", "--check", "-e", f"cloudact_summary_file={summary}"
    )
    assert result.rc == 0, result.output[-4000:]
    assert read_json(summary)["jobs"]["pruned"] == ["cloudact-unlisted-job"]
    assert google.get(f"{RUN}/jobs/cloudact-unlisted-job").status_code == 200  # the plan deleted nothing
    result = playbook(
        ansible_env,
        "create-jobs.yml",
        "-e",
        "cloudact_prune_unlisted=true",
        "-e",
        f"cloudact_summary_file={summary}",
    )
    assert result.rc == 0, result.output[-4000:]
    assert read_json(summary)["jobs"]["pruned"] == ["cloudact-unlisted-job"]
    assert google.get(f"{RUN}/jobs/cloudact-unlisted-job").status_code == 404


def test_an_empty_api_url_is_discovered_from_the_api_service_or_refused(localcloud, ansible_env, tmp_path):
    # Converged as the catalog says (whatever an earlier test on the session's localcloud changed), so
    # that the discovered URL is the plan's only change.
    result = playbook(ansible_env, "create-jobs.yml")
    assert result.rc == 0, result.output[-4000:]
    summary = tmp_path / "summary.json"
    result = playbook(
        ansible_env,
        "create-jobs.yml",
        "--check",
        "-e",
        "cloudact_api_url=",
        "-e",
        f"cloudact_summary_file={summary}",
    )
    assert result.rc == 0, result.output[-4000:]
    url = "https://cloudact-api-service-local-uc.a.run.app"
    assert f"API URL discovered from Cloud Run service cloudact-api-service-local: {url}" in result.stdout
    plan = read_json(summary)["jobs"]  # every job would get the discovered URL (or be created with it)
    assert len(plan["updated"]) + len(plan["created"]) == 8
    assert all(fields == ["env"] for fields in plan["updated"].values())
    result = playbook(
        ansible_env,
        "create-jobs.yml",
        "--check",
        "-e",
        "cloudact_api_url=",
        "-e",
        "cloudact_api_service=nope",
    )
    assert result.rc != 0
    assert "cloudact_api_url is empty and Cloud Run service nope does not exist" in result.output
