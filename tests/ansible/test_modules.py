"""cloudact.gcp modules against localcloud: every feature in four steps (a playbook), retries of
transient faults, and failures that name the resource and carry the API's message."""

from __future__ import annotations

import json

from .conftest import BIN, ROOT, base_env, run


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


def adhoc(localcloud, module: str, args: dict, **extra: str) -> tuple[int, dict]:
    """One module run as `ansible localhost -m`, pointed at localcloud like the play's environment does."""
    env = dict(localcloud.client_env, **extra)
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    full = base_env(
        localcloud.state_dir, **env, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json"
    )
    args = {"project": "cloudact-local", "auth_kind": "serviceaccount", "location": "us-central1", **args}
    result = run(
        [str(BIN / "ansible"), "localhost", "-i", "inventories/local", "-m", module, "-a", json.dumps(args)],
        full,
    )
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


def test_a_refusal_names_the_resource_and_carries_the_api_message(localcloud):
    localcloud.admin.fault(
        "run.googleapis.com",
        "/v2/projects/cloudact-local/locations/us-central1/jobs/cloudact-daily-alerts",
        status=403,
    )
    rc, res = adhoc(
        localcloud, "cloudact.gcp.cloud_run_job", {"name": "cloudact-daily-alerts", "timeout": 60}
    )
    assert rc != 0
    assert res["msg"].startswith("Cloud Run job cloudact-daily-alerts: 403 PERMISSION_DENIED"), res["msg"]
    assert res["status"] == 403
