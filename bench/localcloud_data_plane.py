"""localcloud's data plane: CloudAct API calls over N seeded orgs, BigQuery query round trips through
google-cloud-bigquery, and Supabase Management API queries, on a fresh localcloud in a temp dir.

    .venv/bin/python bench/localcloud_data_plane.py [--orgs 1000] [--queries 50]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import requests
from google.cloud import bigquery, secretmanager
from google.oauth2 import service_account

from localcloud.client import LocalCloudProcess

PROJECT = "cloudact-local"


def timed(label: str, fn, n: int = 1):
    started = time.monotonic()
    for _ in range(n):
        result = fn()
    took = time.monotonic() - started
    per = f" ({took / n * 1000:.1f} ms each)" if n > 1 else ""
    print(f"{label:<44} {took:7.2f}s{per}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="localcloud-bench-"))
    proc = LocalCloudProcess(root / "state")
    try:
        timed("localcloud start (fresh state, initdb)", proc.start)
        os.environ.update(proc.client_env)
        creds = service_account.Credentials.from_service_account_file(
            str(proc.key_file), scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )
        secrets = secretmanager.SecretManagerServiceClient(credentials=creds, transport="rest")

        def secret(name: str) -> str:
            path = f"projects/{PROJECT}/secrets/{name}/versions/latest"
            return secrets.access_secret_version(name=path).payload.data.decode()

        http = requests.Session()
        http.trust_env = False
        http.proxies = {"https": proc.proxy_url}
        http.verify = str(proc.ca_file)
        key, token = secret("ca-root-api-key-local"), secret("supabase-access-token-local")

        def api(path: str, body=None) -> dict:
            resp = http.post(f"https://api.cloudact.local{path}", json=body, headers={"X-CA-Root-Key": key})
            resp.raise_for_status()
            return resp.json()

        proc.admin.admin("cloudact", "orgs", "POST", {"count": args.orgs})
        timed("bootstrap (9 tables)", lambda: api("/api/v1/admin/bootstrap", {}))
        synced = timed(
            f"org-sync-all ({args.orgs} + seeded orgs)", lambda: api("/api/v1/admin/org-sync-all", {})
        )
        timed("org-sync-all again (all exist)", lambda: api("/api/v1/admin/org-sync-all", {}))
        daily = timed("quota reset-daily (first of the day)", lambda: api("/api/v1/admin/quota/reset-daily"))
        timed("quota reset-daily (again: all skipped)", lambda: api("/api/v1/admin/quota/reset-daily"))
        timed(
            "alerts process-all (dry run)", lambda: api("/api/v1/admin/alerts/process-all", {"dry_run": True})
        )
        print(f"  orgs synced {synced['orgs_synced']}, quota rows created {daily['orgs_created']}")

        bq = bigquery.Client(project=PROJECT, credentials=creds)
        sql = (
            "SELECT COUNT(*) AS n FROM `cloudact-local.organizations.org_usage_quotas` "
            "WHERE usage_date >= DATE_SUB(CURRENT_DATE(), INTERVAL @d DAY)"
        )
        config = bigquery.QueryJobConfig(query_parameters=[bigquery.ScalarQueryParameter("d", "INT64", 1)])
        timed(
            "bigquery query().result() (insert+poll+rows)",
            lambda: list(bq.query(sql, job_config=config)),
            args.queries,
        )
        timed(
            "bigquery query_and_wait (jobs.query)",
            lambda: list(bq.query_and_wait(sql, job_config=config)),
            args.queries,
        )

        def supabase() -> list:
            resp = http.post(
                "https://api.supabase.com/v1/projects/local/database/query",
                json={"query": "select count(*) from pg_class"},
                headers={"Authorization": f"Bearer {token}"},
            )
            resp.raise_for_status()
            return resp.json()

        timed("supabase database/query (select)", supabase, args.queries)
        timed("localcloud stop (PostgreSQL by pid)", proc.stop)
    finally:
        proc.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
