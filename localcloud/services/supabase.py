"""The Supabase Management API's `POST /v1/projects/{ref}/database/query` over a real PostgreSQL.

PostgreSQL 16 comes from pgserver (PyPI): its data lives in `<state>/supabase/pgdata`; `start()` starts
the postmaster (pgserver runs it as the `pgserver` user when we are root, listening on a unix socket
only), `stop()` ends it by its pid with a fast shutdown and waits until it is gone. pgserver's own
handle bookkeeping is bypassed (cleanup_mode=None) so that the server lives exactly as long as this
service.

Behaviour mirrored from Supabase (docs/supabase-management-api.md): a bearer token Supabase issued,
project ref `local` (others 404; a rehearsed environment's token, issued for its hosted project,
reaches any well-formed ref, each in a database `ref_<ref>` of its own, so the operator's ref works), the
query text runs on one connection as one implicit transaction (simple-query protocol, so CREATE INDEX
CONCURRENTLY fails inside a multi-statement text), rows of the last statement that returned rows,
`[]` otherwise, 201; SQL errors 400 with "Failed to run sql query: ERROR:  <SQLSTATE>: ...";
120 requests a minute per token and project (configurable with the admin endpoint `rate-limit`).

Tokens are Supabase's: one access token per hosted project (`sbp_` + 40 hex characters, as a personal
access token), issued when Secret Manager seeds the project's `supabase-access-token-<suffix>` (its
first version is the issued token), and only issued tokens are accepted, whatever the secret holds
now (a wrong new version is 401, as Supabase refuses a token it never issued). Their sha256 hashes
are kept per project in `<state>/supabase/tokens.json`, never the tokens. The admin endpoint `tokens`
issues another (a rotation, as the dashboard does; Secret Manager is not touched), optionally
revoking the older ones. A state directory from before issued tokens were recorded takes the first
version of each project's secret as issued at start. A reset keeps the records; Secret Manager's
reset re-seeds each secret with a newly issued token and revokes the others, so the two agree.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import threading
import time
import uuid
import warnings
from decimal import Decimal
from typing import Any

import psutil
import psycopg
from psycopg import sql
from werkzeug.wrappers import Request, Response

from localcloud.clock import rfc3339
from localcloud.projects import BY_ID, PROJECTS, HostedProject
from localcloud.service import Service, json_response

PROJECT_REF = "local"
TOKEN_SECRET = PROJECTS[0].supabase_secret  # supabase-access-token-local
REF_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
DEFAULT_LIMIT = 120
DEFAULT_WINDOW = 60.0
STATEMENT_TIMEOUT_MS = 55_000  # Supabase cuts a query off after about 55 s
STOP_TIMEOUT = 15.0
TOKEN_PREFIX = "sbp_"  # noqa: S105 - a Supabase personal access token is sbp_ + 40 hex characters

log = logging.getLogger("localcloud.supabase")


def _message(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return json_response({"message": message}, status=status, headers=headers)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_hex(20)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and abs(value) < 2**53 else float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def sql_error_message(err: psycopg.Error, query: str) -> str:
    """Supabase's form: psql's verbose error with the SQLSTATE, the LINE and a caret, DETAIL/HINT."""
    diag = err.diag
    lines = [f"Failed to run sql query: ERROR:  {diag.sqlstate}: {diag.message_primary or str(err).strip()}"]
    position = diag.statement_position
    if position and position.isdigit():
        offset = int(position) - 1
        start = query.rfind("\n", 0, offset) + 1
        end = query.find("\n", offset)
        line_no = query.count("\n", 0, start) + 1
        prefix = f"LINE {line_no}: "
        lines.append(prefix + query[start : end if end >= 0 else None])
        lines.append(" " * (len(prefix) + offset - start) + "^")
    if diag.message_detail:
        lines.append(f"DETAIL:  {diag.message_detail}")
    if diag.message_hint:
        lines.append(f"HINT:  {diag.message_hint}")
    return "\n".join(lines) + "\n"


class SupabaseService(Service):
    name = "supabase"
    hosts = ("api.supabase.com",)

    def __init__(self, cloud):
        super().__init__(cloud)
        self._server: Any = None
        self._pid: int | None = None
        self._uri = ""
        self._lock = threading.Lock()
        self._limit = DEFAULT_LIMIT
        self._window = DEFAULT_WINDOW
        self._buckets: dict[tuple[str, str], tuple[float, int]] = {}  # (token hash, ref) -> (window start, n)
        self._databases: set[str] = set()  # the rehearsed refs' databases known to exist
        self._tokens_file = self.state_dir / "tokens.json"
        self._tokens_lock = threading.Lock()
        # project -> the tokens issued for it and not revoked: [{"sha256", "issued", "how"}]
        self._tokens: dict[str, list[dict[str, str]]] = {}
        if self._tokens_file.exists():
            self._tokens = json.loads(self._tokens_file.read_text())["projects"]

    @property
    def pgdata(self):
        return self.state_dir / "pgdata"

    @property
    def postgres_pid(self) -> int | None:
        return self._pid

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        self._adopt_seeded_tokens()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset on CI machines
            logging.getLogger("pgserver").setLevel(logging.WARNING)  # it logs every pg_ctl command line
            import pgserver
            from pgserver.postgres_server import PostgresServer

            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._server = pgserver.get_server(self.pgdata, cleanup_mode=None)
        self._pid = self._server.get_pid()
        self._uri = self._server.get_uri()
        # We own the postmaster's lifetime from here: forget pgserver's per-process handle so a
        # restart in the same process starts a fresh server instead of reusing a stopped one.
        PostgresServer._instances.pop(self._server.pgdata, None)
        self._server.global_process_id_list.get_and_remove(os.getpid())

    def stop(self) -> None:
        pid, self._pid, self._server = self._pid, None, None
        if pid is None:
            return
        try:
            proc = psutil.Process(pid)
            proc.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown: roll back, close, exit
        except psutil.NoSuchProcess:
            return
        started = time.monotonic()
        while time.monotonic() < started + STOP_TIMEOUT and _alive(proc):
            time.sleep(0.05)
        if _alive(proc):
            log.warning(
                "PostgreSQL (pid %d) ignored a fast shutdown for %.0fs: killing it", pid, STOP_TIMEOUT
            )
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
                proc.wait(5)
        log.info("PostgreSQL (pid %d) stopped in %.2fs", pid, time.monotonic() - started)

    def reset(self) -> None:
        # The issued tokens stay: Secret Manager's reset re-seeds each project's secret with a token
        # issued by issue_token(..., revoke_others=True), whichever of the two resets runs first.
        with self._lock:
            self._buckets.clear()
            self._databases.clear()
        if self._pid is not None and self._server is not None:
            try:
                self._wipe()
                return
            except psycopg.Error:
                log.exception("wiping PostgreSQL in place failed: recreating its data directory")
        self.stop()
        shutil.rmtree(self.pgdata, ignore_errors=True)
        self.start()

    def _wipe(self) -> None:
        """Drop every database and role that initdb did not create, then recreate `postgres`: the state of a
        fresh data directory in well under a second, where a new initdb takes seconds."""
        with psycopg.connect(self._server.get_uri("template1"), autocommit=True, connect_timeout=10) as conn:
            databases = conn.execute(
                "SELECT datname FROM pg_database WHERE datname NOT IN ('template0', 'template1')"
            ).fetchall()
            for (name,) in databases:
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            roles = conn.execute(
                "SELECT rolname FROM pg_roles WHERE rolname <> current_user AND rolname NOT LIKE 'pg\\_%'"
            ).fetchall()
            for (name,) in roles:
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
            conn.execute("CREATE DATABASE postgres")

    # --- issued tokens ------------------------------------------------------------------------------

    def issue_token(self, project: str, *, revoke_others: bool = False, how: str = "issued") -> str:
        """A new access token for a hosted project (only its hash is kept); with revoke_others, the
        project's earlier tokens stop working."""
        if project not in BY_ID:
            raise ValueError(f"{project!r} is not a hosted project: one of {', '.join(BY_ID)}")
        token = new_token()
        self._record(project, token, revoke_others=revoke_others, how=how)
        return token

    def _record(self, project: str, token: str, *, revoke_others: bool = False, how: str = "issued") -> None:
        entry = {"sha256": _token_hash(token), "issued": rfc3339(self.cloud.now()), "how": how}
        with self._tokens_lock:
            kept = [] if revoke_others else self._tokens.get(project, [])
            self._tokens[project] = [*kept, entry]
            self._save_tokens()

    def _save_tokens(self) -> None:
        tmp = self._tokens_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"projects": self._tokens}, f, indent=1, sort_keys=True)
        tmp.replace(self._tokens_file)

    def _adopt_seeded_tokens(self) -> None:
        """A state directory from before Supabase recorded its tokens: the first version of each hosted
        project's secret (what Secret Manager seeded) is taken as the token issued for that project."""
        for hosted in PROJECTS:
            with self._tokens_lock:
                if hosted.project in self._tokens:
                    continue
            try:
                seeded = self.cloud.secret_value(hosted.supabase_secret, "1", hosted.project)
            except KeyError:  # no Secret Manager in this localcloud
                return
            if seeded and seeded.strip():
                self._record(hosted.project, seeded.strip().decode("utf-8", errors="replace"), how="adopted")
                log.info("Supabase: the seeded token of %s recorded as issued", hosted.project)

    # --- admin --------------------------------------------------------------------------------------

    def handle_admin(self, request: Request, subpath: str) -> Response:
        if subpath == "rate-limit" and request.method == "POST":
            body = request.get_json(silent=True) or {}
            limit, window = body.get("limit", DEFAULT_LIMIT), body.get("window_seconds", DEFAULT_WINDOW)
            if not isinstance(limit, int) or limit < 1 or not isinstance(window, int | float) or window <= 0:
                return json_response(
                    {"error": f"bad rate limit {limit!r}/{window!r}s: limit >= 1, window_seconds > 0"}, 400
                )
            with self._lock:
                self._limit, self._window = limit, float(window)
                self._buckets.clear()
            return json_response({"limit": limit, "window_seconds": window})
        if subpath == "tokens" and request.method == "POST":
            body = request.get_json(silent=True)
            body = body if isinstance(body, dict) else {}
            project, revoke = body.get("project"), body.get("revoke_others", False)
            if project not in BY_ID or not isinstance(revoke, bool):
                return json_response(
                    {
                        "error": f'expected {{"project": one of {list(BY_ID)}, "revoke_others"?: bool}}, '
                        f"got project {project!r}, revoke_others {revoke!r}"
                    },
                    400,
                )
            return json_response({"token": self.issue_token(project, revoke_others=revoke)}, 201)
        if subpath == "tokens" and request.method == "GET":
            with self._tokens_lock:  # when and how each valid token was issued; never a hash
                issued = {
                    project: [{"issued": e["issued"], "how": e["how"]} for e in tokens]
                    for project, tokens in self._tokens.items()
                }
            return json_response({"projects": issued})
        if subpath == "state" and request.method == "GET":
            return json_response(
                {
                    "postgres_pid": self._pid,
                    "running": self._pid is not None and psutil.pid_exists(self._pid),
                    "pgdata": str(self.pgdata),
                    "project_ref": PROJECT_REF,
                    "rate_limit": {"limit": self._limit, "window_seconds": self._window},
                }
            )
        return super().handle_admin(request, subpath)

    # --- the Management API -------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p]
        if len(parts) != 5 or parts[:2] != ["v1", "projects"] or parts[3:] != ["database", "query"]:
            return json_response(
                {
                    "message": f"Cannot {request.method} {request.path}",
                    "error": "Not Found",
                    "statusCode": 404,
                },
                404,
            )
        if request.method != "POST":
            return _message(405, f"Method {request.method} not allowed")
        token = self._bearer(request)
        hosted = self._token_owner(token)
        if hosted is None:
            return _message(401, "Unauthorized")
        ref = parts[2]
        allowed, headers = self._rate(token, ref)
        if not allowed:
            return _message(429, "Too many requests", headers)
        # The local token reaches the project `local`; another hosted project's token (a rehearsal of its
        # environment) reaches whatever ref its inventory names, each ref a database of its own.
        local = hosted.project == PROJECTS[0].project
        known = ref == PROJECT_REF if local else ref != PROJECT_REF and REF_RE.match(ref) is not None
        if not known:
            return _message(404, f"Project {ref} not found", headers)
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("query"), str) or not body["query"].strip():
            return _message(400, "query must be a non-empty string", headers)
        params = body.get("parameters")
        if params is not None and not isinstance(params, list):
            return _message(400, "parameters must be an array", headers)
        try:
            rows = self._run(body["query"], params, bool(body.get("read_only")), None if local else ref)
        except psycopg.Error as err:
            if err.diag.sqlstate is None:
                return _message(500, f"Failed to run sql query: {str(err).strip()}", headers)
            return _message(400, sql_error_message(err, body["query"]), headers)
        return Response(json.dumps(rows), status=201, headers=headers, mimetype="application/json")

    @staticmethod
    def _bearer(request: Request) -> str:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""

    def _rate(self, token: str, ref: str) -> tuple[bool, list[tuple[str, str]]]:
        key = (hashlib.sha256(token.encode()).hexdigest(), ref)
        now = time.monotonic()
        with self._lock:
            start, count = self._buckets.get(key, (now, 0))
            if now - start >= self._window:
                start, count = now, 0
            allowed = count < self._limit
            count += allowed
            self._buckets[key] = (start, count)
            reset = max(1, round(start + self._window - now))
            headers = [
                ("X-RateLimit-Limit", str(self._limit)),
                ("X-RateLimit-Remaining", str(self._limit - count)),
                ("X-RateLimit-Reset", str(reset)),
            ]
        if not allowed:
            headers.append(("Retry-After", str(reset)))
        return allowed, headers

    def _token_owner(self, token: str) -> HostedProject | None:
        """The hosted project Supabase issued this token for (and did not revoke), if any. What Secret
        Manager holds now does not matter: a token is valid because Supabase issued it."""
        if not token:
            return None
        digest = _token_hash(token)
        with self._tokens_lock:
            for project, issued in self._tokens.items():
                if any(entry["sha256"] == digest for entry in issued):
                    return BY_ID.get(project)
        return None

    def _database_uri(self, ref: str | None) -> str:
        """The `postgres` database for `local`; `ref_<ref>` (created on first use) for another ref."""
        if ref is None:
            return self._uri
        database = f"ref_{ref.replace('-', '_')}"
        with self._lock:
            if database not in self._databases:
                with psycopg.connect(self._server.get_uri("template1"), autocommit=True) as conn:
                    found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
                    if not found.fetchone():
                        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
                self._databases.add(database)
        return self._server.get_uri(database)

    def _run(
        self, query: str, params: list[Any] | None, read_only: bool, ref: str | None = None
    ) -> list[dict[str, Any]]:
        if not self._uri or self._pid is None:
            raise psycopg.OperationalError("the database is not running")
        uri = self._database_uri(ref)
        options = f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"
        if read_only:
            options += " -c default_transaction_read_only=on"
        # A connection per request, as Supabase's transaction-mode pooler gives: no session state leaks.
        with psycopg.connect(uri, autocommit=True, options=options, connect_timeout=10) as conn:
            if params is not None:
                raw = psycopg.RawCursor(conn)  # PostgreSQL's own $1 placeholders, bound by the server
                raw.execute(query, [_param(p) for p in params])
                return _rows(raw) if raw.description else []
            cur = conn.cursor()
            cur.execute(query)  # no parameters: the simple-query protocol, one implicit transaction
            rows: list[dict[str, Any]] = []
            while True:
                if cur.description:
                    rows = _rows(cur)
                if not cur.nextset():
                    return rows


def _param(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict | list) else value


def _rows(cur: psycopg.Cursor) -> list[dict[str, Any]]:
    names = [d.name for d in cur.description or []]
    return [{n: _jsonable(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
