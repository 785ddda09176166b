"""localcloud's hosted projects (cloudact-local, cloudact-testing-1, cloudact-prod): a key issued per
project, each environment's secrets and API service, and each project's own state, seen through
Google's own clients with each project's key."""

from __future__ import annotations

import json
import os
import re
import uuid

import pytest
import requests
from google.api_core import exceptions
from google.auth.transport.requests import AuthorizedSession
from google.cloud import run_v2, secretmanager
from google.oauth2 import service_account

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
PROJECTS = {
    "cloudact-local": ("local", "local", "local"),
    "cloudact-testing-1": ("staging", "test", "stage"),
    "cloudact-prod": ("production", "prod", "prod"),
}


def keys(localcloud) -> dict[str, str]:
    return json.loads((localcloud.state_dir / "keys.json").read_text())


def creds(localcloud, project: str):
    return service_account.Credentials.from_service_account_file(keys(localcloud)[project], scopes=SCOPES)


def job_body() -> run_v2.Job:
    container = run_v2.Container(image="us-docker.pkg.dev/x/jobs/test:latest", command=["python", "-V"])
    return run_v2.Job(template=run_v2.ExecutionTemplate(template=run_v2.TaskTemplate(containers=[container])))


def test_each_project_has_its_own_issued_key_its_owner_s_not_the_jobs_account(localcloud):
    found = keys(localcloud)
    assert set(found) == set(PROJECTS)
    assert found["cloudact-local"] == str(localcloud.key_file)
    assert localcloud.key_file.name == "cloudact-operator-local.json"
    assert localcloud.client_env["GCP_SERVICE_ACCOUNT_FILE"] == str(localcloud.key_file)
    for project, path in found.items():
        info = json.loads(open(path).read())
        assert info["project_id"] == project
        assert info["client_email"] == f"cloudact-operator@{project}.iam.gserviceaccount.com"
        assert os.stat(path).st_mode & 0o777 == 0o600


def test_jobs_are_kept_per_project_and_a_key_acts_only_in_its_own_project(localcloud_env):
    cloud = localcloud_env
    prod = run_v2.JobsClient(transport="rest", credentials=creds(cloud, "cloudact-prod"))
    local = run_v2.JobsClient(transport="rest", credentials=creds(cloud, "cloudact-local"))
    job_id = f"iso-{uuid.uuid4().hex[:8]}"
    prod_parent = "projects/cloudact-prod/locations/us-central1"
    local_parent = "projects/cloudact-local/locations/us-central1"
    created = prod.create_job(parent=prod_parent, job_id=job_id, job=job_body()).result(timeout=30)
    assert created.name == f"{prod_parent}/jobs/{job_id}"
    assert job_id in [j.name.rsplit("/", 1)[1] for j in prod.list_jobs(parent=prod_parent)]
    assert job_id not in [j.name.rsplit("/", 1)[1] for j in local.list_jobs(parent=local_parent)]
    with pytest.raises(exceptions.NotFound):
        local.get_job(name=f"{local_parent}/jobs/{job_id}")
    # The local key in prod, the prod key in local: refused, as IAM refuses an account without a
    # binding in that project.
    with pytest.raises(exceptions.Forbidden, match=r"Permission .run\.jobs\.get. denied on resource"):
        local.get_job(name=created.name)
    with pytest.raises(exceptions.Forbidden, match=r"Permission .run\.jobs\.list. denied on resource"):
        prod.list_jobs(parent=local_parent)
    with pytest.raises(exceptions.Forbidden, match=r"Permission .run\.jobs\.list. denied on resource"):
        prod.list_jobs(parent="projects/cloudact-elsewhere/locations/us-central1")
    prod.delete_job(name=created.name).result(timeout=30)


@pytest.mark.parametrize("project", sorted(PROJECTS))
def test_secrets_are_seeded_under_each_environments_names(localcloud_env, project):
    _, suffix, supabase = PROJECTS[project]
    client = secretmanager.SecretManagerServiceClient(
        transport="rest", credentials=creds(localcloud_env, project)
    )
    names = {s.name.rsplit("/", 1)[1] for s in client.list_secrets(parent=f"projects/{project}")}
    assert {f"ca-root-api-key-{suffix}", f"supabase-access-token-{supabase}"} <= names
    value = client.access_secret_version(
        name=f"projects/{project}/secrets/ca-root-api-key-{suffix}/versions/latest"
    )
    assert len(value.payload.data) >= 32  # random, never shown
    other = "cloudact-local" if project != "cloudact-local" else "cloudact-prod"
    with pytest.raises(exceptions.Forbidden):
        client.list_secrets(parent=f"projects/{other}")


def api_key(localcloud, project: str, suffix: str) -> str:
    client = secretmanager.SecretManagerServiceClient(
        transport="rest", credentials=creds(localcloud, project)
    )
    name = f"projects/{project}/secrets/ca-root-api-key-{suffix}/versions/latest"
    return client.access_secret_version(name=name).payload.data.decode()


def test_each_environment_has_its_api_with_its_own_state(localcloud_env):
    cloud = localcloud_env
    with AuthorizedSession(creds(cloud, "cloudact-testing-1")) as session:
        service = session.get(
            "https://run.googleapis.com/v2/projects/cloudact-testing-1/locations/us-central1/services/"
            "cloudact-api-service-test"
        ).json()
    assert re.fullmatch(r"https://cloudact-api-service-test-[a-z0-9]{10}-uc\.a\.run\.app", service["uri"])
    http = requests.Session()
    urls = {
        "cloudact-testing-1": service["uri"],
        "cloudact-prod": "https://api.cloudact.ai",
        "cloudact-local": "https://api.cloudact.local",
    }
    for project, url in urls.items():
        environment, suffix, _ = PROJECTS[project]
        health = http.get(f"{url}/health", timeout=10).json()
        assert health["environment"] == environment
        key = api_key(cloud, project, suffix)
        status = http.get(f"{url}/api/v1/admin/bootstrap/status", headers={"X-CA-Root-Key": key}, timeout=10)
        assert status.status_code == 200, status.text
    # Another environment's key is refused: each API holds its own environment's secret.
    local_key = api_key(cloud, "cloudact-local", "local")
    wrong = http.get(
        "https://api.cloudact.ai/api/v1/admin/bootstrap/status", headers={"X-CA-Root-Key": local_key}
    )
    assert wrong.status_code == 403
    # Bootstrapping prod creates prod's datasets, in cloudact-prod only.
    prod_key = api_key(cloud, "cloudact-prod", "prod")
    done = http.post(
        "https://api.cloudact.ai/api/v1/admin/bootstrap", json={}, headers={"X-CA-Root-Key": prod_key}
    )
    assert done.status_code in (200, 409), done.text
    synced = http.post(
        "https://api.cloudact.ai/api/v1/admin/org-sync-all", json={}, headers={"X-CA-Root-Key": prod_key}
    ).json()
    assert synced["orgs_synced"] >= 1
    assert cloud.admin.admin("cloudact", "cloudact-prod/state")["bootstrapped"] is True
    with AuthorizedSession(creds(cloud, "cloudact-prod")) as session:
        datasets = session.get("https://bigquery.googleapis.com/bigquery/v2/projects/cloudact-prod/datasets")
    ids = [d["datasetReference"]["datasetId"] for d in datasets.json().get("datasets", [])]
    assert "organizations" in ids and any(i.endswith("_prod") for i in ids)
    assert not any(i.endswith("_local") for i in ids)


def test_supabase_serves_each_environments_token_with_a_database_per_ref(localcloud_env):
    cloud = localcloud_env
    url = "https://api.supabase.com/v1/projects/{}/database/query"

    def token(project, suffix):
        client = secretmanager.SecretManagerServiceClient(transport="rest", credentials=creds(cloud, project))
        name = f"projects/{project}/secrets/supabase-access-token-{suffix}/versions/latest"
        return client.access_secret_version(name=name).payload.data.decode()

    def query(ref, bearer, sql):
        return requests.post(
            url.format(ref), json={"query": sql}, headers={"Authorization": f"Bearer {bearer}"}, timeout=30
        )

    prod, local = token("cloudact-prod", "prod"), token("cloudact-local", "local")
    ref = f"rehearse{uuid.uuid4().hex[:12]}"
    assert query(ref, prod, "CREATE TABLE only_here (id int)").status_code == 201
    assert query(ref, prod, "SELECT count(*) AS n FROM only_here").json() == [{"n": 0}]
    # The local project's database does not have it: each ref is a database of its own.
    missing = query("local", local, "SELECT count(*) AS n FROM only_here")
    assert missing.status_code == 400 and "42P01" in missing.json()["message"]
    assert query(ref, local, "SELECT 1").status_code == 404  # the local token reaches `local` only
    assert query("local", prod, "SELECT 1").status_code == 404
    assert query(ref, "not-a-token", "SELECT 1").status_code == 401


def test_the_admin_call_registers_a_service_in_a_hosted_project(localcloud_env):
    cloud = localcloud_env
    uri = f"https://svc-{uuid.uuid4().hex[:6]}-uc.a.run.app"
    service = cloud.admin.admin(
        "run", "services", "POST", {"service": "extra", "uri": uri, "project": "cloudact-prod"}
    )
    assert service["name"] == "projects/cloudact-prod/locations/us-central1/services/extra"
    with AuthorizedSession(creds(cloud, "cloudact-prod")) as session:
        got = session.get(f"https://run.googleapis.com/v2/{service['name']}").json()
    assert got["uri"] == uri
    with pytest.raises(Exception, match="not hosted"):
        cloud.admin.admin("run", "services", "POST", {"service": "x", "uri": uri, "project": "elsewhere"})
