"""supabase_migrate on localcloud: requests and time per migration file, and a no-op re-run.

The Management API allows 120 requests a minute, so the request count matters more than speed:
the goal is one request per pending file plus a constant few (table check, create, read). Applies
--files generated migrations to a fresh localcloud, then runs again with nothing to do, and prints
the requests localcloud counted and the wall time of each. Asserts nothing (timings are
machine-dependent); a count above files + 3 is printed as a regression.

    .venv/bin/python bench/migrate.py [--files 50]

Figures (2 cores, idle): 50 files in 53 requests and a no-op in 2, both before and after the job
scripts moved from requests to jobs/transport.py; per file 71-76 ms before, 25-28 ms after (the
same localcloud; the no-op 0.49-0.53 s -> 0.21-0.28 s).
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import google.auth
from google.auth.transport.requests import AuthorizedSession

from localcloud.client import LocalCloudProcess

ROOT = Path(__file__).resolve().parents[1]
HOST = "api.supabase.com"
SECRET = "supabase-access-token-local"  # noqa: S105 - the secret's name, not its value
SECRET_URL = (
    f"https://secretmanager.googleapis.com/v1/projects/cloudact-local/secrets/{SECRET}/versions/latest:access"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="migrate-bench-"))
    migrations = root / "migrations"
    migrations.mkdir()
    migrations.joinpath("0000_schema.sql").write_text("CREATE SCHEMA bench;\n")
    for n in range(1, args.files):
        migrations.joinpath(f"{n:04d}_table.sql").write_text(
            f"CREATE TABLE bench.t{n} (id serial PRIMARY KEY, name text NOT NULL);\n"  # noqa: S608
            f"CREATE INDEX t{n}_name_idx ON bench.t{n} (name);\n"
            f"INSERT INTO bench.t{n} (name) SELECT 'row ' || g FROM generate_series(1, 100) AS g;\n"
        )
    proc = LocalCloudProcess(root / "state")
    try:
        proc.start()
        os.environ.update(proc.client_env)
        creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        with AuthorizedSession(creds) as session:
            response = session.get(SECRET_URL)
            response.raise_for_status()
            token = base64.b64decode(response.json()["payload"]["data"]).decode().strip()
        proc.admin.admin("supabase", "rate-limit", "POST", {"limit": 100_000, "window_seconds": 60})
        env = {
            **os.environ,
            "SUPABASE_ACCESS_TOKEN": token,
            "SUPABASE_PROJECT_REF": "local",
            "MIGRATIONS_DIR": str(migrations),
        }
        for label, expected in (("apply all", args.files + 3), ("nothing to do", 2)):
            proc.admin.reset_requests()
            started = time.monotonic()
            run = subprocess.run(
                [sys.executable, "jobs/manual/supabase_migrate.py"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
            elapsed = time.monotonic() - started
            if run.returncode != 0:
                print(run.stderr)
                return 1
            requests = proc.admin.requests()["by_host"].get(HOST, 0)
            verdict = "ok" if requests <= expected else f"REGRESSION: expected at most {expected}"
            print(
                f"{label:14s} {args.files} files: {requests} requests ({verdict}), {elapsed:.2f}s wall, "
                f"{elapsed / args.files * 1000:.0f} ms per file"
            )
    finally:
        proc.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
