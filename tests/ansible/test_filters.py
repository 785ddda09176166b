"""The converge's filters and lookups as data: catalog job -> module entries, summary, key checks."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.cloudact.gcp.plugins.filter import converge
from ansible_collections.cloudact.gcp.plugins.module_utils import converge_plan
from ansible_collections.cloudact.gcp.plugins.module_utils import environment as inventory
from ansible_collections.cloudact.gcp.plugins.module_utils.catalog import load_catalog
from ansible_collections.cloudact.gcp.plugins.module_utils.credentials import check_key
from ansible_collections.cloudact.gcp.plugins.module_utils.environment import localcloud_state
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

from .conftest import ROOT


@pytest.fixture(scope="module")
def local():
    facts = inventory.load_environment("local", ROOT)
    catalog = load_catalog(root=ROOT, secrets=set(facts["cloudact_secrets"]))
    data = {
        "jobs": [j.as_dict() for j in catalog.jobs],
        "legacy_jobs": list(catalog.legacy_jobs),
        "legacy_triggers": list(catalog.legacy_triggers),
    }
    return facts, data


def model(local, **facts):
    """The run's environment as the fact cloudact_environment_model carries it."""
    base, data = local
    return {
        "facts": {
            **base,
            "cloudact_supabase_project_ref": "local",
            "cloudact_migrations_dir": "migrations",
            **facts,
        },
        "catalog": data,
    }


def entries(local):
    return converge.job_entries(model(local), image="img:1", api_url="https://api.cloudact.local")


def test_job_entries_cover_the_catalog_then_legacy_names_as_absent(local):
    _, data = local
    result = entries(local)
    present = [e for e in result if e["state"] == "present"]
    assert [e["name"] for e in present] == [j["name"] for j in data["jobs"]]
    assert [e["name"] for e in result if e["state"] == "absent"] == data["legacy_jobs"]
    by_name = {e["name"]: e for e in present}
    alerts = by_name["cloudact-daily-alerts"]
    assert alerts["command"] == ["python", "-m", "jobs.daily.alerts_daily"]
    assert alerts["timeout"] == 1800 and alerts["cpu"] == "1" and alerts["memory"] == "2Gi"
    assert alerts["env"] == {
        "GCP_PROJECT_ID": "cloudact-local",
        "ENVIRONMENT": "local",
        "API_SERVICE_URL": "https://api.cloudact.local",
        "API_ENDPOINT_PATH": "/api/v1/admin/alerts/process-all",
        "CLOUDACT_LEDGER_DATASET": "cloudact_ops",
        "CLOUDACT_ENV": "local",
    }
    assert alerts["secret_env"] == {
        "CA_ROOT_API_KEY": {"secret": "ca-root-api-key-local", "version": "latest"}
    }
    assert alerts["labels"] == {"managed-by": "cloudact-toolkit", "category": "daily"}
    migrate = by_name["cloudact-manual-supabase-migrate"]
    assert (
        migrate["env"]["SUPABASE_PROJECT_REF"] == "local" and migrate["env"]["MIGRATIONS_DIR"] == "migrations"
    )
    assert set(migrate["secret_env"]) == {"SUPABASE_ACCESS_TOKEN"}
    cleanup = by_name["cloudact-daily-quota-cleanup"]
    assert cleanup["secret_env"] == {} and cleanup["env"]["DAYS_TO_KEEP"] == "90"
    assert "API_ENDPOINT_PATH" not in cleanup["env"]


def test_trigger_entries_post_to_the_jobs_run_url_with_an_oauth_token(local):
    _, data = local
    base = "https://us-central1-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/cloudact-local/jobs"
    result = converge.trigger_entries(
        model(
            local,
            cloudact_trigger_account="sa@x",
            cloudact_triggers_retry_config={"retry_count": 3},
            cloudact_triggers_attempt_deadline="180s",
        )
    )
    present = [e for e in result if e["state"] == "present"]
    assert [e["name"] for e in present] == [j["trigger"] for j in data["jobs"] if j["schedule"]]
    assert len(present) == 5
    monthly = next(e for e in present if e["name"] == "cloudact-monthly-quota-reset-trigger")
    assert monthly["schedule"] == "5 0 1 * *" and monthly["time_zone"] == "UTC"
    assert monthly["http_target"] == {
        "uri": base + "/cloudact-monthly-quota-reset:run",
        "http_method": "POST",
        "oauth_token": {"service_account_email": "sa@x"},
    }
    assert monthly["retry_config"] == {"retry_count": 3} and monthly["attempt_deadline"] == "180s"
    assert [e["name"] for e in result if e["state"] == "absent"] == data["legacy_triggers"]


def test_an_unknown_secret_key_is_refused(local):
    facts, data = local
    job = dict(data["jobs"][0], secrets=["nope"])
    with pytest.raises(InputError, match="secret key 'nope'"):
        converge_plan.job_spec(job, "p", "local", "u", facts["cloudact_secrets"])
    with pytest.raises(AnsibleFilterError, match=f"job {job['name']}: secret key 'nope'"):
        converge.job_entries(
            {"facts": facts, "catalog": dict(data, jobs=[job])}, image="img:1", api_url="https://api"
        )


SUMMARY_CASES = [
    (
        "apply",
        {
            "jobs": [
                {"name": "a", "operation": "create", "spec": {"x": 1}},
                {"name": "b", "operation": "update", "changed_fields": ["timeout"], "spec": {"x": 1}},
                {"name": "c", "operation": "none", "spec": {"x": 1}},
                {"name": "legacy", "operation": "delete", "spec": {}},
                {"name": "legacy-absent", "operation": "none", "spec": {}},
            ]
        },
        {"jobs": [{"name": "t", "operation": "none", "state_change": "pause", "spec": {"x": 1}}]},
        False,
        [
            "jobs: 1 created, 1 updated, 1 unchanged, 1 pruned",
            "  + a",
            "  ~ b: timeout",
            "  - legacy",
            "triggers: 0 created, 0 updated, 1 unchanged, 0 pruned",
            "  paused: t",
        ],
    ),
    (
        "plan",
        {
            "jobs": [
                {"name": "a", "operation": "update", "changed_fields": ["image", "env"], "spec": {"x": 1}}
            ]
        },
        {},
        True,
        [
            "jobs: 0 would be created, 1 would be updated, 0 unchanged, 0 would be pruned",
            "  ~ a: image, env",
            "triggers: 0 would be created, 0 would be updated, 0 unchanged, 0 would be pruned",
        ],
    ),
]


@pytest.mark.parametrize(
    ("case", "jobs", "triggers", "check", "lines"), SUMMARY_CASES, ids=[c[0] for c in SUMMARY_CASES]
)
def test_converge_summary(case, jobs, triggers, check, lines):
    assert converge.converge_summary(jobs, triggers=triggers, check=check)["lines"] == lines


def test_resolve_job_names_the_valid_words():
    assert converge.resolve_job("daily-alerts", ROOT)["name"] == "cloudact-daily-alerts"
    with pytest.raises(AnsibleFilterError, match=r"unknown job 'alrts': did you mean 'alerts'\?"):
        converge.resolve_job("alrts", ROOT)
    with pytest.raises(AnsibleFilterError, match="has no trigger"):
        converge.resolve_job("bootstrap", ROOT, scheduled=True)


def key(tmp_path, **fields):
    info = {
        "type": "service_account",
        "project_id": "cloudact-local",
        "client_email": "sa@cloudact-local.iam.gserviceaccount.com",
        "private_key": "-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n-----END PRIVATE KEY-----\n",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    info.update(fields)
    path = tmp_path / "key.json"
    path.write_text(json.dumps(info))
    return path


KEY_CASES = [
    ("ok", {}, True, ""),
    (
        "other project",
        {"project_id": "cloudact-prod"},
        False,
        "a key of project 'cloudact-prod', but this environment's",
    ),
    (
        "user credentials",
        {"type": "authorized_user"},
        False,
        "is not a service-account key (type 'authorized_user'",
    ),
    ("no private key", {"private_key": ""}, False, "a service-account key without private_key"),
]


@pytest.mark.parametrize(("case", "fields", "ok", "error"), KEY_CASES, ids=[c[0] for c in KEY_CASES])
def test_key_checks(tmp_path, case, fields, ok, error):
    result = check_key(str(key(tmp_path, **fields)), "cloudact-local")
    assert result["ok"] is ok and error in result["error"]
    assert "private_key" not in json.dumps(result) or not ok  # never key material in the result
    assert "not-a-real-key" not in json.dumps(result)


def test_key_path_expands_home_and_names_a_missing_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "keys").mkdir()
    key(tmp_path / "keys")
    assert check_key("~/keys/key.json", "cloudact-local")["ok"] is True
    missing = check_key("~/keys/nope.json", "cloudact-local")
    assert missing["error"] == f"credentials file ~/keys/nope.json ({tmp_path}/keys/nope.json) does not exist"


def test_localcloud_state_of_a_directory_where_it_never_ran(tmp_path):
    state = localcloud_state(str(tmp_path), str(tmp_path / "state"))
    assert state["up"] is False and state["env"] == {}
    assert "localcloud is not running" in state["reason"]


def test_localcloud_state_of_the_running_one(localcloud):
    state = localcloud_state(str(ROOT), str(localcloud.state_dir))
    assert state["up"] is True
    assert state["env"]["HTTPS_PROXY"] == localcloud.proxy_url
    assert state["env"]["GCP_SERVICE_ACCOUNT_FILE"] == str(localcloud.key_file)
