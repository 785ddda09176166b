"""localcloud.bq_sql: BigQuery SQL -> DuckDB, parameters and value encoding (no localcloud needed)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pytest

from localcloud import bq_sql
from localcloud.bq_sql import QueryError

NOW = dt.datetime(2024, 3, 1, 12, 30, tzinfo=dt.UTC)


def run(sql: str, params=None):
    """Translate and run on a fresh in-memory DuckDB holding `cloudact-local.organizations.q`."""
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    db.execute('CREATE SCHEMA "cloudact-local__organizations"')
    db.execute('CREATE TABLE "cloudact-local__organizations".q (org VARCHAR, day DATE, n BIGINT)')
    db.execute(
        'INSERT INTO "cloudact-local__organizations".q '
        "VALUES ('a', '2024-02-29', 1), ('b', '2023-11-01', 2)"
    )
    (stmt,) = bq_sql.translate(sql, "cloudact-local", NOW)
    return stmt, db.execute(stmt.sql, params).fetchall() if params else db.execute(stmt.sql).fetchall()


@pytest.mark.parametrize(
    ("sql", "params", "rows"),
    [
        pytest.param(
            "SELECT org FROM `cloudact-local.organizations.q` ORDER BY org",
            None,
            [("a",), ("b",)],
            id="backticks",
        ),
        pytest.param("SELECT COUNT(*) FROM organizations.q", None, [(2,)], id="default-project"),
        pytest.param(
            "SELECT org FROM organizations.q WHERE day < DATE_SUB(CURRENT_DATE(), INTERVAL @d DAY)",
            {"d": 90},
            [("b",)],
            id="date-sub-current-date-param",
        ),
        pytest.param(
            "SELECT DATE_SUB(CURRENT_DATE(), INTERVAL @d DAY)", {"d": 1}, [(dt.date(2024, 2, 29),)], id="date"
        ),
        pytest.param(
            "SELECT DATE_ADD(@day, INTERVAL 1 DAY)", {"day": dt.date(2024, 2, 28)}, [(dt.date(2024, 2, 29),)]
        ),
        pytest.param(
            "WITH recent AS (SELECT * FROM organizations.q WHERE n = @n) SELECT org FROM recent",
            {"n": 2},
            [("b",)],
            id="cte-not-renamed",
        ),
        pytest.param("SELECT SAFE_CAST('x' AS INT64)", None, [(None,)], id="safe-cast"),
        pytest.param("SELECT CURRENT_TIMESTAMP() = @now", {"now": NOW}, [(True,)], id="clock"),
    ],
)
def test_translated_queries_run_on_duckdb(sql, params, rows) -> None:
    assert run(sql, params)[1] == rows


def test_project_with_dash_becomes_a_quoted_schema() -> None:
    (stmt,) = bq_sql.translate("DELETE FROM `my-proj.ds.t` WHERE x = @x", "other", NOW)
    assert stmt.sql == 'DELETE FROM "my-proj__ds"."t" WHERE x = $x'
    assert (stmt.statement_type, stmt.tables, stmt.uses_clock) == ("DELETE", [("my-proj", "ds", "t")], False)
    assert bq_sql.split_schema("my-proj__ds__x") == ("my-proj", "ds__x")
    assert bq_sql.split_schema("nodataset") is None


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("SELECT 1", "SELECT"),
        ("INSERT INTO d.t (a) VALUES (1)", "INSERT"),
        ("UPDATE d.t SET a = 1 WHERE TRUE", "UPDATE"),
        ("DELETE FROM d.t WHERE TRUE", "DELETE"),
        ("CREATE TABLE d.t (a INT64)", "CREATE_TABLE"),
        ("DROP TABLE d.t", "DROP_TABLE"),
    ],
)
def test_statement_types(sql: str, kind: str) -> None:
    assert bq_sql.translate(sql, "p", NOW)[0].statement_type == kind


@pytest.mark.parametrize("sql", ["SELEC 1", "SELECT FROM WHERE", ""])
def test_syntax_errors_are_invalid_query(sql: str) -> None:
    with pytest.raises(QueryError) as err:
        bq_sql.translate(sql, "p", NOW)
    assert err.value.reason == "invalidQuery" and err.value.message.startswith("Syntax error")


@pytest.mark.parametrize(
    ("ptype", "pvalue", "expected"),
    [
        ({"type": "INT64"}, {"value": "5"}, 5),
        ({"type": "FLOAT64"}, {"value": "1.5"}, 1.5),
        ({"type": "NUMERIC"}, {"value": "1.10"}, Decimal("1.10")),
        ({"type": "BOOL"}, {"value": "true"}, True),
        ({"type": "BOOL"}, {"value": "false"}, False),
        ({"type": "STRING"}, {"value": "x'); DROP TABLE t; --"}, "x'); DROP TABLE t; --"),
        ({"type": "BYTES"}, {"value": "aGk="}, b"hi"),
        ({"type": "DATE"}, {"value": "2024-01-31"}, dt.date(2024, 1, 31)),
        ({"type": "DATETIME"}, {"value": "2024-01-31T12:00:00"}, dt.datetime(2024, 1, 31, 12)),
        (
            {"type": "TIMESTAMP"},
            {"value": "2024-01-31 12:00:00.000000+00:00"},
            dt.datetime(2024, 1, 31, 12, tzinfo=dt.UTC),
        ),
        ({"type": "INT64"}, {}, None),
        (
            {"type": "ARRAY", "arrayType": {"type": "INT64"}},
            {"arrayValues": [{"value": "1"}, {"value": "2"}]},
            [1, 2],
        ),
        (
            {"type": "STRUCT", "structTypes": [{"name": "a", "type": {"type": "DATE"}}]},
            {"structValues": {"a": {"value": "2024-01-01"}}},
            {"a": dt.date(2024, 1, 1)},
        ),
    ],
)
def test_parameter_values(ptype, pvalue, expected) -> None:
    assert bq_sql.parameter_value(ptype, pvalue) == expected


def test_bad_parameter_value_names_it() -> None:
    with pytest.raises(QueryError, match="Invalid INT64 value 'five'"):
        bq_sql.parameter_value({"type": "INT64"}, {"value": "five"})


def test_bind_parameters_named_and_positional() -> None:
    named = [{"name": "d", "parameterType": {"type": "INT64"}, "parameterValue": {"value": "3"}}]
    assert bq_sql.bind_parameters(named, "NAMED") == {"d": 3}
    positional = [{"parameterType": {"type": "STRING"}, "parameterValue": {"value": "x"}}]
    assert bq_sql.bind_parameters(positional, "POSITIONAL") == ["x"]


@pytest.mark.parametrize(
    ("duck", "field"),
    [
        ("BIGINT", {"type": "INTEGER", "mode": "NULLABLE"}),
        ("INTEGER", {"type": "INTEGER", "mode": "NULLABLE"}),
        ("DOUBLE", {"type": "FLOAT", "mode": "NULLABLE"}),
        ("DECIMAL(38,9)", {"type": "NUMERIC", "mode": "NULLABLE"}),
        ("VARCHAR", {"type": "STRING", "mode": "NULLABLE"}),
        ("BOOLEAN", {"type": "BOOLEAN", "mode": "NULLABLE"}),
        ("DATE", {"type": "DATE", "mode": "NULLABLE"}),
        ("TIMESTAMP WITH TIME ZONE", {"type": "TIMESTAMP", "mode": "NULLABLE"}),
        ("TIMESTAMP", {"type": "DATETIME", "mode": "NULLABLE"}),
        ("BLOB", {"type": "BYTES", "mode": "NULLABLE"}),
        ("VARCHAR[]", {"type": "STRING", "mode": "REPEATED"}),
        (
            'STRUCT("x" BIGINT, y VARCHAR)',
            {
                "type": "RECORD",
                "mode": "NULLABLE",
                "fields": [
                    {"name": "x", "type": "INTEGER", "mode": "NULLABLE"},
                    {"name": "y", "type": "STRING", "mode": "NULLABLE"},
                ],
            },
        ),
    ],
)
def test_duckdb_types_map_to_bigquery_fields(duck: str, field: dict) -> None:
    assert bq_sql.bq_field("c", duck) == {"name": "c", **field}


def test_table_schema_round_trips_through_duckdb() -> None:
    fields = [
        {"name": "org", "type": "STRING", "mode": "REQUIRED"},
        {"name": "day", "type": "DATE", "mode": "NULLABLE"},
        {"name": "tags", "type": "STRING", "mode": "REPEATED"},
        {"name": "at", "type": "TIMESTAMP", "mode": "NULLABLE"},
    ]
    db = duckdb.connect()
    db.execute(f"CREATE TABLE t ({', '.join(bq_sql.column_ddl(f) for f in fields)})")
    got = db.execute("SELECT column_name, data_type, is_nullable FROM information_schema.columns").fetchall()
    assert [bq_sql.bq_field(n, t, nullable == "YES") for n, t, nullable in got] == fields


def test_unknown_field_type_is_refused_by_name() -> None:
    with pytest.raises(QueryError, match="Invalid field type GEOMETRY for field 'g'"):
        bq_sql.duck_type({"name": "g", "type": "GEOMETRY"})


@pytest.mark.parametrize(
    ("field", "value", "encoded"),
    [
        ({"type": "INTEGER"}, 42, "42"),
        ({"type": "BOOLEAN"}, True, "true"),
        ({"type": "FLOAT"}, 1.5, "1.5"),
        ({"type": "TIMESTAMP"}, dt.datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=dt.UTC), "1000005"),
        ({"type": "DATE"}, dt.date(2024, 1, 31), "2024-01-31"),
        ({"type": "DATETIME"}, dt.datetime(2024, 1, 31, 12), "2024-01-31T12:00:00"),
        ({"type": "BYTES"}, b"hi", "aGk="),
        ({"type": "STRING"}, None, None),
        ({"type": "INTEGER", "mode": "REPEATED"}, [1, 2], [{"v": "1"}, {"v": "2"}]),
        (
            {"type": "RECORD", "fields": [{"name": "a", "type": "INTEGER"}]},
            {"a": 7},
            {"f": [{"v": "7"}]},
        ),
    ],
)
def test_values_encode_as_bigquery_json(field, value, encoded) -> None:
    assert bq_sql.encode_value(field, value) == encoded
