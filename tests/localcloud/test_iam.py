"""localcloud's IAM with enforcement on (LOCALCLOUD_IAM=enforce): service accounts and their keys
(IAM v1), project policies (Resource Manager v1 and v3), job and secret policies through Google's own
clients, etags, conditions, and 403s in each API's words."""

from __future__ import annotations

import base64
import json
import os
import shutil
import uuid
from dataclasses import dataclass

import pytest
from google.api_core import exceptions
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import AuthorizedSession
from google.cloud import run_v2, secretmanager
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.oauth2 import service_account

from localcloud.client import LocalCloudError, LocalCloudProcess
from tests.conftest import localcloud_state_dir

PROJECT = "cloudact-local"
PARENT = f"projects/{PROJECT}/locations/us-central1"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
IAM = "https://iam.googleapis.com/v1"
CRM = "https://cloudresourcemanager.googleapis.com"
OPERATOR = f"cloudact-operator@{PROJECT}.iam.gserviceaccount.com"
CONCURRENT = (
    "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff."
)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class IamCloud:
    """A localcloud of a test module's own, enforcing IAM, with the operator's (owner's) session."""

    proc: LocalCloudProcess
    owner: service_account.Credentials

    def session(self, creds=None) -> AuthorizedSession:
        return AuthorizedSession(creds or self.owner)

    def create_account(self, account_id: str) -> dict:
        resp = self.session().post(
            f"{IAM}/projects/{PROJECT}/serviceAccounts", json={"accountId": account_id}
        )
        assert resp.status_code == 200, resp.text
        return resp.json()

    def key(self, email: str) -> service_account.Credentials:
        """A new key of an account (IAM v1 keys.create): credentials that act as it."""
        resp = self.session().post(f"{IAM}/projects/{PROJECT}/serviceAccounts/{email}/keys", json={})
        assert resp.status_code == 200, resp.text
        info = json.loads(base64.b64decode(resp.json()["privateKeyData"]))
        return service_account.Credentials.from_service_account_info(info, scopes=SCOPES)

    def grant(self, member: str, role: str, resource: str = f"projects/{PROJECT}") -> None:
        """Add a binding on the project (Resource Manager, read-modify-write with the etag)."""
        session = self.session()
        version3 = {"options": {"requestedPolicyVersion": 3}}  # conditional bindings kept as they are
        policy = session.post(f"{CRM}/v1/{resource}:getIamPolicy", json=version3).json()
        policy.setdefault("bindings", []).append({"role": role, "members": [member]})
        resp = session.post(f"{CRM}/v1/{resource}:setIamPolicy", json={"policy": policy})
        assert resp.status_code == 200, resp.text

    def account(self, prefix: str, *roles: str) -> tuple[str, service_account.Credentials]:
        """A new service account holding `roles` on the project, and a key acting as it."""
        email = self.create_account(unique(prefix)[:30])["email"]
        for role in roles:
            self.grant(f"serviceAccount:{email}", role)
        return email, self.key(email)


def start_iam_cloud():
    """A localcloud of the calling module's own with LOCALCLOUD_IAM=enforce, os.environ pointed at it
    (a generator: the module's fixture yields from it; the server is stopped by its pid afterwards)."""
    root = localcloud_state_dir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOCALCLOUD_IAM", "enforce")
        proc = LocalCloudProcess(root / "state")
        try:
            proc.start()
            for name, value in proc.client_env.items():
                mp.setenv(name, value)
            for name in ("https_proxy", "http_proxy", "HTTP_PROXY", "ALL_PROXY", "all_proxy", "no_proxy"):
                mp.delenv(name, raising=False)
            owner = service_account.Credentials.from_service_account_file(str(proc.key_file), scopes=SCOPES)
            yield IamCloud(proc, owner)
        finally:
            proc.stop()
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def iam_cloud():
    yield from start_iam_cloud()


@pytest.fixture
def pristine_iam_cloud():
    """A localcloud no other test has touched (the module's is shared, and the tests run in any order)."""
    yield from start_iam_cloud()


def job_body() -> run_v2.Job:
    container = run_v2.Container(image="us-docker.pkg.dev/x/jobs/test:latest", command=["python", "-V"])
    return run_v2.Job(template=run_v2.ExecutionTemplate(template=run_v2.TaskTemplate(containers=[container])))


# ---- accounts and keys --------------------------------------------------------------------------


def test_a_fresh_project_has_only_the_operator_as_owner_and_the_compute_account_as_editor(pristine_iam_cloud):
    iam_cloud = pristine_iam_cloud
    session = iam_cloud.session()
    number = session.get(f"{CRM}/v1/projects/{PROJECT}").json()["projectNumber"]
    assert len(number) == 12 and number.isdigit()
    policy = session.post(f"{CRM}/v1/projects/{PROJECT}:getIamPolicy", json={}).json()
    compute = f"{number}-compute@developer.gserviceaccount.com"
    assert sorted((b["role"], b["members"]) for b in policy["bindings"]) == [
        ("roles/editor", [f"serviceAccount:{compute}"]),
        ("roles/owner", [f"serviceAccount:{OPERATOR}"]),
    ]
    v3 = session.get(f"{CRM}/v3/projects/{PROJECT}").json()
    assert v3["name"] == f"projects/{number}" and v3["state"] == "ACTIVE"
    emails = [a["email"] for a in session.get(f"{IAM}/projects/{PROJECT}/serviceAccounts").json()["accounts"]]
    assert OPERATOR in emails and compute in emails
    assert f"cloudact-jobs@{PROJECT}.iam.gserviceaccount.com" not in emails  # only a converge creates it
    admin = iam_cloud.proc.admin
    assert admin.admin("iam")["mode"] == "enforce"
    with pytest.raises(LocalCloudError, match="no service account"):
        admin.admin("iam", "key", "POST", {"email": f"cloudact-jobs@{PROJECT}.iam.gserviceaccount.com"})
    # The admin shortcut to act as an existing account: a key file of it (here the compute account).
    key_file = admin.admin("iam", "key", "POST", {"email": compute})["key_file"]
    as_compute = service_account.Credentials.from_service_account_file(key_file, scopes=SCOPES)
    assert as_compute.service_account_email == compute
    assert iam_cloud.session(as_compute).get(f"{CRM}/v1/projects/{PROJECT}").status_code == 200  # an editor
    gone = session.get(
        f"{IAM}/projects/{PROJECT}/serviceAccounts/cloudact-jobs@{PROJECT}.iam.gserviceaccount.com"
    )
    assert gone.status_code == 404 and gone.json()["error"]["message"] == "Unknown service account"


def test_service_account_create_get_list_delete_and_a_key_that_acts_as_it(iam_cloud):
    session = iam_cloud.session()
    account_id = unique("sa")
    created = iam_cloud.create_account(account_id)
    email = f"{account_id}@{PROJECT}.iam.gserviceaccount.com"
    assert created["email"] == email
    assert created["name"] == f"projects/{PROJECT}/serviceAccounts/{email}"
    assert len(created["uniqueId"]) == 21 and created["uniqueId"].isdigit()
    again = session.post(f"{IAM}/projects/{PROJECT}/serviceAccounts", json={"accountId": account_id})
    assert again.status_code == 409
    assert again.json()["error"] == {
        "code": 409,
        "message": f"Service account {account_id} already exists within project projects/{PROJECT}.",
        "status": "ALREADY_EXISTS",
    }
    bad = session.post(f"{IAM}/projects/{PROJECT}/serviceAccounts", json={"accountId": "No"})
    assert bad.status_code == 400 and "Invalid form of account ID No." in bad.json()["error"]["message"]
    assert session.get(f"{IAM}/projects/{PROJECT}/serviceAccounts/{email}").json() == created
    by_id = session.get(f"{IAM}/projects/-/serviceAccounts/{created['uniqueId']}").json()
    assert by_id["email"] == email
    # The new key acts as the account: it is authenticated, and has no permission yet.
    creds = iam_cloud.key(email)
    as_it = iam_cloud.session(creds)
    denied = as_it.get(f"{IAM}/projects/{PROJECT}/serviceAccounts")
    assert denied.status_code == 403
    assert denied.json()["error"]["message"] == (
        "Permission 'iam.serviceAccounts.list' denied on resource (or it may not exist)."
    )
    iam_cloud.grant(f"serviceAccount:{email}", "roles/iam.serviceAccountUser")
    assert as_it.get(f"{IAM}/projects/{PROJECT}/serviceAccounts").status_code == 200
    # Deleted: gone from get and list, its binding shown as deleted, its key no longer gets a token.
    assert session.delete(f"{IAM}/projects/{PROJECT}/serviceAccounts/{email}").json() == {}
    assert session.get(f"{IAM}/projects/{PROJECT}/serviceAccounts/{email}").status_code == 404
    policy = session.post(f"{CRM}/v1/projects/{PROJECT}:getIamPolicy", json={}).json()
    members = [m for b in policy["bindings"] for m in b["members"]]
    assert f"deleted:serviceAccount:{email}?uid={created['uniqueId']}" in members
    assert session.post(f"{IAM}/projects/{PROJECT}/serviceAccounts/{email}/keys", json={}).status_code == 404
    # Its token is refused (401), and the session's refresh gets no new one.
    with pytest.raises(RefreshError, match="Invalid grant: account not found"):
        as_it.get(f"{IAM}/projects/{PROJECT}/serviceAccounts")


# ---- policies: etags, conditions, versions ----------------------------------------------------


def test_project_policy_stale_etag_is_aborted_in_each_versions_words(pristine_iam_cloud):
    # A project policy with no conditional binding (another test adds one to the module's: a v1 read
    # then renames it, and writing that back is a 400 before any etag is compared).
    iam_cloud = pristine_iam_cloud
    session = iam_cloud.session()
    email, _ = iam_cloud.account("etag")
    read = session.post(f"{CRM}/v1/projects/{PROJECT}:getIamPolicy", json={}).json()
    iam_cloud.grant(f"serviceAccount:{email}", "roles/viewer")  # someone else's change in between
    stale = {
        **read,
        "bindings": [*read["bindings"], {"role": "roles/run.viewer", "members": [f"serviceAccount:{email}"]}],
    }
    v1 = session.post(f"{CRM}/v1/projects/{PROJECT}:setIamPolicy", json={"policy": stale})
    assert v1.status_code == 409
    assert v1.json()["error"] == {"code": 409, "message": CONCURRENT, "status": "ABORTED"}
    v3 = session.post(f"{CRM}/v3/projects/{PROJECT}:setIamPolicy", json={"policy": stale})
    current = session.post(f"{CRM}/v3/projects/{PROJECT}:getIamPolicy", json={}).json()["etag"]
    assert v3.status_code == 409
    assert v3.json()["error"]["message"] == (
        f"{CONCURRENT} The request's ETag '{read['etag']}' did not match the current policy's "
        f"ETag '{current}'."
    )
    bindings = session.post(f"{CRM}/v1/projects/{PROJECT}:getIamPolicy", json={}).json()["bindings"]
    assert {"role": "roles/run.viewer", "members": [f"serviceAccount:{email}"]} not in bindings


def test_conditional_bindings_survive_and_old_readers_see_them_renamed(iam_cloud):
    session = iam_cloud.session()
    email, creds = iam_cloud.account("cond")
    member = f"serviceAccount:{email}"
    condition = {"title": "until 2030", "expression": 'request.time < timestamp("2030-01-01T00:00:00Z")'}
    policy = session.post(
        f"{CRM}/v1/projects/{PROJECT}:getIamPolicy", json={"options": {"requestedPolicyVersion": 3}}
    ).json()
    policy["bindings"].append({"role": "roles/run.viewer", "members": [member], "condition": condition})
    policy["version"] = 1
    refused = session.post(f"{CRM}/v1/projects/{PROJECT}:setIamPolicy", json={"policy": policy})
    assert refused.status_code == 400 and "version 3" in refused.json()["error"]["message"]
    policy["version"] = 3
    set_ = session.post(f"{CRM}/v1/projects/{PROJECT}:setIamPolicy", json={"policy": policy})
    assert set_.status_code == 200 and set_.json()["version"] == 3, set_.text
    v3 = session.post(
        f"{CRM}/v1/projects/{PROJECT}:getIamPolicy", json={"options": {"requestedPolicyVersion": 3}}
    )
    kept = [b for b in v3.json()["bindings"] if b.get("condition")]
    assert kept == [{"role": "roles/run.viewer", "members": [member], "condition": condition}]
    v1 = session.post(f"{CRM}/v1/projects/{PROJECT}:getIamPolicy", json={}).json()
    assert v1["version"] == 1
    renamed = [b["role"] for b in v1["bindings"] if member in b["members"]]
    assert len(renamed) == 1 and renamed[0].startswith("roles/run.viewer_withcond_")
    # A conditional binding is never evaluated: it grants nothing.
    jobs = run_v2.JobsClient(transport="rest", credentials=creds)
    with pytest.raises(exceptions.Forbidden):
        list(jobs.list_jobs(parent=PARENT))


def test_job_and_secret_policies_with_googles_clients(iam_cloud):
    jobs = run_v2.JobsClient(transport="rest", credentials=iam_cloud.owner)
    job = jobs.create_job(parent=PARENT, job=job_body(), job_id=unique("pol")).result(timeout=30)
    email, creds = iam_cloud.account("invoker")
    policy = jobs.get_iam_policy(request=iam_policy_pb2.GetIamPolicyRequest(resource=job.name))
    assert list(policy.bindings) == [] and policy.etag == b"\x00\x20\x01"  # "ACAB": never set
    policy.bindings.append(policy_pb2.Binding(role="roles/run.invoker", members=[f"serviceAccount:{email}"]))
    written = jobs.set_iam_policy(
        request=iam_policy_pb2.SetIamPolicyRequest(resource=job.name, policy=policy)
    )
    assert [(b.role, list(b.members)) for b in written.bindings] == [
        ("roles/run.invoker", [f"serviceAccount:{email}"])
    ]
    with pytest.raises(exceptions.Conflict, match="concurrent policy changes"):
        jobs.set_iam_policy(request=iam_policy_pb2.SetIamPolicyRequest(resource=job.name, policy=policy))
    as_invoker = run_v2.JobsClient(transport="rest", credentials=creds)
    tested = as_invoker.test_iam_permissions(
        request=iam_policy_pb2.TestIamPermissionsRequest(
            resource=job.name, permissions=["run.jobs.run", "run.jobs.get", "run.jobs.runWithOverrides"]
        )
    )
    assert list(tested.permissions) == ["run.jobs.run"]
    with pytest.raises(exceptions.Forbidden) as denied:
        as_invoker.get_job(name=job.name)
    assert denied.value.message.endswith(
        f"Permission 'run.jobs.get' denied on resource '{job.name}' (or resource may not exist)."
    )
    with pytest.raises(exceptions.NotFound):
        jobs.get_iam_policy(request=iam_policy_pb2.GetIamPolicyRequest(resource=f"{PARENT}/jobs/missing"))

    secrets = secretmanager.SecretManagerServiceClient(transport="rest", credentials=iam_cloud.owner)
    name = f"projects/{PROJECT}/secrets/ca-root-api-key-local"
    as_reader = secretmanager.SecretManagerServiceClient(transport="rest", credentials=creds)
    with pytest.raises(exceptions.Forbidden) as refused:
        as_reader.access_secret_version(name=f"{name}/versions/latest")
    assert refused.value.message.endswith(
        f"Permission 'secretmanager.versions.access' denied for resource '{name}/versions/latest' "
        "(or it may not exist)."
    )
    policy = secrets.get_iam_policy(request=iam_policy_pb2.GetIamPolicyRequest(resource=name))
    policy.bindings.append(
        policy_pb2.Binding(role="roles/secretmanager.secretAccessor", members=[f"serviceAccount:{email}"])
    )
    secrets.set_iam_policy(request=iam_policy_pb2.SetIamPolicyRequest(resource=name, policy=policy))
    assert as_reader.access_secret_version(name=f"{name}/versions/latest").payload.data
    # Secret Manager's own reference: the accessor cannot read the secret's metadata.
    with pytest.raises(exceptions.Forbidden):
        as_reader.get_secret(name=name)
    policy = secrets.get_iam_policy(request=iam_policy_pb2.GetIamPolicyRequest(resource=name))
    del policy.bindings[:]
    secrets.set_iam_policy(request=iam_policy_pb2.SetIamPolicyRequest(resource=name, policy=policy))
    jobs.delete_job(name=job.name).result(timeout=30)


def test_an_operator_without_run_jobs_set_iam_policy_is_refused(iam_cloud):
    _, creds = iam_cloud.account("developer", "roles/run.developer")
    jobs = run_v2.JobsClient(transport="rest", credentials=creds)
    owner_jobs = run_v2.JobsClient(transport="rest", credentials=iam_cloud.owner)
    job = owner_jobs.create_job(parent=PARENT, job=job_body(), job_id=unique("dev")).result(timeout=30)
    assert jobs.get_iam_policy(request=iam_policy_pb2.GetIamPolicyRequest(resource=job.name)).etag
    with pytest.raises(exceptions.Forbidden) as denied:
        jobs.set_iam_policy(
            request=iam_policy_pb2.SetIamPolicyRequest(resource=job.name, policy=policy_pb2.Policy())
        )
    assert denied.value.message.endswith(
        f"Permission 'run.jobs.setIamPolicy' denied on resource '{job.name}' (or resource may not exist)."
    )
    # The same account's view through testIamPermissions, as a preflight asks it.
    session = iam_cloud.session(creds)
    tested = session.post(
        f"{CRM}/v1/projects/{PROJECT}:testIamPermissions",
        json={
            "permissions": [
                "run.jobs.setIamPolicy",
                "run.jobs.update",
                "resourcemanager.projects.setIamPolicy",
            ]
        },
    )
    assert tested.json() == {"permissions": ["run.jobs.update"]}
    owner_jobs.delete_job(name=job.name).result(timeout=30)


def test_bad_members_and_roles_are_refused_before_anything_changes(iam_cloud):
    session = iam_cloud.session()
    version3 = {"options": {"requestedPolicyVersion": 3}}
    before = session.post(f"{CRM}/v1/projects/{PROJECT}:getIamPolicy", json=version3).json()
    ghost = f"ghost-account@{PROJECT}.iam.gserviceaccount.com"
    for binding, needle in (
        (
            {"role": "roles/viewer", "members": [f"serviceAccount:{ghost}"]},
            f"Service account {ghost} does not exist.",
        ),
        ({"role": "roles/nope", "members": ["user:a@example.com"]}, "Role roles/nope is not supported"),
        ({"role": "roles/viewer", "members": ["someone"]}, "Invalid member type for member 'someone'"),
    ):
        policy = {**before, "bindings": [*before["bindings"], binding]}
        resp = session.post(f"{CRM}/v1/projects/{PROJECT}:setIamPolicy", json={"policy": policy})
        assert resp.status_code == 400 and needle in resp.json()["error"]["message"], resp.text
    assert session.post(f"{CRM}/v1/projects/{PROJECT}:getIamPolicy", json=version3).json() == before
    assert os.environ["LOCALCLOUD_IAM"] == "enforce"
    unknown = session.post(f"{CRM}/v1/projects/not-hosted:getIamPolicy", json={})
    assert (
        unknown.status_code == 403
        and unknown.json()["error"]["message"] == "The caller does not have permission"
    )
