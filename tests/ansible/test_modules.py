"""cloudact.gcp modules against localcloud: every feature in four steps (a playbook), retries of
transient faults, and failures that name the resource and carry the API's message."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import BIN, ROOT, base_env, environment_vars, run


def test_module_features_in_four_steps(ansible_env):
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
