"""supabase_migrate as a process against localcloud's Management API over a real PostgreSQL.

Through the proxy, as on ENV=local: the job gets localcloud's client environment and the token
from Secret Manager, nothing else. Each test writes its migrations into a temporary directory,
puts its objects in a schema of its own, and moves any existing tracking table aside for its
duration (the PostgreSQL is shared by the test session).
"""

# The SQL here builds the tests' own generated schema names; it is the input under test.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from google.cloud import secretmanager
from google.oauth2 import service_account

from jobs.migrate_sql import literal

ROOT = Path(__file__).resolve().parents[2]
MODULE = "jobs.manual.supabase_migrate"
URL = "https://api.supabase.com/v1/projects/local/database/query"
FAST_HTTP = {
    "HTTP_CONNECT_TIMEOUT_SECONDS": "5",
    "HTTP_TIMEOUT_SECONDS": "30",
    "HTTP_MAX_ATTEMPTS": "4",
    "HTTP_DEADLINE_SECONDS": "60",
    "HTTP_BACKOFF_SECONDS": "0.1",
    "HTTP_BACKOFF_MAX_SECONDS": "0.5",
}


@dataclass
class Supabase:
    token: str
    session: requests.Session
    client_env: dict[str, str]

    def query(self, sql: str) -> list[dict]:
        response = self.session.post(
            URL, json={"query": sql}, headers={"Authorization": f"Bearer {self.token}"}, timeout=60
        )
        assert response.status_code in (200, 201), response.text
        return response.json()


@pytest.fixture(scope="module")
def supabase(localcloud):
    creds = service_account.Credentials.from_service_account_file(
        str(localcloud.key_file), scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    with pytest.MonkeyPatch.context() as mp:
        for name, value in localcloud.client_env.items():
            mp.setenv(name, value)
        client = secretmanager.SecretManagerServiceClient(credentials=creds, transport="rest")
        name = "projects/cloudact-local/secrets/supabase-access-token-local/versions/latest"
        token = client.access_secret_version(name=name).payload.data.decode().strip()
    session = requests.Session()
    session.trust_env = False
    session.proxies = {"https": localcloud.proxy_url}
    session.verify = str(localcloud.ca_file)
    # Many short runs in a row: lift the 120/minute limit for this module, restore it after.
    localcloud.admin.admin("supabase", "rate-limit", "POST", {"limit": 100_000, "window_seconds": 60})
    try:
        yield Supabase(token, session, dict(localcloud.client_env))
    finally:
        localcloud.admin.admin("supabase", "rate-limit", "POST", {"limit": 120, "window_seconds": 60})
        session.close()


@dataclass
class Db:
    supabase: Supabase
    schema: str  # the test's own schema: every object its migrations create lives there
    directory: Path

    def query(self, sql: str) -> list[dict]:
        return self.supabase.query(sql)

    def write(self, name: str, sql: str) -> Path:
        path = self.directory / name
        path.write_text(sql.replace("{s}", self.schema))
        return path

    def rows(self) -> list[dict]:
        return self.query(
            "SELECT filename, checksum, execution_time_ms, applied_by, applied_at::text AS applied_at "
            "FROM public.schema_migrations ORDER BY filename"
        )

    def exists(self, relation: str) -> bool:
        found = self.query(
            f"SELECT to_regclass({literal(relation.replace('{s}', self.schema))}) IS NOT NULL AS e"
        )
        return found[0]["e"]

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            **self.supabase.client_env,
            "SUPABASE_ACCESS_TOKEN": self.supabase.token,
            "SUPABASE_PROJECT_REF": "local",
            "MIGRATIONS_DIR": str(self.directory),
            **FAST_HTTP,
        }
        env.update(overrides)
        return env

    def migrate(self, *args: str, **overrides: str) -> tuple[int, str]:
        proc = subprocess.run(
            [sys.executable, "-m", MODULE, *args],
            cwd=ROOT,
            env=self.env(**overrides),
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = proc.stdout + proc.stderr
        assert self.supabase.token not in output, "the access token leaked into the output"
        return proc.returncode, output


@pytest.fixture
def db(supabase, tmp_path):
    suffix = uuid.uuid4().hex[:10]
    schema, saved = f"mig_{suffix}", f"mig_saved_{suffix}"
    # Keep whatever tracking table the session has (e.g. an end-to-end test's) out of the way.
    supabase.query(
        f"CREATE SCHEMA {saved}; DO $$ BEGIN IF to_regclass('public.schema_migrations') IS NOT NULL THEN "
        f"ALTER TABLE public.schema_migrations SET SCHEMA {saved}; END IF; END $$;"
    )
    directory = tmp_path / "migrations"
    directory.mkdir()
    try:
        yield Db(supabase, schema, directory)
    finally:
        supabase.query(
            f"DROP SCHEMA IF EXISTS {schema} CASCADE; DROP TABLE IF EXISTS public.schema_migrations; "
            f"DO $$ BEGIN IF to_regclass('{saved}.schema_migrations') IS NOT NULL THEN "
            f"ALTER TABLE {saved}.schema_migrations SET SCHEMA public; END IF; END $$; DROP SCHEMA {saved};"
        )


def three_files(db: Db) -> None:
    db.write(
        "01_schema.sql", "CREATE SCHEMA {s};\nCREATE TABLE {s}.orgs (id serial PRIMARY KEY, slug text);\n"
    )
    db.write(
        "02_members.sql", "CREATE TABLE {s}.members (org_id int REFERENCES {s}.orgs (id), email text);\n"
    )
    db.write("03_view.sql", "CREATE VIEW {s}.member_emails AS SELECT email FROM {s}.members;\n")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_text().encode()).hexdigest()


# --------------------------------------------------------------------------- the cases


def test_fresh_database_applies_all_then_a_second_run_applies_none(db):
    three_files(db)
    code, output = db.migrate()
    assert code == 0, output
    assert "0 migrations already applied, 3 new" in output
    for name in ("01_schema.sql", "02_members.sql", "03_view.sql"):
        assert f"applied {name} in " in output
    last = output.strip().splitlines()[-1]
    assert re.search(r"INFO 0 migrations already applied, 3 new: applied 3 in \d+\.\ds$", last), last
    rows = db.rows()
    assert [r["filename"] for r in rows] == ["01_schema.sql", "02_members.sql", "03_view.sql"]
    for row in rows:
        assert row["checksum"] == sha256(db.directory / row["filename"])  # full sha256, 64 hex
        assert isinstance(row["execution_time_ms"], int) and row["execution_time_ms"] >= 0
        assert row["applied_by"].startswith("manual:")
    assert db.exists("{s}.member_emails")

    code, output = db.migrate()
    assert code == 0, output
    assert output.strip().endswith("3 migrations already applied, 0 new: the database is up to date")
    assert "applying" not in output
    assert db.rows() == rows  # nothing re-recorded


def test_a_failing_third_file_leaves_one_and_two_applied_and_nothing_of_three(db):
    db.write("01_schema.sql", "CREATE SCHEMA {s};\nCREATE TABLE {s}.one (id int);\n")
    db.write("02_two.sql", "CREATE TABLE {s}.two (id int);\nINSERT INTO {s}.two VALUES (2);\n")
    db.write(
        "03_three.sql",
        "CREATE TABLE {s}.three (id int);\nINSERT INTO {s}.three VALUES (3);\n"
        "INSERT INTO {s}.nope VALUES (1);\n",
    )
    db.write("04_four.sql", "CREATE TABLE {s}.four (id int);\n")
    code, output = db.migrate()
    assert code == 1, output
    assert "03_three.sql failed: 42P01:" in output
    assert f'relation "{db.schema}.nope" does not exist' in output
    assert "(at line 3 of 03_three.sql)" in output
    assert [r["filename"] for r in db.rows()] == ["01_schema.sql", "02_two.sql"]
    assert db.exists("{s}.two")
    assert not db.exists("{s}.three")  # none of its objects: the whole file rolled back
    assert not db.exists("{s}.four")  # stopped at the first failure

    # Fixed, the next run applies 3 and 4 only.
    db.write("03_three.sql", "CREATE TABLE {s}.three (id int);\nINSERT INTO {s}.three VALUES (3);\n")
    code, output = db.migrate()
    assert code == 0, output
    assert "2 migrations already applied, 2 new" in output
    assert db.query(f"SELECT count(*)::int AS n FROM {db.schema}.three") == [{"n": 1}]


def test_two_runs_started_together_apply_each_file_once(db):
    db.write("01_schema.sql", "CREATE SCHEMA {s};\nCREATE TABLE {s}.log (file text);\n")
    for n in range(2, 7):
        # Each file leaves a visible trace: a second application would add a second row.
        db.write(f"0{n}_step.sql", f"INSERT INTO {{s}}.log VALUES ('0{n}');\nSELECT pg_sleep(0.2);\n")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", MODULE],
            cwd=ROOT,
            env=db.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=120)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [p.returncode for p in procs] == [0, 0], outputs
    log = db.query(f"SELECT file, count(*)::int AS n FROM {db.schema}.log GROUP BY file ORDER BY file")
    assert log == [{"file": f"0{n}", "n": 1} for n in range(2, 7)]
    assert [r["filename"] for r in db.rows()] == ["01_schema.sql"] + [f"0{n}_step.sql" for n in range(2, 7)]
    applied = [set(re.findall(r" applied (\S+\.sql) in ", o)) for o in outputs]
    skipped = [set(re.findall(r" (\S+\.sql) was applied by another run meanwhile", o)) for o in outputs]
    # Each file was applied by exactly one of the runs; the other found its row and skipped it.
    assert applied[0] | applied[1] == {p.name for p in db.directory.iterdir()}
    assert not applied[0] & applied[1]
    for output, mine, by_other in zip(outputs, applied, skipped, strict=True):
        new = int(re.search(r"already applied, (\d+) new", output).group(1))
        assert len(mine) + len(by_other) == new


def test_an_edited_applied_file_stops_the_run_before_anything_is_applied(db):
    three_files(db)
    assert db.migrate()[0] == 0
    before = db.rows()
    db.write("02_members.sql", "CREATE TABLE {s}.members (org_id int, email text, role text);\n")
    db.write("04_new.sql", "CREATE TABLE {s}.new (id int);\n")
    code, output = db.migrate()
    assert code == 1
    assert "applied migrations changed on disk since they ran: 02_members.sql" in output
    assert "--repair" in output
    assert not db.exists("{s}.new")
    assert db.rows() == before

    code, output = db.migrate("--repair")
    assert code == 0, output
    assert "re-recorded the checksum of 02_members.sql (--repair)" in output
    assert "WARNING" in output
    rows = {r["filename"]: r for r in db.rows()}
    assert rows["02_members.sql"]["checksum"] == sha256(db.directory / "02_members.sql")
    assert "04_new.sql" in rows and db.exists("{s}.new")


def test_a_tracked_row_of_the_legacy_16_character_form_is_accepted(db):
    three_files(db)
    assert db.migrate()[0] == 0
    # What the earlier scripts wrote: sha256[:16] and applied_by 'cloud_run_job'.
    db.query(
        "UPDATE public.schema_migrations SET checksum = left(checksum, 16), applied_by = 'cloud_run_job' "
        "WHERE filename IN ('01_schema.sql', '02_members.sql')"
    )
    code, output = db.migrate()
    assert code == 0, output
    assert "3 migrations already applied, 0 new" in output
    assert "changed on disk" not in output
    # A 16-character prefix that does not match is drift all the same.
    db.query(
        "UPDATE public.schema_migrations SET checksum = '0123456789abcdef' WHERE filename = '03_view.sql'"
    )
    code, output = db.migrate()
    assert code == 1
    assert "changed on disk since they ran: 03_view.sql (recorded 0123456789abcdef" in output


def test_plan_changes_nothing(db):
    three_files(db)
    code, output = db.migrate("--plan")
    assert code == 0, output
    assert "0 migrations already applied, 3 new" in output
    assert [line.split("would apply ")[1] for line in output.splitlines() if "would apply" in line] == [
        "01_schema.sql",
        "02_members.sql",
        "03_view.sql",
    ]
    assert not db.exists("public.schema_migrations")  # not even the tracking table
    assert not db.exists("{s}.orgs")

    assert db.migrate()[0] == 0
    db.write("04_more.sql", "CREATE TABLE {s}.more (id int);\n")
    before = db.rows()
    code, output = db.migrate("--plan")
    assert code == 0
    assert "3 migrations already applied, 1 new" in output and "would apply 04_more.sql" in output
    assert db.rows() == before and not db.exists("{s}.more")


# --------------------------------------------------------------------------- more behaviour


def test_a_no_transaction_file_runs_alone_and_is_recorded_after(db):
    db.write("01_schema.sql", "CREATE SCHEMA {s};\nCREATE TABLE {s}.big (id int, email text);\n")
    db.write(
        "02_index.sql",
        "-- migrate:no-transaction\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS big_email_idx ON {s}.big (email);\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS big_id_idx ON {s}.big (id);\n",
    )
    code, output = db.migrate()
    assert code == 0, output
    assert "applying 02_index.sql WITHOUT a transaction" in output
    assert "applied 02_index.sql in" in output and "(no transaction; recorded after)" in output
    assert db.exists("{s}.big_email_idx") and db.exists("{s}.big_id_idx")
    assert db.rows()[1]["checksum"] == sha256(db.directory / "02_index.sql")


def test_concurrently_in_a_transactional_file_is_refused_before_anything_runs(db):
    db.write("01_schema.sql", "CREATE SCHEMA {s};\nCREATE TABLE {s}.big (id int);\n")
    db.write("02_index.sql", "CREATE INDEX CONCURRENTLY big_idx ON {s}.big (id);\n")
    code, output = db.migrate()
    assert code == 2
    assert "02_index.sql line 1: CREATE INDEX CONCURRENTLY cannot run inside a transaction" in output
    assert "-- migrate:no-transaction" in output
    assert not db.exists("{s}.big")  # checked before the first file ran
    assert db.rows() == []


def test_a_tracked_file_missing_on_disk_and_a_late_file_are_reported(db):
    three_files(db)
    assert db.migrate()[0] == 0
    (db.directory / "03_view.sql").unlink()
    db.write("02_b_late.sql", "CREATE TABLE {s}.late (id int);\n")
    code, output = db.migrate()
    assert code == 0, output
    assert "03_view.sql is recorded as applied" in output and "missing from MIGRATIONS_DIR" in output
    assert "02_b_late.sql sorts before 03_view.sql, which is applied: it runs out of order" in output
    assert db.exists("{s}.late")


def test_a_lost_answer_is_resolved_by_reading_the_tracking_table_not_by_resending(db):
    db.write("01_schema.sql", "CREATE SCHEMA {s};\nCREATE TABLE {s}.log (n int);\n")
    # Runs longer than the job waits for an answer: the request times out, the server commits.
    db.write("02_slow.sql", "INSERT INTO {s}.log VALUES (1);\nSELECT pg_sleep(2.5);\n")
    code, output = db.migrate(HTTP_TIMEOUT_SECONDS="1")
    assert code == 0, output
    assert "02_slow.sql: " in output and "read timeout" in output
    assert "02_slow.sql was applied: public.schema_migrations has its row" in output
    assert "sending it again" not in output
    assert db.query(f"SELECT count(*)::int AS n FROM {db.schema}.log") == [{"n": 1}]
    assert [r["filename"] for r in db.rows()] == ["01_schema.sql", "02_slow.sql"]


def test_a_lost_answer_of_a_rolled_back_request_is_sent_again_once_confirmed_absent(db):
    db.write(
        "01_schema.sql", "CREATE SCHEMA {s};\nCREATE TABLE {s}.log (n int);\nCREATE SEQUENCE {s}.tries;\n"
    )
    # The first try outlives the job's wait and then fails (rolled back); a sequence is not
    # transactional, so the second try knows it is the second and succeeds.
    db.write(
        "02_flaky.sql",
        "INSERT INTO {s}.log VALUES (1);\n"
        "DO $$ BEGIN IF nextval('{s}.tries') = 1 THEN PERFORM pg_sleep(2.5); "
        "RAISE EXCEPTION 'first try fails'; END IF; END $$;\n",
    )
    code, output = db.migrate(HTTP_TIMEOUT_SECONDS="1")
    assert code == 0, output
    assert "02_flaky.sql was not applied (public.schema_migrations has no row for it" in output
    assert "sending it again" in output
    assert db.query(f"SELECT count(*)::int AS n FROM {db.schema}.log") == [{"n": 1}]
    assert db.query(f"SELECT last_value::int AS n FROM {db.schema}.tries") == [{"n": 2}]
    assert [r["filename"] for r in db.rows()] == ["01_schema.sql", "02_flaky.sql"]


def test_a_wrong_token_is_exit_1_and_never_printed(db):
    three_files(db)
    wrong = "sbp_wrong_" + uuid.uuid4().hex
    code, output = db.migrate(SUPABASE_ACCESS_TOKEN=wrong)
    assert code == 1
    assert "access token was refused" in output
    assert wrong not in output


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "it's",
        "back\\slash",
        "\\'; DROP TABLE x; --",
        "$$ $cloudact$ $tag$",
        "ünï\ncode\ttab",
        "E'x'",
    ],
)
def test_literal_round_trips_through_postgresql(supabase, value):
    assert supabase.query(f"SELECT {literal(value)} AS v") == [{"v": value}]


def test_the_repository_migrations_pass_the_plan(db):
    code, output = db.migrate("--plan", MIGRATIONS_DIR=str(ROOT / "migrations"))
    assert code == 0, output
    names = sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))
    assert f"0 migrations already applied, {len(names)} new" in output
    for name in names:
        assert f"would apply {name}" in output
    assert not db.exists("public.schema_migrations")


def test_in_cloud_run_it_logs_json_lines_and_records_the_execution(db):
    db.write("01_schema.sql", "CREATE SCHEMA {s};\n")
    proc = subprocess.run(
        [sys.executable, "-m", MODULE],
        cwd=ROOT,
        env=db.env(CLOUD_RUN_JOB="cloudact-manual-supabase-migrate", CLOUD_RUN_EXECUTION="migrate-x7k2p"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    entries = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {e["severity"] for e in entries} == {"INFO"}
    assert all(e["job"] == "cloudact-manual-supabase-migrate" for e in entries)
    assert "0 migrations already applied, 1 new" in [e["message"] for e in entries]
    assert db.supabase.token not in proc.stdout + proc.stderr
    assert db.rows()[0]["applied_by"] == "cloud_run_job:migrate-x7k2p"
