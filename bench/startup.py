"""Startup benchmark of the job scripts: time from process start to the first HTTP request.

For each API job script, run as the container runs it (`python -m jobs.<category>.<script>`), against
a local HTTP server in this process, beside `python -c pass` (a bare interpreter, start to exit), an
interpreter that only imports requests and api-core's retry module (the floor the runtime's HTTP
stack sets), and the same first call made with httpx + asyncio, as the earliest scripts made it.
There is no goal: it reports the figures, so a change that moves them shows.

    .venv/bin/python bench/startup.py [--runs 15] [--json]

httpx is not a dependency: it is installed with pip into a temporary directory for the run (and
removed after); without network the httpx column is left out.

Figures (2 cores, medians of 11 runs, milliseconds over `python -c pass`, ~11 ms):
- jobs/transport.py (http.client + ssl), scripts run as files: 48-49 (load 0.3).
- requests + google.api_core.retry, scripts run with -m: 161-163 (load 1.1). The import of that
  stack alone, to exit, is 187: requests (~110) and api-core's retry, whose exceptions module
  loads grpc (~55).
- Both back to back on a busier machine (bare 17-18 ms, load 0.9, --no-httpx): before 68-84,
  after 200-254; cpu ms 101-125 before, 282-348 after.
Earlier: requests with a hand-written loop 168-186; httpx + asyncio 203-332.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HTTPX_PIN = "httpx==0.28.1"
SCRIPTS = [
    ("bootstrap", "jobs.manual.bootstrap_smart", []),
    ("org-sync-all", "jobs.manual.org_sync_all", []),
    ("quota-reset", "jobs.daily.quota_reset_daily", []),
    ("stale-cleanup", "jobs.daily.stale_cleanup", []),
    ("alerts", "jobs.daily.alerts_daily", ["--dry-run"]),
    ("quota-monthly", "jobs.monthly.quota_reset_monthly", ["--force"]),
]
HTTP_STACK = "import requests, google.api_core.retry"
FLOORS = ("python -c pass", "import http stack")
# One body that satisfies every script (they read different fields).
REPLY = json.dumps(
    {
        "success": True,
        "status": "SYNCED",
        "orgs_processed": 1,
        "orgs_synced": 1,
        "orgs_created": 1,
        "failed_orgs": [],
        "tables_existing": ["t"],
        "tables_missing": [],
        "errors": [],
    }
).encode()
HTTPX_CALL = """
import asyncio, os
import httpx

async def main():
    async with httpx.AsyncClient(base_url=os.environ["API_SERVICE_URL"], timeout=30) as client:
        key = {"X-CA-Root-Key": os.environ["CA_ROOT_API_KEY"]}
        response = await client.post("/api/v1/admin/quota/reset-daily", headers=key, json={})
        response.raise_for_status()

asyncio.run(main())
"""


class FirstRequest:
    """Records when the first request of the current run arrived."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.at = 0.0

    def reset(self) -> None:
        self.event.clear()
        self.at = 0.0

    def hit(self) -> None:
        if not self.event.is_set():
            self.at = time.perf_counter()
            self.event.set()


def serve(first: FirstRequest) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self) -> None:
            first.hit()
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(REPLY)))
            self.end_headers()
            self.wfile.write(REPLY)

        do_GET = do_POST = _reply

        def log_message(self, *args) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _reap(proc: subprocess.Popen) -> tuple[int, float]:
    """Exit code and CPU milliseconds (user + system) of a finished child, from wait4's rusage."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, (usage.ru_utime + usage.ru_stime) * 1000


def time_to_first_request(cmd: list[str], env: dict[str, str], first: FirstRequest) -> tuple[float, float]:
    """(wall ms from start to the first request, CPU ms of the whole process)."""
    first.reset()
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not first.event.wait(60):
            raise RuntimeError(f"{cmd} made no request: {proc.stderr.read().decode()[-500:]}")
        elapsed = first.at - started
        err = proc.stderr.read()  # small: the job's log lines; EOF when it exits
        code, cpu = _reap(proc)
        if code != 0:
            raise RuntimeError(f"{cmd} exited {code}: {err.decode()[-500:]}")
        return elapsed * 1000, cpu
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def time_to_exit(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env)
    code, cpu = _reap(proc)
    if code != 0:
        raise RuntimeError(f"{cmd} exited {code}")
    return (time.perf_counter() - started) * 1000, cpu


def install_httpx(target: Path) -> bool:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(target),
            HTTPX_PIN,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        print(
            f"httpx not installed ({proc.stderr.strip().splitlines()[-1:]}): its column is left out",
            file=sys.stderr,
        )
    return proc.returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per command (median reported)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--no-httpx", action="store_true", help="skip the httpx + asyncio comparison")
    args = parser.parse_args(argv)

    load_before = f"{os.getloadavg()[0]:.2f}"
    first = FirstRequest()
    server = serve(first)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GCP_PROJECT_ID": "cloudact-local",
        "ENVIRONMENT": "local",
        "API_SERVICE_URL": url,
        "CA_ROOT_API_KEY": "bench-not-a-real-key",
    }
    python = sys.executable
    tmp = Path(tempfile.mkdtemp(prefix="bench-httpx-"))
    try:
        results: dict[str, list[float]] = {name: [] for name in FLOORS}
        cpu: dict[str, list[float]] = {name: [] for name in FLOORS}
        have_httpx = not args.no_httpx and install_httpx(tmp)
        commands: list[tuple[str, list[str], dict[str, str]]] = [
            (name, [python, "-m", module, *flags], env) for name, module, flags in SCRIPTS
        ]
        if have_httpx:
            commands.append(("httpx + asyncio", [python, "-c", HTTPX_CALL], {**env, "PYTHONPATH": str(tmp)}))
        for name, *_ in commands:
            results[name], cpu[name] = [], []
        # Interleaved rounds, so that a busy moment of the machine hits every command alike.
        for _ in range(args.runs):
            wall, used = time_to_exit([python, "-c", "pass"], env)
            results["python -c pass"].append(wall)
            cpu["python -c pass"].append(used)
            # The floor the runtime's HTTP stack sets: an interpreter that only imports it, to exit.
            wall, used = time_to_exit([python, "-c", HTTP_STACK], env)
            results["import http stack"].append(wall)
            cpu["import http stack"].append(used)
            for name, cmd, cmd_env in commands:
                wall, used = time_to_first_request(cmd, cmd_env, first)
                results[name].append(wall)
                cpu[name].append(used)
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(tmp, ignore_errors=True)

    median = {name: statistics.median(values) for name, values in results.items()}
    bare = median["python -c pass"]
    httpx = median.get("httpx + asyncio")
    print(f"Python {sys.version.split()[0]}, {args.runs} runs each, median milliseconds from process start")
    print("to the first request (bare interpreter and import floor: to exit).")
    print("cpu ms: user + system CPU of the whole process (all of its run), less sensitive to machine load.")
    cpu_median = {name: statistics.median(values) for name, values in cpu.items()}
    print(
        f"load average before: {load_before}; after: {os.getloadavg()[0]:.2f} (above the cores inflates wall)"
    )
    header = f"{'command':18} {'median':>8} {'min':>8} {'over bare':>10} {'x bare':>7}"
    header += f" {'x httpx':>8}" if httpx else ""
    header += f" {'cpu ms':>7}"
    print(header)
    print("-" * len(header))
    for name, values in results.items():
        over = median[name] - bare
        line = f"{name:18} {median[name]:8.1f} {min(values):8.1f} {over:10.1f} {median[name] / bare:7.2f}"
        if httpx:
            line += f" {median[name] / httpx:8.2f}"
        line += f" {cpu_median[name]:7.1f}"
        print(line)
    if args.json:
        print(
            json.dumps(
                {"runs": args.runs, "median_ms": median, "min_ms": {k: min(v) for k, v in results.items()}}
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
