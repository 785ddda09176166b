"""Access as code on a fresh localcloud (a fresh project: no account, no binding but the owner's):
the converge creates the accounts and exactly the bindings the catalog implies, a scheduled run is
`scheduler` by Cloud Run's own record, a removed binding is named by status, planned and restored,
others' bindings and conditions survive, a stale etag is retried, and an operator without
run.jobs.setIamPolicy is refused before anything changes.

Checks go through Google's own clients where they exist (google-cloud-run and
google-cloud-secret-manager `get_iam_policy`/`set_iam_policy` over REST) and Google's REST shapes
otherwise (IAM v1 keys, Resource Manager v1).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from google.cloud import run_v2, secretmanager
from google.iam.v1 import policy_pb2

from localcloud.client import LocalCloudProcess

from .conftest import BIN, base_env, environment_vars, run

PROJECT = "cloudact-local"
REGION = "us-central1"
RUNTIME = f"cloudact-jobs@{PROJECT}.iam.gserviceaccount.com"
TRIGGER = f"cloudact-scheduler@{PROJECT}.iam.gserviceaccount.com"
SCHEDULED = [
    "cloudact-daily-quota-reset",
    "cloudact-daily-quota-cleanup",
    "cloudact-daily-stale-cleanup",
    "cloudact-daily-alerts",
    "cloudact-monthly-quota-reset",
]
MANUAL = ["cloudact-manual-supabase-migrate", "cloudact-manual-bootstrap", "cloudact-manual-org-sync-all"]
JOB = f"projects/{PROJECT}/locations/{REGION}/jobs"
SCHEDULER = f"https://cloudscheduler.googleapis.com/v1/projects/{PROJECT}/locations/{REGION}/jobs"
WRITES = {"POST", "PATCH", "PUT", "DELETE"}
# The APIs a converge writes to (jobs running meanwhile write logs and call the CloudAct API).
CONVERGED = {
    f"{api}.googleapis.com"
    for api in ("run", "cloudscheduler", "secretmanager", "iam", "cloudresourcemanager")
}
READS_BY_POST = (":getIamPolicy", ":testIamPermissions")  # POST, but reads (Resource Manager, IAM)


class Fresh:
    def __init__(self, proc: LocalCloudProcess):
        self.proc = proc
        self.admin = proc.admin
        self.env = base_env(proc.state_dir)

    def make(self, *args: str, stdin: str | None = None):
        return run(["make", "--no-print-directory", *args, "ENV=local", "OPS_LOCAL="], self.env, stdin=stdin)

    def session(self, key_file: Path | None = None):
        import requests
        from google.auth.transport.requests import AuthorizedSession, Request
        from google.oauth2 import service_account

        def through_proxy(session):
            session.trust_env = False
            session.proxies = {"https": self.proc.proxy_url}
            session.verify = str(self.proc.ca_file)
            return session

        creds = service_account.Credentials.from_service_account_file(
            str(key_file or self.proc.key_file), scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )
        return through_proxy(
            AuthorizedSession(creds, auth_request=Request(through_proxy(requests.Session())))
        )

    def writes(self) -> list[dict]:
        """Writes to the APIs a converge changes since the counter was reset."""
        return [
            r
            for r in self.admin.requests()["requests"]
            if r["method"] in WRITES and r["host"] in CONVERGED and not r["path"].endswith(READS_BY_POST)
        ]


@pytest.fixture(scope="module")
def fresh():
    root = Path(tempfile.mkdtemp(prefix="localcloud-access-"))
    proc = LocalCloudProcess(root / "state")
    try:
        proc.start(timeout=120)  # IAM enforced, as on Google (localcloud's default)
        yield Fresh(proc)
    finally:
        proc.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def pristine(fresh):
    """Every test starts from the project as localcloud seeds it (services reset in place, keys kept): the
    tests stand alone and in any order; one that needs the catalog converged converges it itself."""
    fresh.admin.reset()


def converged(fresh) -> None:
    result = fresh.make("create-jobs")
    assert result.rc == 0, result.output[-5000:]


@pytest.fixture(scope="module")
def clients(fresh):
    """Google's own clients, over REST through localcloud's proxy (the env the server gave clients)."""
    saved = {k: os.environ.get(k) for k in fresh.proc.client_env}
    os.environ.update(fresh.proc.client_env)
    try:
        from google.oauth2 import service_account

        creds = service_account.Credentials.from_service_account_file(
            str(fresh.proc.key_file), scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )
        yield {
            "run": run_v2.JobsClient(credentials=creds, transport="rest"),
            "secrets": secretmanager.SecretManagerServiceClient(credentials=creds, transport="rest"),
        }
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def wait_for(predicate, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def bindings(policy) -> dict[str, set[str]]:
    return {b.role: set(b.members) for b in policy.bindings if not b.condition.expression}


def test_fresh_project_converge_creates_the_accounts_and_exactly_the_catalogs_bindings(fresh, clients):
    result = fresh.make("create-jobs")
    assert result.rc == 0, result.output[-5000:]
    assert "access: 2 account(s) created" in " ".join(result.stdout.split())
    for name in MANUAL:
        assert bindings(clients["run"].get_iam_policy(request={"resource": f"{JOB}/{name}"})) == {}
    for name in SCHEDULED:
        policy = clients["run"].get_iam_policy(request={"resource": f"{JOB}/{name}"})
        assert bindings(policy) == {"roles/run.invoker": {f"serviceAccount:{TRIGGER}"}}, name
    # 8 jobs mount 2 secrets: exactly the runtime account may read each.
    for secret in ("ca-root-api-key-local", "supabase-access-token-local"):
        policy = clients["secrets"].get_iam_policy(
            request={"resource": f"projects/{PROJECT}/secrets/{secret}"}
        )
        assert bindings(policy) == {"roles/secretmanager.secretAccessor": {f"serviceAccount:{RUNTIME}"}}
    # The organizations dataset does not exist before bootstrap: named, not failed.
    assert "? dataset organizations: dataset organizations does not exist yet" in " ".join(
        result.stdout.split()
    )


def test_a_second_converge_changes_nothing_and_reads_each_policy_once(fresh):
    converged(fresh)
    fresh.admin.reset_requests()
    result = fresh.make("create-jobs")
    assert result.rc == 0, result.output[-5000:]
    assert "access: 0 account(s) created, 0 binding(s) added, 0 removed" in " ".join(result.stdout.split())
    assert fresh.writes() == []
    reads = [r for r in fresh.admin.requests()["requests"] if "IamPolicy" in r["path"]]
    paths = [r["path"] for r in reads]
    assert all(r["count"] == 1 for r in reads), reads  # each policy read once
    assert not any("setIamPolicy" in p for p in paths)


def test_a_scheduled_run_is_scheduler_by_cloud_runs_own_record(fresh):
    converged(fresh)
    google = fresh.session()
    reply = google.post(f"{SCHEDULER}/cloudact-daily-stale-cleanup-trigger:run", json={})
    assert reply.status_code == 200, reply.text
    executions = wait_for(
        lambda: (
            google.get(f"https://run.googleapis.com/v2/{JOB}/cloudact-daily-stale-cleanup/executions")
            .json()
            .get("executions")
        ),
        "the trigger's execution",
    )
    assert executions[0]["creator"] == TRIGGER
    name = executions[0]["name"]
    done = wait_for(
        lambda: (e := google.get(f"https://run.googleapis.com/v2/{name}").json()).get("completionTime") and e,
        "the scheduled execution to finish",
        timeout=120,
    )
    assert done["succeededCount"] == 1, done  # as the runtime account, with its secret readable
    status = fresh.make("status")
    row = next(line for line in status.stdout.splitlines() if line.startswith("stale-cleanup "))
    assert "succeeded (scheduler)" in row, status.stdout
    result = fresh.make("history", "JOB=stale-cleanup", "N=5")
    assert result.rc == 0, result.output[-3000:]
    row = next(
        line for line in result.stdout.splitlines() if executions[0]["name"].rsplit("/", 1)[-1] in line
    )
    assert row.rstrip().endswith("scheduler"), row


def test_a_removed_binding_is_named_planned_and_restored(fresh, clients):
    converged(fresh)
    resource = f"{JOB}/cloudact-daily-alerts"
    policy = clients["run"].get_iam_policy(request={"resource": resource})
    kept = [b for b in policy.bindings if b.role != "roles/run.invoker"]
    clients["run"].set_iam_policy(
        request={"resource": resource, "policy": policy_pb2.Policy(bindings=kept, etag=policy.etag)}
    )
    google = fresh.session()
    google.post(f"{SCHEDULER}/cloudact-daily-alerts-trigger:run", json={})
    trigger = wait_for(
        lambda: (t := google.get(f"{SCHEDULER}/cloudact-daily-alerts-trigger").json()).get("status") and t,
        "the trigger's attempt",
    )
    assert trigger["status"]["code"] == 7, trigger  # PERMISSION_DENIED, as Cloud Scheduler reports it

    result = fresh.make("status")
    assert (
        "alerts: trigger PERMISSION_DENIED on :run, make create-jobs ENV=local restores it" in result.stdout
    )
    strict = fresh.make("status", "STRICT=1")
    assert strict.rc != 0 and "error: alerts: DENIED (STRICT=1)" in strict.stderr

    fresh.admin.reset_requests()
    result = fresh.make("plan")
    assert result.rc == 0, result.output[-3000:]
    assert f"  ~ job cloudact-daily-alerts: + roles/run.invoker serviceAccount:{TRIGGER}" in result.stdout
    # Exactly that binding: one to add, none to remove, every other resource unchanged.
    flat = " ".join(result.stdout.split())  # the callback may wrap a long line
    assert "access: 0 account(s) would be created, 1 binding(s) would be added, 0 would be removed" in flat
    assert result.stdout.count("  ~ ") == 1, result.stdout
    assert fresh.writes() == []

    result = fresh.make("create-jobs")
    assert result.rc == 0, result.output[-3000:]
    restored = clients["run"].get_iam_policy(request={"resource": resource})
    assert bindings(restored)["roles/run.invoker"] == {f"serviceAccount:{TRIGGER}"}
    before = trigger["lastAttemptTime"]
    google.post(f"{SCHEDULER}/cloudact-daily-alerts-trigger:run", json={})
    trigger = wait_for(
        lambda: (
            (t := google.get(f"{SCHEDULER}/cloudact-daily-alerts-trigger").json())["lastAttemptTime"]
            != before
            and t
        ),
        "the next attempt",
    )
    assert int(trigger.get("status", {}).get("code") or 0) == 0, trigger


def test_someone_elses_binding_and_conditions_survive_and_a_stale_etag_is_retried(fresh, clients):
    converged(fresh)
    resource = f"projects/{PROJECT}/secrets/ca-root-api-key-local"
    policy = clients["secrets"].get_iam_policy(
        request={"resource": resource, "options": {"requested_policy_version": 3}}
    )
    policy.bindings.append(
        policy_pb2.Binding(role="roles/secretmanager.viewer", members=["user:alice@example.com"])
    )
    conditional = policy_pb2.Binding(
        role="roles/secretmanager.secretAccessor",
        members=["user:bob@example.com"],
    )
    conditional.condition.title = "until-2027"
    conditional.condition.expression = 'request.time < timestamp("2027-01-01T00:00:00Z")'
    policy.bindings.append(conditional)
    # Drop ours so the converge must write this policy.
    for b in policy.bindings:
        if b.role == "roles/secretmanager.secretAccessor" and not b.condition.expression:
            b.members.remove(f"serviceAccount:{RUNTIME}")
    policy.version = 3
    clients["secrets"].set_iam_policy(request={"resource": resource, "policy": policy})

    # Someone else writes the policy between our read and our write once: 409 ABORTED, as Google answers.
    fresh.admin.fault(
        "secretmanager.googleapis.com",
        method="POST",
        path=f"/v1/{resource}:setIamPolicy",
        status=409,
        count=1,
    )
    result = fresh.make("create-jobs")
    assert result.rc == 0, result.output[-3000:]
    assert fresh.admin.faults() == []  # the fault was met, and the converge retried from a fresh read
    after = clients["secrets"].get_iam_policy(
        request={"resource": resource, "options": {"requested_policy_version": 3}}
    )
    plain = bindings(after)
    assert plain["roles/secretmanager.viewer"] == {"user:alice@example.com"}
    assert plain["roles/secretmanager.secretAccessor"] == {f"serviceAccount:{RUNTIME}"}
    conditions = [b for b in after.bindings if b.condition.expression]
    assert [(b.role, list(b.members), b.condition.title) for b in conditions] == [
        ("roles/secretmanager.secretAccessor", ["user:bob@example.com"], "until-2027")
    ]


def test_an_operator_without_set_iam_policy_is_refused_before_any_change(fresh, tmp_path):
    google = fresh.session()
    account = google.post(
        f"https://iam.googleapis.com/v1/projects/{PROJECT}/serviceAccounts",
        json={"accountId": "deployer", "serviceAccount": {"displayName": "a deployer without IAM admin"}},
    )
    assert account.status_code == 200, account.text
    email = account.json()["email"]
    policy = google.post(
        f"https://cloudresourcemanager.googleapis.com/v1/projects/{PROJECT}:getIamPolicy", json={}
    ).json()
    policy["bindings"] = [
        *policy.get("bindings", []),
        {"role": "roles/run.developer", "members": [f"serviceAccount:{email}"]},
    ]
    reply = google.post(
        f"https://cloudresourcemanager.googleapis.com/v1/projects/{PROJECT}:setIamPolicy",
        json={"policy": policy},
    )
    assert reply.status_code == 200, reply.text
    key = google.post(
        f"https://iam.googleapis.com/v1/projects/{PROJECT}/serviceAccounts/{email}/keys", json={}
    )
    assert key.status_code == 200, key.text
    key_file = tmp_path / "deployer.json"
    key_file.write_bytes(base64.b64decode(key.json()["privateKeyData"]))
    key_file.chmod(0o600)

    fresh.admin.reset_requests()
    result = fresh.make("create-jobs", f"ANSIBLE_ARGS=-e cloudact_credentials_file={key_file}")
    assert result.rc != 0
    assert (
        f"you ({email}) lack run.jobs.setIamPolicy on {PROJECT}: ask for roles/run.admin "
        "or run with an account that has it"
    ) in result.output
    assert fresh.writes() == []  # refused in preflight: nothing changed
    assert json.loads(key_file.read_text())["client_email"] == email


def test_the_old_scripts_project_wide_grants_are_legacy_and_removed_only_with_prune(fresh):
    converged(fresh)  # the runtime account the old scripts' grant names
    google = fresh.session()
    crm = f"https://cloudresourcemanager.googleapis.com/v1/projects/{PROJECT}"
    policy = google.post(f"{crm}:getIamPolicy", json={}).json()
    policy["bindings"] = [
        *policy.get("bindings", []),
        {"role": "roles/bigquery.admin", "members": [f"serviceAccount:{RUNTIME}"]},
    ]
    reply = google.post(f"{crm}:setIamPolicy", json={"policy": policy})
    assert reply.status_code == 200, reply.text

    result = fresh.make("plan")
    assert result.rc == 0, result.output[-3000:]
    line = f"  ! project {PROJECT}: legacy roles/bigquery.admin serviceAccount:{RUNTIME} (PRUNE=1 removes it)"
    assert line.strip() in " ".join(result.stdout.split())
    assert fresh.make("create-jobs").rc == 0
    held = google.post(f"{crm}:getIamPolicy", json={}).json()["bindings"]
    assert any(b["role"] == "roles/bigquery.admin" for b in held)  # kept without PRUNE=1

    result = fresh.make("create-jobs", "PRUNE=1")
    assert result.rc == 0, result.output[-3000:]
    held = google.post(f"{crm}:getIamPolicy", json={}).json()["bindings"]
    assert not any(b["role"] == "roles/bigquery.admin" for b in held)
    assert any(b["role"] == "roles/owner" for b in held)  # the owner's binding is not ours: kept


# ---- the access actions as a user's own playbook calls them (tests/ansible/playbooks/access.yml) -------

ACCOUNT = f"acc-test-four@{PROJECT}.iam.gserviceaccount.com"
DATASET = "acc_test_four"
IAM = f"/v1/projects/{PROJECT}/serviceAccounts"
BIGQUERY = f"https://bigquery.googleapis.com/bigquery/v2/projects/{PROJECT}/datasets"


def test_the_access_actions_in_four_steps_as_a_users_playbook(fresh):
    """playbooks/access.yml asserts each step's result (check, real, idempotent check, idempotent real);
    localcloud's request log shows what reached the cloud: one write per resource and real step, each a
    read-modify-write with the etag read and policy version 3, and nothing written by a check step or a
    step that found nothing to do; the cloud holds none of the play's pairs at the end."""
    google = fresh.session()
    made = google.post(BIGQUERY, json={"datasetReference": {"projectId": PROJECT, "datasetId": DATASET}})
    assert made.status_code == 200, made.text
    mark = fresh.admin.request_seq()
    try:
        result = run(
            [str(BIN / "ansible-playbook"), "-i", "inventories/local", "tests/ansible/playbooks/access.yml"],
            fresh.env,
        )
        assert result.rc == 0, result.output[-5000:]
        assert "failed=0" in result.stdout
        log = fresh.admin.request_log(after=mark)
    finally:
        google.delete(f"{BIGQUERY}/{DATASET}")
    dataset = f"/bigquery/v2/projects/{PROJECT}/datasets/{DATASET}"
    # BigQuery's writes are the play's dataset's only: a scheduled job's own ledger insertAll may land
    # in the same window (the session's localcloud runs its triggers on its clock).
    writes = [
        r
        for r in log
        if r["method"] != "GET"
        and (r["host"] in CONVERGED or (r["host"] == "bigquery.googleapis.com" and r["path"] == dataset))
        and not r["path"].endswith(READS_BY_POST)
    ]
    secret = f"/v1/projects/{PROJECT}/secrets/ca-root-api-key-local:setIamPolicy"
    project = f"/v1/projects/{PROJECT}:setIamPolicy"
    account = f"{IAM}/{ACCOUNT}:setIamPolicy"
    per_step = [("POST", secret), ("POST", project), ("PATCH", dataset), ("POST", account)]
    assert [(r["method"], r["path"], r["status"]) for r in writes] == [
        ("POST", IAM, 200),  # the account, created once
        *[(m, p, 200) for m, p in per_step],  # the bindings added, one write each
        *[(m, p, 200) for m, p in per_step],  # and removed
    ], [(r["method"], r["path"]) for r in writes]
    create, added, removed = writes[0], writes[1:5], writes[5:]
    assert create["body"]["accountId"] == "acc-test-four"
    member = f"serviceAccount:{ACCOUNT}"
    for write in (*added, *removed):
        if write["method"] == "PATCH":  # a dataset's access entries, with the etag in If-Match
            continue
        policy = write["body"]["policy"]
        assert policy["version"] == 3 and policy.get("etag"), write["path"]  # the etag as read
    held = {(b["role"], m) for b in added[0]["body"]["policy"]["bindings"] for m in b["members"]}
    assert ("roles/secretmanager.secretAccessor", member) in held
    assert {"role": "READER", "userByEmail": ACCOUNT} in added[2]["body"]["access"]
    assert {"role": "READER", "userByEmail": ACCOUNT} not in removed[2]["body"]["access"]

    # What the play leaves: none of its pairs (the account stays: the action never deletes one).
    crm = f"https://cloudresourcemanager.googleapis.com/v1/projects/{PROJECT}"
    secrets = f"https://secretmanager.googleapis.com/v1/projects/{PROJECT}/secrets/ca-root-api-key-local"
    for policy in (
        google.post(f"{crm}:getIamPolicy", json={}).json(),
        google.get(f"{secrets}:getIamPolicy").json(),
        google.post(f"https://iam.googleapis.com{IAM}/{ACCOUNT}:getIamPolicy").json(),
    ):
        members = {m for b in policy.get("bindings") or [] for m in b["members"]}
        assert not members & {member, "user:deployer@example.com"}, policy
    assert google.get(f"https://iam.googleapis.com{IAM}/{ACCOUNT}").status_code == 200
    assert google.delete(f"https://iam.googleapis.com{IAM}/{ACCOUNT}").status_code == 200


def test_bad_access_input_is_refused_naming_it_before_any_request(fresh, tmp_path):
    """A role the converge does not manage on the kind, and an account of another project: one line
    each, naming the value and what is valid, and nothing sent to the cloud."""
    env = dict(fresh.env, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json")
    vars_file = environment_vars("local", fresh.proc.state_dir, tmp_path)
    cases = [
        (
            "cloudact.gcp.iam_bindings",
            {
                "resources": [
                    {"kind": "job", "name": "j", "bindings": [{"role": "roles/owner", "member": "user:a@x"}]}
                ]
            },
            "resources[0] (job j): role 'roles/owner' is not one this converge manages on a job; "
            "valid: roles/run.invoker",
        ),
        (
            "cloudact.gcp.service_accounts",
            {"accounts": [{"email": "ops@other.iam.gserviceaccount.com"}]},
            "accounts[0]: email 'ops@other.iam.gserviceaccount.com' is not an account of project "
            f"{PROJECT}; use NAME@{PROJECT}.iam.gserviceaccount.com",
        ),
    ]
    for action, args, message in cases:
        mark = fresh.admin.request_seq()
        cmd = [str(BIN / "ansible"), "localhost", "-i", "inventories/local", "-m", action, *vars_file]
        result = run([*cmd, "-a", json.dumps(args)], env)
        host = json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
        assert result.rc != 0 and host["msg"] == message, host
        assert [r for r in fresh.admin.request_log(after=mark) if r["host"] != "oauth2.googleapis.com"] == []
