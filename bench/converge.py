"""Benchmark: `create-jobs` on localcloud, from empty and with nothing to change.

    .venv/bin/python bench/converge.py [--runs N]

Starts its own localcloud in a temporary state directory (stopped by its pid at the end),
runs playbooks/create-jobs.yml as an operator would, and reports wall time and the HTTP
requests each run sent (localcloud's counter), by host. Beside it, the requests the earlier
delete-and-recreate scripts would send for the same catalog: a describe and a delete per
legacy and current name, then a create per resource (their LRO waits not counted).

Goals: no-change converge of the 13 resources in at most 4 s ("One house"; 10 s in issue 5), and at
most one request per resource plus token fetches. With access (issue 12) the converge also reads
the 2 accounts and each policy once (project, 2 secrets, the datasets, 8 jobs) and writes none.
Results also go to bench-results/converge.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ansible_collections.cloudact.gcp.plugins.module_utils.catalog import load_catalog  # noqa: E402

from localcloud.client import LocalCloudProcess  # noqa: E402

BIN = Path(sys.executable).parent
API_HOSTS = (
    "run.googleapis.com",
    "cloudscheduler.googleapis.com",
    "secretmanager.googleapis.com",
    "iam.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "bigquery.googleapis.com",
)
# The access part of a converge (issue 12): IAM policies, accounts, dataset access, the preflight's test.
ACCESS_MARKS = (":getIamPolicy", ":setIamPolicy", ":testIamPermissions", "/serviceAccounts", "/datasets/")


def converge(state_dir: Path, summary: Path) -> float:
    env = {
        k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and not k.startswith("GCP_")
    }
    env.update(
        LOCALCLOUD_STATE_DIR=str(state_dir),
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        PATH=f"{BIN}:{env.get('PATH', '')}",
        HTTPS_PROXY="http://127.0.0.1:9",  # only the play's environment reaches localcloud
    )
    cmd = [
        str(BIN / "ansible-playbook"),
        "playbooks/create-jobs.yml",
        "-e",
        f"cloudact_summary_file={summary}",
    ]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode:
        sys.exit(f"create-jobs failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def counted(admin) -> dict:
    data = admin.requests()
    by_host = data["by_host"]
    return {
        "total": data["total"],
        "tokens": by_host.get("oauth2.googleapis.com", 0),
        "api": sum(by_host.get(h, 0) for h in API_HOSTS),
        "by_host": by_host,
        "by_host_method": data.get("by_host_method", {}),
        "access": sum(r["count"] for r in data["requests"] if any(m in r["path"] for m in ACCESS_MARKS)),
        "policy_writes": sum(r["count"] for r in data["requests"] if r["path"].endswith(":setIamPolicy")),
    }


def legacy_script_requests() -> dict:
    catalog = load_catalog(root=ROOT)
    names = (
        len(catalog.jobs) + len(catalog.scheduled) + len(catalog.legacy_jobs) + len(catalog.legacy_triggers)
    )
    resources = len(catalog.jobs) + len(catalog.scheduled)
    return {"describes": names, "deletes": names, "creates": resources, "total": 2 * names + resources}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="no-change converges to time (median reported)")
    args = parser.parse_args(argv)
    catalog = load_catalog(root=ROOT)
    resources = len(catalog.jobs) + len(catalog.scheduled)
    with tempfile.TemporaryDirectory(prefix="bench-converge-") as tmp:
        proc = LocalCloudProcess(Path(tmp) / "state")
        proc.start()
        try:
            admin = proc.admin
            summary = Path(tmp) / "summary.json"
            admin.reset_requests()
            empty_s = converge(proc.state_dir, summary)
            empty = counted(admin)
            created = json.loads(summary.read_text())
            assert len(created["jobs"]["created"]) == len(catalog.jobs), created["lines"]
            nochange_times, nochange = [], {}
            for _ in range(args.runs):
                admin.reset_requests()
                nochange_times.append(converge(proc.state_dir, summary))
                nochange = counted(admin)
                lines = json.loads(summary.read_text())["lines"]
                text = "\n".join(lines)
                assert "jobs: 0 created, 0 updated" in text, lines
                assert "triggers: 0 created, 0 updated" in text, lines
                assert "access: 0 account(s) created, 0 binding(s) added, 0 removed" in text, lines
        finally:
            proc.stop()
    legacy = legacy_script_requests()
    result = {
        "resources": resources,
        "from_empty": {"seconds": round(empty_s, 2), **empty},
        "no_change": {
            "seconds_median": round(statistics.median(nochange_times), 2),
            "seconds": nochange_times,
            **nochange,
        },
        "delete_and_recreate_scripts": legacy,
        "goals": {
            "no_change_at_most_4s": statistics.median(nochange_times) <= 4,
            "at_most_one_api_request_per_resource": nochange["api"] - nochange["access"] <= resources,
            "no_policy_write_without_change": nochange["policy_writes"] == 0,
        },
    }
    out = ROOT / "bench-results" / "converge.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"create-jobs on localcloud, {resources} resources "
        f"({len(catalog.jobs)} jobs, {len(catalog.scheduled)} triggers)"
    )
    print(
        f"  from empty : {empty_s:6.2f} s  {empty['api']:3d} API requests + {empty['tokens']} token fetches"
    )
    print(
        f"  no change  : {statistics.median(nochange_times):6.2f} s  {nochange['api']:3d} API requests"
        f" + {nochange['tokens']} token fetches (median of {args.runs})"
    )
    print(
        f"  delete-and-recreate scripts: {legacy['total']} API requests "
        f"({legacy['describes']} describes + {legacy['deletes']} deletes + {legacy['creates']} creates)"
        ", on every run"
    )
    print(
        f"  access     : {empty['access']} requests from empty ({empty['policy_writes']} policy writes), "
        f"{nochange['access']} with no change ({nochange['policy_writes']} writes: each policy read once)"
    )
    print(f"  by host (no change): {json.dumps(nochange['by_host_method'] or nochange['by_host'])}")
    print(f"  goals: {json.dumps(result['goals'])}  -> {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
