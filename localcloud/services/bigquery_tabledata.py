"""BigQuery v2 REST tabledata: list (rows of a table, paged) and insertAll (streaming inserts, into the
streaming buffer of bigquery_meta)."""

from __future__ import annotations

import binascii
import json
from typing import Any

from werkzeug.wrappers import Request, Response

from localcloud import bq_sql
from localcloud.bq_sql import QueryError
from localcloud.service import json_response
from localcloud.services.bigquery_db import PAGE_ROWS, BigQueryDatabase, table_ident


class BigQueryTabledata(BigQueryDatabase):
    """tabledata.list and tabledata.insertAll."""

    def _list_rows(self, project: str, ds: str, table: str, request: Request) -> Response:
        start = int(request.args.get("pageToken") or request.args.get("startIndex") or 0)
        size = int(request.args.get("maxResults") or PAGE_ROWS)
        with self._lock:
            schema = self.table_schema(project, ds, table)
            if schema is None:
                raise QueryError("notFound", f"Not found: Table {project}:{ds}.{table}")
            if (project, ds, table) in self._meta:
                self._expire((project, ds, table))
            ident = table_ident(project, ds, table)
            total = self._conn().execute(f"SELECT count(*) FROM {ident}").fetchone()[0]  # noqa: S608
            rows = (
                self._conn()
                .execute(f"SELECT * FROM {ident} ORDER BY rowid LIMIT ? OFFSET ?", [size, start])  # noqa: S608
                .fetchall()
            )
        body: dict[str, Any] = {
            "kind": "bigquery#tableDataList",
            "etag": f'"{total}"',
            "totalRows": str(total),
            "rows": [
                {"f": [{"v": bq_sql.encode_value(f, v)} for f, v in zip(schema, r, strict=True)]}
                for r in rows
            ],
        }
        if start + len(rows) < total:
            body["pageToken"] = str(start + len(rows))
        return json_response(body)

    def _insert_all(self, project: str, ds: str, table: str, body: dict[str, Any]) -> Response:
        """tabledata.insertAll (the client's insert_rows/insert_rows_json), into the streaming buffer.
        A bad row fails the request (the others "stopped") unless skipInvalidRows; unknown fields are
        errors unless ignoreUnknownValues; a row whose insertId the table was streamed in the last
        minute is not written again (BigQuery's best-effort de-duplication)."""
        rows = body.get("rows") or []
        ignore_unknown = bool(body.get("ignoreUnknownValues"))
        skip_invalid = bool(body.get("skipInvalidRows"))
        ref = (project, ds, table)
        with self._lock:
            schema = self.table_schema(project, ds, table)
            if schema is None:
                raise QueryError("notFound", f"Not found: Table {project}:{ds}.{table}")
            if "view" in self._meta.get(ref, {}):
                raise QueryError("invalid", f"Cannot insert rows into view {project}:{ds}.{table}")
            problems: dict[int, dict[str, str]] = {}
            for index, row in enumerate(rows):
                problem = row_problem(schema, row.get("json") or {}, ignore_unknown)
                if problem:
                    problems[index] = problem
            if problems and not skip_invalid:
                return _insert_errors(problems, len(rows), others_stopped=True)
            if ref in self._meta:
                self._expire(ref)
            good = [i for i in range(len(rows)) if i not in problems]
            ids = [rows[i].get("insertId") for i in good]
            seen = self._buffer_seen(ref, [i for i in ids if i])
            keep, taken = [], set()
            for index, insert_id in zip(good, ids, strict=True):
                if insert_id and (insert_id in seen or insert_id in taken):
                    continue  # a retry of a row already streamed
                taken.add(insert_id)
                keep.append(index)
            if keep:
                try:
                    self._stream(ref, schema, [rows[i] for i in keep])
                except QueryError as err:
                    for i in keep:
                        problems[i] = {"reason": "invalid", "location": "", "message": err.message}
        if problems:
            return _insert_errors(problems, len(rows), others_stopped=False)
        return json_response({"kind": "bigquery#tableDataInsertAllResponse"})

    def _stream(self, ref: tuple[str, str, str], schema: list[dict], rows: list[dict]) -> None:
        """Write rows to the table and to its streaming buffer copy, both or neither."""
        names = {f["name"].lower(): f["name"] for f in schema}  # field names are case-insensitive
        data = [{names.get(k.lower(), k): v for k, v in (row.get("json") or {}).items()} for row in rows]
        sizes = [len(json.dumps(d, default=str)) for d in data]
        ids = [row.get("insertId") for row in rows]
        db = self._conn()
        own, created = not self._in_batch, ref not in self._buffered
        if own:
            db.execute("BEGIN TRANSACTION")
        try:
            self._insert_columns(table_ident(*ref), schema, data)
            self._buffer_add(ref, schema, data, sizes, ids)
        except BaseException:
            if own:
                db.execute("ROLLBACK")
                if created:  # the buffer copy's CREATE was rolled back too
                    self._buffered.discard(ref)
            raise
        if own:
            db.execute("COMMIT")


def _insert_errors(problems: dict[int, dict[str, str]], total: int, others_stopped: bool) -> Response:
    """insertErrors: each bad row with its error; when the request failed as a whole, every other row
    with reason "stopped" (nothing was written)."""
    errors = [{"index": i, "errors": [{**problems[i], "debugInfo": ""}]} for i in sorted(problems)]
    if others_stopped:
        stopped = {"reason": "stopped", "location": "", "debugInfo": "", "message": ""}
        errors += [{"index": i, "errors": [stopped]} for i in range(total) if i not in problems]
    return json_response({"kind": "bigquery#tableDataInsertAllResponse", "insertErrors": errors})


def row_problem(schema: list[dict[str, Any]], data: Any, ignore_unknown: bool, path: str = "") -> dict | None:
    """The first thing BigQuery refuses in one row (a JSON object) against the schema, or None."""
    if not isinstance(data, dict):
        return {"reason": "invalid", "location": path, "message": "This field is not a record."}
    names = {f["name"].lower(): f for f in schema}
    if not ignore_unknown:
        for key in data:
            if key.lower() not in names:
                return {"reason": "invalid", "location": f"{path}{key}", "message": "no such field."}
    lowered = {k.lower(): v for k, v in data.items()}
    for field in schema:
        value = lowered.get(field["name"].lower())
        where = f"{path}{field['name']}"
        if value is None:
            if field["mode"] == "REQUIRED":
                return {
                    "reason": "invalid",
                    "location": where,
                    "message": f"Missing required field: {where}.",
                }
            continue
        values = value if field["mode"] == "REPEATED" else [value]
        if field["mode"] == "REPEATED" and not isinstance(value, list):
            return {
                "reason": "invalid",
                "location": where,
                "message": "Array specified for non-repeated field.",
            }
        for item in values:
            if field["type"] == "RECORD":
                problem = row_problem(field["fields"], item, ignore_unknown, where + ".")
                if problem:
                    return problem
            elif not _convertible(field, item):
                return {
                    "reason": "invalid",
                    "location": where,
                    "message": f"Cannot convert value to {field['type'].lower()} (bad value): {item}",
                }
    return None


def _convertible(field: dict[str, Any], value: Any) -> bool:
    kind = field["type"]
    try:
        if kind in ("INTEGER", "INT64"):
            return not isinstance(value, bool) and (isinstance(value, int) or int(str(value)) is not None)
        if kind in ("FLOAT", "FLOAT64", "NUMERIC", "BIGNUMERIC"):
            return not isinstance(value, bool) and float(value) is not None
        if kind in ("BOOLEAN", "BOOL"):
            return isinstance(value, bool) or str(value).lower() in ("true", "false", "1", "0")
        if kind in ("TIMESTAMP", "DATE", "DATETIME", "TIME", "BYTES"):
            return bq_sql.insert_value(field, value) is not None
    except (TypeError, ValueError, ArithmeticError, binascii.Error):
        return False
    return True
