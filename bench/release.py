"""Benchmark: wall time and request count of `make release`, `make run` and `make status` on localcloud.

    .venv/bin/python bench/release.py [--runs 3] [--profile]

Starts a localcloud of its own (a tmp state dir, stopped by its pid at the end), converges it
with a first release (not measured), then measures --runs warm releases and statuses. The
release's tool overhead is its wall time minus the time its three executions ran (each step's
"succeeded in Ns" line, start to completion as Cloud Run reports it); `make run JOB=bootstrap` the same.
--profile prints the slowest tasks of one warm release and run (ansible.posix.profile_tasks).
Goals (the collection issue's): release overhead <= 5 s, make run overhead <= 3 s, status <= 1 s with
at most 4 API requests plus one token (a token cached by an earlier command of the run counts 0).

Figures (2 cores, shared with other work; medians of 3): release 29.4 s wall (28.0 s overhead, 39
requests, 11 module runs) -> 13.0 s (11.9 s, 37 requests, 5 module runs); make run JOB=bootstrap
12.4 s (16 requests, 4 module runs) -> 8.0 s (14 requests, 2 module runs). What is left is Ansible
itself: ~1.3 s start-up, ~0.4 s per module run before the module's own ~0.4 s of imports and token,
~0.06 s per task (about 55 in a release, 40 in a run).
After the job scripts moved to jobs/transport.py (stdlib HTTP): release 11.2 s wall (10.7 s
overhead, 34 requests), make run JOB=bootstrap 5.6 s (5.5 s), status 1.0 s (11 requests). --profile
shows the five module runs at 1.2-2.5 s each: ~0.5 s importing google.cloud's gcp_utils (google.auth,
requests, cryptography), the AnsiballZ payload, a token per run, then the work.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import make  # noqa: E402
from localcloud.client import LocalCloudProcess  # noqa: E402

RELEASE_JOBS = (
    "cloudact-manual-supabase-migrate",
    "cloudact-manual-bootstrap",
    "cloudact-manual-org-sync-all",
)


def parse_job_seconds(output: str) -> float:
    """Seconds the executions ran, from each step's "<step>: <execution> succeeded in Ns" line."""
    total = 0.0
    for line in output.splitlines():
        if " succeeded in " in line and line.split(":", 1)[0] in ("migrate", "bootstrap", "org-sync-all"):
            total += float(line.split(" succeeded in ", 1)[1].split("s", 1)[0])
    return total


def profile(env: dict[str, str], *args: str) -> None:
    """One run with ansible.posix.profile_tasks; its slowest tasks (the callback prints its own table)."""
    env = dict(
        env, ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", PROFILE_TASKS_TASK_OUTPUT_LIMIT="15"
    )
    wall, out, _ = make(env, *args)
    table = out[out.find("=====") :] if "=====" in out else out[-3000:]
    print(f"--- make {' '.join(args)}: {wall:.1f}s; slowest tasks:\n{table.strip()}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--profile", action="store_true", help="print the slowest tasks of a release and a run"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-release-") as tmp:
        proc = LocalCloudProcess(Path(tmp) / "state")
        proc.start(timeout=120)
        try:
            assert proc.admin is not None and proc.pid is not None
            proc.files.pid.write_text(f"{proc.pid}\n")  # so make's `localcloud up` finds it
            env = {k: v for k, v in os.environ.items() if k.lower() not in ("https_proxy", "http_proxy")}
            env.update(proc.client_env, LOCALCLOUD_STATE_DIR=str(proc.state_dir), NO_COLOR="1")
            env.pop("CONFIRM", None)
            cold, _, _ = make(env, "release")
            print(f"first release (creates the 8 jobs + 5 triggers, then runs): {cold:.1f}s")
            if args.profile:
                profile(env, "release")
                profile(env, "run", "JOB=bootstrap")
            rows = []
            for _ in range(args.runs):
                proc.admin.reset_requests()
                wall, out, _ = make(env, "release")
                req = proc.admin.requests()
                jobs = parse_job_seconds(out)
                rows.append(("release", wall, jobs, req["total"], req["by_host"]))
                proc.admin.reset_requests()
                wall, out, _ = make(env, "run", "JOB=bootstrap")
                req = proc.admin.requests()
                rows.append(("run", wall, parse_job_seconds(out), req["total"], req["by_host"]))
                proc.admin.reset_requests()
                wall, out, _ = make(env, "status")
                req = proc.admin.requests()
                rows.append(("status", wall, 0.0, req["total"], req["by_host"]))
        finally:
            proc.stop()
    print(f"{'command':<8} {'wall s':>7} {'jobs s':>7} {'overhead s':>10} {'requests':>8}  by host")
    for name, wall, jobs, total, hosts in rows:
        by_host = ", ".join(f"{h}={n}" for h, n in sorted(hosts.items()))
        print(f"{name:<8} {wall:7.1f} {jobs:7.1f} {wall - jobs:10.1f} {total:8d}  {by_host}")
    rel = [r for r in rows if r[0] == "release"]
    sta = [r for r in rows if r[0] == "status"]
    overhead = statistics.median(r[1] - r[2] for r in rel)
    run_overhead = statistics.median(r[1] - r[2] for r in rows if r[0] == "run")
    status_wall = statistics.median(r[1] for r in sta)
    status_api = max(r[3] - r[4].get("oauth2.googleapis.com", 0) for r in sta)
    status_tokens = max(r[4].get("oauth2.googleapis.com", 0) for r in sta)

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print(
        f"median: release overhead {overhead:.1f}s (goal <= 5s: {verdict(overhead <= 5)}); "
        f"run bootstrap overhead {run_overhead:.1f}s (goal <= 3s: {verdict(run_overhead <= 3)}); "
        f"status {status_wall:.1f}s (goal <= 1s: {verdict(status_wall <= 1)}) with {status_api} API "
        f"requests + {status_tokens} token (goal <= 4 + 1: {verdict(status_api <= 4 and status_tokens <= 1)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
