"""BigQuery v2 REST datasets and tables: the resources, datasets.list/insert and tables.insert."""

from __future__ import annotations

import time
from typing import Any

from werkzeug.wrappers import Request, Response

from localcloud.bq_sql import QueryError
from localcloud.service import json_response
from localcloud.services.bigquery_db import DATASET_RE, DEFAULT_LOCATION, BigQueryDatabase, table_ident


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
        table = (body.get("tableReference") or {}).get("tableId", "")
        fields = (body.get("schema") or {}).get("fields") or []
        with self._lock:
            if not self.create_table(project, ds, table, fields):
                raise QueryError("duplicate", f"Already Exists: Table {project}:{ds}.{table}")
            return json_response(self._table_resource(project, ds, table))

    def _table_resource(self, project: str, ds: str, table: str, full: bool = True) -> dict[str, Any]:
        with self._lock:
            schema = self.table_schema(project, ds, table)
            if schema is None:
                raise QueryError("notFound", f"Not found: Table {project}:{ds}.{table}")
            count = (
                full
                and self._conn()
                .execute(f"SELECT count(*) FROM {table_ident(project, ds, table)}")  # noqa: S608 - quoted identifiers
                .fetchone()[0]
            )
        resource: dict[str, Any] = {
            "kind": "bigquery#table",
            "id": f"{project}:{ds}.{table}",
            "tableReference": {"projectId": project, "datasetId": ds, "tableId": table},
            "type": "TABLE",
        }
        if full:
            resource.update(
                schema={"fields": schema},
                numRows=str(count),
                location=self._dataset_resource(project, ds)["location"],
                selfLink=f"https://bigquery.googleapis.com/bigquery/v2/projects/{project}/datasets/{ds}/tables/{table}",
            )
        return resource
