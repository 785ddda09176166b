"""make doctor on a localcloud of this module's own: a healthy environment is all ok (exit 0) and
makes no write; each check is then broken for real, the doctor names the cause and the fix, the fix
(the printed command, or what it stands for when it is not ours, e.g. deploying the API) is run, and
that row turns ok while every other row is as it was.

One converge and one release for the module; each test undoes its break, so the next one starts
from the healthy baseline. make runs as an operator's shell would: no proxy, CA or key of
localcloud in its environment (a dead HTTPS_PROXY), so whatever reaches localcloud got there
through the doctor's own client environment.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from ansible_collections.cloudact.gcp.plugins.module_utils import verbs
from google.auth.transport.requests import AuthorizedSession
from google.cloud import bigquery, run_v2, secretmanager
from google.oauth2 import service_account

from localcloud.client import AdminClient, LocalCloudProcess
from toolkit import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.localcloud]

DEAD_PROXY = "http://127.0.0.1:9"
PROJECT = "cloudact-local"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
API_HOST = "api.cloudact.local"
TOKEN_SECRET = "supabase-access-token-local"


@dataclass
class Doctor:
    state_dir: Path
    client_env: dict[str, str]
    keys: dict[str, str]
    admin: AdminClient
    key_file: Path
    baseline: dict[str, tuple[str, str, str]] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.lower().endswith("_proxy")
            and not k.startswith(("GCP_", "GOOGLE_"))
            and k not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CONFIRM", "PRUNE", "REHEARSE", "STRICT")
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

    def make(self, *args: str, **extra: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["make", "-s", "--no-print-directory", *args],
            cwd=ROOT,
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        result.out = result.stdout + result.stderr  # type: ignore[attr-defined]
        return result

    def doctor(
        self, *args: str, probe: bool = True, **extra: str
    ) -> tuple[int, dict[str, tuple[str, str, str]], str]:
        """The doctor's table; with `probe` (the breaks here) also the alerts dry run (PROBE=alerts)."""
        r = self.make("doctor", *args, *(["PROBE=alerts"] if probe else []), **extra)
        return r.returncode, rows(r.out), r.out

    def creds(self, project: str = PROJECT):
        return service_account.Credentials.from_service_account_file(self.keys[project], scopes=SCOPES)


def rows(output: str) -> dict[str, tuple[str, str, str]]:
    """{check: (result, found, fix)} from the doctor's table (columns cut at the header's offsets)."""
    lines = output.splitlines()
    head = next(i for i, line in enumerate(lines) if re.match(r"^check\s+result\s+found\s+fix$", line))
    header = lines[head]
    cuts = [header.index(word) for word in ("result", "found", "fix")]
    out = {}
    for line in lines[head + 1 :]:
        if re.match(r"^\d+ ok, \d+ warn", line):
            break
        cells = [line[: cuts[0]], line[cuts[0] : cuts[1]], line[cuts[1] : cuts[2]], line[cuts[2] :]]
        out[cells[0].strip()] = tuple(c.strip() for c in cells[1:])
    return out


def fixed(doc: Doctor, check: str, before: dict, after: dict) -> None:
    """The row `check` is ok now, and every other row is what the healthy baseline has."""
    assert after[check][0] == "ok", after[check]
    assert set(after) == set(doc.baseline), (sorted(after), sorted(doc.baseline))
    changed = {k: (doc.baseline[k], after[k]) for k in after if k != check and after[k] != doc.baseline[k]}
    assert not changed, changed


def unchanged_but(doc: Doctor, broken: dict, *checks: str) -> None:
    """Breaking one thing moved only the named rows."""
    moved = {k for k in broken if broken.get(k) != doc.baseline.get(k)}
    assert moved <= set(checks), (moved, checks)


@pytest.fixture(scope="module")
def doc():
    # Outside pytest's basetemp, as tests/conftest.py's localcloud_state_dir says why (pgserver as root).
    root = Path(tempfile.mkdtemp(prefix="localcloud-doctor-"))
    proc = LocalCloudProcess(root / "state")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOCALCLOUD_IAM", "enforce")  # permissions as Google checks them (read at start)
        proc.start(timeout=120)
    try:
        assert proc.admin is not None and proc.pid is not None
        proc.files.pid.write_text(f"{proc.pid}\n")  # as `localcloud up` leaves it: make finds it up
        keys = json.loads(proc.files.keys_index.read_text())
        d = Doctor(proc.state_dir, proc.client_env, keys, proc.admin, Path(keys[PROJECT]))
        # A fresh environment: the doctor names what to do first. When the inventory's image is built
        # by localcloud (make image ENV=local), that is its fix of the image row.
        _, fresh, out = d.doctor()
        assert fresh["jobs and triggers"][2] == "make create-jobs ENV=local", out
        if fresh["image"][0] == "FAIL":
            assert fresh["image"][2] == "make image ENV=local", out
            r = d.make("image")
            assert r.returncode == 0, r.out[-3000:]
        # The access model is converged on request (CLOUDACT_ACCESS=1) until create-jobs always does it.
        r = d.make("create-jobs", CLOUDACT_ACCESS="1")
        assert r.returncode == 0, r.out[-3000:]
        r = d.make("release")
        assert r.returncode == 0, r.out[-3000:]
        _, d.baseline, out = d.doctor()  # each test's break is undone back to this
        assert d.baseline, out
        yield d
    finally:
        proc.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def google(doc, monkeypatch):
    """Google's own clients in this process, through localcloud's proxy (to break things for real)."""
    for name in ("HTTPS_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.setenv(name, doc.client_env[name])
    return doc


def test_a_healthy_environment_is_all_ok_exits_0_and_makes_no_write(doc, google):
    # Without PROBE=alerts: every row ok but the alerts dry run's (a POST), which says how to ask for it;
    # not one write (module_utils/verbs.py's rule, over localcloud's request log).
    mark = doc.admin.request_seq()
    code, found, out = doc.doctor(probe=False)
    assert code == 0, out
    assert found["organizations"] == (
        "skipped",
        "the alerts endpoint's dry run is a POST, run only on request",
        "make doctor ENV=local PROBE=alerts",
    )
    assert all(r[0] == "ok" for k, r in found.items() if k != "organizations"), out
    logged = doc.admin.request_log(after=mark)
    assert [
        e for e in logged if verbs.is_write(e["method"], f"https://{e['host']}{e['path']}", e["body"])
    ] == []
    doc.admin.reset_requests()
    mark = doc.admin.request_seq()
    code, found, out = doc.doctor()
    assert code == 0, out
    assert found and all(r[0] == "ok" for r in found.values()), out
    for check in (
        "environment",
        "localcloud",
        "credentials",
        "API /health",
        "bootstrap status",
        "migrations",
    ):
        assert check in found, out
    assert found["bootstrap status"][1].startswith("SYNCED")
    assert "all 3 applied, none pending" in found["migrations"][1]
    assert "3 organizations" in found["organizations"][1]
    assert "as the catalog says" in found["jobs and triggers"][1]
    logged = doc.admin.request_log(after=mark)
    writes = [
        e["path"] for e in logged if verbs.is_write(e["method"], f"https://{e['host']}{e['path']}", e["body"])
    ]
    assert writes == ["/api/v1/admin/alerts/process-all"], writes  # PROBE=alerts' one POST, never resent
    # No secret value in the output: the root key and the Supabase token were read for the checks.
    client = secretmanager.SecretManagerServiceClient(transport="rest", credentials=doc.creds())
    for name in ("ca-root-api-key-local", TOKEN_SECRET):
        value = client.access_secret_version(name=f"projects/{PROJECT}/secrets/{name}/versions/latest")
        assert value.payload.data.decode() not in out
    assert found == doc.baseline


def test_an_unknown_environment_word_names_the_valid_ones(doc):
    code, found, _ = doc.doctor("ENV=dev")
    assert code != 0
    result, text, fix = found["environment"]
    assert result == "FAIL"
    assert "unknown environment 'dev': valid environments are local, prod, stage, test" in text
    assert fix == "make doctor ENV=<local|prod|stage|test>"
    assert {r[0] for k, r in found.items() if k != "environment"} == {"skipped"}
    code, after, _ = doc.doctor("ENV=local")  # the fix, with a valid word
    assert code == 0
    fixed(doc, "environment", found, after)


def test_a_key_of_another_project_is_refused_naming_both_projects(doc):
    other = doc.keys["cloudact-prod"]
    code, found, _ = doc.doctor(f"ANSIBLE_ARGS=-e cloudact_credentials_file={other}")
    assert code != 0
    result, text, fix = found["credentials"]
    assert result == "FAIL"
    assert f"credentials file {other} is a key of project 'cloudact-prod'" in text
    assert "but this environment's project is 'cloudact-local'" in text
    inventory = "inventories/local/group_vars/all/"
    assert fix == f"set cloudact_credentials_file to a key of project cloudact-local in {inventory}"
    code, after, _ = doc.doctor(f"ANSIBLE_ARGS=-e cloudact_credentials_file={doc.key_file}")
    assert code == 0
    fixed(doc, "credentials", found, after)


def test_a_tilde_path_to_a_missing_file_names_the_expanded_path(doc, tmp_path):
    # As an inventory holds it: a file of variables, so no shell expands the ~ on the way.
    (tmp_path / "vars.yml").write_text('cloudact_credentials_file: "~/keys/doctor.json"\n')
    args = f"ANSIBLE_ARGS=-e @{tmp_path / 'vars.yml'}"
    code, found, _ = doc.doctor(args, HOME=str(tmp_path))
    assert code != 0
    result, text, fix = found["credentials"]
    expanded = tmp_path / "keys" / "doctor.json"
    assert result == "FAIL"
    assert f"credentials file ~/keys/doctor.json ({expanded}) does not exist" in text
    assert fix.startswith(f"gcloud iam service-accounts keys create {expanded} --iam-account=")
    # The fix makes a key at that path (gcloud iam is not emulated: the issued key stands for it).
    expanded.parent.mkdir()
    shutil.copy(doc.key_file, expanded)
    code, after, _ = doc.doctor(args, HOME=str(tmp_path))
    assert code == 0
    assert str(expanded) in after["credentials"][1]
    fixed(doc, "credentials", found, after)


def test_a_deleted_key_gets_no_token_and_says_googles_error(doc, tmp_path):
    deleted = tmp_path / "deleted.json"
    info = json.loads(Path(doc.key_file).read_text())
    info["private_key_id"] = "0" * 40  # a key id the token endpoint does not know: a deleted key
    deleted.write_text(json.dumps(info))
    args = f"ANSIBLE_ARGS=-e cloudact_credentials_file={deleted}"
    code, found, _ = doc.doctor(args)
    assert code != 0
    result, text, fix = found["credentials"]
    assert result == "FAIL"
    assert f"key {deleted}: no access token: " in text and "invalid_grant" in text
    assert fix.startswith(f"gcloud iam service-accounts keys create {deleted} --iam-account=")
    shutil.copy(doc.key_file, deleted)  # the new key the fix creates
    code, after, _ = doc.doctor(args)
    assert code == 0
    fixed(doc, "credentials", found, after)


def test_bootstrap_not_synced_names_the_bootstrap_run(doc, google):
    client = bigquery.Client(project=PROJECT, credentials=doc.creds())
    tables = sorted(t.table_id for t in client.list_tables(f"{PROJECT}.organizations"))
    client.delete_table(f"{PROJECT}.organizations.{tables[0]}")
    code, found, _ = doc.doctor()
    assert code != 0
    result, text, fix = found["bootstrap status"]
    assert result == "FAIL"
    assert text.startswith("OUT_OF_SYNC: ") and tables[0] in text
    assert "org-sync-all fails until bootstrap has run" in text
    assert fix == "make run ENV=local JOB=bootstrap"
    unchanged_but(doc, found, "bootstrap status")
    r = doc.make(*fix.split()[1:])
    assert r.returncode == 0, r.out[-2000:]
    code, after, _ = doc.doctor()
    assert code == 0
    fixed(doc, "bootstrap status", found, after)


def test_a_wrong_new_version_of_the_supabase_token_is_refused(doc, google):
    client = secretmanager.SecretManagerServiceClient(transport="rest", credentials=doc.creds())
    parent = f"projects/{PROJECT}/secrets/{TOKEN_SECRET}"
    good = client.access_secret_version(name=f"{parent}/versions/latest").payload.data
    # What an operator does by mistake: a token Supabase never issued as the latest version. Supabase
    # (localcloud's too) accepts only the tokens it issued, so it answers 401 for it.
    client.add_secret_version(parent=parent, payload={"data": b"sbp_not-the-token"})
    code, found, out = doc.doctor()
    assert code != 0
    result, text, fix = found["Supabase token"]
    assert result == "FAIL"
    assert f"the token in secret {TOKEN_SECRET} (latest version) is refused by project local" in text
    assert "sbp_not-the-token" not in out
    assert fix == (
        f"gcloud secrets versions add {TOKEN_SECRET} --data-file=<a valid Supabase access token> "
        f"--project={PROJECT}"
    )
    assert found["migrations"][0] == "skipped"
    unchanged_but(doc, found, "Supabase token", "migrations")
    client.add_secret_version(parent=parent, payload={"data": good})  # what that command does
    code, after, _ = doc.doctor()
    assert code == 0
    fixed(doc, "Supabase token", found, after)


def test_an_applied_migration_changed_since_is_drift_naming_the_file(doc, google):
    client = secretmanager.SecretManagerServiceClient(transport="rest", credentials=doc.creds())
    token = client.access_secret_version(name=f"projects/{PROJECT}/secrets/{TOKEN_SECRET}/versions/latest")
    session = requests.Session()
    session.trust_env = False
    session.proxies = {"https": doc.client_env["HTTPS_PROXY"]}
    session.verify = doc.client_env["REQUESTS_CA_BUNDLE"]
    sql = (
        "UPDATE public.schema_migrations SET checksum = repeat('0', 64) WHERE filename = '02_org_members.sql'"
    )
    answer = session.post(
        "https://api.supabase.com/v1/projects/local/database/query",
        json={"query": sql},
        headers={"Authorization": f"Bearer {token.payload.data.decode()}"},
        timeout=30,
    )
    assert answer.status_code < 300, answer.text
    code, found, _ = doc.doctor()
    assert code != 0
    result, text, fix = found["migrations"]
    assert result == "FAIL"
    assert text.startswith("drift: 02_org_members.sql changed since applied")
    repair = 'make run ENV=local JOB=migrate ARGS="--repair"'
    assert fix == f"restore them and put the change in a new migration, or {repair}"
    unchanged_but(doc, found, "migrations")
    r = doc.make("run", "JOB=migrate", "ARGS=--repair")
    assert r.returncode == 0, r.out[-2000:]
    code, after, _ = doc.doctor()
    assert code == 0
    fixed(doc, "migrations", found, after)


def test_no_organizations_is_a_warning_that_fails_only_with_strict(doc):
    active = ["acme_corp", "globex_inc", "initech"]
    doc.admin.admin("cloudact", "orgs", "POST", {"slugs": active, "status": "SUSPENDED"})
    try:
        code, found, _ = doc.doctor()
        assert code == 0  # a warning
        result, text, fix = found["organizations"]
        assert result == "warn"
        assert text == "0 organizations: quota reset and alerts do nothing"
        assert fix.startswith(
            "create an organization in the CloudAct app, then make run ENV=local JOB=org-sync-all"
        )
        unchanged_but(doc, found, "organizations")
        code, _, out = doc.doctor("STRICT=1")
        assert code != 0 and "doctor: organizations (STRICT=1)" in out
    finally:
        doc.admin.admin("cloudact", "orgs", "POST", {"slugs": active, "status": "ACTIVE"})  # orgs again
    code, after, _ = doc.doctor("STRICT=1")
    assert code == 0
    fixed(doc, "organizations", found, after)


def test_a_paused_trigger_names_the_resume(doc):
    r = doc.make("pause", "JOB=quota-reset")
    assert r.returncode == 0, r.out[-2000:]
    code, found, _ = doc.doctor()
    assert code != 0
    result, text, fix = found["paused triggers"]
    assert result == "FAIL"
    assert "cloudact-daily-quota-reset-trigger" in text and "their jobs do not run" in text
    assert fix == "make resume ENV=local JOB=quota-reset"
    unchanged_but(doc, found, "paused triggers")
    r = doc.make(*fix.split()[1:])
    assert r.returncode == 0, r.out[-2000:]
    code, after, _ = doc.doctor()
    assert code == 0
    fixed(doc, "paused triggers", found, after)


def test_a_failed_execution_is_named_with_its_logs_command(doc):
    doc.admin.fault(API_HOST, "/api/v1/admin/quota/cleanup-stale", count=100, status=403)
    try:
        r = doc.make("run", "JOB=stale-cleanup")
        assert r.returncode != 0
        code, found, _ = doc.doctor()
    finally:
        doc.admin.clear_faults()
    assert code != 0
    result, text, fix = found["failed: stale-cleanup"]
    assert result == "FAIL"
    execution = re.search(r"(cloudact-daily-stale-cleanup-\w+) failed: ", text).group(1)
    assert "non-zero exit (code 1)" in text and "permission denied (403) in its calls" in text
    logs = f"make logs ENV=local JOB=stale-cleanup EXECUTION={execution}"
    assert fix == f"{logs}, then make run ENV=local JOB=stale-cleanup"
    assert found["job status"][0] == "FAIL" and "FAILED: stale-cleanup" in found["job status"][1]
    assert "failed executions" not in found
    r = doc.make(*logs.split()[1:])
    assert r.returncode == 0 and "403" in r.out, r.out[-2000:]
    r = doc.make("run", "JOB=stale-cleanup")
    assert r.returncode == 0, r.out[-2000:]
    code, after, _ = doc.doctor()
    assert code == 0
    fixed(doc, "failed executions", found, after)


def test_a_job_on_another_image_names_the_converge(doc, google):
    jobs = run_v2.JobsClient(transport="rest", credentials=doc.creds())
    name = f"projects/{PROJECT}/locations/us-central1/jobs/cloudact-daily-alerts"
    job = jobs.get_job(name=name)
    job.template.template.containers[0].image = "localhost/cloudact-jobs-local:stale"
    jobs.update_job(job=job).result()
    code, found, _ = doc.doctor()
    assert code != 0
    result, text, fix = found["image"]
    assert result == "FAIL"
    # Unpinned: "jobs on 2 images; not on <image>: <job>"; pinned: the stale finding "jobs on
    # different digests: ... unpinned (<job>)".
    assert "cloudact-daily-alerts" in text and ("jobs on 2 images" in text or "different digests" in text)
    assert fix == "make create-jobs ENV=local"
    assert "update cloudact-daily-alerts (image)" in found["jobs and triggers"][1]
    unchanged_but(doc, found, "image", "jobs and triggers")
    r = doc.make(*fix.split()[1:], CLOUDACT_ACCESS="1")
    assert r.returncode == 0, r.out[-2000:]
    code, after, _ = doc.doctor()
    assert code == 0
    fixed(doc, "image", found, after)


def test_a_removed_binding_names_what_cannot_run(doc, google):
    session = AuthorizedSession(doc.creds())
    url = f"https://run.googleapis.com/v2/projects/{PROJECT}/locations/us-central1/jobs/cloudact-daily-alerts"
    policy = session.get(url + ":getIamPolicy", timeout=30).json()
    policy["bindings"] = [b for b in policy.get("bindings") or [] if b["role"] != "roles/run.invoker"]
    session.post(url + ":setIamPolicy", json={"policy": policy}, timeout=30).raise_for_status()
    code, found, _ = doc.doctor()
    assert code != 0
    result, text, fix = found["access"]
    assert result == "FAIL"
    assert text == "cloudact-scheduler cannot run cloudact-daily-alerts (no roles/run.invoker)"
    # CLOUDACT_ACCESS=1 while the converge takes access only on request (cloudact_jobs_access).
    assert fix in ("make create-jobs ENV=local", "CLOUDACT_ACCESS=1 make create-jobs ENV=local")
    unchanged_but(doc, found, "access")
    r = doc.make("create-jobs", **({"CLOUDACT_ACCESS": "1"} if fix.startswith("CLOUDACT_ACCESS=1") else {}))
    assert r.returncode == 0, r.out[-2000:]
    code, after, _ = doc.doctor()
    assert code == 0
    fixed(doc, "access", found, after)


def test_rehearse_stage_the_api_service_gone_names_its_deploy(doc, google):
    """REHEARSE=1 ENV=stage: the API URL is discovered from its Cloud Run service. localcloud has no
    services.delete, so the inventory names a service that is not there (as after a delete), and the
    fix, deploying it, is the service registered with the URL the real one serves."""
    ref = "-e cloudact_supabase_project_ref=doctorstageref01"
    gone = "cloudact-api-service-gone"
    code, before, _ = doc.doctor("ENV=stage", f"ANSIBLE_ARGS={ref}", REHEARSE="1")
    assert before["API service"][0] == "ok" and before["API /health"][0] == "ok", before
    assert before["localcloud"][1].startswith("REHEARSE=1: copy of cloudact-testing-1 at ")
    code, found, _ = doc.doctor(
        "ENV=stage", f"ANSIBLE_ARGS={ref} -e cloudact_api_service={gone}", REHEARSE="1"
    )
    assert code != 0
    result, text, fix = found["API service"]
    assert result == "FAIL"
    assert text == (
        f"Cloud Run service {gone} does not exist in cloudact-testing-1/us-central1: "
        "bootstrap would create 0 tables"
    )
    assert fix.startswith(
        f"deploy the API: gcloud run deploy {gone} --region=us-central1 --project=cloudact-testing-1"
    )
    assert found["API /health"] == ("skipped", "no API URL (see API service)", "")
    uri = (
        run_v2.ServicesClient(transport="rest", credentials=doc.creds("cloudact-testing-1"))
        .get_service(
            name="projects/cloudact-testing-1/locations/us-central1/services/cloudact-api-service-test"
        )
        .uri
    )
    doc.admin.admin("run", "services", "POST", {"service": gone, "uri": uri, "project": "cloudact-testing-1"})
    code, after, _ = doc.doctor(
        "ENV=stage", f"ANSIBLE_ARGS={ref} -e cloudact_api_service={gone}", REHEARSE="1"
    )
    assert after["API service"] == (
        "ok",
        f"Cloud Run service {gone} in cloudact-testing-1/us-central1: {uri}",
        "",
    )
    assert {k: v for k, v in after.items() if k != "API service"} == {
        k: v for k, v in before.items() if k != "API service"
    }


def _grant(session: AuthorizedSession, member: str, roles: list[str]) -> None:
    """What `gcloud projects add-iam-policy-binding` does: the project's policy, read, changed, set."""
    base = f"https://cloudresourcemanager.googleapis.com/v1/projects/{PROJECT}"
    policy = session.post(f"{base}:getIamPolicy", json={}, timeout=30).json()
    for role in roles:
        binding = next((b for b in policy.setdefault("bindings", []) if b["role"] == role), None)
        if binding is None:
            policy["bindings"].append({"role": role, "members": [member]})
        elif member not in binding["members"]:
            binding["members"].append(member)
    answer = session.post(f"{base}:setIamPolicy", json={"policy": policy}, timeout=30)
    assert answer.status_code == 200, answer.text


def test_an_operator_without_the_permissions_is_told_which_and_reads_it_cannot_make_are_skipped(
    doc, google, tmp_path
):
    owner = AuthorizedSession(doc.creds())
    iam = f"https://iam.googleapis.com/v1/projects/{PROJECT}/serviceAccounts"
    email = f"doctor-viewer@{PROJECT}.iam.gserviceaccount.com"
    owner.post(iam, json={"accountId": "doctor-viewer"}, timeout=30).raise_for_status()
    made = owner.post(f"{iam}/{email}/keys", json={}, timeout=30)
    made.raise_for_status()
    key = tmp_path / "viewer.json"
    key.write_text(base64.b64decode(made.json()["privateKeyData"]).decode())
    member = f"serviceAccount:{email}"
    _grant(owner, member, ["roles/viewer"])  # reads everything but secrets; changes nothing
    args = f"ANSIBLE_ARGS=-e cloudact_credentials_file={key}"
    code, found, _ = doc.doctor(args)
    assert code != 0
    assert found["credentials"][0] == "ok" and f"acts as {email}" in found["credentials"][1]
    result, text, fix = found["permissions"]
    assert result == "FAIL"
    assert text.startswith(f"you ({email}) lack for converge: ") and "run.jobs.create" in text
    assert "for run: " in text and "run.jobs.runWithOverrides" in text
    roles = re.findall(r"--role=([^\s;]+)", fix)
    assert roles and fix.startswith(f"gcloud projects add-iam-policy-binding {PROJECT} --member={member} ")
    assert found["bootstrap status"] == ("skipped", "you lack secretmanager.versions.access", "")
    _grant(owner, member, roles)  # the printed commands
    code, after, _ = doc.doctor(args)
    assert code == 0
    fixed(doc, "permissions", found, dict(after, credentials=doc.baseline["credentials"]))


def test_localcloud_down_names_make_local_up(doc, tmp_path):
    state = Path(tempfile.mkdtemp(prefix="localcloud-doctor-down-")) / "state"
    try:
        code, found, _ = doc.doctor(LOCALCLOUD_STATE_DIR=str(state))
        assert code != 0
        result, text, fix = found["localcloud"]
        assert result == "FAIL"
        assert f"localcloud is not running (no {state}/ready.json)" in text
        assert fix == "make local-up"
        assert found["credentials"] == ("skipped", "localcloud is not running", "")
        r = doc.make("local-up", LOCALCLOUD_STATE_DIR=str(state))
        assert r.returncode == 0, r.out
        code, after, _ = doc.doctor(LOCALCLOUD_STATE_DIR=str(state))
        assert after["localcloud"][0] == "ok" and after["credentials"][0] == "ok"
    finally:
        subprocess.run(
            [str(ROOT / ".venv/bin/python"), "-m", "localcloud", "down"],
            env=doc.env(LOCALCLOUD_STATE_DIR=str(state)),
            check=False,
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(state.parent, ignore_errors=True)
