"""Benchmark: wall time and requests of `make doctor` on a healthy local environment (goal < 5 s, reads only).

    .venv/bin/python bench/doctor.py [--runs 5]

Starts a localcloud of its own (a tmp state dir, stopped by its pid at the end), makes it healthy
(create-jobs with the access model, then a release; not measured), then runs `make doctor` --runs
times, each with localcloud's request counter reset: wall time, the requests by host and method,
and the writes among them (anything but a GET or a POST that reads: token, testIamPermissions,
getIamPolicy, entries:list, a Supabase query, the alerts dry run), which must be none.

Figures (2 cores shared with other work; median of 5): 3.2 s wall (4.2 s on a busier machine),
21 requests (1 token; 8 Cloud Run GETs: the jobs listed twice (the plan's list and status.py's own),
one page of executions, 5 jobs' IAM policies; 4 Secret Manager: 2 values, 2 secret policies;
2 Scheduler lists (likewise); 1 Artifact Registry; 1 testIamPermissions; the API's
/health, bootstrap status and alerts dry run; 1 Supabase query), 0 writes. Most of the wall time is
ansible-playbook's start-up (~1.3 s) and the collection's imports.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import make  # noqa: E402
from localcloud.client import LocalCloudProcess  # noqa: E402

READ_POSTS = re.compile(
    r"(/token$|:testIamPermissions$|:getIamPolicy$|/entries:list$|/database/query$|/alerts/process-all$)"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-doctor-") as tmp:
        proc = LocalCloudProcess(Path(tmp) / "state")
        proc.start(timeout=120)
        try:
            assert proc.admin is not None and proc.pid is not None
            proc.files.pid.write_text(f"{proc.pid}\n")  # so make's `localcloud up` finds it
            env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
            env.update(
                LOCALCLOUD_STATE_DIR=str(proc.state_dir), NO_COLOR="1", HTTPS_PROXY="http://127.0.0.1:9"
            )
            for name in (
                "CONFIRM",
                "GCP_SERVICE_ACCOUNT_FILE",
                "REQUESTS_CA_BUNDLE",
                "SSL_CERT_FILE",
                "STRICT",
            ):
                env.pop(name, None)
            make(env, "create-jobs")
            make(env, "release")
            for _ in range(args.runs):
                proc.admin.reset_requests()
                wall, out, code = make(env, "doctor", check=False)
                counted = proc.admin.requests()
                writes = [
                    f"{r['method']} {r['host']}{r['path']}"
                    for r in counted["requests"]
                    if r["method"] != "GET" and not (r["method"] == "POST" and READ_POSTS.search(r["path"]))
                ]
                summary = next((line for line in out.splitlines() if re.match(r"^\d+ ok, ", line)), "?")
                rows.append((wall, code, counted["total"], counted["by_host_method"], writes, summary))
        finally:
            proc.stop()
    print(f"{'run':>3} {'wall s':>7} {'exit':>4} {'requests':>8} {'writes':>6}  result")
    for i, (wall, code, total, _, writes, summary) in enumerate(rows, 1):
        print(f"{i:>3} {wall:7.2f} {code:>4} {total:8d} {len(writes):>6}  {summary}")
    by = rows[-1][3]
    print("requests of the last run by host and method:")
    for key, n in sorted(by.items(), key=lambda kv: kv[0].split(" ", 1)[::-1]):
        print(f"  {key:<48} {n}")
    median = statistics.median(r[0] for r in rows)
    writes = sorted({w for r in rows for w in r[4]})
    healthy = all(r[1] == 0 for r in rows)
    print(
        f"median wall {median:.2f}s (goal < 5 s: {'met' if median < 5 else 'NOT met'}); "
        f"writes: {', '.join(writes) if writes else 'none'}; all ok: {'yes' if healthy else 'NO'}"
    )
    return 0 if healthy and not writes else 1


if __name__ == "__main__":
    sys.exit(main())
