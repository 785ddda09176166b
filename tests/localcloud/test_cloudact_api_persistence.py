"""BigQuery, CloudAct API and Supabase state survive a localcloud restart and are wiped by a reset;
PostgreSQL lives exactly as long as localcloud. Uses its own short-lived localcloud, not the session's."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from google.api_core import exceptions
from google.cloud import bigquery, secretmanager
from google.oauth2 import service_account

from localcloud.client import LocalCloudProcess, pid_alive

PROJECT = "cloudact-local"
pytestmark = pytest.mark.localcloud  # starts its own localcloud: not a unit test


class Clients:
    """Official clients (and plain HTTPS for the non-Google APIs) pointed at one localcloud instance."""

    def __init__(self, proc: LocalCloudProcess):
        creds = service_account.Credentials.from_service_account_file(
            str(proc.key_file), scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )
        self.bq = bigquery.Client(project=PROJECT, credentials=creds)
        secrets = secretmanager.SecretManagerServiceClient(credentials=creds, transport="rest")
        self._secret = lambda s: secrets.access_secret_version(
            name=f"projects/{PROJECT}/secrets/{s}/versions/latest"
        ).payload.data.decode()
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.proxies = {"https": proc.proxy_url}
        self.http.verify = str(proc.ca_file)

    def api(self, method: str, path: str, body=None) -> requests.Response:
        key = self._secret("ca-root-api-key-local")
        return self.http.request(
            method, f"https://api.cloudact.local{path}", json=body, headers={"X-CA-Root-Key": key}, timeout=60
        )

    def sql(self, query: str) -> list:
        token = self._secret("supabase-access-token-local")
        resp = self.http.post(
            "https://api.supabase.com/v1/projects/local/database/query",
            json={"query": query},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert resp.status_code == 201, resp.text
        return resp.json()


@pytest.fixture
def own_cloud(tmp_path, monkeypatch):
    proc = LocalCloudProcess(tmp_path / "state")
    try:
        proc.start()
        for name, value in proc.client_env.items():
            monkeypatch.setenv(name, value)
        for name in ("https_proxy", "http_proxy", "HTTP_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        yield proc
    finally:
        proc.stop()


def _postgres_pid(proc: LocalCloudProcess) -> int:
    state = proc.admin.admin("supabase", "state")
    assert state["running"], state
    return state["postgres_pid"]


def test_state_survives_restart_and_is_wiped_by_reset(own_cloud: LocalCloudProcess) -> None:
    c = Clients(own_cloud)
    c.bq.create_dataset("keep")
    c.bq.query_and_wait("CREATE TABLE keep.things (name STRING, n INT64)")
    c.bq.query_and_wait("INSERT INTO `cloudact-local.keep.things` VALUES ('a', 1), ('b', 2)")
    assert c.api("POST", "/api/v1/admin/bootstrap", {}).status_code == 200
    daily = c.api("POST", "/api/v1/admin/quota/reset-daily").json()
    assert daily["orgs_created"] == daily["orgs_processed"] > 0
    own_cloud.admin.admin("cloudact", "orgs", "POST", {"slugs": ["kept_org"], "fail_sync": True})
    c.sql("create table kept (n int); insert into kept values (7)")
    pg_pid = _postgres_pid(own_cloud)
    pgdata = own_cloud.state_dir / "supabase" / "pgdata"

    own_cloud.stop()
    assert not pid_alive(pg_pid), "PostgreSQL outlived localcloud"
    assert not (pgdata / "postmaster.pid").exists(), "PostgreSQL did not shut down cleanly"

    own_cloud.start()
    c = Clients(own_cloud)
    assert [tuple(r.values()) for r in c.bq.query_and_wait("SELECT name, n FROM keep.things ORDER BY n")] == [
        ("a", 1),
        ("b", 2),
    ]
    assert c.api("GET", "/api/v1/admin/bootstrap/status").json()["status"] == "SYNCED"
    again = c.api("POST", "/api/v1/admin/quota/reset-daily").json()
    assert again["orgs_created"] == 1 and again["orgs_skipped"] == daily["orgs_processed"]  # kept_org is new
    assert own_cloud.admin.admin("cloudact", "state")["orgs"]["kept_org"]["fail_sync"] is True
    assert c.sql("select n from kept") == [{"n": 7}]
    pg_pid = _postgres_pid(own_cloud)

    # BigQuery's CURRENT_DATE() and the API's "today" follow localcloud's clock.
    own_cloud.admin.set_time("2030-01-15T10:00:00+00:00")
    assert [r["d"] for r in c.bq.query_and_wait("SELECT CURRENT_DATE() AS d")] == [dt.date(2030, 1, 15)]
    future = c.api("POST", "/api/v1/admin/quota/reset-daily").json()
    assert future["orgs_created"] == future["orgs_processed"] == again["orgs_processed"]
    assert "2030-01-15" in future["message"]

    own_cloud.admin.reset()
    c = Clients(own_cloud)  # reset issues new secret values; keys and CA stay
    with pytest.raises(exceptions.NotFound):
        c.bq.get_dataset("keep")
    assert c.api("GET", "/api/v1/admin/bootstrap/status").json()["status"] == "NOT_BOOTSTRAPPED"
    state = own_cloud.admin.admin("cloudact", "state")
    assert "kept_org" not in state["orgs"] and state["org_counts"] == {"ACTIVE": 3, "SUSPENDED": 1}
    assert c.sql("select to_regclass('kept') is null as absent") == [{"absent": True}]
    pg_pid = _postgres_pid(own_cloud)

    own_cloud.stop()
    assert not pid_alive(pg_pid)
