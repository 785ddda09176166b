"""cloudact-manual-supabase-migrate: apply pending Supabase migrations exactly once, in name order.

Release step 1. Talks to the Supabase Management API (`POST /v1/projects/{ref}/database/query`),
which runs a request's statements as one transaction. So each pending file goes in ONE request
together with its guard and its tracking row:

    SELECT pg_advisory_xact_lock(<key>); DO <refuse if the row exists>; ...;   -- line 1
    <the file's SQL>
    ;
    INSERT INTO public.schema_migrations (...) VALUES (...) RETURNING execution_time_ms;

The lock is transaction-level (a session lock would be stranded by Supabase's pooler), so two runs
at once serialise per file, and the second finds the row and skips the file. A failing file
leaves neither its changes nor its row. After a timeout or a transport error the job re-reads
the tracking table (under the same lock, so it waits for a transaction still in flight) and only
sends the file again when the row is not there.

A file whose first line is `-- migrate:no-transaction` runs statement by statement, outside any
transaction (CREATE INDEX CONCURRENTLY, VACUUM, ...), and is recorded after its last statement.

Environment:
  SUPABASE_ACCESS_TOKEN   a Supabase personal access token (secret; never printed)
  SUPABASE_PROJECT_REF    the project ref (inventory's supabase_project_ref; `local` on ENV=local)
  MIGRATIONS_DIR          the directory of NN_name.sql files (default /app/migrations/supabase_db)
  SUPABASE_API_URL        the Management API base URL (default https://api.supabase.com)
  HTTP_TIMEOUT_SECONDS, HTTP_MAX_ATTEMPTS, HTTP_DEADLINE_SECONDS, LOG_LEVEL (see jobs/runtime/__init__.py)

Exit codes: 0 done (or nothing to do), 1 failed (a SQL error, drift, a refused token, the API
unreachable), 2 bad configuration or a migration file that cannot run as written.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import logging
import os
import re
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs import migrate_sql, runtime
from jobs.migrate_sql import literal
from jobs.supabase_api import ManagementApi, MaybeApplied, SqlError

log = logging.getLogger("cloudact.jobs.migrate")

DEFAULT_DIR = "/app/migrations/supabase_db"
DEFAULT_API_URL = "https://api.supabase.com"
TABLE = "public.schema_migrations"  # qualified: a file may change search_path before our INSERT
FILE_NAME = re.compile(r"^\d{2,}_[A-Za-z0-9_.-]+\.sql$")
PROJECT_REF = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# Transaction-level advisory lock shared by every run: the first 8 bytes of
# sha256("cloudact.schema_migrations") as a signed bigint. Constant, so older and newer runs agree.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"cloudact.schema_migrations").digest()[:8], "big", signed=True)
# Raised by the guard when another run recorded the file first; any 5 of [0-9A-Z] is a valid code.
GUARD_SQLSTATE = "CA409"
GUARD_MARK = "cloudact-migrate: already applied"
LEGACY_CHECKSUM_LEN = 16  # rows written by the earlier scripts hold sha256[:16]
MAX_RESENDS = 2  # a file confirmed absent after a lost answer is sent again at most this often
# Supabase answers a query within ~55 s; wait a little longer before calling an answer lost.
HTTP = runtime.HttpSettings(connect_timeout=10, read_timeout=90, max_attempts=5, deadline=600)

CREATE_TABLE = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    id serial PRIMARY KEY,
    filename varchar(255) UNIQUE NOT NULL,
    applied_at timestamptz DEFAULT now(),
    checksum varchar(64),
    execution_time_ms int,
    applied_by varchar(255)
)"""


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Config:
    token: str = field(repr=False)
    project_ref: str
    directory: Path
    api_url: str
    http: runtime.HttpSettings
    applied_by: str


def load_config(environ) -> Config:
    token = runtime.require_env("SUPABASE_ACCESS_TOKEN", environ, "the Supabase access token (a secret)")
    runtime.add_secret(token)
    if any(c.isspace() or not c.isprintable() for c in token):
        raise runtime.ConfigError(
            "SUPABASE_ACCESS_TOKEN is not valid: it contains whitespace or control characters"
        )
    ref = runtime.require_env("SUPABASE_PROJECT_REF", environ, "the Supabase project ref of this environment")
    if not PROJECT_REF.fullmatch(ref):
        raise runtime.ConfigError(
            f"SUPABASE_PROJECT_REF={ref!r} is not valid; a project ref is lowercase letters, digits "
            "and dashes"
        )
    raw_dir = runtime.env_str("MIGRATIONS_DIR", environ) or DEFAULT_DIR
    directory = Path(raw_dir)
    if not directory.is_dir():
        raise runtime.ConfigError(f"MIGRATIONS_DIR={raw_dir!r} is not a directory (set MIGRATIONS_DIR)")
    api_url = runtime.validate_url(
        "SUPABASE_API_URL", runtime.env_str("SUPABASE_API_URL", environ) or DEFAULT_API_URL
    )
    return Config(
        token=token,
        project_ref=ref,
        directory=directory,
        api_url=api_url,
        http=runtime.HttpSettings.from_env(HTTP, environ),
        applied_by=_applied_by(environ),
    )


def _applied_by(environ) -> str:
    """Who applied a file: the Cloud Run execution, else user@host (earlier scripts wrote `cloud_run_job`)."""
    execution = runtime.env_str("CLOUD_RUN_EXECUTION", environ)
    if execution:
        return f"cloud_run_job:{execution}"[:255]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        user = str(os.getuid())
    return f"manual:{user}@{socket.gethostname()}"[:255]


# --------------------------------------------------------------------------- migration files


@dataclass
class Migration:
    name: str
    text: str  # as read in text mode (universal newlines), which is what the checksum covers
    checksum: str  # sha256 hex of the UTF-8 text, 64 characters
    no_transaction: bool
    _statements: list[migrate_sql.Statement] | None = None

    @property
    def sql(self) -> str:
        return self.text.removeprefix("\ufeff")

    def statements(self) -> list[migrate_sql.Statement]:
        if self._statements is None:
            self._statements = migrate_sql.split(self.sql)
        return self._statements

    def problems(self) -> str | None:
        """Why this file cannot run as written (checked before anything is applied), else None."""
        try:
            statements = self.statements()
        except migrate_sql.SqlSyntaxError as exc:
            return f"{self.name}: cannot read its SQL: {exc}"
        if not statements:
            return f"{self.name} has no SQL statements"
        for stmt in statements:
            control = migrate_sql.transaction_control(stmt)
            if control:
                return (
                    f"{self.name} line {stmt.line}: {control} controls the transaction itself; remove it "
                    "(each file already runs as one transaction, or statement by statement when marked "
                    "`-- migrate:no-transaction`)"
                )
            refused = migrate_sql.needs_no_transaction(stmt)
            if refused and not self.no_transaction:
                return (
                    f"{self.name} line {stmt.line}: {refused} cannot run inside a transaction; put it in a "
                    "file of its own whose first line is `-- migrate:no-transaction`"
                )
        return None


def checksum_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_migrations(directory: Path) -> list[Migration]:
    """The NN_name.sql files of `directory` in name order; a badly named or unreadable one is an error."""
    bad: list[str] = []
    found: list[Migration] = []
    for entry in sorted(os.listdir(directory)):
        path = directory / entry
        if not entry.lower().endswith(".sql"):
            log.debug("ignoring %s: not a .sql file", entry)
            continue
        if not FILE_NAME.fullmatch(entry) or len(entry) > 255:
            bad.append(repr(entry))
            continue
        if not path.is_file():
            raise runtime.ConfigError(f"MIGRATIONS_DIR: {entry} is not a regular file")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise runtime.ConfigError(f"MIGRATIONS_DIR: {entry} is not UTF-8 text ({exc.reason})") from None
        except OSError as exc:
            raise runtime.ConfigError(f"MIGRATIONS_DIR: cannot read {entry}: {exc.strerror}") from None
        first_line = text.removeprefix("\ufeff").split("\n", 1)[0]
        found.append(
            Migration(
                name=entry,
                text=text,
                checksum=checksum_of(text),
                no_transaction=bool(migrate_sql.NO_TRANSACTION_MARKER.fullmatch(first_line.strip())),
            )
        )
    if bad:
        raise runtime.ConfigError(
            f"MIGRATIONS_DIR={str(directory)!r} holds files that are not migrations: {', '.join(bad)}; "
            "a migration is named NN_name.sql (two or more digits, an underscore, then letters, digits, "
            "'_', '.' or '-'; at most 255 characters)"
        )
    return found


def checksum_matches(recorded: str | None, actual: str) -> bool | None:
    """True/False; None when the row holds no checksum. A 16-character legacy prefix is accepted."""
    if recorded is None or not recorded.strip():
        return None
    recorded = recorded.strip().lower()
    return recorded == actual or (len(recorded) == LEGACY_CHECKSUM_LEN and actual.startswith(recorded))


# --------------------------------------------------------------------------- the run


def _lock() -> str:
    return f"SELECT pg_advisory_xact_lock({LOCK_KEY})"


@dataclass
class Outcome:
    applied: list[str] = field(default_factory=list)
    by_other_run: list[str] = field(default_factory=list)


class Migrator:
    def __init__(self, config: Config, migrations: list[Migration], api: ManagementApi):
        self.config = config
        self.migrations = migrations
        self.api = api

    # ---- reading state

    def table_exists(self) -> bool:
        rows = self.api.query(
            f"SELECT to_regclass({literal(TABLE)}) IS NOT NULL AS present", read_only=True, idempotent=True
        )
        return bool(rows and rows[0].get("present") is True)

    def ensure_table(self) -> None:
        # Under the lock: two first runs at once would otherwise race on CREATE TABLE IF NOT EXISTS.
        self.api.query(f"{_lock()};\n{CREATE_TABLE};", idempotent=True)
        log.info("created the tracking table %s (unless a concurrent run just did)", TABLE)

    def recorded(self) -> dict[str, dict[str, Any]]:
        rows = self.api.query(
            f"SELECT filename, checksum, applied_at::text AS applied_at, applied_by FROM {TABLE} "  # noqa: S608
            "ORDER BY filename",
            read_only=True,
            idempotent=True,
        )
        return {str(row.get("filename")): row for row in rows}

    def recorded_checksum(self, name: str) -> tuple[bool, str | None]:
        """Whether `name` has a row, read after any transaction that holds the lock has ended."""
        rows = self.api.query(
            f"{_lock()};\nSELECT count(*) AS n, max(checksum) AS checksum FROM {TABLE} "
            f"WHERE filename = {literal(name)};",
            idempotent=True,
        )
        if not rows or "n" not in rows[-1]:
            raise runtime.JobFailed(f"Supabase answered the check of {name} with {rows!r}")
        return int(rows[-1]["n"]) > 0, rows[-1].get("checksum")

    # ---- the run

    def run(self, *, plan: bool, repair: bool) -> str:
        started = time.monotonic()
        exists = self.table_exists()
        if not exists and not plan:
            self.ensure_table()
            exists = True  # read it even so: a run started at the same time may have filled it already
        recorded = self.recorded() if exists else {}
        on_disk = {m.name: m for m in self.migrations}
        pending = [m for m in self.migrations if m.name not in recorded]
        # The summary line operators see (toolkit.run matches it): the first log line and the last.
        counts = f"{len(recorded)} migrations already applied, {len(pending)} new"
        log.info("%s", counts)
        latest = max(recorded, default="")
        for m in pending:
            if m.name < latest:
                log.warning("%s sorts before %s, which is applied: it runs out of order", m.name, latest)

        for name, row in recorded.items():
            if name not in on_disk:
                log.warning(
                    "%s is recorded as applied (%s by %s) but missing from MIGRATIONS_DIR",
                    name,
                    row.get("applied_at") or "?",
                    row.get("applied_by") or "?",
                )
        drifted, unknown = [], []
        for name, row in recorded.items():
            if name in on_disk:
                match = checksum_matches(row.get("checksum"), on_disk[name].checksum)
                if match is False:
                    drifted.append((on_disk[name], row.get("checksum")))
                elif match is None:
                    unknown.append(on_disk[name])
        for m in unknown:
            log.warning(
                "%s has no checksum recorded, so it cannot be checked for changes (--repair records it)",
                m.name,
            )
        if drifted and not repair:
            listing = ", ".join(
                f"{m.name} (recorded {str(c)[:16]}..., file {m.checksum[:16]}...)" for m, c in drifted
            )
            raise runtime.JobFailed(
                f"applied migrations changed on disk since they ran: {listing}. Nothing was applied. Restore "
                "the files and put the change in a new migration, or re-record them with --repair"
            )

        problems = [p for m in pending if (p := m.problems())]
        if problems:
            raise runtime.ConfigError("; ".join(problems))
        to_repair = [m for m, _ in drifted] + (unknown if repair else [])

        if plan:
            for m in to_repair:
                log.info("would re-record the checksum of %s (--repair)", m.name)
            for m in pending:
                log.info(
                    "would apply %s%s",
                    m.name,
                    " (no transaction: statement by statement)" if m.no_transaction else "",
                )
            return f"{counts}: plan only, {len(pending)} would be applied; nothing was changed"

        for m in to_repair:
            self.repair(m)
        outcome = Outcome()
        for m in pending:
            if m.no_transaction:
                self.apply_without_transaction(m, outcome)
            else:
                self.apply(m, outcome)
        if not pending:
            return f"{counts}: the database is up to date"
        summary = f"{counts}: applied {len(outcome.applied)} in {time.monotonic() - started:.1f}s"
        if outcome.by_other_run:
            summary += f", {len(outcome.by_other_run)} applied by another run meanwhile"
        return summary

    def repair(self, m: Migration) -> None:
        self.api.query(
            f"{_lock()};\nUPDATE {TABLE} SET checksum = {literal(m.checksum)} "
            f"WHERE filename = {literal(m.name)};"
        )
        log.warning(
            "re-recorded the checksum of %s (--repair): the database keeps what the earlier version of the "
            "file did; the edit itself was NOT applied",
            m.name,
        )

    def transactional_sql(self, m: Migration) -> str:
        """Lock, guard and timer on line 1 (so an error's LINE n is line n-1 of the file), then the file."""
        name = literal(m.name)
        guard = migrate_sql.dollar_quote(  # every value quoted by literal()
            f"BEGIN IF EXISTS (SELECT 1 FROM {TABLE} WHERE filename = {name}) "  # noqa: S608
            "THEN RAISE EXCEPTION USING "
            f"ERRCODE = '{GUARD_SQLSTATE}', MESSAGE = {literal(f'{GUARD_MARK}: {m.name}')}; END IF; END",
            "cloudact_guard",
        )
        preamble = (
            f"{_lock()}; DO {guard}; "
            "SELECT set_config('cloudact.migrate_started', clock_timestamp()::text, true);"
        )
        elapsed = (
            "(extract(epoch FROM clock_timestamp() - "
            "current_setting('cloudact.migrate_started')::timestamptz) * 1000)::int"
        )
        insert = (
            f"INSERT INTO {TABLE} (filename, checksum, execution_time_ms, applied_by) "  # noqa: S608
            f"VALUES ({name}, {literal(m.checksum)}, {elapsed}, {literal(self.config.applied_by)}) "
            "RETURNING execution_time_ms;"
        )
        return f"{preamble}\n{m.sql}\n;\n{insert}"

    def apply(self, m: Migration, outcome: Outcome) -> None:
        sql = self.transactional_sql(m)
        log.info("applying %s", m.name)
        sends = 0
        while True:
            sends += 1
            started = time.monotonic()
            try:
                rows = self.api.query(sql)
            except SqlError as exc:
                if exc.sqlstate == GUARD_SQLSTATE or GUARD_MARK in exc.text:
                    log.info("%s was applied by another run meanwhile; skipped", m.name)
                    outcome.by_other_run.append(m.name)
                    return
                raise runtime.JobFailed(
                    f"{m.name} failed: {describe_sql_error(exc, m, line_offset=1)}; nothing of it was "
                    "applied (its transaction rolled back)"
                ) from None
            except MaybeApplied as exc:
                log.warning("%s: %s; reading %s to learn whether it was applied", m.name, exc, TABLE)
                if self._confirm_after_lost_answer(m, exc, sends):
                    outcome.applied.append(m.name)
                    return
                continue
            ms = round((time.monotonic() - started) * 1000)
            db_ms = rows[-1].get("execution_time_ms") if rows else None
            log.info(
                "applied %s in %d ms%s", m.name, ms, f" (database {db_ms} ms)" if db_ms is not None else ""
            )
            outcome.applied.append(m.name)
            return

    def _confirm_after_lost_answer(self, m: Migration, exc: MaybeApplied, sends: int) -> bool:
        """True when the lost request did apply `m`; False to send it again; JobFailed otherwise."""
        try:
            present, recorded = self.recorded_checksum(m.name)
        except runtime.JobFailed as read_exc:
            raise runtime.JobFailed(
                f"{m.name}: {exc}; and reading {TABLE} to learn whether it was applied failed too: "
                f"{read_exc}. Run the job again: it reads the table before doing anything"
            ) from None
        if present:
            if checksum_matches(recorded, m.checksum) is False:
                raise runtime.JobFailed(
                    f"{m.name} is recorded with another checksum ({recorded}) than the file's"
                )
            log.info(
                "%s was applied: %s has its row (the answer was lost, the transaction committed)",
                m.name,
                TABLE,
            )
            return True
        if sends > MAX_RESENDS:
            raise runtime.JobFailed(
                f"{m.name}: {exc}; {TABLE} shows it was not applied; gave up after {sends} tries"
            )
        log.warning(
            "%s was not applied (%s has no row for it, its transaction rolled back); sending it again",
            m.name,
            TABLE,
        )
        return False

    def apply_without_transaction(self, m: Migration, outcome: Outcome) -> None:
        present, _ = self.recorded_checksum(m.name)
        if present:
            log.info("%s was applied by another run meanwhile; skipped", m.name)
            outcome.by_other_run.append(m.name)
            return
        statements = m.statements()
        log.info(
            "applying %s WITHOUT a transaction (-- migrate:no-transaction): %d statements one by one, "
            "recorded after the last",
            m.name,
            len(statements),
        )
        started = time.monotonic()
        for n, stmt in enumerate(statements, 1):
            try:
                self.api.query(stmt.text)
            except SqlError as exc:
                raise runtime.JobFailed(
                    f"{m.name} failed at statement {n} of {len(statements)} (line {stmt.line}): "
                    f"{describe_sql_error(exc, m, line_offset=None)}; it runs without a transaction, "
                    f"so its first {n - 1} statements stay done and it is not recorded"
                ) from None
            except MaybeApplied as exc:
                raise runtime.JobFailed(
                    f"{m.name} statement {n} of {len(statements)} (line {stmt.line}): {exc}; it runs "
                    "without a transaction, so whether it ran cannot be known; it is not recorded. Check "
                    "the database, then run again (repeatable statements, e.g. IF NOT EXISTS, make this safe)"
                ) from None
        ms = round((time.monotonic() - started) * 1000)
        rows = self.api.query(
            f"WITH ins AS (INSERT INTO {TABLE} (filename, checksum, execution_time_ms, applied_by) "  # noqa: S608
            "VALUES "
            f"({literal(m.name)}, {literal(m.checksum)}, {ms}, {literal(self.config.applied_by)}) "
            "ON CONFLICT (filename) DO NOTHING RETURNING 1) SELECT count(*) AS inserted FROM ins",
            idempotent=True,  # ON CONFLICT DO NOTHING: sending it twice records it once
        )
        log.info("applied %s in %d ms (no transaction; recorded after)", m.name, ms)
        if rows and int(rows[-1].get("inserted", 1)) == 0:
            log.warning("%s was recorded by another run meanwhile", m.name)
        outcome.applied.append(m.name)


def describe_sql_error(exc: SqlError, m: Migration, line_offset: int | None) -> str:
    """`SQLSTATE: message (at line N of the file)` plus DETAIL/HINT; query LINE k is file line k - offset."""
    text = f"{exc.sqlstate}: {exc.text}"
    for line in exc.extra:
        found = re.match(r"LINE (\d+):", line)
        if found and line_offset is not None:
            at = int(found.group(1)) - line_offset
            if 1 <= at <= m.sql.count("\n") + 1:
                text += f" (at line {at} of {m.name})"
            else:
                text += " (in the lock, guard or tracking row the job adds around the file)"
        elif line.startswith(("DETAIL:", "HINT:")):
            text += f"; {line}"
    return text


# --------------------------------------------------------------------------- entry point


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Apply pending Supabase migrations exactly once, in name order.",
        epilog=(
            "Environment: SUPABASE_ACCESS_TOKEN, SUPABASE_PROJECT_REF, MIGRATIONS_DIR, SUPABASE_API_URL,\n"
            "HTTP_TIMEOUT_SECONDS, HTTP_MAX_ATTEMPTS, HTTP_DEADLINE_SECONDS, LOG_LEVEL.\n"
            "Exit codes: 0 done, 1 failed (a SQL error, drift, refused token), 2 bad configuration or file."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--plan", action="store_true", help="list what would run; change nothing")
    p.add_argument(
        "--repair",
        action="store_true",
        help="re-record the checksums of applied files that changed on disk (or have none), then apply",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    def work(args: argparse.Namespace) -> str:
        config = load_config(os.environ)
        migrations = load_migrations(config.directory)
        log.info(
            "project %s, %d migration files in %s%s",
            config.project_ref,
            len(migrations),
            config.directory,
            " (plan only)" if args.plan else "",
        )
        return Migrator(
            config,
            migrations,
            ManagementApi(config.api_url, config.token, config.project_ref, config.http),
        ).run(plan=args.plan, repair=args.repair)

    return runtime.run_job(parser(), work, argv, logger=log, failed="migrate failed")


if __name__ == "__main__":
    sys.exit(main())
