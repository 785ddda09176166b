"""Benchmark: `make ledger-sync` of N executions (default 10,000) on a localcloud of its own.

    .venv/bin/python bench/ledger.py [--executions N] [--batch B]

Starts its own localcloud in a temporary state directory (stopped by its pid at the end), converges
the catalog (`make create-jobs`, which converges the ledger too), turns one job's command into `true`
(a fast job) and runs it `--real` times through the Cloud Run API (B at a time, each waited for; the
time per batch is reported: localcloud's Cloud Run writes its whole state on every change, so a :run
costs time in proportion to the executions it holds). The rest up to N are copies of a real one,
written into Cloud Run's state file while localcloud is down (as tests/e2e/test_ledger.py does; all
within 7 emulated days, so Cloud Run keeps every one). Then it times `make ledger-sync` twice: the
first appends N observations, the second appends nothing. Reports wall times and the requests each
sync sent, by host; results also go to bench-results/ledger.json.

Goal (issue 14): `make ledger-sync` of 10,000 executions under 30 s on localcloud.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ansible_collections.cloudact.gcp.plugins.module_utils import client, timefmt  # noqa: E402
from ansible_collections.cloudact.gcp.plugins.module_utils import run_execution as rx  # noqa: E402

from localcloud.client import LocalCloudProcess  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from test_ledger import clone_executions  # noqa: E402 - the test's own copier, not a copy of it

PROJECT = "cloudact-local"
REGION = "us-central1"
FAST = "cloudact-daily-alerts"


def make(proc: LocalCloudProcess, *args: str) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(proc.client_env, LOCALCLOUD_STATE_DIR=str(proc.state_dir), NO_COLOR="1")
    started = time.monotonic()
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"make {' '.join(args)} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    return elapsed, result.stdout


def fast_job(api: client.Client) -> None:
    job = api.request("GET", rx.job_url(PROJECT, REGION, FAST), "job")
    job["template"]["template"]["containers"][0].update(command=["true"], args=[])
    op = api.request(
        "PATCH",
        rx.job_url(PROJECT, REGION, FAST),
        "job",
        json={"template": job["template"]},
    )
    api.wait_operation(op, rx.BASE, "job")


def run_many(api: client.Client, count: int, batch: int) -> tuple[dict, list[tuple[int, float]]]:
    """The first finished execution and (executions so far, seconds) per batch."""
    url = rx.job_url(PROJECT, REGION, FAST) + ":run"
    first, times, started = None, [], time.monotonic()
    for start in range(0, count, batch):
        names = [
            api.request("POST", url, "run", json={})["metadata"]["name"].rsplit("/", 1)[-1]
            for _ in range(min(batch, count - start))
        ]
        for name in names:
            while True:
                found = api.request("GET", rx.execution_url(PROJECT, REGION, FAST, name), "execution")
                if rx.state(found) in timefmt.FINISHED:
                    first = first or found
                    break
                time.sleep(0.05)
        times.append((start + len(names), round(time.monotonic() - started, 1)))
        print(f"  {start + len(names)} real executions in {times[-1][1]} s", flush=True)
    return first, times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=10000)
    parser.add_argument("--real", type=int, default=50, help="executions run for real (the rest copied)")
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        proc = LocalCloudProcess(Path(tmp) / "state")
        proc.start(timeout=120)
        try:
            proc.files.pid.write_text(f"{proc.pid}\n")
            os.environ.update(proc.client_env)
            api = client.Client(client.credentials("serviceaccount", str(proc.key_file)))
            make(proc, "create-jobs")
            fast_job(api)
            model, times = run_many(api, min(args.real, args.executions), args.batch)
            if args.executions > args.real:
                proc.stop()
                clone_executions(proc.state_dir, model, args.executions - args.real)
                proc.start(timeout=120)
                proc.files.pid.write_text(f"{proc.pid}\n")
            results = {"executions": args.executions, "real_runs": times, "syncs": []}
            for label in ("first (appends every execution)", "second (appends nothing)"):
                proc.admin.reset_requests()
                elapsed, out = make(proc, "ledger-sync")
                counted = proc.admin.requests()
                line = next((x for x in out.splitlines() if x.startswith("ledger ")), out.strip()[-200:])
                results["syncs"].append(
                    {
                        "run": label,
                        "wall_s": round(elapsed, 2),
                        "requests": counted["total"],
                        "by_host": counted["by_host"],
                        "line": line,
                    }
                )
                print(f"make ledger-sync, {label}: {elapsed:.2f} s, {counted['total']} requests: {line}")
        finally:
            proc.stop()
    print(f"real runs (executions, seconds so far): {times}")
    out = ROOT / "bench-results" / "ledger.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
