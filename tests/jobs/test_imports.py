"""API-only scripts load no BigQuery client nor, with the key in the environment, Google credentials."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("google.cloud", "google.oauth2", "google.auth.transport", "httpx")
# Runs the script's module as __main__, as `python -m` does, then reports what got imported.
WRAPPER = """
import json, runpy, sys
module = sys.argv[1].removesuffix(".py").replace("/", ".")
sys.argv = sys.argv[1:]
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
print(json.dumps({"exit": code, "modules": sorted(sys.modules)}))
"""
OK = {"success": True, "orgs_processed": 1, "orgs_synced": 1, "orgs_created": 1, "failed_orgs": []}
SCRIPTS = [
    ("jobs/manual/org_sync_all.py", "/api/v1/admin/org-sync-all", []),
    ("jobs/daily/quota_reset_daily.py", "/api/v1/admin/quota/reset-daily", []),
    ("jobs/daily/stale_cleanup.py", "/api/v1/admin/quota/cleanup-stale", []),
    ("jobs/daily/alerts_daily.py", "/api/v1/admin/alerts/process-all", ["--dry-run"]),
    ("jobs/monthly/quota_reset_monthly.py", "/api/v1/admin/quota/reset-monthly", ["--force"]),
    ("jobs/manual/bootstrap_smart.py", "/api/v1/admin/bootstrap/sync", ["--force-sync"]),
]


@pytest.mark.parametrize(("script", "path", "args"), SCRIPTS, ids=[s[0].split("/")[-1] for s in SCRIPTS])
def test_api_scripts_load_no_bigquery_nor_google_credentials(api, job_environment, script, path, args):
    api.expect_request(path).respond_with_json({**OK, "errors": []})
    api.expect_request("/api/v1/admin/bootstrap/status").respond_with_json(
        {"status": "SYNCED", "tables_existing": ["a"], "tables_missing": []}
    )
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, script, *args],
        cwd=ROOT,
        env=job_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["exit"] == 0, proc.stderr
    assert len(api.log) >= 1  # main ran through its request, so every lazy import has happened
    heavy = [m for m in report["modules"] if m.startswith(HEAVY)]
    assert heavy == []
    # requests made the call, under api-core's retry loop.
    assert "requests" in report["modules"] and "google.api_core.retry" in report["modules"]


def test_no_job_code_touches_sys_path():
    """The scripts run as modules (`python -m jobs.<category>.<script>`): no code uses sys.path."""

    def uses_sys_path(path: Path) -> bool:
        return any(
            isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", "") == "sys"
            for node in ast.walk(ast.parse(path.read_text()))
        )

    assert [str(p.relative_to(ROOT)) for p in sorted((ROOT / "jobs").rglob("*.py")) if uses_sys_path(p)] == []
