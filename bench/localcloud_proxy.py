"""Requests per second through localcloud's proxy: authenticated Secret Manager reads on one keep-alive
session, and new TLS tunnels per request. Also shows the request counter the benchmarks rely on.

    .venv/bin/python bench/localcloud_proxy.py [--requests 300]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import google.auth
import requests
from google.auth.transport.requests import AuthorizedSession

from localcloud.client import LocalCloudProcess

URL = "https://secretmanager.googleapis.com/v1/projects/cloudact-local/secrets/ca-root-api-key-local"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="localcloud-bench-"))
    proc = LocalCloudProcess(root / "state")
    try:
        proc.start()
        os.environ.update(proc.client_env)
        creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        with AuthorizedSession(creds) as session:
            session.get(URL).raise_for_status()
            proc.admin.reset_requests()
            started = time.monotonic()
            for _ in range(args.requests):
                session.get(URL).raise_for_status()
            keepalive = time.monotonic() - started
        token = creds.token
        started = time.monotonic()
        n_new = max(args.requests // 5, 1)
        for _ in range(n_new):
            with requests.Session() as fresh:  # a new CONNECT + TLS handshake each time
                fresh.get(URL, headers={"Authorization": f"Bearer {token}"}).raise_for_status()
        tunnels = time.monotonic() - started
        counted = proc.admin.requests()
        print(
            f"keep-alive: {args.requests} requests in {keepalive:.2f}s "
            f"= {args.requests / keepalive:.0f} req/s"
        )
        print(f"new tunnel each: {n_new} requests in {tunnels:.2f}s = {n_new / tunnels:.0f} req/s")
        print(f"counted by localcloud: {counted['total']} ({counted['by_host_method']})")
    finally:
        proc.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
