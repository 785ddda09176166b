"""BigQuery v2 REST (docs/gcp-rest.md) on DuckDB, with SQL translated by sqlglot (localcloud.bq_sql).

State: one DuckDB file, `<state>/bigquery/bigquery.duckdb`. A dataset `project.dataset` is the DuckDB
schema `"<project>__<dataset>"`; dataset metadata (location, creation time) lives in the schema
`_localcloud`. Query jobs run to completion when inserted and are kept in memory (the newest 2000),
which is all google-cloud-bigquery needs to poll them and page their rows.

DuckDB connections are not thread-safe: every use of the connection holds `self._lock`.
Other services use the in-process API (`ensure_dataset`, `create_table`, `run_query`, ...).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import duckdb
from werkzeug.wrappers import Request, Response

from localcloud import bq_sql, iam_bigquery, iam_permissions, projects
from localcloud.bq_sql import QueryError
from localcloud.service import Unauthenticated, google_error, json_response
from localcloud.services.bigquery_db import META, REASON_STATUS, rest_error
from localcloud.services.bigquery_jobs import BigQueryJobs, Job
from localcloud.services.bigquery_tabledata import BigQueryTabledata
from localcloud.services.bigquery_tables import BigQueryTables

REASON_STATUS.update(accessDenied=403, conditionNotMet=412)  # IAM's refusals (localcloud/iam_bigquery.py)


class BigQueryService(BigQueryTables, BigQueryTabledata, BigQueryJobs):
    """The BigQuery service: lifecycle and the REST routing; storage and the in-process API are in
    bigquery_db, the REST resources in bigquery_tables, bigquery_tabledata and bigquery_jobs."""

    name = "bigquery"
    hosts = ("bigquery.googleapis.com",)
    permissions = iam_permissions.BIGQUERY
    # IAM (localcloud/iam_enforce.py): dataset access entries are bindings; refusals in BigQuery's words.
    iam_bindings = iam_bigquery.dataset_bindings
    iam_denied = iam_bigquery.denied
    iam_error = iam_bigquery.iam_error

    def __init__(self, cloud):
        super().__init__(cloud)
        self._lock = threading.RLock()
        self._db: duckdb.DuckDBPyConnection | None = None
        self._jobs: OrderedDict[tuple[str, str], Job] = OrderedDict()
        self._translations: OrderedDict[tuple[str, str], list[bq_sql.Translated]] = OrderedDict()
        self._tables: dict[str, set[str]] | None = None  # see _catalog()
        self._meta: dict[tuple[str, str, str], dict] = {}  # REST table metadata (bigquery_meta)
        self._buffered: set[tuple[str, str, str]] = set()  # tables with a streaming buffer copy
        self._in_batch = False

    # --- lifecycle ----------------------------------------------------------------------------------

    @property
    def db_path(self):
        return self.state_dir / "bigquery.duckdb"

    def start(self) -> None:
        with self._lock:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._db = duckdb.connect(str(self.db_path))
            self._db.execute("SET TimeZone = 'UTC'")
            # A table name must never resolve to a Python variable of ours (DuckDB's replacement scans).
            self._db.execute("SET python_enable_replacements = false")
            self._db.execute("SET enable_progress_bar = false")  # it would print to localcloud's log
            self._db.execute(f'CREATE SCHEMA IF NOT EXISTS "{META}"')
            self._db.execute(
                f'CREATE TABLE IF NOT EXISTS "{META}".datasets (project VARCHAR, dataset VARCHAR, '
                "location VARCHAR, created_ms BIGINT, description VARCHAR)"
            )
            self._meta_start()

    def stop(self) -> None:
        with self._lock:
            self._tables = None
            if self._db is not None:
                self._db.execute("CHECKPOINT")
                self._db.close()
                self._db = None

    def reset(self) -> None:
        with self._lock:
            self.stop()
            self.db_path.unlink(missing_ok=True)
            self.db_path.with_suffix(".duckdb.wal").unlink(missing_ok=True)
            self._jobs.clear()
            self._translations.clear()
            self.start()

    # --- REST ---------------------------------------------------------------------------------------

    def routes(self) -> list[tuple[str, str]]:
        """What `_route` answers (keep the two in step), for the conformance test."""
        p = "/bigquery/v2/projects/{project}"
        ds, table = p + "/datasets/{ds}", p + "/datasets/{ds}/tables/{table}"
        return [
            ("GET", p + "/datasets"),
            ("POST", p + "/datasets"),
            ("GET", ds),
            ("PATCH", ds),
            ("PUT", ds),
            ("DELETE", ds),
            ("GET", ds + "/tables"),
            ("POST", ds + "/tables"),
            ("GET", table),
            ("PATCH", table),
            ("PUT", table),
            ("GET", table + "/data"),
            ("POST", table + "/insertAll"),
            ("DELETE", table),
            ("POST", p + "/jobs"),
            ("GET", p + "/jobs/{job}"),
            ("POST", p + "/jobs/{job}/cancel"),
            ("POST", p + "/queries"),
            ("GET", p + "/queries/{job}"),
        ]

    def handle(self, request: Request) -> Response:
        try:
            self.cloud.authenticate(request)
        except Unauthenticated as err:
            return google_error(401, f"Request is missing required authentication credential. {err}")
        path = request.path.removeprefix("/bigquery/v2")
        parts = [p for p in path.split("/") if p]
        if len(parts) < 2 or parts[0] != "projects":
            return rest_error(404, "notFound", f"Not found: URL {request.path}")
        project, rest, method = parts[1], parts[2:], request.method
        try:
            return self._route(request, method, project, rest)
        except QueryError as err:
            return rest_error(REASON_STATUS.get(err.reason, 400), err.reason, err.message)
        except (ValueError, TypeError, KeyError) as err:
            return rest_error(400, "invalid", f"Invalid request: {err}")

    def _route(self, request: Request, method: str, project: str, rest: list[str]) -> Response:
        body = (request.get_json(silent=True) or {}) if method in ("POST", "PATCH", "PUT") else {}
        match rest, method:
            case ["datasets"], "GET":
                return self._list_datasets(project, request)
            case ["datasets"], "POST":
                return self._insert_dataset(project, body)
            case ["datasets", ds], "GET":
                return json_response(self._dataset_resource(project, ds))
            case ["datasets", ds], "PATCH" | "PUT":
                return json_response(iam_bigquery.update(self, project, ds, body, request, method == "PUT"))
            case ["datasets", ds], "DELETE":
                self.delete_dataset(project, ds, request.args.get("deleteContents", "").lower() == "true")
                return Response(status=204)
            case ["datasets", ds, "tables"], "GET":
                self._dataset_resource(project, ds)
                tables = [
                    self._table_resource(project, ds, t, full=False) for t in self.list_tables(project, ds)
                ]
                return json_response(
                    {"kind": "bigquery#tableList", "tables": tables, "totalItems": len(tables)}
                )
            case ["datasets", ds, "tables"], "POST":
                return self._insert_table(project, ds, body)
            case ["datasets", ds, "tables", table], "GET":
                return json_response(self._table_resource(project, ds, table))
            case ["datasets", ds, "tables", table], "PATCH" | "PUT":
                return self._patch_table(project, ds, table, body, replace=method == "PUT")
            case ["datasets", ds, "tables", table, "data"], "GET":
                return self._list_rows(project, ds, table, request)
            case ["datasets", ds, "tables", table, "insertAll"], "POST":
                return self._insert_all(project, ds, table, body)
            case ["datasets", ds, "tables", table], "DELETE":
                self.drop_table(project, ds, table)
                return Response(status=204)
            case ["jobs"], "POST":
                return self._insert_job(project, body)
            case ["jobs", job_id], "GET":
                return json_response(self._job(project, job_id).resource)
            case ["jobs", job_id, "cancel"], "POST":
                return json_response(
                    {"kind": "bigquery#jobCancelResponse", "job": self._job(project, job_id).resource}
                )
            case ["queries"], "POST":
                return self._query(project, body)
            case ["queries", job_id], "GET":
                return self._get_query_results(project, job_id, request)
        return rest_error(404, "notFound", f"Not found: {method} {request.path}")

    # --- access entries and query checks (localcloud/iam_bigquery.py) ---------------------------------

    def _dataset_resource(self, project: str, ds: str) -> dict:
        return iam_bigquery.decorate(self, project, ds, super()._dataset_resource(project, ds))

    def _insert_dataset(self, project: str, body: dict) -> Response:
        response = super()._insert_dataset(project, body)
        if response.status_code == 200 and project in projects.BY_ID:
            iam_bigquery.created(self, project, body["datasetReference"]["datasetId"])
            return json_response(self._dataset_resource(project, body["datasetReference"]["datasetId"]))
        return response

    def delete_dataset(self, project: str, dataset: str, delete_contents: bool = False) -> None:
        super().delete_dataset(project, dataset, delete_contents)
        iam_bigquery.forget(self, project, dataset)

    def run_query(self, sql: str, params=None, project: str = "", dry_run: bool = False):
        iam_bigquery.check_query(self, sql, project)
        return super().run_query(sql, params, project, dry_run)
