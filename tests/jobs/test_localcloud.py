"""The job scripts on localcloud: the root key from Secret Manager, the emulated CloudAct API, faults."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
API_URL = "https://api.cloudact.local"  # the local inventory's API URL, served by localcloud
PROJECT = "cloudact-local"


def job_env(localcloud, **overrides: str | None) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **localcloud.client_env}
    env.update({"GCP_PROJECT_ID": PROJECT, "ENVIRONMENT": "local", "API_SERVICE_URL": API_URL})
    env.update(
        {"HTTP_BACKOFF_SECONDS": "0.05", "HTTP_BACKOFF_MAX_SECONDS": "0.2", "HTTP_DEADLINE_SECONDS": "60"}
    )
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run(localcloud, script: str, *args: str, **env: str | None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", script.removesuffix(".py").replace("/", "."), *args],
        cwd=ROOT,
        env=job_env(localcloud, **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def secret(localcloud, secret_id: str) -> str:
    """A seeded secret's value, read as any client would (so the test can assert it never leaks)."""
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    session = AuthorizedSession(credentials)
    url = f"https://secretmanager.googleapis.com/v1/projects/{PROJECT}/secrets/{secret_id}/versions/latest:access"
    resp = session.get(url, timeout=30)
    resp.raise_for_status()
    return base64.b64decode(resp.json()["payload"]["data"]).decode().strip()


@pytest.fixture(scope="module")
def root_key(localcloud):
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update({**env, **localcloud.client_env})
    try:
        return secret(localcloud, "ca-root-api-key-local")
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_root_key_read_from_secret_manager(localcloud, root_key):
    result = run(
        localcloud,
        "jobs/daily/stale_cleanup.py",
        CA_ROOT_API_KEY=None,
        CA_ROOT_API_KEY_SECRET="ca-root-api-key-local",
        CLOUD_RUN_JOB="cloudact-daily-stale-cleanup",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Cleaned up" in result.stdout
    assert root_key not in result.stdout + result.stderr


def test_root_key_secret_by_full_name_and_a_missing_secret(localcloud, root_key):
    full = f"projects/{PROJECT}/secrets/ca-root-api-key-local/versions/latest"
    ok = run(localcloud, "jobs/daily/stale_cleanup.py", CA_ROOT_API_KEY=None, CA_ROOT_API_KEY_SECRET=full)
    assert ok.returncode == 0, ok.stderr
    assert "stale concurrent counters" in ok.stderr
    missing = run(
        localcloud, "jobs/daily/stale_cleanup.py", CA_ROOT_API_KEY=None, CA_ROOT_API_KEY_SECRET="nope"
    )
    assert missing.returncode == 2
    assert (
        f"CA_ROOT_API_KEY_SECRET: cannot read projects/{PROJECT}/secrets/nope/versions/latest: 404"
        in missing.stderr
    )


def test_wrong_key_is_refused_clearly(localcloud, root_key):
    result = run(localcloud, "jobs/daily/quota_reset_daily.py", CA_ROOT_API_KEY="ca-root-WRONG-0123456789")
    assert result.returncode == 1
    assert "check CA_ROOT_API_KEY" in result.stderr
    assert "ca-root-WRONG-0123456789" not in result.stdout + result.stderr
    assert root_key not in result.stdout + result.stderr


def test_api_faults_are_retried(localcloud, root_key):
    localcloud.admin.fault("api.cloudact.local", "/api/v1/admin/quota/cleanup-stale", count=2, status=503)
    try:
        result = run(localcloud, "jobs/daily/stale_cleanup.py", CA_ROOT_API_KEY=root_key)
    finally:
        localcloud.admin.clear_faults()
    assert "attempt 2/5 failed: 503" in result.stderr
    assert result.returncode == 0, result.stderr
    assert "stale concurrent counters" in result.stderr
    assert root_key not in result.stdout + result.stderr


def test_example_migrations_apply_through_the_supabase_api(localcloud, root_key):
    """Each file in its own request (one transaction), in a schema of its own that is dropped after."""
    saved = dict(os.environ)
    os.environ.update(localcloud.client_env)
    try:
        token = secret(localcloud, "supabase-access-token-local")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    session = requests.Session()
    session.trust_env = False
    session.proxies = {"https": localcloud.client_env["HTTPS_PROXY"]}
    session.verify = str(localcloud.ca_file)
    session.headers["Authorization"] = f"Bearer {token}"
    url = "https://api.supabase.com/v1/projects/local/database/query"
    schema = f"test_jobs_{uuid.uuid4().hex[:12]}"

    def query(sql: str) -> requests.Response:
        return session.post(url, json={"query": f"SET LOCAL search_path TO {schema};\n{sql}"}, timeout=60)

    assert query(f"CREATE SCHEMA {schema}").ok
    try:
        for path in sorted((ROOT / "migrations").glob("*.sql")):
            resp = query(path.read_text())
            assert resp.status_code in (200, 201), f"{path.name}: {resp.text}"
        resp = query(
            "INSERT INTO organizations (org_slug, org_name) VALUES ('acme_inc', 'Acme');"
            "INSERT INTO org_members (org_id, email, role) SELECT id, 'ops@acme.example', 'admin' "
            "FROM organizations WHERE org_slug = 'acme_inc';"
            "SELECT org_slug, email, role FROM active_org_members"
        )
        assert resp.json() == [{"org_slug": "acme_inc", "email": "ops@acme.example", "role": "admin"}]
        bad = query("INSERT INTO organizations (org_slug, org_name) VALUES ('Bad Slug', 'x')")
        assert bad.status_code == 400
        assert "23514" in bad.json()["message"]  # check_violation
    finally:
        assert query(f"DROP SCHEMA {schema} CASCADE").ok


def test_the_container_command_converge_builds_runs_as_a_localcloud_execution(localcloud_env):
    """`python -m jobs.<category>.<script>` as Cloud Run runs it: localcloud's runner, the checkout."""
    import google.auth
    from ansible_collections.cloudact.gcp.plugins.module_utils import converge_plan
    from ansible_collections.cloudact.gcp.plugins.module_utils.catalog import load_catalog
    from google.auth.transport.requests import AuthorizedSession
    from google.cloud import run_v2
    from google.protobuf import duration_pb2

    catalog_job = dict(load_catalog(root=ROOT).by_shortcut("stale-cleanup").as_dict(), secrets=[])
    spec = converge_plan.job_spec(catalog_job, PROJECT, "local", API_URL, {})
    assert spec["command"] == ["python", "-m", "jobs.daily.stale_cleanup"]
    key = run_v2.EnvVarSource(
        secret_key_ref=run_v2.SecretKeySelector(secret="ca-root-api-key-local", version="latest")
    )
    env = [run_v2.EnvVar(name=k, value=v) for k, v in spec["env"].items()]
    env.append(run_v2.EnvVar(name="CA_ROOT_API_KEY", value_source=key))
    container = run_v2.Container(
        image="us-docker.pkg.dev/cloudact-local/jobs/test:latest", command=spec["command"], env=env
    )
    task = run_v2.TaskTemplate(
        containers=[container], max_retries=0, timeout=duration_pb2.Duration(seconds=120)
    )
    jobs = run_v2.JobsClient(transport="rest")
    parent = f"projects/{PROJECT}/locations/us-central1"
    job = jobs.create_job(
        parent=parent,
        job=run_v2.Job(template=run_v2.ExecutionTemplate(template=task)),
        job_id=f"cloudact-test-module-{uuid.uuid4().hex[:8]}",
    ).result(timeout=30)
    try:
        execution = jobs.run_job(name=job.name).result(timeout=120)
        assert (execution.succeeded_count, execution.failed_count) == (1, 0)
        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        execution_id = execution.name.rsplit("/", 1)[1]
        query = {
            "resourceNames": [f"projects/{PROJECT}"],
            "filter": f'labels."run.googleapis.com/execution_name"="{execution_id}"',
            "pageSize": 1000,
        }
        with AuthorizedSession(credentials) as session:
            found = session.post("https://logging.googleapis.com/v2/entries:list", json=query, timeout=30)
        found.raise_for_status()
        messages = [e.get("jsonPayload", {}).get("message", "") for e in found.json().get("entries", [])]
        assert any(m.startswith("Cleaned up") for m in messages), messages
    finally:
        jobs.delete_job(name=job.name).result(timeout=30)
