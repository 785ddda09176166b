"""Benchmark: wall time of each gcloud command an operator types, against localcloud, and `make status`
versus `gcloud run jobs executions list` for the 8 jobs.

    .venv/bin/python bench/gcloud.py [--runs 5]

Starts a localcloud of its own (a tmp state dir, stopped by its pid at the end), points gcloud at it
as `make local-env` does (CLOUDSDK_CONFIG=<state>/gcloud), converges the catalog (`make create-jobs`,
not measured), runs each of the 8 jobs once so they have history, then times each command --runs times
(the median is reported, with the requests it made through the proxy, tokens included). No secret
value is printed: `versions access` output goes to a pipe that is dropped.

Figures (2 cores shared with 4 other engineers' test runs, gcloud 528, medians of 5; "requests" are
those through the proxy: gcloud caches its token in the configuration directory, so none is fetched):
  startup (config get, no request)                    1.02 s   0 requests
  run jobs list                                       1.77 s   1
  run jobs describe                                   2.00 s   1
  run jobs update --memory                            2.60 s   4 (get, replace, then polls the job)
  run jobs execute --wait                             3.91 s   5 (run, then polls the execution ~1/s)
  run jobs executions list --limit=5                  2.48 s   1
  run jobs executions describe                        2.03 s   1
  scheduler jobs list                                 1.19 s   1
  scheduler jobs describe                             1.37 s   1
  scheduler jobs pause / resume                       1.73 s   1
  secrets list                                        1.76 s   1
  secrets versions access latest                      1.50 s   1
  logging read (a job's entries)                      2.11 s   1
  gcloud run jobs executions list x 8 (one per job)  21.78 s   8
  make status (the 8 jobs, one report)                1.05 s   4
Nearly all of a gcloud command is gcloud's own start-up (1.0 s before any request, then the
command's surface); localcloud answers each request in milliseconds. Looking at the 8 jobs' recent
executions the gcloud way, one command per job, takes 21.8 s; the toolkit's `make status` shows
all 8 (trigger state, last run, result, flags) in 1.05 s: about 20x faster.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from localcloud.cli import gcloud_config, gcloud_env  # noqa: E402
from localcloud.client import LocalCloudProcess  # noqa: E402

REGION = "us-central1"
SCRIPT = "tests/localcloud/scripts/task.py"
BENCH_JOB = "bench-gcloud"
TRIGGER = "cloudact-daily-alerts-trigger"


def run(
    cmd: list[str], env: dict[str, str], check: bool = True, timeout: float = 600
) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    try:
        proc = subprocess.run(
            cmd,
            cwd=ROOT,
            env=env,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        if check:
            raise
        return time.monotonic() - started, subprocess.CompletedProcess(cmd, -1, b"", b"timed out")
    elapsed = time.monotonic() - started
    if check and proc.returncode != 0:
        shown = "" if "access" in cmd else proc.stdout.decode(errors="replace")[-2000:]
        sys.exit(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n"
            f"{proc.stderr.decode(errors='replace')[-3000:]}{shown}"
        )
    return elapsed, proc


def timed(label: str, cmds, env, admin, runs: int) -> tuple[str, float, int]:
    """Median wall time of `cmds()` (a list of commands run one after the other) and its requests."""
    walls, requests = [], []
    for i in range(runs):
        admin.reset_requests()
        total = 0.0
        for cmd in cmds(i):
            elapsed, _ = run(cmd, env)
            total += elapsed
        walls.append(total)
        requests.append(admin.requests()["total"])
    row = (label, statistics.median(walls), int(statistics.median(requests)))
    print(f"{row[0]:<52} {row[1]:6.2f} s {row[2]:4d} requests", flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    exe = shutil.which("gcloud")
    if exe is None:
        sys.exit("gcloud is not on the PATH: this benchmark needs the real gcloud CLI")
    with tempfile.TemporaryDirectory(prefix="bench-gcloud-") as tmp:
        proc = LocalCloudProcess(Path(tmp) / "state")
        proc.start(timeout=120)
        try:
            assert proc.admin is not None and proc.pid is not None
            proc.files.pid.write_text(f"{proc.pid}\n")  # so make's `localcloud up` finds it
            admin = proc.admin
            exports = gcloud_config(proc.files)
            genv = {
                k: v
                for k, v in gcloud_env(Path(exports["CLOUDSDK_CONFIG"])).items()
                if not k.lower().endswith("_proxy")
            }
            genv.update(exports)
            menv = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
            menv.update(proc.client_env, LOCALCLOUD_STATE_DIR=str(proc.state_dir), NO_COLOR="1")
            menv.pop("CONFIRM", None)
            run(["make", "-s", "--no-print-directory", "create-jobs"], menv)
            names = [
                line.split()[0]
                for line in run([exe, "run", "jobs", "list", "--format=value(metadata.name)"], genv)[1]
                .stdout.decode()
                .split()
            ]
            jobs = sorted(n for n in names if n.startswith("cloudact-"))
            assert len(jobs) == 8, jobs
            for job in jobs:  # some history for status and executions list (a job may fail here: no matter)
                run([exe, "run", "jobs", "execute", job, "--wait", f"--region={REGION}"], genv, False, 120)
            run(
                [exe, "run", "jobs", "create", BENCH_JOB, "--image=x/bench:latest", "--command=python",
                 f"--args={SCRIPT},--lines,1", "--max-retries=0", f"--region={REGION}", "--quiet"],
                genv,
            )  # fmt: skip
            latest = [exe, "run", "jobs", "executions", "list", f"--job={jobs[0]}", "--limit=1"]
            first = run([*latest, "--format=value(metadata.name)"], genv)[1].stdout.decode().strip()
            exec_list = ["run", "jobs", "executions", "list", f"--region={REGION}", "--limit=5"]
            log_filter = f'resource.type="cloud_run_job" AND resource.labels.job_name="{jobs[0]}"'
            loc = f"--location={REGION}"
            gcloud_cases = [
                ("startup (config get, no request)", lambda i: [["config", "get", "core/project"]]),
                ("run jobs list", lambda i: [["run", "jobs", "list"]]),
                ("run jobs describe", lambda i: [["run", "jobs", "describe", jobs[0]]]),
                (
                    "run jobs update --memory",
                    lambda i: [
                        ["run", "jobs", "update", BENCH_JOB, f"--memory={('1Gi', '512Mi')[i % 2]}", "-q"]
                    ],
                ),
                ("run jobs execute --wait", lambda i: [["run", "jobs", "execute", BENCH_JOB, "--wait"]]),
                ("run jobs executions list --limit=5", lambda i: [[*exec_list, f"--job={jobs[0]}"]]),
                (
                    "run jobs executions describe",
                    lambda i: [["run", "jobs", "executions", "describe", first]],
                ),
                ("scheduler jobs list", lambda i: [["scheduler", "jobs", "list", loc]]),
                ("scheduler jobs describe", lambda i: [["scheduler", "jobs", "describe", TRIGGER, loc]]),
                (
                    "scheduler jobs pause / resume",
                    lambda i: [["scheduler", "jobs", ("pause", "resume")[i % 2], TRIGGER, loc]],
                ),
                ("secrets list", lambda i: [["secrets", "list"]]),
                (
                    "secrets versions access latest",
                    lambda i: [["secrets", "versions", "access", "latest", "--secret=ca-root-api-key-local"]],
                ),
                ("logging read (a job's entries)", lambda i: [["logging", "read", log_filter, "--limit=20"]]),
                (
                    "gcloud run jobs executions list x 8 (one per job)",
                    lambda i: [[*exec_list, f"--job={job}"] for job in jobs],
                ),
            ]
            rows = []
            for label, args_of in gcloud_cases:
                rows.append(
                    timed(label, lambda i, f=args_of: [[exe, *a] for a in f(i)], genv, admin, args.runs)
                )
            make_status = ["make", "-s", "--no-print-directory", "status"]
            rows.append(
                timed("make status (the 8 jobs, one report)", lambda i: [make_status], menv, admin, args.runs)
            )
            if args.runs % 2 == 1:  # an odd count left the trigger paused
                run([exe, "scheduler", "jobs", "resume", TRIGGER, loc], genv)
        finally:
            proc.stop()
    status = next(r for r in rows if r[0].startswith("make status"))
    loop = next(r for r in rows if r[0].startswith("gcloud run jobs executions list x 8"))
    print(
        f"make status {status[1]:.2f} s vs gcloud executions list for the 8 jobs {loop[1]:.2f} s: "
        f"{loop[1] / status[1]:.1f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
