"""cloudact.gcp modules against localcloud: every feature in four steps (a playbook), retries of
transient faults, and failures that name the resource and carry the API's message."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import BIN, ROOT, base_env, environment_vars, run

JOBS = "/v2/projects/cloudact-local/locations/us-central1/jobs"
TRIGGERS = "/v1/projects/cloudact-local/locations/us-central1/jobs"
RUN_HOST, SCHEDULER_HOST = "run.googleapis.com", "cloudscheduler.googleapis.com"


def test_module_features_in_four_steps(localcloud, ansible_env, google):
    """tests/ansible/playbooks/modules.yml asserts each step's result; localcloud's request log shows
    what reached the cloud: one write per feature (a check step, and a step that finds nothing to do,
    write nothing), with the fields the step names, the job and trigger gone at the end, no request
    for the job that has no image, and the one create of the bad schedule refused with a 400."""
    mark = localcloud.admin.request_seq()
    result = run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            "inventories/local",
            str(ROOT / "tests/ansible/playbooks/modules.yml"),
        ],
        ansible_env,
    )
    assert result.rc == 0, result.output[-4000:]
    assert "failed=0" in result.stdout

    log = localcloud.admin.request_log(after=mark)
    writes = [
        r
        for r in log
        if r["method"] != "GET"
        and r["host"] in (RUN_HOST, SCHEDULER_HOST)
        and "mod-test-" in r["path"] + r["query"] + json.dumps(r["body"])
    ]
    trigger, job = f"{TRIGGERS}/mod-test-trigger", f"{JOBS}/mod-test-job"
    assert [(r["method"], r["host"], r["path"], r["query"], r["status"]) for r in writes] == [
        ("POST", RUN_HOST, JOBS, "jobId=mod-test-job", 200),  # job create
        ("PATCH", RUN_HOST, job, "", 200),  # job update in place
        ("POST", SCHEDULER_HOST, TRIGGERS, "", 200),  # trigger create
        ("POST", SCHEDULER_HOST, f"{trigger}:pause", "", 200),
        ("PATCH", SCHEDULER_HOST, trigger, "updateMask=schedule", 200),  # the update keeps the pause
        ("POST", SCHEDULER_HOST, f"{trigger}:resume", "", 200),
        ("DELETE", SCHEDULER_HOST, trigger, "", 200),
        ("DELETE", RUN_HOST, job, "", 200),
        ("POST", SCHEDULER_HOST, TRIGGERS, "", 400),  # the bad schedule, refused by the API
    ], [(r["method"], r["path"], r["query"], r["status"]) for r in writes]

    created, updated = writes[0]["body"], writes[1]["body"]
    container = created["template"]["template"]["containers"][0]
    assert container["image"] == "us-central1-docker.pkg.dev/cloudact-local/cloudact/cloudact-jobs-local"
    assert container["command"] == ["python", "-c", "print('hello')"]
    assert container["env"] == [
        {"name": "GREETING", "value": "hello"},
        {
            "name": "CA_ROOT_API_KEY",
            "valueSource": {"secretKeyRef": {"secret": "ca-root-api-key-local", "version": "latest"}},
        },
    ]
    assert created["template"]["template"]["timeout"] == "300s"
    assert created["labels"] == {"managed-by": "module-test"}
    assert updated["template"]["template"]["timeout"] == "600s"
    assert updated["template"]["template"]["containers"][0]["env"][0] == {
        "name": "GREETING",
        "value": "bonjour",
    }

    made, changed, bad = writes[2]["body"], writes[4]["body"], writes[8]["body"]
    assert made["name"].endswith("/jobs/mod-test-trigger")
    assert (made["schedule"], made["timeZone"]) == ("0 3 * * *", "Europe/Berlin")
    assert made["httpTarget"]["uri"].endswith("/namespaces/cloudact-local/jobs/mod-test-job:run")
    assert changed["schedule"] == "30 3 * * *"
    assert bad["name"].endswith("/jobs/mod-test-bad-schedule") and bad["schedule"] == "every day at noon"
    assert not [r for r in log if "mod-test-no-image" in r["path"] and r["method"] != "GET"]

    # What the play leaves: nothing of its own.
    for host, path in ((RUN_HOST, job), (SCHEDULER_HOST, trigger), (RUN_HOST, f"{JOBS}/mod-test-no-image")):
        assert google.get(f"https://{host}{path}", timeout=30).status_code == 404, path


def adhoc(
    localcloud, module: str, args: dict, action_dir: Path | None = None, **extra: str
) -> tuple[int, dict]:
    """One plugin run as `ansible localhost -m`: a real module with google.cloud's auth options pointed at
    localcloud like the play's environment does; an action with the run's environment as a play's
    cloudact_env role gives it (`environment_vars`, written to `action_dir`)."""
    env = dict(localcloud.client_env, **extra)
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    full = base_env(
        localcloud.state_dir, **env, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json"
    )
    cmd = [str(BIN / "ansible"), "localhost", "-i", "inventories/local", "-m", module]
    if action_dir is not None:
        cmd += environment_vars("local", localcloud.state_dir, action_dir)
    else:
        args = {"project": "cloudact-local", "auth_kind": "serviceaccount", "location": "us-central1", **args}
    result = run([*cmd, "-a", json.dumps(args)], full)
    out = json.loads(result.stdout)
    return result.rc, out["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_transient_faults_are_retried_with_one_token(localcloud, tmp_path):
    admin = localcloud.admin
    admin.fault(
        "run.googleapis.com", "/v2/projects/cloudact-local/locations/us-central1/jobs", count=2, status=503
    )
    admin.reset_requests()
    # a token cache of its own: the one token this run asks for is counted (module_utils/tokens.py)
    rc, res = adhoc(localcloud, "cloudact.gcp.cloud_run_job_info", {}, CLOUDACT_STATE_DIR=str(tmp_path))
    assert rc == 0, res
    counted = admin.requests()
    lists = [
        r for r in counted["requests"] if r["host"] == "run.googleapis.com" and r["path"].endswith("/jobs")
    ]
    assert sum(r["count"] for r in lists) == 3  # two 503s, then the answer
    assert counted["by_host"].get("oauth2.googleapis.com") == 1  # one session, one token


def test_a_refusal_names_the_resource_and_carries_the_api_message(localcloud, tmp_path):
    localcloud.admin.fault(
        "run.googleapis.com",
        "/v2/projects/cloudact-local/locations/us-central1/jobs/cloudact-daily-alerts",
        status=403,
    )
    rc, res = adhoc(
        localcloud, "cloudact.gcp.cloud_run_job", {"name": "cloudact-daily-alerts", "timeout": 60}, tmp_path
    )
    assert rc != 0
    assert res["msg"].startswith("Cloud Run job cloudact-daily-alerts: 403 PERMISSION_DENIED"), res["msg"]
    assert res["status"] == 403
