"""BigQuery's storage on DuckDB and the in-process API over it (datasets, tables, rows, queries), which the
REST modules and other services (the CloudAct API) call.

DuckDB connections are not thread-safe: every use of the connection holds `self._lock`.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import duckdb
from werkzeug.wrappers import Response

from localcloud import bq_sql
from localcloud.bq_sql import QueryError
from localcloud.service import google_error
from localcloud.services.bigquery_meta import META, BigQueryMeta, ident, normalize_schema, table_ident

__all__ = ["META", "BigQueryDatabase", "QueryResult", "ident", "rest_error", "table_ident"]
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


class BigQueryDatabase(BigQueryMeta):
    """The DuckDB connection and its catalog cache, for BigQueryService and its REST mixins."""

    _lock: threading.RLock
    _db: duckdb.DuckDBPyConnection | None
    _translations: OrderedDict[tuple[str, str], list[bq_sql.Translated]]
    _tables: dict[str, set[str]] | None  # see _catalog()

    # --- in-process API (the CloudAct API uses it) --------------------------------------------------

    @contextlib.contextmanager
    def batch(self):
        """Run several in-process calls as one DuckDB transaction: all or nothing, and one commit to
        disk instead of one per statement (org-sync-all over thousands of orgs)."""
        with self._lock:
            db = self._conn()
            db.execute("BEGIN TRANSACTION")
            self._in_batch = True
            try:
                yield self
            except BaseException:
                db.execute("ROLLBACK")
                self._tables = None
                raise
            finally:
                self._in_batch = False
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
                db.execute(f"CREATE SCHEMA {ident(schema)}")
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
            db.execute(f"DROP SCHEMA {ident(schema)} CASCADE")
            db.execute(
                "DELETE FROM _localcloud.datasets WHERE project = ? AND dataset = ?", [project, dataset]
            )
            self._meta_drop(project, dataset)
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
            meta = self._meta.get((project, dataset, table))
            if meta is not None and "schema" in meta:
                return meta["schema"]
            try:
                rows = self._conn().execute(f"DESCRIBE {table_ident(project, dataset, table)}").fetchall()
            except duckdb.Error:
                if meta is not None and "view" in meta:  # a view whose tables are gone: still a view
                    return []
                raise
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
            self._conn().execute(f"CREATE TABLE {table_ident(project, dataset, table)} ({columns})")
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
        """Append rows (dicts by column name, JSON or Python values) in one statement (not streamed:
        no streaming buffer, as a load or DML insert)."""
        with self._lock:
            schema = schema or self.table_schema(project, dataset, table)
            if schema is None:
                raise QueryError("notFound", f"Not found: Table {project}:{dataset}.{table}")
            if not rows:
                return 0
            return self._insert_columns(table_ident(project, dataset, table), schema, rows)

    def add_column(self, project: str, dataset: str, table: str, column: dict[str, Any]) -> None:
        with self._lock:
            self._conn().execute(
                f"ALTER TABLE {table_ident(project, dataset, table)} ADD COLUMN "
                + bq_sql.column_ddl({**column, "mode": "NULLABLE"})
            )
            meta = self._meta.get((project, dataset, table))
            if meta is not None and "schema" in meta:
                (added,) = normalize_schema([{**column, "mode": "NULLABLE"}])
                self._meta_put((project, dataset, table), {**meta, "schema": [*meta["schema"], added]})

    def drop_table(self, project: str, dataset: str, table: str) -> None:
        with self._lock:
            if self.table_schema(project, dataset, table) is None:
                raise QueryError("notFound", f"Not found: Table {project}:{dataset}.{table}")
            kind = "VIEW" if "view" in self._meta.get((project, dataset, table), {}) else "TABLE"
            self._conn().execute(f"DROP {kind} {table_ident(project, dataset, table)}")
            self._meta_drop(project, dataset, table)
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
            with self._lock:
                statements = bq_sql.translate(sql, project, self.cloud.now(), self._lookup)
            if not any(s.uses_clock for s in statements):  # the same text translates the same way
                with self._lock:
                    self._translations[(sql, project)] = statements
                    if len(self._translations) > MAX_TRANSLATIONS:
                        self._translations.popitem(last=False)
        result: QueryResult | None = None
        with self._lock:
            db = self._conn()
            for ref in dict.fromkeys(r for stmt in statements for r in stmt.tables):
                if ref in self._meta:
                    self._expire(ref)
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

        def run():
            cursor = db.execute(text, bound) if bound else db.execute(text)
            return cursor, (cursor.fetchall() if cursor.description else [])

        try:
            if stmt.statement_type in bq_sql.MUTATING_TYPES and not dry_run:
                cursor, rows = self._guarded(db, stmt, run, bound)
            else:
                cursor, rows = run()
        except duckdb.Error as err:
            raise query_error(err, stmt, project) from None
        if not dry_run and stmt.target and stmt.statement_type.split("_")[0] in ("CREATE", "DROP", "ALTER"):
            self._ddl_done(stmt)
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

    def _ddl_done(self, stmt: bq_sql.Translated) -> None:
        """SQL DDL over a table: a view created by CREATE VIEW is kept as its query (expanded where it is
        read); a table dropped or recreated loses its REST metadata; an altered one is described from
        DuckDB again."""
        ref = stmt.target
        assert ref is not None
        meta = self._meta.get(ref)
        if stmt.view is not None:
            now = str(self._now_ms())
            self._meta_put(ref, {"view": {"query": stmt.view[1], "useLegacySql": False}, "creationTime": now})
        elif stmt.statement_type == "ALTER_TABLE" and meta is not None:
            self._meta_put(ref, {k: v for k, v in meta.items() if k != "schema"})
        elif meta is not None or ref in self._buffered:
            self._meta_drop(*ref)


_PARAM_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_NOT_FOUND_RE = re.compile(r"Table with name \"?([^\"\s!]+)\"? does not exist")
_NO_SCHEMA_RE = re.compile(r"because schema \"([^\"]+)\" does not exist")


def _parameter_names(sql: str) -> set[str]:
    # Placeholders sqlglot wrote; string literals cannot hold `$name` unquoted in its output, except
    # inside quotes, which we strip first.
    return set(_PARAM_RE.findall(re.sub(r"'(?:[^']|'')*'", "''", sql)))


def query_error(err: duckdb.Error, stmt: bq_sql.Translated, project: str) -> QueryError:
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


def rest_error(code: int, reason: str, message: str) -> Response:
    """A BigQuery REST error: the AIP-193 body with BigQuery's `errors` list (reason, domain)."""
    return google_error(code, message, errors=[{"message": message, "domain": "global", "reason": reason}])
