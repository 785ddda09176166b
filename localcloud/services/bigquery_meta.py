"""What BigQuery knows of a table beyond DuckDB's catalog: the REST table resource's schema (modes,
RECORD fields, descriptions), views, time partitioning and its expiration, and the streaming buffer.

Metadata of tables created through the REST API lives in `_localcloud.tables` (one JSON document a
table) and in memory; tables created in process or by SQL DDL have none and are described from DuckDB.

The streaming buffer: rows written by tabledata.insertAll are also copied, with their insert time,
size and insertId, into `_localcloud."buffer <schema>.<table>"` for STREAM_BUFFER_S on the emulated
clock. A statement that changes existing rows (UPDATE, DELETE, MERGE, TRUNCATE) and would change one of
them fails as BigQuery fails it; tables.get shows `streamingBuffer` while any are there.
"""

# SQL text here holds only identifiers quoted by ident(); values are always bound.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections import OrderedDict
from typing import Any

import duckdb

from localcloud import bq_sql
from localcloud.bq_sql import QueryError
from localcloud.service import Service

META = "_localcloud"
STREAM_BUFFER_S = 30 * 60  # "recent writes are those that occurred within the last 30 minutes"
DEDUP_S = 60  # insertId: best effort, "at least one minute"
PARTITION_TYPES = ("DAY", "HOUR", "MONTH", "YEAR")
PARTITION_FIELD_TYPES = ("TIMESTAMP", "DATE", "DATETIME")
_LEGACY = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN", "STRUCT": "RECORD"}
_TYPES = set(bq_sql._BQ_TO_DUCK) | {"RECORD", "STRUCT"}
_MODES = ("NULLABLE", "REQUIRED", "REPEATED")
_EXTRA = ("_lc_ms", "_lc_bytes", "_lc_insert_id")  # the buffer copy's own columns

Ref = tuple[str, str, str]  # (project, dataset, table)


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_ident(project: str, dataset: str, table: str) -> str:
    return f"{ident(bq_sql.schema_name(project, dataset))}.{ident(table)}"


def buffer_name(ref: Ref) -> str:
    return f"buffer {bq_sql.schema_name(ref[0], ref[1])}.{ref[2]}"


def buffer_ident(ref: Ref) -> str:
    return f"{ident(META)}.{ident(buffer_name(ref))}"


def normalize_schema(fields: Any, path: str = "") -> list[dict[str, Any]]:
    """A TableSchema's fields as BigQuery returns them (legacy type names, a mode always); QueryError
    naming the bad field otherwise."""
    if not isinstance(fields, list):
        raise QueryError("invalid", f"Invalid schema{' of ' + path if path else ''}: fields must be a list")
    out, seen = [], set()
    for item in fields:
        name = str((item or {}).get("name") or "")
        full = f"{path}.{name}" if path else name
        if not name or '"' in name or name.lower() in seen:
            raise QueryError("invalid", f"Invalid field name {full!r}: empty, duplicated or with a quote")
        seen.add(name.lower())
        kind = str(item.get("type") or "").upper()
        if kind not in _TYPES:
            raise QueryError("invalid", f"Invalid field type {kind or None} for field {full}")
        mode = str(item.get("mode") or "NULLABLE").upper()
        if mode not in _MODES:
            raise QueryError(
                "invalid", f"Invalid mode {mode} for field {full}: NULLABLE, REQUIRED or REPEATED"
            )
        field: dict[str, Any] = {"name": name, "type": _LEGACY.get(kind, kind), "mode": mode}
        if field["type"] == "RECORD":
            if not item.get("fields"):
                raise QueryError("invalid", f"Field {full} is type RECORD but has no schema")
            field["fields"] = normalize_schema(item["fields"], full)
        if item.get("description"):
            field["description"] = str(item["description"])
        out.append(field)
    return out


def schema_changes(table_id: str, old: list[dict], new: list[dict], path: str = "") -> list[tuple]:
    """The changes from `old` to `new` that BigQuery allows, as [("add", path, field) | ("relax", path)];
    QueryError in BigQuery's words for any other change (a field dropped, retyped, made stricter,
    or a new REQUIRED field)."""
    prefix = f"Provided Schema does not match Table {table_id}."
    by_name = {f["name"].lower(): f for f in new}
    changes: list[tuple] = []
    for field in old:
        full = f"{path}.{field['name']}" if path else field["name"]
        other = by_name.pop(field["name"].lower(), None)
        if other is None:
            raise QueryError("invalid", f"{prefix} Field {full} is missing in new schema")
        if other["type"] != field["type"]:
            raise QueryError(
                "invalid", f"{prefix} Field {full} has changed type from {field['type']} to {other['type']}"
            )
        if other["mode"] != field["mode"]:
            if (field["mode"], other["mode"]) != ("REQUIRED", "NULLABLE"):
                raise QueryError(
                    "invalid",
                    f"{prefix} Field {full} has changed mode from {field['mode']} to {other['mode']}",
                )
            changes.append(("relax", full))
        if field["type"] == "RECORD":
            changes += schema_changes(table_id, field["fields"], other["fields"], full)
    for other in by_name.values():
        full = f"{path}.{other['name']}" if path else other["name"]
        if other["mode"] == "REQUIRED":
            raise QueryError(
                "invalid", f"{prefix} Cannot add required fields to an existing schema. (field: {full})"
            )
        changes.append(("add", full, other))
    return changes


def partition_cutoff(spec: dict[str, Any], now: dt.datetime) -> dt.datetime | None:
    """Rows whose partition column is before this instant are in expired partitions: a partition
    expires `expirationMs` after its end (e.g. DAY with 6 h: at 06:00 UTC the next day)."""
    if not spec.get("expirationMs"):
        return None
    at = (now - dt.timedelta(milliseconds=int(spec["expirationMs"]))).astimezone(dt.UTC)
    kind = spec.get("type", "DAY")
    if kind == "HOUR":
        return at.replace(minute=0, second=0, microsecond=0)
    at = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind in ("MONTH", "YEAR"):
        at = at.replace(day=1)
    return at.replace(month=1) if kind == "YEAR" else at


def check_partitioning(spec: Any, schema: list[dict[str, Any]], old: dict[str, Any] | None) -> dict:
    """A TimePartitioning as stored; QueryError for what BigQuery refuses (and for ingestion-time
    partitioning, which localcloud does not emulate)."""
    if not isinstance(spec, dict):
        raise QueryError("invalid", "Invalid timePartitioning: expected an object")
    kind = str(spec.get("type") or "").upper()
    if kind not in PARTITION_TYPES:
        raise QueryError("invalid", f"Invalid value for type: {kind or None} is not a valid value")
    column = spec.get("field")
    if not column:
        raise QueryError(
            "invalid",
            "localcloud emulates column partitioning only: set timePartitioning.field (ingestion-time "
            "partitioning by _PARTITIONTIME is not emulated)",
        )
    found = next((f for f in schema if f["name"].lower() == str(column).lower()), None)
    if found is None:
        raise QueryError("invalid", "The field specified for partitioning cannot be found in the schema")
    if found["type"] not in PARTITION_FIELD_TYPES or found["mode"] == "REPEATED":
        raise QueryError(
            "invalid",
            f"Partitioning field {column} must be a top-level TIMESTAMP, DATE or DATETIME field of mode "
            f"NULLABLE or REQUIRED, not {found['mode']} {found['type']}",
        )
    out: dict[str, Any] = {"type": kind, "field": found["name"]}
    if spec.get("expirationMs") not in (None, ""):
        try:
            ms = int(spec["expirationMs"])
        except (TypeError, ValueError):
            ms = 0
        if ms <= 0:
            raise QueryError("invalid", f"Invalid expirationMs {spec['expirationMs']!r}: a positive number")
        out["expirationMs"] = str(ms)
    if old is not None and (old.get("type"), old.get("field")) != (out["type"], out["field"]):
        raise QueryError("invalid", "Cannot change partitioning spec for a partitioned table.")
    return out


class BigQueryMeta(Service):
    """Table metadata, partition expiration and the streaming buffer, for BigQueryDatabase."""

    _lock: threading.RLock
    _db: duckdb.DuckDBPyConnection | None
    _translations: OrderedDict
    _meta: dict[Ref, dict[str, Any]]
    _buffered: set[Ref]
    _in_batch: bool

    def _conn(self) -> duckdb.DuckDBPyConnection:
        if self._db is None:
            raise QueryError("backendError", "BigQuery emulation is not running")
        return self._db

    def _now_ms(self) -> int:
        return int(self.cloud.now().timestamp() * 1000)

    # --- metadata ---------------------------------------------------------------------------------

    def _meta_start(self) -> None:
        db = self._conn()
        db.execute(
            f"CREATE TABLE IF NOT EXISTS {ident(META)}.tables "
            "(project VARCHAR, dataset VARCHAR, table_id VARCHAR, meta VARCHAR)"
        )
        self._meta = {
            (p, d, t): json.loads(m)
            for p, d, t, m in db.execute(f"SELECT * FROM {ident(META)}.tables").fetchall()
        }
        self._buffered = set()
        for (name,) in db.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = ? AND table_name LIKE 'buffer %'",
            [META],
        ).fetchall():
            schema, _, table = name.removeprefix("buffer ").partition(".")
            split = bq_sql.split_schema(schema)
            if split:
                self._buffered.add((*split, table))

    def _meta_put(self, ref: Ref, meta: dict[str, Any]) -> None:
        db = self._conn()
        db.execute(
            f"DELETE FROM {ident(META)}.tables WHERE project = ? AND dataset = ? AND table_id = ?", list(ref)
        )
        db.execute(f"INSERT INTO {ident(META)}.tables VALUES (?, ?, ?, ?)", [*ref, json.dumps(meta)])
        self._meta[ref] = meta
        self._translations.clear()  # views and partition filters change what a query translates to

    def _meta_drop(self, project: str, dataset: str, table: str | None = None) -> None:
        gone = [r for r in self._meta if r[:2] == (project, dataset) and table in (None, r[2])]
        gone += [r for r in self._buffered if r[:2] == (project, dataset) and table in (None, r[2])]
        if not gone:
            return
        db = self._conn()
        sql = f"DELETE FROM {ident(META)}.tables WHERE project = ? AND dataset = ?"
        db.execute(
            sql + (" AND table_id = ?" if table else ""), [project, dataset, *([table] if table else [])]
        )
        for ref in gone:
            self._meta.pop(ref, None)
            if ref in self._buffered:
                db.execute(f"DROP TABLE IF EXISTS {buffer_ident(ref)}")
                self._buffered.discard(ref)
        self._translations.clear()

    def _lookup(self, project: str, dataset: str, table: str) -> bq_sql.TableInfo | None:
        meta = self._meta.get((project, dataset, table))
        if meta is None:
            return None
        spec = meta.get("timePartitioning") or {}
        return bq_sql.TableInfo(
            view=(meta.get("view") or {}).get("query"),
            required_filter=spec.get("field") if meta.get("requirePartitionFilter") else None,
        )

    # --- partition expiration ---------------------------------------------------------------------

    def _expire(self, ref: Ref) -> None:
        """Delete the rows of expired partitions, as BigQuery does once a partition expires."""
        spec = (self._meta.get(ref) or {}).get("timePartitioning") or {}
        cutoff = partition_cutoff(spec, self.cloud.now())
        if cutoff is None:
            return
        column = next(f for f in self._meta[ref]["schema"] if f["name"] == spec["field"])
        bound: Any = cutoff
        if column["type"] == "DATE":
            bound = cutoff.date()
        elif column["type"] == "DATETIME":
            bound = cutoff.replace(tzinfo=None)
        where = f" WHERE {ident(spec['field'])} < ?"
        db = self._conn()
        db.execute(f"DELETE FROM {table_ident(*ref)}{where}", [bound])
        if ref in self._buffered:
            db.execute(f"DELETE FROM {buffer_ident(ref)}{where}", [bound])

    # --- the streaming buffer ---------------------------------------------------------------------

    def _buffer_rows(self, ref: Ref) -> tuple[int, int, int] | None:
        """(rows, bytes, oldest entry ms) in the table's streaming buffer, or None when it is empty."""
        if ref not in self._buffered:
            return None
        db = self._conn()
        db.execute(
            f"DELETE FROM {buffer_ident(ref)} WHERE _lc_ms <= ?", [self._now_ms() - STREAM_BUFFER_S * 1000]
        )
        rows, size, oldest = db.execute(
            f"SELECT count(*), coalesce(sum(_lc_bytes), 0), min(_lc_ms) FROM {buffer_ident(ref)}"
        ).fetchone()
        if not rows and not self._in_batch:
            db.execute(f"DROP TABLE {buffer_ident(ref)}")
            self._buffered.discard(ref)
        return (int(rows), int(size), int(oldest)) if rows else None

    def _buffer_seen(self, ref: Ref, insert_ids: list[str]) -> set[str]:
        """The insertIds among these that the table was streamed in the last DEDUP_S seconds."""
        if ref not in self._buffered or not insert_ids:
            return set()
        rows = (
            self._conn()
            .execute(
                f"SELECT _lc_insert_id FROM {buffer_ident(ref)} "
                "WHERE _lc_insert_id IN (SELECT UNNEST(?)) AND _lc_ms > ?",
                [insert_ids, self._now_ms() - DEDUP_S * 1000],
            )
            .fetchall()
        )
        return {r[0] for r in rows}

    def _buffer_add(
        self, ref: Ref, schema: list[dict], rows: list[dict], sizes: list[int], ids: list
    ) -> None:
        db = self._conn()
        if ref not in self._buffered:
            db.execute(
                f"CREATE TABLE {buffer_ident(ref)} AS SELECT *, 0::BIGINT AS _lc_ms, 0::BIGINT AS _lc_bytes, "
                f"''::VARCHAR AS _lc_insert_id FROM {table_ident(*ref)} LIMIT 0"
            )
            self._buffered.add(ref)
        now = self._now_ms()
        extra = {"_lc_ms": [now] * len(rows), "_lc_bytes": sizes, "_lc_insert_id": ids}
        self._insert_columns(buffer_ident(ref), schema, rows, extra)

    def _insert_columns(
        self, target: str, schema: list[dict], rows: list[dict], extra: dict | None = None
    ) -> int:
        """Append rows in one statement: one bound list per column, unnested side by side (DuckDB runs
        one INSERT per row ~100x slower)."""
        extra = extra or {}
        names = [ident(f["name"]) for f in schema] + [ident(k) for k in extra]
        params = [[bq_sql.insert_value(f, row.get(f["name"])) for row in rows] for f in schema]
        params += list(extra.values())
        select = ", ".join(f"UNNEST(${i})" for i in range(1, len(params) + 1))
        sql = f"INSERT INTO {target} ({', '.join(names)}) SELECT {select}"
        try:
            return int(self._conn().execute(sql, params).fetchone()[0])
        except duckdb.Error as err:
            raise QueryError("invalid", str(err).split("\n")[0]) from None

    def _guarded(self, db, stmt: bq_sql.Translated, run, bound=None):
        """Run a statement that changes existing rows of stmt.target; refuse it, changing nothing, when
        it would change a row of the streaming buffer: a plain UPDATE whose condition matches one, or
        any statement after which one is no longer in the table unchanged."""
        ref = stmt.target
        if ref is None or self._buffer_rows(ref) is None:
            return run()
        refusal = QueryError(
            "invalidQuery",
            f"UPDATE or DELETE statement over table {'.'.join(ref)} would affect rows in the streaming "
            "buffer, which is not supported",
        )
        if self._in_batch or stmt.statement_type == "TRUNCATE_TABLE":
            raise refusal  # no nested transaction to undo it in (in-process batches never stream)
        if stmt.probe is not None and not isinstance(bound, list):  # positional: SET's `?`s come first
            probe = stmt.probe.replace(table_ident(*ref), buffer_ident(ref), 1)
            names = set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", probe))
            values = {k: v for k, v in (bound or {}).items() if k in names}
            (matched,) = (db.execute(probe, values) if values else db.execute(probe)).fetchone()
            if matched:
                raise refusal
        columns = ", ".join(
            ident(name)
            for (name,) in db.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
                "AND column_name NOT IN (SELECT UNNEST(?)) ORDER BY column_index",
                [META, buffer_name(ref), list(_EXTRA)],
            ).fetchall()
        )
        db.execute("BEGIN TRANSACTION")
        try:
            result = run()
            (changed,) = db.execute(
                f"SELECT count(*) FROM (SELECT {columns} FROM {buffer_ident(ref)} EXCEPT ALL "
                f"SELECT {columns} FROM {table_ident(*ref)})"
            ).fetchone()
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if changed:
            db.execute("ROLLBACK")
            raise refusal
        db.execute("COMMIT")
        return result
