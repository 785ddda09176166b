"""The emulated CloudAct admin API (docs/cloudact-api.md) over the proxy, with its state in the emulated
BigQuery."""

from __future__ import annotations

import uuid

import pytest
import requests
from google.cloud import bigquery, secretmanager
from google.oauth2 import service_account

PROJECT = "cloudact-local"
API = "https://api.cloudact.local"
ENDPOINTS = [
    ("GET", "/api/v1/admin/bootstrap/status", None),
    ("POST", "/api/v1/admin/bootstrap", {"force_recreate_dataset": False, "force_recreate_tables": False}),
    ("POST", "/api/v1/admin/bootstrap/sync", {"sync_missing_tables": True, "sync_missing_columns": True}),
    ("POST", "/api/v1/admin/org-sync-all", {}),
    ("POST", "/api/v1/admin/quota/reset-daily", None),
    ("POST", "/api/v1/admin/quota/cleanup-stale", None),
    ("POST", "/api/v1/admin/quota/reset-monthly", None),
    ("POST", "/api/v1/admin/alerts/process-all", {"send_notifications": False, "dry_run": True}),
]
KEY_SECRET = f"projects/{PROJECT}/secrets/ca-root-api-key-local"


def _credentials(cloud):
    return service_account.Credentials.from_service_account_file(
        str(cloud.key_file), scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )


@pytest.fixture
def secrets(localcloud_env) -> secretmanager.SecretManagerServiceClient:
    return secretmanager.SecretManagerServiceClient(
        credentials=_credentials(localcloud_env), transport="rest"
    )


@pytest.fixture
def root_key(secrets) -> str:
    return secrets.access_secret_version(name=f"{KEY_SECRET}/versions/latest").payload.data.decode()


@pytest.fixture
def bq(localcloud_env) -> bigquery.Client:
    return bigquery.Client(project=PROJECT, credentials=_credentials(localcloud_env))


@pytest.fixture
def api(localcloud, root_key):
    """call(method, path, body, key=<the root key>) through the proxy, as the job scripts call the API."""
    session = requests.Session()
    session.trust_env = False
    session.proxies = {"https": localcloud.proxy_url}
    session.verify = str(localcloud.ca_file)

    def call(method: str, path: str, body=None, key: str | None = root_key, base: str = API):
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["X-CA-Root-Key"] = key
        return session.request(method, base + path, json=body, headers=headers, timeout=60)

    yield call
    session.close()


@pytest.fixture
def bootstrapped(api) -> None:
    resp = api("POST", "/api/v1/admin/bootstrap", {})
    assert resp.status_code in (200, 409)


@pytest.fixture
def synced(api, bootstrapped) -> None:
    """Bootstrapped, and in sync whatever an earlier test dropped: the status is SYNCED."""
    resp = api("POST", "/api/v1/admin/bootstrap/sync", {})
    assert resp.status_code == 200 and resp.json()["errors"] == [], resp.text


def test_health_needs_no_key(api) -> None:
    resp = api("GET", "/health", key=None)
    assert resp.status_code == 200
    assert resp.json()["status"] == "healthy" and resp.json()["service"] == "api-service"


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=[e[1] for e in ENDPOINTS])
def test_every_endpoint_refuses_a_missing_or_wrong_key(api, method, path, body) -> None:
    missing = api(method, path, body, key=None)
    assert missing.status_code == 401 and missing.json() == {"detail": "Missing X-CA-Root-Key header"}
    wrong = api(method, path, body, key="not-the-root-key")
    assert wrong.status_code == 403 and wrong.json() == {"detail": "Invalid root API key"}


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=[e[1] for e in ENDPOINTS])
def test_every_endpoint_accepts_the_right_key(api, synced, localcloud, method, path, body) -> None:
    """With the key, each endpoint does its own work and answers with its own result."""
    orgs = localcloud.admin.admin("cloudact", "state")["orgs"]
    serving = sorted(s for s, o in orgs.items() if o["status"] != "SUSPENDED")
    active = [s for s in serving if orgs[s]["status"] == "ACTIVE"]
    resp = api(method, path, body)
    # Once bootstrapped, a second bootstrap is refused with 409 (by design, not for the key).
    assert resp.status_code == (409 if path == "/api/v1/admin/bootstrap" else 200), resp.text
    got = resp.json()
    if path == "/api/v1/admin/bootstrap/status":
        assert (got["status"], got["dataset_exists"], got["tables_missing"], got["schema_diffs"]) == (
            "SYNCED",
            True,
            [],
            {},
        )
        assert got["message"] == f"All {got['tables_expected']} tables exist with the expected columns"
    elif path == "/api/v1/admin/bootstrap":
        assert got["detail"].startswith("Already bootstrapped: "), got
    elif path == "/api/v1/admin/bootstrap/sync":
        assert got == {
            "status": "SUCCESS",
            "tables_created": [],
            "columns_added": {},
            "errors": [],
            "message": "Already in sync: nothing to add",
        }
    elif path == "/api/v1/admin/org-sync-all":
        assert got["orgs_processed"] == len(serving)
        assert got["orgs_synced"] + got["orgs_failed"] == len(serving)
        assert got["success"] is (got["orgs_failed"] == 0)
        assert got["message"].startswith(f"Synced {got['orgs_synced']} org datasets"), got
    elif path in ("/api/v1/admin/quota/reset-daily", "/api/v1/admin/quota/reset-monthly"):
        label = "Daily" if path.endswith("daily") else "Monthly"
        assert got["success"] is True and got["orgs_processed"] == len(active)
        assert got["orgs_created"] + got["orgs_skipped"] == len(active)
        assert got["message"].startswith(f"{label} quota reset complete for {len(active)} orgs"), got
    elif path == "/api/v1/admin/quota/cleanup-stale":
        assert got["success"] is True and got["orgs_processed"] == len(serving)
        assert got["message"] == f"Cleaned up {got['orgs_created']} stale concurrent counters"
    else:
        assert path == "/api/v1/admin/alerts/process-all"
        assert got["orgs_processed"] == len(serving) and got["notifications_sent"] == 0
        assert got["message"].endswith("notifications sent (dry run)"), got


def test_key_not_configured_is_503(api, secrets) -> None:
    latest = secrets.list_secret_versions(parent=KEY_SECRET).versions[0]
    secrets.disable_secret_version(name=latest.name)
    try:
        resp = api("GET", "/api/v1/admin/bootstrap/status")
        assert resp.status_code == 503
        assert "not configured" in resp.json()["detail"]
    finally:
        secrets.enable_secret_version(name=latest.name)
    assert api("GET", "/api/v1/admin/bootstrap/status").status_code == 200


def test_cloud_run_service_url_serves_the_same_api(api, synced) -> None:
    resp = api(
        "GET", "/api/v1/admin/bootstrap/status", base="https://cloudact-api-service-local-uc.a.run.app"
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "SYNCED"
    # The same state, the same answer as the API's own host.
    assert resp.json() == api("GET", "/api/v1/admin/bootstrap/status").json()


def test_bootstrap_status_bootstrap_twice_and_sync(api, bq: bigquery.Client) -> None:
    bq.delete_dataset("organizations", delete_contents=True, not_found_ok=True)  # a known starting point
    before = api("GET", "/api/v1/admin/bootstrap/status").json()
    assert before["status"] == "NOT_BOOTSTRAPPED" and before["dataset_exists"] is False
    assert before["tables_existing"] == [] and len(before["tables_missing"]) == before["tables_expected"]

    first = api(
        "POST", "/api/v1/admin/bootstrap", {"force_recreate_dataset": False, "force_recreate_tables": False}
    )
    assert first.status_code == 200
    created = first.json()
    assert created["status"] == "SUCCESS" and created["dataset_created"] is True
    assert len(created["tables_created"]) == created["total_tables"] == before["tables_expected"]
    assert "org_usage_quotas" in created["tables_created"]
    assert {t.table_id for t in bq.list_tables("organizations")} == set(created["tables_created"])

    second = api("POST", "/api/v1/admin/bootstrap", {})
    assert second.status_code == 409 and "sync" in second.json()["detail"]
    after = api("GET", "/api/v1/admin/bootstrap/status").json()
    assert after["status"] == "SYNCED" and after["tables_missing"] == [] and after["schema_diffs"] == {}

    # Sync reports what it adds: a dropped table comes back.
    bq.delete_table("organizations.org_audit_logs")
    drifted = api("GET", "/api/v1/admin/bootstrap/status").json()
    assert drifted["status"] == "OUT_OF_SYNC" and drifted["tables_missing"] == ["org_audit_logs"]
    synced = api(
        "POST", "/api/v1/admin/bootstrap/sync", {"sync_missing_tables": True, "sync_missing_columns": True}
    )
    assert synced.status_code == 200
    assert synced.json()["tables_created"] == ["org_audit_logs"] and synced.json()["errors"] == []
    # ... and so does a dropped column.
    bq.query_and_wait("ALTER TABLE `cloudact-local.organizations.org_profiles` DROP COLUMN updated_at")
    drifted = api("GET", "/api/v1/admin/bootstrap/status").json()
    assert drifted["status"] == "OUT_OF_SYNC"
    assert drifted["schema_diffs"] == {"org_profiles": {"missing_columns": ["updated_at"]}}
    columns = api(
        "POST", "/api/v1/admin/bootstrap/sync", {"sync_missing_tables": True, "sync_missing_columns": True}
    )
    assert columns.json()["columns_added"] == {"org_profiles": ["updated_at"]}
    assert "updated_at" in {f.name for f in bq.get_table("organizations.org_profiles").schema}
    again = api("POST", "/api/v1/admin/bootstrap/sync", {}).json()
    assert again["tables_created"] == [] and again["columns_added"] == {}
    assert api("GET", "/api/v1/admin/bootstrap/status").json()["status"] == "SYNCED"


def test_org_sync_all_creates_datasets_for_active_orgs_and_names_failures(
    api, bootstrapped, localcloud, bq: bigquery.Client
) -> None:
    prefix = f"s{uuid.uuid4().hex[:6]}"
    good = localcloud.admin.admin("cloudact", "orgs", "POST", {"count": 2, "prefix": prefix})["slugs"]
    broken = f"{prefix}_broken"
    suspended = f"{prefix}_suspended"
    localcloud.admin.admin("cloudact", "orgs", "POST", {"slugs": [broken], "fail_sync": True})
    localcloud.admin.admin("cloudact", "orgs", "POST", {"slugs": [suspended], "status": "SUSPENDED"})

    resp = api("POST", "/api/v1/admin/org-sync-all", {"org_slugs": [*good, broken]})
    assert resp.status_code == 200
    result = resp.json()
    assert (result["success"], result["orgs_processed"], result["orgs_synced"], result["orgs_failed"]) == (
        False,
        3,
        2,
        1,
    )
    assert [f["org_slug"] for f in result["failed_orgs"]] == [broken]
    datasets = {d.dataset_id for d in bq.list_datasets()}
    assert {f"{slug}_local" for slug in good} <= datasets
    assert f"{broken}_local" not in datasets

    # All orgs: every org that is not SUSPENDED is processed; only flagged ones fail.
    state = localcloud.admin.admin("cloudact", "state")
    expected_failed = sorted(
        s
        for s, o in state["orgs"].items()
        if o["status"] == "BROKEN" or (o["fail_sync"] and o["status"] != "SUSPENDED")
    )
    everything = api("POST", "/api/v1/admin/org-sync-all", {}).json()
    assert everything["orgs_processed"] == sum(
        1 for o in state["orgs"].values() if o["status"] != "SUSPENDED"
    )
    assert sorted(f["org_slug"] for f in everything["failed_orgs"]) == expected_failed
    assert f"{suspended}_local" not in {d.dataset_id for d in bq.list_datasets()}


def test_reset_daily_writes_todays_rows_once(api, bootstrapped, localcloud, bq: bigquery.Client) -> None:
    first = api("POST", "/api/v1/admin/quota/reset-daily").json()
    second = api("POST", "/api/v1/admin/quota/reset-daily").json()
    state = localcloud.admin.admin("cloudact", "state")
    active = sorted(s for s, o in state["orgs"].items() if o["status"] == "ACTIVE")
    assert first["success"] and first["orgs_processed"] == len(active)
    assert first["orgs_created"] + first["orgs_skipped"] == len(active)
    assert (second["orgs_created"], second["orgs_skipped"]) == (0, len(active))

    today = localcloud.admin.now().date()
    rows = bq.query_and_wait(
        "SELECT org_slug, COUNT(*) AS n FROM `cloudact-local.organizations.org_usage_quotas` "
        "WHERE usage_date = @day AND period_type = 'DAILY' GROUP BY org_slug ORDER BY org_slug",
        job_config=bigquery.QueryJobConfig(
            query_parameters=[bigquery.ScalarQueryParameter("day", "DATE", today)]
        ),
    )
    assert [(r["org_slug"], r["n"]) for r in rows] == [(slug, 1) for slug in active]


def test_reset_monthly_and_cleanup_stale(api, bootstrapped, localcloud) -> None:
    monthly = api("POST", "/api/v1/admin/quota/reset-monthly").json()
    again = api("POST", "/api/v1/admin/quota/reset-monthly").json()
    assert (
        monthly["success"]
        and again["orgs_created"] == 0
        and again["orgs_skipped"] == monthly["orgs_processed"]
    )

    slug = localcloud.admin.admin(
        "cloudact", "orgs", "POST", {"count": 1, "prefix": "stale", "stale_counter": True}
    )
    stale_before = localcloud.admin.admin("cloudact", "state")["stale_counters"]
    assert slug["slugs"][0] in stale_before
    cleaned = api("POST", "/api/v1/admin/quota/cleanup-stale").json()
    assert cleaned["success"] and cleaned["orgs_created"] == len(stale_before)
    assert cleaned["message"] == f"Cleaned up {len(stale_before)} stale concurrent counters"
    assert localcloud.admin.admin("cloudact", "state")["stale_counters"] == []
    assert api("POST", "/api/v1/admin/quota/cleanup-stale").json()["orgs_created"] == 0


def test_alerts_dry_run_sends_nothing_and_unknown_org_is_404(api, localcloud) -> None:
    sent_before = localcloud.admin.admin("cloudact", "state")["notifications_sent"]
    dry = api(
        "POST", "/api/v1/admin/alerts/process-all", {"send_notifications": True, "dry_run": True}
    ).json()
    assert dry["success"] and dry["orgs_processed"] >= 3 and dry["alerts_triggered"] > 0
    assert dry["notifications_sent"] == 0
    assert localcloud.admin.admin("cloudact", "state")["notifications_sent"] == sent_before

    one = api(
        "POST", "/api/v1/admin/alerts/process-all", {"org_slug": "acme_corp", "send_notifications": True}
    )
    assert one.status_code == 200 and one.json()["orgs_processed"] == 1
    assert one.json()["notifications_sent"] == one.json()["alerts_triggered"]
    assert (
        localcloud.admin.admin("cloudact", "state")["notifications_sent"]
        == sent_before + one.json()["notifications_sent"]
    )

    unknown = api("POST", "/api/v1/admin/alerts/process-all", {"org_slug": "no_such_org"})
    assert unknown.status_code == 404 and "no_such_org" in unknown.json()["detail"]
    bad_type = api("POST", "/api/v1/admin/alerts/process-all", {"alert_types": ["bogus"]})
    assert bad_type.status_code == 422 and "bogus" in bad_type.json()["detail"]
