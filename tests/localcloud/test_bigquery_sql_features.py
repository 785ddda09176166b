"""localcloud.bq_sql over what a ledger of observations needs: each BigQuery feature translated and run
on DuckDB against rows whose answer is written out here (no localcloud needed)."""

# The queries and expected rows are test data, kept one case to a line where it fits; no values are
# interpolated into SQL beyond the module's own constants.
# ruff: noqa: E501, S608

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from localcloud import bq_sql
from localcloud.bq_sql import QueryError, TableInfo

NOW = dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC)
T = dt.datetime(2024, 3, 1, 9, tzinfo=dt.UTC)
ROWS = """
INSERT INTO "p__d".obs VALUES
 ('e1', 'toolkit', '2024-03-01 10:00:00+00', 'RUNNING', NULL, '2024-03-01 09:00:00+00', '{"k": 1, "s": "x"}', 1,
  ['a', 'b'], {'a': 1, 'b': 'q'}),
 ('e1', 'job', '2024-03-01 11:00:00+00', 'SUCCEEDED', 'done 5', '2024-03-01 09:00:00+00', '{"k": 2}', 2, [], NULL),
 ('e2', 'reconcile', '2024-03-01 10:30:00+00', NULL, NULL, '2024-03-01 08:00:00+00', NULL, NULL, NULL, NULL)
"""


@pytest.fixture(scope="module")
def db():
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute('CREATE SCHEMA "p__d"')
    conn.execute(
        'CREATE TABLE "p__d".obs (execution VARCHAR, source VARCHAR, observed_at TIMESTAMPTZ, result VARCHAR, '
        "summary VARCHAR, created TIMESTAMPTZ, detail JSON, attempts BIGINT, tags VARCHAR[], "
        "info STRUCT(a BIGINT, b VARCHAR))"
    )
    conn.execute(ROWS)
    yield conn
    conn.close()


def run(db, sql: str, lookup=None, params=None) -> list[tuple]:
    (stmt,) = bq_sql.translate(sql, "p", NOW, lookup)
    return db.execute(stmt.sql, params).fetchall() if params else db.execute(stmt.sql).fetchall()


LATEST = "QUALIFY ROW_NUMBER() OVER (PARTITION BY execution ORDER BY observed_at DESC) = 1 ORDER BY execution"


@pytest.mark.parametrize(
    ("sql", "rows"),
    [
        pytest.param(f"SELECT execution, source FROM `p.d.obs` WHERE TRUE {LATEST}", [("e1", "job"), ("e2", "reconcile")], id="qualify"),
        pytest.param(
            "SELECT * EXCEPT (n) FROM (SELECT execution, source, ROW_NUMBER() OVER (PARTITION BY execution "
            "ORDER BY observed_at DESC) AS n FROM d.obs) WHERE n = 1 ORDER BY execution",
            [("e1", "job"), ("e2", "reconcile")],
            id="row-number-except",
        ),
        pytest.param(
            "SELECT execution, ARRAY_AGG(source ORDER BY observed_at DESC LIMIT 1)[OFFSET(0)], "
            "ARRAY_AGG(result IGNORE NULLS ORDER BY observed_at DESC LIMIT 1)[SAFE_OFFSET(0)], "
            "ARRAY_AGG(IF(source = 'job', summary, NULL) IGNORE NULLS ORDER BY observed_at DESC LIMIT 1)[SAFE_OFFSET(0)] "
            "FROM d.obs GROUP BY execution ORDER BY execution",
            [("e1", "job", "SUCCEEDED", "done 5"), ("e2", "reconcile", None, None)],
            id="array-agg-limit",
        ),
        pytest.param(
            "SELECT execution, ANY_VALUE(created), COUNTIF(source = 'job'), LOGICAL_OR(source = 'job'), "
            "MAX_BY(source, observed_at), STRING_AGG(source, ',' ORDER BY observed_at) FROM d.obs "
            "GROUP BY execution ORDER BY 1",
            [("e1", T, 1, True, "job", "toolkit,job"), ("e2", T - dt.timedelta(hours=1), 0, False, "reconcile", "reconcile")],
            id="aggregates",
        ),
        pytest.param(
            "SELECT COALESCE(summary, 'none'), IF(source = 'job', 1, 0), TIMESTAMP_DIFF(observed_at, created, SECOND), "
            "TIMESTAMP_DIFF(observed_at, created, MILLISECOND) FROM d.obs ORDER BY observed_at",
            [("none", 0, 3600, 3_600_000), ("none", 0, 9000, 9_000_000), ("done 5", 1, 7200, 7_200_000)],
            id="if-coalesce-timestamp-diff",
        ),
        pytest.param(
            "SELECT JSON_VALUE(detail, '$.s'), JSON_EXTRACT_SCALAR(detail, '$.k'), JSON_QUERY(detail, '$.k'), "
            "TO_JSON_STRING(STRUCT(execution AS e, attempts AS a)) FROM d.obs ORDER BY observed_at",
            [("x", "1", "1", '{"e":"e1","a":1}'), (None, None, None, '{"e":"e2","a":null}'), (None, "2", "2", '{"e":"e1","a":2}')],
            id="json",
        ),
        pytest.param(
            "SELECT DATE(created), TIMESTAMP_TRUNC(created, DAY), FORMAT_TIMESTAMP('%Y-%m-%dT%H:%M:%SZ', created), "
            "UNIX_MILLIS(created), TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 30 MINUTE), TIMESTAMP_MILLIS(0) "
            "FROM d.obs WHERE source = 'job'",
            [(dt.date(2024, 3, 1), T.replace(hour=0), "2024-03-01T09:00:00Z", 1709283600000,
              NOW - dt.timedelta(minutes=30), dt.datetime(1970, 1, 1, tzinfo=dt.UTC))],
            id="time",
        ),
        pytest.param(
            "SELECT t.execution FROM d.obs AS t WHERE NOT EXISTS (SELECT 1 FROM d.obs o "
            "WHERE o.execution = t.execution AND o.source = 'job')",
            [("e2",)],
            id="not-exists",
        ),
        pytest.param(
            "SELECT ARRAY_LENGTH(tags), info.a, tags[SAFE_OFFSET(0)] FROM d.obs ORDER BY observed_at",
            [(2, 1, "a"), (None, None, None), (0, None, None)],
            id="repeated-and-record",
        ),
        pytest.param(
            "SELECT FORMAT('%s ran %d times', execution, attempts), EXTRACT(DATE FROM created), "
            "CAST(JSON_VALUE(TO_JSON_STRING(STRUCT(attempts AS n)), '$.n') AS INT64), execution IN UNNEST(['e1']) "
            "FROM d.obs WHERE source = 'job'",
            [("e1 ran 2 times", dt.date(2024, 3, 1), 2, True)],
            id="format-extract-date-json-string",
        ),
        pytest.param(
            "SELECT GREATEST(1, attempts), LEAST(1, attempts), IFNULL(summary, '-'), NULLIF(source, 'job'), CONCAT('x-', execution), "
            "SAFE_DIVIDE(1, 0), GENERATE_UUID() IS NOT NULL, STARTS_WITH(source, 'jo'), REGEXP_CONTAINS(source, r'^j.b$'), "
            "LOWER('AB'), SPLIT('a,b', ',')[OFFSET(1)], EXTRACT(HOUR FROM created), DATE_DIFF(DATE '2024-03-11', DATE(created), DAY), "
            "TIMESTAMP_ADD(created, INTERVAL 2 HOUR), PARSE_TIMESTAMP('%Y-%m-%d', '2024-01-02') FROM d.obs WHERE source = 'job'",
            [(2, 1, "done 5", None, "x-e1", None, True, True, True, "ab", "b", 9, 10, T + dt.timedelta(hours=2), dt.datetime(2024, 1, 2, tzinfo=dt.UTC))],
            id="scalars",
        ),
        pytest.param("SELECT COUNT(DISTINCT execution), COUNT(*), SUM(attempts) FROM d.obs", [(2, 3, 3)], id="count-distinct"),
        pytest.param(
            "SELECT execution, LAST_VALUE(result IGNORE NULLS) OVER (PARTITION BY execution ORDER BY observed_at "
            "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING), PERCENTILE_CONT(attempts, 0.5) OVER (), "
            "APPROX_QUANTILES(attempts, 2) OVER () IS NOT NULL FROM d.obs ORDER BY observed_at",
            [("e1", "SUCCEEDED", 1.5, True), ("e2", None, 1.5, True), ("e1", "SUCCEEDED", 1.5, True)],
            id="windows",
        ),
    ],
)  # fmt: skip
def test_ledger_features(db, sql: str, rows: list[tuple]) -> None:
    assert run(db, sql) == rows


def test_merge_inserts_what_is_not_matched(db) -> None:
    sql = (
        "MERGE d.obs T USING (SELECT 'e9' AS execution, 'toolkit' AS source) S "
        "ON T.execution = S.execution AND T.source = S.source "
        "WHEN MATCHED THEN UPDATE SET result = 'seen' WHEN NOT MATCHED THEN INSERT (execution, source) VALUES (S.execution, S.source)"
    )
    assert run(db, sql) == [(1,)]
    assert run(db, sql) == [(1,)]  # matched the second time: updated, not inserted again
    assert run(db, "SELECT COUNT(*), ANY_VALUE(result) FROM d.obs WHERE execution = 'e9'") == [(1, "seen")]
    run(db, "DELETE FROM d.obs WHERE execution = 'e9'")


def test_a_view_is_expanded_where_it_is_read(db) -> None:
    views = {("p", "d", "latest"): TableInfo(view=f"SELECT execution, source FROM d.obs WHERE TRUE {LATEST}"),
             ("p", "d", "jobs"): TableInfo(view="SELECT * FROM `p.d.latest` WHERE source = 'job'")}  # fmt: skip
    lookup = lambda *ref: views.get(ref)  # noqa: E731
    (stmt,) = bq_sql.translate("SELECT l.execution FROM d.jobs AS l", "p", NOW, lookup)
    assert stmt.tables == [("p", "d", "obs")]  # the views' own tables, checked as the query's
    assert db.execute(stmt.sql).fetchall() == [("e1",)]
    clocked = {("p", "d", "v"): TableInfo(view="SELECT CURRENT_TIMESTAMP() AS t")}
    (stmt,) = bq_sql.translate("SELECT t FROM d.v", "p", NOW, lambda *ref: clocked.get(ref))
    assert stmt.uses_clock and db.execute(stmt.sql).fetchall() == [(NOW,)]
    loop = {("p", "d", "v"): TableInfo(view="SELECT * FROM d.v")}
    with pytest.raises(QueryError, match="nests views"):
        bq_sql.translate("SELECT * FROM d.v", "p", NOW, lambda *ref: loop.get(ref))


def test_required_partition_filter(db) -> None:
    info = {("p", "d", "obs"): TableInfo(required_filter="created")}
    lookup = lambda *ref: info.get(ref)  # noqa: E731
    with pytest.raises(QueryError, match="without a filter over column\\(s\\) 'created'"):
        bq_sql.translate("SELECT * FROM d.obs WHERE source = 'job'", "p", NOW, lookup)
    with pytest.raises(QueryError, match=r"'p\.d\.obs'"):
        bq_sql.translate("DELETE FROM d.obs WHERE TRUE", "p", NOW, lookup)
    assert run(db, "SELECT COUNT(*) FROM d.obs WHERE created < CURRENT_TIMESTAMP()", lookup) == [(3,)]
    (stmt,) = bq_sql.translate("INSERT INTO d.obs (execution) VALUES ('x')", "p", NOW, lookup)  # no read
    assert stmt.target == ("p", "d", "obs")


@pytest.mark.parametrize(
    ("sql", "kind", "target"),
    [
        ("UPDATE d.obs SET result = 'x' WHERE TRUE", "UPDATE", ("p", "d", "obs")),
        ("MERGE d.obs T USING d.src S ON T.execution = S.execution WHEN MATCHED THEN DELETE", "MERGE", ("p", "d", "obs")),
        ("TRUNCATE TABLE d.obs", "TRUNCATE_TABLE", ("p", "d", "obs")),
        ("CREATE OR REPLACE VIEW `q.d.v` AS SELECT 1 AS x", "CREATE_VIEW", ("q", "d", "v")),
        ("DROP VIEW d.v", "DROP_VIEW", ("p", "d", "v")),
        ("SELECT 1", "SELECT", None),
    ],
)  # fmt: skip
def test_statement_targets(sql: str, kind: str, target) -> None:
    (stmt,) = bq_sql.translate(sql, "p", NOW)
    assert (stmt.statement_type, stmt.target) == (kind, target)
