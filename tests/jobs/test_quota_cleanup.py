"""quota_cleanup as a process against localcloud's BigQuery (DuckDB underneath), over the proxy.

Each test seeds `organizations.org_usage_quotas` in a project of its own, so it neither sees nor
disturbs the rows the CloudAct API emulation keeps in cloudact-local. Rows are dated relative to
CURRENT_DATE(), which reads localcloud's clock, as the job's DELETE does.
"""

# The SQL here names the tests' own generated projects; it is the input under test.
# ruff: noqa: S608

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULE = "jobs.daily.quota_cleanup"
QUOTA_FIELDS = [
    {"name": "usage_id", "type": "STRING", "mode": "REQUIRED"},
    {"name": "org_slug", "type": "STRING", "mode": "REQUIRED"},
    {"name": "usage_date", "type": "DATE", "mode": "REQUIRED"},
    {"name": "period_type", "type": "STRING", "mode": "NULLABLE"},
    {"name": "pipelines_run_today", "type": "INT64", "mode": "NULLABLE"},
]


# A hosted project of its own (IAM is enforced: an account acts only where it is granted), whose
# operator key owns it; no other test of the session uses its `organizations` dataset.
PROJECT = "cloudact-testing-1"


def project_key(localcloud) -> str:
    return json.loads((localcloud.state_dir / "keys.json").read_text())[PROJECT]


@pytest.fixture
def bq(localcloud_env):
    from google.cloud import bigquery
    from google.oauth2 import service_account

    creds = service_account.Credentials.from_service_account_file(
        project_key(localcloud_env), scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    client = bigquery.Client(project=PROJECT, credentials=creds)
    client.delete_dataset(f"{PROJECT}.organizations", delete_contents=True, not_found_ok=True)
    yield client
    client.delete_dataset(f"{PROJECT}.organizations", delete_contents=True, not_found_ok=True)
    client.close()


def create_table(bq) -> str:
    from google.cloud import bigquery

    bq.create_dataset(f"{bq.project}.organizations")
    table = f"{bq.project}.organizations.org_usage_quotas"
    bq.create_table(
        bigquery.Table(table, schema=[bigquery.SchemaField.from_api_repr(f) for f in QUOTA_FIELDS])
    )
    return table


def seed(bq, ages: list[int]) -> None:
    """One row per age in days, usage_id `age-<n>`."""
    table = create_table(bq)
    values = ", ".join(
        f"('age-{n}', 'acme_inc', DATE_SUB(CURRENT_DATE(), INTERVAL {n} DAY), 'DAILY', {n})" for n in ages
    )
    bq.query(
        f"INSERT INTO `{table}` (usage_id, org_slug, usage_date, period_type, pipelines_run_today) "
        f"VALUES {values}"
    ).result()


def remaining(bq) -> list[str]:
    rows = bq.query(
        f"SELECT usage_id FROM `{bq.project}.organizations.org_usage_quotas` ORDER BY pipelines_run_today"
    ).result()
    return [row["usage_id"] for row in rows]


def run(localcloud, project: str | None, *args: str, **overrides: str | None) -> tuple[int, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **localcloud.client_env}
    env["GOOGLE_APPLICATION_CREDENTIALS"] = project_key(localcloud)  # the job's account: that project's
    if project:
        env["GCP_PROJECT_ID"] = project
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    proc = subprocess.run(
        [sys.executable, "-m", MODULE, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_exactly_the_rows_older_than_the_default_90_days_go(localcloud, bq):
    seed(bq, [0, 89, 90, 91, 400])
    code, output = run(localcloud, bq.project)
    assert code == 0, output
    assert "2 quota records in" in output and "are older than 90 days" in output
    assert "Deleted 2 quota records older than 90 days" in output
    assert remaining(bq) == ["age-0", "age-89", "age-90"]  # a row exactly D days old is kept

    code, output = run(localcloud, bq.project)
    assert code == 0, output
    assert "Deleted 0 quota records older than 90 days" in output
    assert remaining(bq) == ["age-0", "age-89", "age-90"]


def test_dry_run_counts_and_deletes_nothing_then_the_boundary_holds(localcloud, bq):
    seed(bq, [29, 30, 31])
    code, output = run(localcloud, bq.project, "--dry-run", DAYS_TO_KEEP="30")
    assert code == 0, output
    assert "Deleted 0 quota records older than 30 days (dry run: 1 would be deleted)" in output
    assert remaining(bq) == ["age-29", "age-30", "age-31"]

    code, output = run(localcloud, bq.project, DAYS_TO_KEEP="30")
    assert code == 0, output
    assert "Deleted 1 quota records older than 30 days" in output
    assert remaining(bq) == ["age-29", "age-30"]


def test_a_missing_dataset_or_table_is_a_clear_failure(localcloud, bq):
    code, output = run(localcloud, bq.project)
    assert code == 1
    assert f"{bq.project}.organizations.org_usage_quotas not found" in output
    assert f"Dataset {bq.project}:organizations" in output
    assert "Traceback" not in output

    bq.create_dataset(f"{bq.project}.organizations")
    code, output = run(localcloud, bq.project, "--dry-run")
    assert code == 1
    assert f"Table {bq.project}:organizations.org_usage_quotas" in output
    assert "bootstrap" in output


@pytest.mark.parametrize("value", ["abc", "6", "0", "-5", "7.5", "30 days", "1e3"])
def test_bad_days_to_keep_is_exit_2_before_any_query(localcloud, value):
    before = _bigquery_requests(localcloud)
    code, output = run(localcloud, "cloudact-local", DAYS_TO_KEEP=value)
    assert code == 2
    assert f"DAYS_TO_KEEP={value!r} is not valid" in output
    assert "at least 7" in output
    assert _bigquery_requests(localcloud) == before


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"GCP_PROJECT_ID": None}, "GCP_PROJECT_ID is not set"),
        ({"GCP_PROJECT_ID": "Not_A_Project"}, "GCP_PROJECT_ID='Not_A_Project' is not a valid project id"),
    ],
)
def test_bad_project_is_exit_2(localcloud, overrides, message):
    code, output = run(localcloud, "cloudact-local", **overrides)
    assert code == 2
    assert message in output


def test_the_floor_of_7_days_is_accepted(localcloud, bq):
    seed(bq, [6, 7, 8])
    before = _bigquery_requests(localcloud)
    code, output = run(localcloud, bq.project, DAYS_TO_KEEP="7")
    assert code == 0, output
    assert _bigquery_requests(localcloud) > before  # the counter the exit-2 cases rely on does count
    assert "Deleted 1 quota records older than 7 days" in output
    assert remaining(bq) == ["age-6", "age-7"]


def _bigquery_requests(localcloud) -> int:
    return localcloud.admin.requests()["by_host"].get("bigquery.googleapis.com", 0)


def test_only_this_job_loads_the_bigquery_client():
    jobs = sorted(p for p in (ROOT / "jobs").rglob("*.py") if p.name != "quota_cleanup.py")
    importers = [p.name for p in jobs if re.search(r"^\s*(from|import) google\.cloud", p.read_text(), re.M)]
    assert importers == []
