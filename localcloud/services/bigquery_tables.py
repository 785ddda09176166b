"""BigQuery v2 REST datasets and tables: the resources, datasets.list/insert and tables.insert/patch/update
(tables, views, time partitioning, schema changes)."""

from __future__ import annotations

import time
from typing import Any

import duckdb
from werkzeug.wrappers import Request, Response

from localcloud import bq_sql
from localcloud.bq_sql import QueryError
from localcloud.service import json_response
from localcloud.services.bigquery_db import (
    DATASET_RE,
    DEFAULT_LOCATION,
    BigQueryDatabase,
    ident,
    query_error,
    table_ident,
)
from localcloud.services.bigquery_meta import (
    buffer_ident,
    check_partitioning,
    normalize_schema,
    schema_changes,
)


class BigQueryTables(BigQueryDatabase):
    """datasets.get/list/insert and tables.get/list/insert as BigQuery answers them."""

    def _dataset_resource(self, project: str, ds: str) -> dict[str, Any]:
        with self._lock:
            if not self.dataset_exists(project, ds):
                raise QueryError("notFound", f"Not found: Dataset {project}:{ds}")
            meta = (
                self._conn()
                .execute(
                    "SELECT location, created_ms FROM _localcloud.datasets WHERE project = ? AND dataset = ?",
                    [project, ds],
                )
                .fetchone()
            )
        location, created = meta if meta else (DEFAULT_LOCATION, int(time.time() * 1000))
        return {
            "kind": "bigquery#dataset",
            "id": f"{project}:{ds}",
            "etag": f'"{created}"',
            "selfLink": f"https://bigquery.googleapis.com/bigquery/v2/projects/{project}/datasets/{ds}",
            "datasetReference": {"projectId": project, "datasetId": ds},
            "location": location,
            "creationTime": str(created),
            "lastModifiedTime": str(created),
            "type": "DEFAULT",
        }

    def _list_datasets(self, project: str, request: Request) -> Response:
        names = self.list_datasets(project)
        start = int(request.args.get("pageToken") or 0)
        size = int(request.args.get("maxResults") or 1000)
        page = names[start : start + size]
        body: dict[str, Any] = {
            "kind": "bigquery#datasetList",
            "etag": f'"{len(names)}"',
            "datasets": [
                {
                    k: v
                    for k, v in self._dataset_resource(project, n).items()
                    if k in ("kind", "id", "datasetReference", "location")
                }
                for n in page
            ],
        }
        if start + size < len(names):
            body["nextPageToken"] = str(start + size)
        return json_response(body)

    def _insert_dataset(self, project: str, body: dict[str, Any]) -> Response:
        ref = body.get("datasetReference") or {}
        ds = ref.get("datasetId", "")
        if not DATASET_RE.match(ds):
            raise QueryError("invalid", f"Invalid dataset ID {ds!r}: letters, digits and underscores only")
        location = body.get("location") or DEFAULT_LOCATION
        with self._lock:
            if not self.ensure_dataset(project, ds, location):
                raise QueryError("duplicate", f"Already Exists: Dataset {project}:{ds}")
            return json_response(self._dataset_resource(project, ds))

    def _insert_table(self, project: str, ds: str, body: dict[str, Any]) -> Response:
        """tables.insert: a table (schema, timePartitioning, requirePartitionFilter) or a view."""
        table = (body.get("tableReference") or {}).get("tableId", "")
        ref = (project, ds, table)
        view = body.get("view")
        with self._lock:
            if view is not None:
                self._create_view(ref, view, body)
                return json_response(self._table_resource(project, ds, table))
            fields = normalize_schema((body.get("schema") or {}).get("fields") or [])
            meta = self._table_meta(body, fields, None)
            if self.table_schema(project, ds, table) is not None:
                raise QueryError("duplicate", f"Already Exists: Table {project}:{ds}.{table}")
            self.create_table(project, ds, table, fields)
            self._meta_put(ref, meta)
            return json_response(self._table_resource(project, ds, table))

    def _table_meta(self, body: dict[str, Any], fields: list[dict], old: dict[str, Any] | None) -> dict:
        """The stored metadata of a table for a tables.insert/patch body (validated before any change)."""
        now = str(self._now_ms())
        meta: dict[str, Any] = {**(old or {"creationTime": now}), "schema": fields, "lastModifiedTime": now}
        old_spec = (old or {}).get("timePartitioning")
        if body.get("timePartitioning") is not None:
            if old is not None and old_spec is None:
                raise QueryError("invalid", "Cannot convert non-partitioned table to partitioned table.")
            given = body["timePartitioning"]
            if isinstance(given, dict) and old_spec:  # a patch may give only what changes
                given = {**{k: v for k, v in old_spec.items() if k != "expirationMs"}, **given}
            spec = check_partitioning(given, fields, old_spec)
            meta["timePartitioning"] = spec
            if body["timePartitioning"].get("requirePartitionFilter") is not None:  # the deprecated place
                meta["requirePartitionFilter"] = bool(body["timePartitioning"]["requirePartitionFilter"])
        if "requirePartitionFilter" in body:
            meta["requirePartitionFilter"] = bool(body["requirePartitionFilter"])
        for key in ("description", "friendlyName", "labels"):
            if key in body:
                meta[key] = body[key]
        return meta

    def _create_view(self, ref: tuple[str, str, str], view: dict[str, Any], body: dict[str, Any]) -> None:
        project, ds, table = ref
        query = self._view_query(ref, view)
        if not self.dataset_exists(project, ds):
            raise QueryError("notFound", f"Not found: Dataset {project}:{ds}")
        if self.table_schema(project, ds, table) is not None:
            raise QueryError("duplicate", f"Already Exists: Table {project}:{ds}.{table}")
        self._define_view(ref, query, replace=False)
        now = str(self._now_ms())
        meta = {"view": {"query": query, "useLegacySql": False}, "creationTime": now, "lastModifiedTime": now}
        meta.update({k: body[k] for k in ("description", "friendlyName", "labels") if k in body})
        self._meta_put(ref, meta)

    @staticmethod
    def _view_query(ref: tuple[str, str, str], view: Any) -> str:
        if not isinstance(view, dict) or not str(view.get("query") or "").strip():
            raise QueryError("invalid", f"View {'.'.join(ref)} needs view.query")
        if view.get("useLegacySql") is not False:  # the REST API's default is legacy SQL
            raise QueryError(
                "invalid", "Legacy SQL views are not supported by localcloud: set view.useLegacySql=false"
            )
        return str(view["query"])

    def _define_view(self, ref: tuple[str, str, str], query: str, replace: bool) -> None:
        """The DuckDB view (for the catalog and the view's schema); queries expand the view's own query."""
        (stmt,) = bq_sql.translate(query, ref[0], self.cloud.now(), self._lookup)[:1] or [None]
        if stmt is None or stmt.statement_type != "SELECT":
            raise QueryError("invalid", f"View {'.'.join(ref)}: the query must be a single SELECT")
        verb = "CREATE OR REPLACE VIEW" if replace else "CREATE VIEW"
        try:
            self._conn().execute(f"{verb} {table_ident(*ref)} AS {stmt.sql}")
        except duckdb.Error as err:
            raise query_error(err, stmt, ref[0]) from None
        self._catalog()[bq_sql.schema_name(ref[0], ref[1])].add(ref[2])

    def _patch_table(
        self, project: str, ds: str, table: str, body: dict[str, Any], replace: bool
    ) -> Response:
        """tables.patch (the fields given) and tables.update (the whole resource): schema additions and
        relaxations, partition expiration, requirePartitionFilter, a view's query, descriptions."""
        ref = (project, ds, table)
        with self._lock:
            current = self.table_schema(project, ds, table)
            if current is None:
                raise QueryError("notFound", f"Not found: Table {project}:{ds}.{table}")
            old = self._meta.get(ref) or {"schema": current}
            if replace:  # update: what the body leaves out is cleared
                old = {k: v for k, v in old.items() if k not in ("description", "friendlyName", "labels")}
            if "view" in old:
                if body.get("view") is not None:
                    query = self._view_query(ref, body["view"])
                    self._define_view(ref, query, replace=True)
                    old = {**old, "view": {"query": query, "useLegacySql": False}}
                meta = {**old, "lastModifiedTime": str(self._now_ms())}
                meta.update({k: body[k] for k in ("description", "friendlyName", "labels") if k in body})
                self._meta_put(ref, meta)
                return json_response(self._table_resource(project, ds, table))
            if body.get("view") is not None:
                raise QueryError("invalid", f"Table {project}:{ds}.{table} is not a view; cannot set view")
            fields = old.get("schema", current)
            changes: list[tuple] = []
            if body.get("schema") is not None:
                new_fields = normalize_schema((body.get("schema") or {}).get("fields") or [])
                changes = schema_changes(f"{project}:{ds}.{table}", fields, new_fields)
                fields = new_fields
            meta = self._table_meta(body, fields, old)
            for change in changes:
                self._alter(ref, change)
            self._meta_put(ref, meta)
            return json_response(self._table_resource(project, ds, table))

    def _alter(self, ref: tuple[str, str, str], change: tuple) -> None:
        db = self._conn()
        path = ".".join(ident(part) for part in change[1].split("."))
        if change[0] == "add":
            ddl = f"{path} {bq_sql.duck_type(change[2])}"
            db.execute(f"ALTER TABLE {table_ident(*ref)} ADD COLUMN {ddl}")
            if ref in self._buffered:
                db.execute(f"ALTER TABLE {buffer_ident(ref)} ADD COLUMN {ddl}")
        elif "." not in change[1]:  # relax: REQUIRED -> NULLABLE (nested fields carry no constraint)
            db.execute(f"ALTER TABLE {table_ident(*ref)} ALTER COLUMN {path} DROP NOT NULL")

    def _table_resource(self, project: str, ds: str, table: str, full: bool = True) -> dict[str, Any]:
        ref = (project, ds, table)
        with self._lock:
            schema = self.table_schema(project, ds, table)
            if schema is None:
                raise QueryError("notFound", f"Not found: Table {project}:{ds}.{table}")
            meta = self._meta.get(ref) or {}
            is_view = "view" in meta
            count, buffer = 0, None
            if full and not is_view:
                if ref in self._meta:
                    self._expire(ref)
                buffer = self._buffer_rows(ref)
                count = (
                    self._conn()
                    .execute(f"SELECT count(*) FROM {table_ident(project, ds, table)}")  # noqa: S608 - quoted identifiers
                    .fetchone()[0]
                )
        resource: dict[str, Any] = {
            "kind": "bigquery#table",
            "id": f"{project}:{ds}.{table}",
            "tableReference": {"projectId": project, "datasetId": ds, "tableId": table},
            "type": "VIEW" if is_view else "TABLE",
        }
        for key in ("timePartitioning", "creationTime"):
            if key in meta:
                resource[key] = meta[key]
        if full:
            resource.update(
                schema={"fields": schema},
                location=self._dataset_resource(project, ds)["location"],
                selfLink=f"https://bigquery.googleapis.com/bigquery/v2/projects/{project}/datasets/{ds}/tables/{table}",
            )
            for key in ("description", "friendlyName", "labels", "lastModifiedTime", "view"):
                if key in meta:
                    resource[key] = meta[key]
            if meta.get("requirePartitionFilter"):
                resource["requirePartitionFilter"] = True
            if "lastModifiedTime" in meta:
                resource["etag"] = f'"{meta["lastModifiedTime"]}"'
            if not is_view:
                # numRows excludes the streaming buffer, as BigQuery's does.
                resource["numRows"] = str(count - (buffer[0] if buffer else 0))
            if buffer:
                resource["streamingBuffer"] = {
                    "estimatedRows": str(buffer[0]),
                    "estimatedBytes": str(buffer[1]),
                    "oldestEntryTime": str(buffer[2]),
                }
        return resource
