"""BigQuery v2 REST tabledata: list (rows of a table, paged) and insertAll (streaming inserts)."""

from __future__ import annotations

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
        """tabledata.insertAll (the client's insert_rows/insert_rows_json): all rows or none are written."""
        rows = body.get("rows") or []
        ignore_unknown = bool(body.get("ignoreUnknownValues"))
        with self._lock:
            schema = self.table_schema(project, ds, table)
            if schema is None:
                raise QueryError("notFound", f"Not found: Table {project}:{ds}.{table}")
            names = [f["name"] for f in schema]
            problems = []
            for index, row in enumerate(rows):
                data = row.get("json") or {}
                unknown = sorted(set(data) - set(names))
                missing = [
                    f["name"] for f in schema if f["mode"] == "REQUIRED" and data.get(f["name"]) is None
                ]
                if (unknown and not ignore_unknown) or missing:
                    what = (
                        f"no such field: {unknown[0]}"
                        if unknown and not ignore_unknown
                        else f"missing required field: {missing[0]}"
                    )
                    problems.append({"index": index, "errors": [{"reason": "invalid", "message": what}]})
            if not problems and rows:
                try:
                    self.insert_rows(project, ds, table, [row.get("json") or {} for row in rows], schema)
                except QueryError as err:
                    problems = [
                        {"index": i, "errors": [{"reason": "invalid", "message": err.message}]}
                        for i in range(len(rows))
                    ]
        answer: dict[str, Any] = {"kind": "bigquery#tableDataInsertAllResponse"}
        if problems:
            answer["insertErrors"] = problems
        return json_response(answer)
