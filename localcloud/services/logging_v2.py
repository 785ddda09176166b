"""Cloud Logging v2 (logging.googleapis.com): entries:list with the filter subset, entries:write.

Other services write through the in-process API `cloud.service("logging").write(entries)`.
Entries live in SQLite (state/logging/entries.sqlite3) so they survive a restart.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from localcloud import iam_permissions
from localcloud.clock import rfc3339
from localcloud.service import Service, google_error, json_response
from localcloud.services.run_errors import ApiError, json_body

SEVERITIES = {
    "DEFAULT": 0,
    "DEBUG": 100,
    "INFO": 200,
    "NOTICE": 300,
    "WARNING": 400,
    "ERROR": 500,
    "CRITICAL": 600,
    "ALERT": 700,
    "EMERGENCY": 800,
}
SEVERITY_NAMES = {v: k for k, v in SEVERITIES.items()}
DEFAULT_PAGE = 50
MAX_PAGE = 1000
EXECUTION_LABEL = "run.googleapis.com/execution_name"
_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


def _bad(message: str) -> ApiError:
    return ApiError(400, message, "INVALID_ARGUMENT")


def parse_timestamp(value: Any) -> int:
    """RFC 3339 (up to nanoseconds, any offset) -> microseconds since the epoch; ValueError if bad."""
    m = _TIMESTAMP.match(str(value).strip())
    if not m:
        raise ValueError(f"bad timestamp {value!r}: expected RFC 3339 such as 2026-11-26T05:00:00Z")
    base, frac, zone = m.groups()
    dt = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone))
    micros = int((frac or "0").ljust(9, "0")[:6])
    return int(dt.timestamp()) * 1_000_000 + micros


def format_timestamp(micros: int) -> str:
    return rfc3339(datetime.fromtimestamp(micros / 1_000_000, UTC).replace(microsecond=micros % 1_000_000))


def severity_rank(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value in SEVERITY_NAMES:
        return value
    if isinstance(value, str) and value.upper() in SEVERITIES:
        return SEVERITIES[value.upper()]
    if isinstance(value, str) and value.isdigit() and int(value) in SEVERITY_NAMES:
        return int(value)
    raise ValueError(f"bad severity {value!r}: expected one of {', '.join(SEVERITIES)}")


# ---- the filter subset ---------------------------------------------------------------------------------

_QUOTED = r'"(?:[^"\\]|\\.)*"'
_SEGMENT = rf"(?:[A-Za-z_][\w/-]*|{_QUOTED})"
_TERM = re.compile(
    rf"(?P<neg>NOT\s+|-)?(?P<field>{_SEGMENT}(?:\.{_SEGMENT})*)\s*(?P<op>>=|<=|!=|=|>|<|:)\s*"
    rf"(?P<value>{_QUOTED}|[^\s()\"]+)"
)


@dataclass(frozen=True)
class Term:
    path: tuple[str, ...]
    op: str
    value: str
    negated: bool

    @property
    def field(self) -> str:
        return ".".join(self.path)


def _unquote(text: str) -> str:
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def parse_filter(text: str) -> list[Term]:
    """Terms ANDed together (AND, a newline or a space between them); ApiError on anything else."""
    terms: list[Term] = []
    pos, n = 0, len(text)
    while True:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos >= n:
            return terms
        if terms and text.startswith("AND", pos) and (pos + 3 == n or text[pos + 3].isspace()):
            pos += 3
            continue
        if text.startswith("OR", pos) and (pos + 2 == n or text[pos + 2].isspace()):
            raise _bad(
                "Unsupported filter: localcloud's Logging supports AND (or newline) between terms, not OR"
            )
        m = _TERM.match(text, pos)
        if not m:
            raise _bad(
                f"Unsupported filter at {text[pos : pos + 40]!r}: localcloud supports terms like "
                'resource.type="cloud_run_job", resource.labels.job_name="J", '
                'labels."run.googleapis.com/execution_name"="E", severity>=ERROR, timestamp>="...Z", '
                'textPayload:"x", joined by AND or newlines'
            )
        path = tuple(_unquote(seg) for seg in re.findall(_SEGMENT, m.group("field")))
        value = _unquote(m.group("value"))
        term = Term(path, m.group("op"), value, bool(m.group("neg")))
        if term.field in ("timestamp", "receiveTimestamp") and value != "*":
            try:
                parse_timestamp(value)
            except ValueError as e:
                raise _bad(f"Invalid filter {m.group(0)!r}: {e}") from None
        if term.field == "severity" and value != "*":
            try:
                severity_rank(value)
            except ValueError as e:
                raise _bad(f"Invalid filter {m.group(0)!r}: {e}") from None
        terms.append(term)
        pos = m.end()


def _lookup(entry: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = entry
    for seg in path:
        if not isinstance(value, dict) or seg not in value:
            return None
        value = value[seg]
    return value


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    if op == ">=":
        return left >= right
    if op == ">":
        return left > right
    if op == "<=":
        return left <= right
    return left < right


def term_matches(term: Term, entry: dict[str, Any]) -> bool:
    result = _term_matches(term, entry)
    return not result if term.negated else result


def _term_matches(term: Term, entry: dict[str, Any]) -> bool:
    field = term.field
    if field == "severity":
        left: Any = severity_rank(entry.get("severity", "DEFAULT"))
        if term.value == "*":
            return term.op == ":"
        if term.op == ":":
            return left == severity_rank(term.value)
        return _compare(term.op, left, severity_rank(term.value))
    actual = _lookup(entry, term.path)
    if term.value == "*" and term.op == ":":
        return actual is not None
    if actual is None:
        return term.op == "!="
    if field in ("timestamp", "receiveTimestamp"):
        left, right = parse_timestamp(actual), parse_timestamp(term.value)
        return left == right if term.op == ":" else _compare(term.op, left, right)
    if term.op == ":":
        text = actual if isinstance(actual, str) else json.dumps(actual)
        return term.value.lower() in text.lower()
    if isinstance(actual, bool):
        return _compare(term.op, str(actual).lower(), term.value.lower()) if term.op in ("=", "!=") else False
    if isinstance(actual, int | float):
        try:
            return _compare(term.op, float(actual), float(term.value))
        except ValueError:
            return term.op == "!="
    if isinstance(actual, str):
        return _compare(term.op, actual, term.value)
    return term.op == "!="


# Terms the SQL prefilter can narrow on (indexed columns); Python re-checks every term anyway.
_SQL_COLUMNS = {
    ("resource", "type"): "resource_type",
    ("resource", "labels", "job_name"): "job_name",
    ("labels", EXECUTION_LABEL): "execution_name",
}


def _sql_prefilter(terms: list[Term]) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    for t in terms:
        if t.negated or t.value == "*":
            continue
        if t.path in _SQL_COLUMNS and t.op == "=":
            where.append(f"{_SQL_COLUMNS[t.path]} = ?")
            args.append(t.value)
        elif t.field == "severity" and t.op in ("=", ">=", ">", "<=", "<"):
            where.append(f"severity {t.op} ?")
            args.append(severity_rank(t.value))
        elif t.field == "timestamp" and t.op in ("=", ">=", ">", "<=", "<"):
            where.append(f"ts_us {t.op} ?")
            args.append(parse_timestamp(t.value))
    return where, args


class Logging(Service):
    name = "logging"
    hosts = ("logging.googleapis.com",)
    permissions = iam_permissions.LOGGING

    def __init__(self, cloud):
        super().__init__(cloud)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.state_dir / "entries.sqlite3", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS entries (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
            " project TEXT NOT NULL, ts_us INTEGER NOT NULL, insert_id TEXT NOT NULL,"
            " resource_type TEXT, job_name TEXT,"
            " execution_name TEXT, severity INTEGER NOT NULL, entry TEXT NOT NULL)"
        )
        self._db.execute(
            "CREATE INDEX IF NOT EXISTS entries_order ON entries (project, ts_us, insert_id, seq)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS entries_job ON entries (job_name, execution_name)")
        self._db.commit()
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM entries").fetchone()
        self._counter = row[0]
        self._prefix = secrets.token_hex(3)

    def stop(self) -> None:
        with self._lock:
            self._db.close()

    def reset(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM entries")
            self._db.commit()

    # ---- in-process API ------------------------------------------------------------------------------

    def write(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store LogEntry dicts (each needs logName "projects/P/logs/..."); fills insertId and timestamps.

        Raises ValueError naming the bad entry. Returns the stored entries.
        """
        now = self.cloud.now()
        rows = []
        stored = []
        with self._lock:
            for i, raw in enumerate(entries):
                entry = dict(raw)
                log_name = entry.get("logName", "")
                m = re.match(r"^projects/([^/]+)/logs/(.+)$", log_name) if isinstance(log_name, str) else None
                if not m:
                    raise ValueError(
                        f"entry {i}: logName {log_name!r} is not projects/<project>/logs/<log id>"
                    )
                payloads = [k for k in ("textPayload", "jsonPayload", "protoPayload") if k in entry]
                if len(payloads) > 1:
                    raise ValueError(
                        f"entry {i}: only one of textPayload, jsonPayload, protoPayload may be set"
                    )
                entry.setdefault("resource", {"type": "global", "labels": {"project_id": m.group(1)}})
                if "severity" in entry:
                    entry["severity"] = SEVERITY_NAMES[severity_rank(entry["severity"])]
                    if entry["severity"] == "DEFAULT":
                        del entry["severity"]  # proto3 JSON omits the default
                ts_us = parse_timestamp(entry["timestamp"]) if entry.get("timestamp") else _micros(now)
                entry["timestamp"] = format_timestamp(ts_us)
                entry["receiveTimestamp"] = rfc3339(now)
                self._counter += 1
                # Assigned insertIds sort in arrival order, so ties on timestamp keep the write order.
                entry.setdefault("insertId", f"{self._counter:012d}{self._prefix}")
                resource = entry.get("resource") or {}
                labels = resource.get("labels") or {}
                rows.append(
                    (
                        m.group(1),
                        ts_us,
                        str(entry["insertId"]),
                        resource.get("type"),
                        labels.get("job_name"),
                        (entry.get("labels") or {}).get(EXECUTION_LABEL),
                        severity_rank(entry.get("severity", "DEFAULT")),
                        json.dumps(entry),
                    )
                )
                stored.append(entry)
            self._db.executemany(
                "INSERT INTO entries (project, ts_us, insert_id, resource_type, job_name, execution_name,"
                " severity, entry) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._db.commit()
        return stored

    def list(
        self,
        projects: list[str],
        filter_: str = "",
        order: str = "asc",
        page_size: int = DEFAULT_PAGE,
        page_token: str = "",
    ) -> tuple[list[dict[str, Any]], str]:
        """entries:list's work: (entries, next page token). Raises ApiError for bad input."""
        terms = parse_filter(filter_)
        desc = order == "desc"
        cursor = _decode_token(page_token, filter_, order, projects) if page_token else None
        where, args = _sql_prefilter(terms)
        where.insert(0, f"project IN ({','.join('?' * len(projects))})")
        args[:0] = projects
        if cursor is not None:
            where.append(f"(ts_us, insert_id, seq) {'<' if desc else '>'} (?, ?, ?)")
            args.extend(cursor)
        direction = "DESC" if desc else "ASC"
        sql = (
            f"SELECT ts_us, insert_id, seq, entry FROM entries WHERE {' AND '.join(where)} "  # noqa: S608 - fixed SQL; values are bound
            f"ORDER BY ts_us {direction}, insert_id {direction}, seq {direction}"
        )
        out: list[dict[str, Any]] = []
        last: tuple[int, str, int] | None = None
        more = False
        with self._lock:
            for ts_us, insert_id, seq, text in self._db.execute(sql, args):
                entry = json.loads(text)
                if not all(term_matches(t, entry) for t in terms):
                    continue
                if len(out) == page_size:
                    more = True
                    break
                out.append(entry)
                last = (ts_us, insert_id, seq)
        token = _encode_token(last, filter_, order, projects) if more and last else ""
        return out, token

    # ---- HTTP ----------------------------------------------------------------------------------------

    def routes(self) -> list[tuple[str, str]]:
        """What `handle` answers, for the conformance test."""
        return [("POST", "/v2/entries:list"), ("POST", "/v2/entries:write")]

    def handle(self, request: Request) -> Response:
        self.cloud.authenticate(request)
        try:
            if request.path == "/v2/entries:list" and request.method == "POST":
                return self._http_list(json_body(request))
            if request.path == "/v2/entries:write" and request.method == "POST":
                return self._http_write(json_body(request))
        except ApiError as e:
            return google_error(e.code, e.message, e.status)
        return google_error(
            404,
            f"localcloud Logging emulates POST /v2/entries:list and POST /v2/entries:write, "
            f"not {request.method} {request.path}",
            "NOT_FOUND",
        )

    def _http_list(self, body: dict[str, Any]) -> Response:
        names = body.get("resourceNames") or [f"projects/{p}" for p in body.get("projectIds") or []]
        if not names or not isinstance(names, list):
            raise _bad('resourceNames is required, e.g. ["projects/cloudact-local"]')
        projects = []
        for name in names:
            m = re.fullmatch(r"projects/([^/]+)", str(name))
            if not m:
                raise _bad(f"Unsupported resource name {name!r}: localcloud supports projects/<project>")
            projects.append(m.group(1))
        order = str(body.get("orderBy", "timestamp asc") or "timestamp asc").strip().lower()
        orders = {"timestamp": "asc", "timestamp asc": "asc", "timestamp desc": "desc"}
        if order not in orders:
            raise _bad(
                f'Invalid orderBy {body.get("orderBy")!r}: expected "timestamp asc" or "timestamp desc"'
            )
        size = body.get("pageSize", DEFAULT_PAGE) or DEFAULT_PAGE
        if isinstance(size, bool) or not isinstance(size, int | str) or not str(size).isdigit():
            raise _bad(f"Invalid pageSize {size!r}: expected 1..{MAX_PAGE}")
        size = min(int(size), MAX_PAGE)
        filter_ = body.get("filter", "") or ""
        if len(filter_) > 20000:
            raise _bad("filter is longer than 20000 characters")
        entries, token = self.list(projects, filter_, orders[order], size, body.get("pageToken", "") or "")
        out: dict[str, Any] = {}
        if entries:
            out["entries"] = entries
        if token:
            out["nextPageToken"] = token
        return json_response(out)

    def _http_write(self, body: dict[str, Any]) -> Response:
        entries = body.get("entries")
        if not isinstance(entries, list) or not entries:
            raise _bad("entries is required: a non-empty list of LogEntry objects")
        merged = []
        for entry in entries:
            if not isinstance(entry, dict):
                raise _bad("each entry must be a LogEntry object")
            item = dict(entry)
            if body.get("logName"):
                item.setdefault("logName", body["logName"])
            if body.get("resource"):
                item.setdefault("resource", body["resource"])
            if body.get("labels"):
                item["labels"] = {**body["labels"], **(item.get("labels") or {})}
            merged.append(item)
        if body.get("dryRun"):
            return json_response({})
        try:
            self.write(merged)
        except ValueError as e:
            raise _bad(str(e)) from None
        return json_response({})

    def handle_admin(self, request: Request, subpath: str) -> Response:
        if subpath == "count" and request.method == "GET":
            with self._lock:
                (count,) = self._db.execute("SELECT COUNT(*) FROM entries").fetchone()
            return json_response({"entries": count})
        return super().handle_admin(request, subpath)


def _micros(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond


def _query_key(filter_: str, order: str, projects: list[str]) -> str:
    return f"{order}|{','.join(projects)}|{filter_}"


def _encode_token(last: tuple[int, str, int], filter_: str, order: str, projects: list[str]) -> str:
    data = {"k": list(last), "q": _query_key(filter_, order, projects)}
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def _decode_token(token: str, filter_: str, order: str, projects: list[str]) -> tuple[int, str, int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        ts_us, insert_id, seq = data["k"]
        query = data["q"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise _bad(f"Invalid pageToken {token[:40]!r}") from None
    if query != _query_key(filter_, order, projects):
        raise _bad(
            "pageToken does not belong to this query: resend the same filter, orderBy and resourceNames"
        )
    return int(ts_us), str(insert_id), int(seq)
