"""BigQuery v2 REST (GCP_REST.md section 6) on DuckDB, with SQL translated by sqlglot (localcloud.bq_sql).

State: one DuckDB file, `<state>/bigquery/bigquery.duckdb`. A dataset `project.dataset` is the DuckDB
schema `"<project>__<dataset>"`; dataset metadata (location, creation time) lives in the schema
`_localcloud`. Query jobs run to completion when inserted and are kept in memory (the newest 2000),
which is all google-cloud-bigquery needs to poll them and page their rows.

DuckDB connections are not thread-safe: every use of the connection holds `self._lock`.
Other services use the in-process API (`ensure_dataset`, `create_table`, `run_query`, ...).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import duckdb
from werkzeug.wrappers import Request, Response

from localcloud import bq_sql
from localcloud.bq_sql import QueryError
from localcloud.service import Service, Unauthenticated, google_error, json_response

META = "_localcloud"
MAX_JOBS = 2000
MAX_TRANSLATIONS = 500
PAGE_ROWS = 10_000  # rows in one page when the client sets no maxResults
DEFAULT_LOCATION = "US"
# BigQuery IDs: datasets are letters, digits and underscores; tables also dashes (and spaces, which we
# do not need).
DATASET_RE = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
TABLE_RE = re.compile(r"^[A-Za-z0-9_\-]{1,1024}$")

REASON_STATUS = {"invalidQuery": 400, "invalid": 400, "notFound": 404, "duplicate": 409, "backendError": 500}


@dataclass
class QueryResult:
    schema: list[dict[str, Any]]
    rows: list[tuple]
    statement_type: str
    affected: int | None = None  # DML only


@dataclass
class Job:
    resource: dict[str, Any]
    result: QueryResult | None = None
    error: QueryError | None = None
    created: float = field(default_factory=time.time)


def _ms(t: float) -> str:
    return str(int(t * 1000))


class BigQueryService(Service):
    name = "bigquery"
    hosts = ("bigquery.googleapis.com",)

    def __init__(self, cloud):
        super().__init__(cloud)
        self._lock = threading.RLock()
        self._db: duckdb.DuckDBPyConnection | None = None
        self._jobs: OrderedDict[tuple[str, str], Job] = OrderedDict()
        self._translations: OrderedDict[tuple[str, str], list[bq_sql.Translated]] = OrderedDict()
        self._tables: dict[str, set[str]] | None = None  # see _catalog()

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
            self.start()

    def _conn(self) -> duckdb.DuckDBPyConnection:
        if self._db is None:
            raise QueryError("backendError", "BigQuery emulation is not running")
        return self._db

    # --- in-process API (the CloudAct API uses it) --------------------------------------------------

    @contextlib.contextmanager
    def batch(self):
        """Run several in-process calls as one DuckDB transaction: all or nothing, and one commit to
        disk instead of one per statement (org-sync-all over thousands of orgs)."""
        with self._lock:
            db = self._conn()
            db.execute("BEGIN TRANSACTION")
            try:
                yield self
            except BaseException:
                db.execute("ROLLBACK")
                self._tables = None
                raise
            db.execute("COMMIT")

    def _catalog(self) -> dict[str, set[str]]:
        """Schema -> table names, cached: DuckDB's catalog functions scan every schema (milliseconds each
        with thousands of org datasets), and a failed lookup would abort a `batch` transaction.
        Any statement that may change the catalog, other than ours, drops the cache."""
        if self._tables is None:
            db = self._conn()
            catalog: dict[str, set[str]] = {
                n: set() for (n,) in db.execute("SELECT schema_name FROM duckdb_schemas()").fetchall()
            }
            listed = db.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() UNION ALL "
                "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
            for schema, table in listed:
                catalog.setdefault(schema, set()).add(table)
            self._tables = catalog
        return self._tables

    def dataset_exists(self, project: str, dataset: str) -> bool:
        with self._lock:
            return bq_sql.schema_name(project, dataset) in self._catalog()

    def ensure_dataset(self, project: str, dataset: str, location: str = DEFAULT_LOCATION) -> bool:
        """Create the dataset if absent; True when it was created."""
        return bool(self.ensure_datasets(project, [dataset], location))

    def ensure_datasets(
        self, project: str, datasets: list[str], location: str = DEFAULT_LOCATION
    ) -> list[str]:
        """Create those of the datasets that are absent (metadata in one statement); the created ones."""
        for dataset in datasets:
            if not DATASET_RE.match(dataset):
                raise QueryError(
                    "invalid", f"Invalid dataset ID {dataset!r}: letters, digits and underscores only"
                )
        with self._lock:
            catalog, db = self._catalog(), self._conn()
            created = [d for d in dict.fromkeys(datasets) if bq_sql.schema_name(project, d) not in catalog]
            for dataset in created:
                schema = bq_sql.schema_name(project, dataset)
                db.execute(f"CREATE SCHEMA {_ident(schema)}")
                catalog[schema] = set()
            if created:
                # One statement for all rows (DuckDB runs one INSERT per row ~100x slower). A dataset is
                # only recorded when its schema did not exist and deleted with it, so rows are unique.
                db.execute(
                    "INSERT INTO _localcloud.datasets SELECT ?, UNNEST(?), ?, ?, NULL",
                    [project, created, location, int(time.time() * 1000)],
                )
            return created

    def delete_dataset(self, project: str, dataset: str, delete_contents: bool = False) -> None:
        with self._lock:
            if not self.dataset_exists(project, dataset):
                raise QueryError("notFound", f"Not found: Dataset {project}:{dataset}")
            if self.list_tables(project, dataset) and not delete_contents:
                raise QueryError("resourceInUse", f"Dataset {project}:{dataset} is still in use")
            db = self._conn()
            schema = bq_sql.schema_name(project, dataset)
            db.execute(f"DROP SCHEMA {_ident(schema)} CASCADE")
            db.execute(
                "DELETE FROM _localcloud.datasets WHERE project = ? AND dataset = ?", [project, dataset]
            )
            self._catalog().pop(schema, None)

    def list_datasets(self, project: str) -> list[str]:
        prefix = bq_sql.schema_name(project, "")
        with self._lock:
            names = list(self._catalog())
        return sorted({n[len(prefix) :] for n in names if n.startswith(prefix) and len(n) > len(prefix)})

    def list_tables(self, project: str, dataset: str) -> list[str]:
        with self._lock:
            return sorted(self._catalog().get(bq_sql.schema_name(project, dataset), ()))

    def table_schema(self, project: str, dataset: str, table: str) -> list[dict[str, Any]] | None:
        """The table's BigQuery schema fields, or None when there is no such table."""
        with self._lock:
            if table not in self._catalog().get(bq_sql.schema_name(project, dataset), ()):
                return None
            rows = self._conn().execute(f"DESCRIBE {_table_ident(project, dataset, table)}").fetchall()
        return [bq_sql.bq_field(name, dtype, nullable == "YES") for name, dtype, nullable, *_ in rows]

    def column_names(self, project: str, datasets: list[str]) -> dict[tuple[str, str], set[str]]:
        """(dataset, table) -> its column names, for many datasets in one catalog read."""
        schemas = {bq_sql.schema_name(project, d): d for d in datasets}
        with self._lock:
            rows = (
                self._conn()
                .execute(
                    "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
                    "WHERE schema_name IN (SELECT UNNEST(?))",
                    [list(schemas)],
                )
                .fetchall()
            )
        found: dict[tuple[str, str], set[str]] = {}
        for schema, table, column in rows:
            found.setdefault((schemas[schema], table), set()).add(column)
        return found

    def create_table(self, project: str, dataset: str, table: str, fields: list[dict[str, Any]]) -> bool:
        """Create a table with a BigQuery schema; True when created, False when it existed."""
        if not TABLE_RE.match(table):
            raise QueryError("invalid", f"Invalid table ID {table!r}: letters, digits, _ and - only")
        if not fields:
            raise QueryError(
                "invalid", f"Table {project}:{dataset}.{table} needs a schema with at least one field"
            )
        columns = ", ".join(bq_sql.column_ddl(f) for f in fields)
        with self._lock:
            if not self.dataset_exists(project, dataset):
                raise QueryError("notFound", f"Not found: Dataset {project}:{dataset}")
            if self.table_schema(project, dataset, table) is not None:
                return False
            self._conn().execute(f"CREATE TABLE {_table_ident(project, dataset, table)} ({columns})")
            self._catalog()[bq_sql.schema_name(project, dataset)].add(table)
            return True

    def insert_rows(
        self,
        project: str,
        dataset: str,
        table: str,
        rows: list[dict[str, Any]],
        schema: list[dict[str, Any]] | None = None,
    ) -> int:
        """Append rows (dicts by column name, JSON or Python values) in one statement: one bound list per
        column, unnested side by side (DuckDB runs one INSERT per row ~100x slower)."""
        with self._lock:
            schema = schema or self.table_schema(project, dataset, table)
            if schema is None:
                raise QueryError("notFound", f"Not found: Table {project}:{dataset}.{table}")
            if not rows:
                return 0
            columns = ", ".join(_ident(f["name"]) for f in schema)
            select = ", ".join(f"UNNEST(${i})" for i in range(1, len(schema) + 1))
            params = [[bq_sql.insert_value(f, row.get(f["name"])) for row in rows] for f in schema]
            sql = f"INSERT INTO {_table_ident(project, dataset, table)} ({columns}) SELECT {select}"
            try:
                return int(self._conn().execute(sql, params).fetchone()[0])
            except duckdb.Error as err:
                raise QueryError("invalid", str(err).split("\n")[0]) from None

    def add_column(self, project: str, dataset: str, table: str, column: dict[str, Any]) -> None:
        with self._lock:
            self._conn().execute(
                f"ALTER TABLE {_table_ident(project, dataset, table)} ADD COLUMN "
                + bq_sql.column_ddl({**column, "mode": "NULLABLE"})
            )

    def drop_table(self, project: str, dataset: str, table: str) -> None:
        with self._lock:
            if self.table_schema(project, dataset, table) is None:
                raise QueryError("notFound", f"Not found: Table {project}:{dataset}.{table}")
            self._conn().execute(f"DROP TABLE {_table_ident(project, dataset, table)}")
            self._catalog()[bq_sql.schema_name(project, dataset)].discard(table)

    def run_query(
        self,
        sql: str,
        params: dict[str, Any] | list[Any] | None = None,
        project: str = "",
        dry_run: bool = False,
    ) -> QueryResult:
        """Run BigQuery Standard SQL with bound parameters (Python values); raises QueryError.
        A dry run checks the statements (names, types, parameters) and changes nothing."""
        project = project or self.cloud.project
        with self._lock:
            statements = self._translations.get((sql, project))
        if statements is None:
            statements = bq_sql.translate(sql, project, self.cloud.now())
            if not any(s.uses_clock for s in statements):  # the same text translates the same way
                with self._lock:
                    self._translations[(sql, project)] = statements
                    if len(self._translations) > MAX_TRANSLATIONS:
                        self._translations.popitem(last=False)
        result: QueryResult | None = None
        with self._lock:
            db = self._conn()
            for stmt in statements:
                result = self._execute(db, stmt, params, project, dry_run)
        assert result is not None
        if len(statements) > 1:
            result.statement_type = "SCRIPT"
        return result

    def _execute(
        self, db, stmt: bq_sql.Translated, params, project: str, dry_run: bool = False
    ) -> QueryResult:
        wanted = _parameter_names(stmt.sql)
        if isinstance(params, dict):
            missing = wanted - set(params)
            if missing:
                raise QueryError("invalidQuery", f"Query parameter '{sorted(missing)[0]}' not found")
            bound: Any = {k: v for k, v in params.items() if k in wanted}
        else:
            bound = list(params or []) if "?" in stmt.sql else None
        text = stmt.sql
        if dry_run:  # plan it (SELECT: with no rows) so that missing names and bad types still fail
            text = (
                f"SELECT * FROM ({text}) AS dry_run LIMIT 0"  # noqa: S608 - the query under test
                if stmt.statement_type == "SELECT"
                else "EXPLAIN " + text
            )
        if stmt.statement_type not in bq_sql.DML_TYPES | {"SELECT"}:
            self._tables = None  # DDL in SQL: CREATE/DROP/ALTER may change the catalog
        try:
            cursor = db.execute(text, bound) if bound else db.execute(text)
            rows = cursor.fetchall() if cursor.description else []
        except duckdb.Error as err:
            raise _query_error(err, stmt, project) from None
        if dry_run and stmt.statement_type != "SELECT":
            return QueryResult(
                [], [], stmt.statement_type, 0 if stmt.statement_type in bq_sql.DML_TYPES else None
            )
        if stmt.statement_type in bq_sql.DML_TYPES:
            affected = int(rows[0][0]) if rows else 0
            return QueryResult([], [], stmt.statement_type, affected)
        if stmt.statement_type != "SELECT":
            return QueryResult([], [], stmt.statement_type)
        schema = [bq_sql.bq_field(d[0], str(d[1])) for d in cursor.description]
        return QueryResult(schema, rows, stmt.statement_type)

    # --- REST ---------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        try:
            self.cloud.authenticate(request)
        except Unauthenticated as err:
            return google_error(401, f"Request is missing required authentication credential. {err}")
        path = request.path.removeprefix("/bigquery/v2")
        parts = [p for p in path.split("/") if p]
        if len(parts) < 2 or parts[0] != "projects":
            return _error(404, "notFound", f"Not found: URL {request.path}")
        project, rest, method = parts[1], parts[2:], request.method
        try:
            return self._route(request, method, project, rest)
        except QueryError as err:
            return _error(REASON_STATUS.get(err.reason, 400), err.reason, err.message)
        except (ValueError, TypeError, KeyError) as err:
            return _error(400, "invalid", f"Invalid request: {err}")

    def _route(self, request: Request, method: str, project: str, rest: list[str]) -> Response:
        body = (request.get_json(silent=True) or {}) if method in ("POST", "PATCH", "PUT") else {}
        match rest, method:
            case ["datasets"], "GET":
                return self._list_datasets(project, request)
            case ["datasets"], "POST":
                return self._insert_dataset(project, body)
            case ["datasets", ds], "GET":
                return json_response(self._dataset_resource(project, ds))
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
        return _error(404, "notFound", f"Not found: {method} {request.path}")

    # datasets and tables

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
                .execute(f"SELECT count(*) FROM {_table_ident(project, ds, table)}")  # noqa: S608 - quoted identifiers
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

    def _list_rows(self, project: str, ds: str, table: str, request: Request) -> Response:
        start = int(request.args.get("pageToken") or request.args.get("startIndex") or 0)
        size = int(request.args.get("maxResults") or PAGE_ROWS)
        with self._lock:
            schema = self.table_schema(project, ds, table)
            if schema is None:
                raise QueryError("notFound", f"Not found: Table {project}:{ds}.{table}")
            ident = _table_ident(project, ds, table)
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

    # jobs

    def _job(self, project: str, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get((project, job_id))
        if job is None:
            raise QueryError("notFound", f"Not found: Job {project}:{job_id}")
        return job

    def _run_job(
        self, project: str, job_id: str, location: str, query_config: dict[str, Any], dry_run: bool = False
    ) -> Job:
        started = self.cloud.now().timestamp()
        job = Job(resource={})
        if query_config.get("useLegacySql") is True:
            job.error = QueryError(
                "invalidQuery", "Legacy SQL is not supported by localcloud: set useLegacySql=false"
            )
        else:
            try:
                params = bq_sql.bind_parameters(
                    query_config.get("queryParameters") or [], query_config.get("parameterMode")
                )
                job.result = self.run_query(query_config.get("query", ""), params, project, dry_run)
            except QueryError as err:
                job.error = err
        ended = max(self.cloud.now().timestamp(), started)
        stats: dict[str, Any] = {"totalBytesProcessed": "0", "cacheHit": False}
        if job.result:
            stats["statementType"] = job.result.statement_type
            if job.result.affected is not None:
                stats["numDmlAffectedRows"] = str(job.result.affected)
                stats["dmlStats"] = {
                    _DML_STAT.get(job.result.statement_type, "updatedRowCount"): str(job.result.affected)
                }
            if job.result.schema:
                stats["schema"] = {"fields": job.result.schema}
        status: dict[str, Any] = {"state": "DONE"}
        if job.error:
            problem = {"reason": job.error.reason, "message": job.error.message, "location": "query"}
            status.update(errorResult=problem, errors=[problem])
        job.resource = {
            "kind": "bigquery#job",
            "etag": f'"{job_id}"',
            "id": f"{project}:{location}.{job_id}",
            "selfLink": f"https://bigquery.googleapis.com/bigquery/v2/projects/{project}/jobs/{job_id}?location={location}",
            "user_email": "localcloud",
            "jobReference": {"projectId": project, "jobId": job_id, "location": location},
            "configuration": {
                "jobType": "QUERY",
                "query": {**query_config, "useLegacySql": False},
                **({"dryRun": True} if dry_run else {}),
            },
            "status": status,
            "statistics": {
                "creationTime": _ms(started),
                "startTime": _ms(started),
                "endTime": _ms(ended),
                "totalBytesProcessed": "0",
                "query": stats,
            },
        }
        if not dry_run:  # BigQuery keeps no dry-run jobs
            with self._lock:
                self._jobs[(project, job_id)] = job
                while len(self._jobs) > MAX_JOBS:
                    self._jobs.popitem(last=False)
        return job

    def _insert_job(self, project: str, body: dict[str, Any]) -> Response:
        ref = body.get("jobReference") or {}
        job_id = ref.get("jobId") or str(uuid.uuid4())
        config = (body.get("configuration") or {}).get("query")
        if config is None:
            raise QueryError("invalid", "Only query jobs are supported by localcloud (configuration.query)")
        with self._lock:
            if (project, job_id) in self._jobs:
                raise QueryError("duplicate", f"Already Exists: Job {project}:{job_id}")
        dry_run = bool((body.get("configuration") or {}).get("dryRun"))
        job = self._run_job(project, job_id, ref.get("location") or DEFAULT_LOCATION, config, dry_run)
        if dry_run and job.error:  # a dry run answers a bad query with an HTTP error, not a failed job
            return _error(REASON_STATUS.get(job.error.reason, 400), job.error.reason, job.error.message)
        return json_response(job.resource)

    def _query(self, project: str, body: dict[str, Any]) -> Response:
        config = {
            k: body[k] for k in ("query", "queryParameters", "parameterMode", "useLegacySql") if k in body
        }
        location = body.get("location") or DEFAULT_LOCATION
        dry_run = bool(body.get("dryRun"))
        job = self._run_job(project, f"job_{uuid.uuid4().hex}", location, config, dry_run)
        if job.error:  # jobs.query reports a failed query as an HTTP error
            return _error(REASON_STATUS.get(job.error.reason, 400), job.error.reason, job.error.message)
        page = self._results_page(job, 0, body.get("maxResults"))
        page["kind"] = "bigquery#queryResponse"
        return json_response(page)

    def _get_query_results(self, project: str, job_id: str, request: Request) -> Response:
        job = self._job(project, job_id)
        if job.error:
            return _error(REASON_STATUS.get(job.error.reason, 400), job.error.reason, job.error.message)
        start = int(request.args.get("pageToken") or request.args.get("startIndex") or 0)
        page = self._results_page(job, start, request.args.get("maxResults"))
        page.update(kind="bigquery#getQueryResultsResponse", etag=f'"{job_id}"')
        return json_response(page)

    def _results_page(self, job: Job, start: int, max_results: Any) -> dict[str, Any]:
        assert job.result is not None
        result = job.result
        ref = job.resource["jobReference"]
        page: dict[str, Any] = {
            "jobReference": ref,
            "jobComplete": True,
            "totalBytesProcessed": "0",
            "cacheHit": False,
            "location": ref["location"],
            "queryId": ref["jobId"],
        }
        if result.affected is not None:
            page["numDmlAffectedRows"] = str(result.affected)
            page["dmlStats"] = job.resource["statistics"]["query"].get("dmlStats", {})
        if result.statement_type != "SELECT":
            return page
        size = PAGE_ROWS if max_results in (None, "") else int(max_results)
        page["schema"] = {"fields": result.schema}
        page["totalRows"] = str(len(result.rows))
        if size > 0:
            chunk = result.rows[start : start + size]
            page["rows"] = [
                {"f": [{"v": bq_sql.encode_value(f, v)} for f, v in zip(result.schema, row, strict=True)]}
                for row in chunk
            ]
            if start + size < len(result.rows):
                page["pageToken"] = str(start + size)
        elif result.rows:
            page["pageToken"] = str(start)
        return page


_DML_STAT = {"INSERT": "insertedRowCount", "DELETE": "deletedRowCount", "UPDATE": "updatedRowCount"}
_PARAM_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_NOT_FOUND_RE = re.compile(r"Table with name \"?([^\"\s!]+)\"? does not exist")
_NO_SCHEMA_RE = re.compile(r"because schema \"([^\"]+)\" does not exist")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table_ident(project: str, dataset: str, table: str) -> str:
    return f"{_ident(bq_sql.schema_name(project, dataset))}.{_ident(table)}"


def _parameter_names(sql: str) -> set[str]:
    # Placeholders sqlglot wrote; string literals cannot hold `$name` unquoted in its output, except
    # inside quotes, which we strip first.
    return set(_PARAM_RE.findall(re.sub(r"'(?:[^']|'')*'", "''", sql)))


def _query_error(err: duckdb.Error, stmt: bq_sql.Translated, project: str) -> QueryError:
    text = str(err)
    if isinstance(err, duckdb.CatalogException):
        if (m := _NO_SCHEMA_RE.search(text)) or (m := _NOT_FOUND_RE.search(text)):
            name = m.group(1)
            split = bq_sql.split_schema(name)
            if split and m.re is _NO_SCHEMA_RE:
                return QueryError(
                    "notFound", f"Not found: Dataset {split[0]}:{split[1]} was not found in location US"
                )
            for proj, ds, table in stmt.tables:
                if table == name:
                    return QueryError(
                        "notFound", f"Not found: Table {proj}:{ds}.{table} was not found in location US"
                    )
            return QueryError("notFound", f"Not found: Table {project}:{name} was not found in location US")
    return QueryError("invalidQuery", text.split("\n\n")[0].split("\nDid you mean")[0])


def _error(code: int, reason: str, message: str) -> Response:
    return google_error(code, message, errors=[{"message": message, "domain": "global", "reason": reason}])
