"""Benchmark: what the safety reads cost: the digest check of a run, the look before a resend, and
make's prod question, in seconds and requests, on a localcloud of its own.

    .venv/bin/python bench/lost_answers.py [--runs 3]

Starts a localcloud of its own (a tmp state dir, stopped by its pid at the end), releases it once
(not measured), then per run:
- `make run JOB=quota-reset`: wall time, overhead (wall minus the execution's own run time) and
  requests, and of them the reads that hold the run to the job it read (the job's GET: its digest
  and etag);
- the same with the answer to its `:run` lost (a 502 after Cloud Run started the execution):
  what the look costs (the executions list it pages) over a plain run;
- `make release FROM=org-sync-all`, one step, plain and with the step's answer lost;
- make's prod question for a release (toolkit.ask with CONFIRM=yes, REHEARSE=1 on cloudact-prod):
  the reads that name the pinned digest and check the inputs first.
Nothing here is asserted: it prints what it measured.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import make  # noqa: E402
from localcloud.client import LocalCloudProcess  # noqa: E402

RUN_PATH = "/v2/projects/{project}/locations/us-central1/jobs/{job}:run"
SUCCEEDED = re.compile(r"succeeded in ([\d.]+)s")


def job_seconds(out: str) -> float:
    return sum(float(s) for s in SUCCEEDED.findall(out))


def measure(proc, env, *args, fault=None) -> dict:
    proc.admin.reset_requests()
    if fault:
        proc.admin.fault(**fault)
    wall, out, _ = make(env, *args)
    proc.admin.clear_faults()
    counted = proc.admin.requests()
    log = proc.admin.request_log()
    job_gets = [e for e in log if e["method"] == "GET" and re.search(r"/jobs/[^/]+$", e["path"])]
    looks = [
        e
        for e in log
        if e["method"] == "GET" and e["path"].endswith("/executions") and "run.googleapis" in e["host"]
    ]
    return {
        "wall": wall,
        "overhead": wall - job_seconds(out),
        "requests": counted["total"],
        "job_gets": len(job_gets),
        "looks": len(looks),
        "runs": sum(1 for e in log if e["path"].endswith(":run")),
    }


def ask(env, kind: str) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [str(ROOT / ".venv/bin/python"), "-m", "toolkit.ask", "prod", kind, "--extra-vars", env["ARGS"]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"toolkit.ask prod {kind} failed: {done.stderr[-2000:]}")
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-lost-") as tmp:
        proc = LocalCloudProcess(Path(tmp) / "state")
        proc.start(timeout=120)
        try:
            assert proc.admin is not None and proc.pid is not None
            proc.files.pid.write_text(f"{proc.pid}\n")
            env = {k: v for k, v in os.environ.items() if k.lower() not in ("https_proxy", "http_proxy")}
            env.update(proc.client_env, LOCALCLOUD_STATE_DIR=str(proc.state_dir), NO_COLOR="1")
            env.pop("CONFIRM", None)
            wall, _, _ = make(env, "release")
            print(f"first release (image, 8 jobs + 5 triggers, the three steps): {wall:.1f}s")
            # prod rehearsed, for make's question: an image and a converge of cloudact-prod
            source = Path(tmp) / "supabase_db"
            shutil.copytree(ROOT / "migrations", source)
            prod = dict(env, REHEARSE="1", CONFIRM="yes")
            prod["ARGS"] = (
                f"-e cloudact_migrations_source={source} -e cloudact_supabase_project_ref=benchprodref00001"
            )
            make(prod, "image", "ENV=prod", f"ANSIBLE_ARGS={prod['ARGS']}")
            make(prod, "create-jobs", "ENV=prod", f"ANSIBLE_ARGS={prod['ARGS']}")
            lost = {"status": 502, "applied": True, "method": "POST", "host": "run.googleapis.com"}
            for _ in range(args.runs):
                rows.setdefault("run", []).append(measure(proc, env, "run", "JOB=quota-reset"))
                path = RUN_PATH.format(project="cloudact-local", job="cloudact-daily-quota-reset")
                rows.setdefault("run, answer lost", []).append(
                    measure(proc, env, "run", "JOB=quota-reset", fault=dict(lost, path=path))
                )
                rows.setdefault("release FROM=org-sync-all", []).append(
                    measure(proc, env, "release", "FROM=org-sync-all")
                )
                path = RUN_PATH.format(project="cloudact-local", job="cloudact-manual-org-sync-all")
                rows.setdefault("release FROM=org-sync-all, answer lost", []).append(
                    measure(proc, env, "release", "FROM=org-sync-all", fault=dict(lost, path=path))
                )
                proc.admin.reset_requests()
                wall = ask(prod, "release")
                got = proc.admin.requests()
                rows.setdefault("prod question (release)", []).append(
                    {
                        "wall": wall,
                        "overhead": wall,
                        "requests": got["total"],
                        "job_gets": 0,
                        "looks": 0,
                        "runs": 0,
                    }
                )
        finally:
            proc.stop()
    head = ("wall s", 7), ("overhead s", 10), ("requests", 8), ("job GETs", 8), ("looks", 5), (":run", 4)
    print(f"{'what':<42} " + " ".join(f"{name:>{width}}" for name, width in head))
    for name, measured in rows.items():
        med = {k: statistics.median(m[k] for m in measured) for k in measured[0]}
        print(
            f"{name:<42} {med['wall']:7.2f} {med['overhead']:10.2f} {med['requests']:8.0f} "
            f"{med['job_gets']:8.0f} {med['looks']:5.0f} {med['runs']:4.0f}"
        )
    plain = statistics.median(m["overhead"] for m in rows["run"])
    looked = statistics.median(m["overhead"] for m in rows["run, answer lost"])
    print(f"the look after a lost :run answer costs {looked - plain:+.2f}s over a plain run (medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
