"""BigQuery Standard SQL -> DuckDB, for localcloud's BigQuery emulation.

Naming: a BigQuery dataset `project.dataset` is the DuckDB schema `"<project>__<dataset>"` in one DuckDB
file. Project IDs cannot contain an underscore, so the first `__` always splits a schema name back.
Tables keep their names. Named parameters (`@d`) become DuckDB prepared parameters (`$d`) and positional
ones stay `?`: values are always bound, never interpolated into the text.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from decimal import Decimal
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

SEP = "__"


class QueryError(Exception):
    """A query BigQuery would reject; `reason` is BigQuery's errorResult reason."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def schema_name(project: str, dataset: str) -> str:
    return f"{project}{SEP}{dataset}"


def split_schema(name: str) -> tuple[str, str] | None:
    project, sep, dataset = name.partition(SEP)
    return (project, dataset) if sep and project and dataset else None


@dataclass
class Translated:
    sql: str
    statement_type: str  # BigQuery's statistics.query.statementType
    tables: list[tuple[str, str, str]]  # (project, dataset, table) referenced
    uses_clock: bool = False  # CURRENT_DATE()/CURRENT_TIMESTAMP() were replaced by the clock's value
    target: tuple[str, str, str] | None = None  # the table a DML statement changes
    view: tuple[tuple[str, str, str], str] | None = None  # CREATE [OR REPLACE] VIEW: (view, its query)
    tree: exp.Expression | None = dc_field(default=None, repr=False, compare=False)
    # A plain UPDATE's rows: SELECT COUNT(*) FROM <target> AS <alias> WHERE <its condition>
    probe: str | None = None


@dataclass
class TableInfo:
    """What the translation needs to know of a table beyond its name (see `translate`'s `lookup`)."""

    view: str | None = None  # a view's query (standard SQL), expanded in place wherever it is read
    required_filter: str | None = None  # requirePartitionFilter: the partition column a query must filter on


Lookup = Callable[[str, str, str], TableInfo | None]  # (project, dataset, table) -> its info, if any
MAX_VIEW_DEPTH = 16


# sqlglot node -> BigQuery statementType
_STATEMENT_TYPES: list[tuple[type[exp.Expression], str]] = [
    (exp.Insert, "INSERT"),
    (exp.Delete, "DELETE"),
    (exp.Update, "UPDATE"),
    (exp.Merge, "MERGE"),
    (exp.Create, "CREATE_TABLE"),
    (exp.Drop, "DROP_TABLE"),
    (exp.Alter, "ALTER_TABLE"),
    (exp.TruncateTable, "TRUNCATE_TABLE"),
    (exp.Query, "SELECT"),
]

DML_TYPES = {"INSERT", "DELETE", "UPDATE", "MERGE"}
# Statements that change rows already in a table (refused over rows in the streaming buffer).
MUTATING_TYPES = {"DELETE", "UPDATE", "MERGE", "TRUNCATE_TABLE"}


def _parse(sql: str) -> list[exp.Expression]:
    try:
        statements = [s for s in sqlglot.parse(sql, read="bigquery") if s is not None]
    except ParseError as err:
        first = err.errors[0] if err.errors else {}
        where = f" at [{first.get('line')}:{first.get('col')}]" if first else ""
        raise QueryError("invalidQuery", f"Syntax error: {first.get('description', err)}{where}") from None
    if not statements:
        raise QueryError("invalidQuery", "Syntax error: Unexpected end of script at [1:1]")
    return statements


def translate(sql: str, project: str, now: dt.datetime, lookup: Lookup | None = None) -> list[Translated]:
    """Each statement of `sql` in DuckDB's dialect. CURRENT_DATE()/CURRENT_TIMESTAMP() read `now`
    (localcloud's clock, so a test that moves the clock moves BigQuery's "today" too). `lookup` tells
    views (expanded in place as subqueries, so their clock is the query's and their tables are
    checked like the query's own) and tables that require a partition filter."""
    return [_translate_one(s, project, now, lookup) for s in _parse(sql)]


def _translate_one(
    tree: exp.Expression, project: str, now: dt.datetime, lookup: Lookup | None, depth: int = 0
) -> Translated:
    stype = next((name for cls, name in _STATEMENT_TYPES if isinstance(tree, cls)), "SCRIPT")
    kind = str(tree.args.get("kind", "")).upper() if isinstance(tree, exp.Create | exp.Drop) else ""
    if stype in ("CREATE_TABLE", "DROP_TABLE") and kind in ("SCHEMA", "VIEW"):
        stype = stype.split("_")[0] + "_" + kind
    tables: list[tuple[str, str, str]] = []
    cte_names = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    uses_clock = any(True for _ in tree.find_all(exp.CurrentDate, exp.CurrentTimestamp))
    target_node = _target_node(tree)
    found: dict[str, Any] = {}
    if stype == "CREATE_VIEW" and isinstance(tree.expression, exp.Query):
        found["view_sql"] = tree.expression.sql(dialect="bigquery")

    def rename(node: exp.Expression) -> exp.Expression:
        nonlocal uses_clock
        if isinstance(node, exp.Table) and node.name and node.name not in cte_names and node.db:
            proj = node.catalog or project
            ref = (proj, node.db, node.name)
            info = lookup(*ref) if lookup else None
            if node is target_node:
                found["target"] = ref
                if not isinstance(tree, exp.Update | exp.Delete | exp.Merge):
                    info = None
            if info is not None and info.view is not None and node is not target_node:
                view = _expand_view(node, ref, info.view, now, lookup, depth)
                tables.extend(view.tables)
                uses_clock = uses_clock or view.uses_clock
                return exp.Subquery(
                    this=view.tree,
                    alias=exp.TableAlias(this=exp.to_identifier(node.alias or node.name, quoted=True)),
                )
            if info is not None and info.required_filter:
                _require_filter(node, ref, info.required_filter)
            tables.append(ref)
            node = node.copy()
            node.set("catalog", None)
            node.set("db", exp.to_identifier(schema_name(proj, node.db), quoted=True))
            node.set("this", exp.to_identifier(node.name, quoted=True))
            return node
        if isinstance(node, exp.CurrentDate):
            return exp.cast(exp.Literal.string(now.date().isoformat()), "DATE")
        if isinstance(node, exp.CurrentTimestamp):
            return exp.cast(exp.Literal.string(now.isoformat()), "TIMESTAMPTZ")
        return node

    def date_arith(node: exp.Expression) -> exp.Expression:
        # BigQuery's DATE_ADD/DATE_SUB return DATE; DuckDB's date +/- interval gives a TIMESTAMP.
        if isinstance(node, exp.DateSub | exp.DateAdd) and not isinstance(node.parent, exp.Cast):
            return exp.cast(node.copy(), "DATE")
        # BigQuery's FORMAT is printf-style; DuckDB's format() is fmt-style ({}), its printf() is ours.
        if isinstance(node, exp.Format):
            return exp.Anonymous(
                this="printf", expressions=[node.this.copy(), *(e.copy() for e in node.expressions)]
            )
        if isinstance(node, exp.Extract) and node.this.name.upper() == "DATE":  # EXTRACT(DATE FROM ts)
            return exp.cast(node.expression.copy(), "DATE")
        # TIMESTAMP_SECONDS/MILLIS/MICROS are TIMESTAMPs (DuckDB's epoch functions give a naive one),
        # PARSE_TIMESTAMP too (PARSE_DATETIME is its own node and stays naive).
        if isinstance(node, exp.UnixToTime | exp.StrToTime) and not isinstance(node.parent, exp.Cast):
            return exp.cast(node.copy(), "TIMESTAMPTZ")
        return node

    tree = tree.transform(rename, copy=False).transform(date_arith).transform(_array_agg_limit)
    view = (found["target"], found["view_sql"]) if "view_sql" in found and "target" in found else None
    out = Translated(tree.sql(dialect="duckdb"), stype, tables, uses_clock, found.get("target"), view, tree)
    if isinstance(tree, exp.Update) and not tree.args.get("from") and isinstance(tree.this, exp.Table):
        target = tree.this.copy()
        alias = target.alias or target.name
        target.set("alias", None)
        where = tree.args.get("where")
        probe = exp.select("COUNT(*)").from_(
            exp.alias_(target, exp.to_identifier(alias, quoted=True), table=True)
        )
        out.probe = (probe.where(where.this.copy()) if where is not None else probe).sql(dialect="duckdb")
    return out


def _target_node(tree: exp.Expression) -> exp.Expression | None:
    """The table node a DML or DDL statement writes (INSERT's may sit in a column list's Schema)."""
    if isinstance(tree, exp.TruncateTable):
        return tree.expressions[0] if tree.expressions else None
    if isinstance(tree, exp.Drop) and tree.args.get("tables"):  # sqlglot keeps DROP's names in a list
        return tree.args["tables"][0]
    if not isinstance(
        tree, exp.Insert | exp.Update | exp.Delete | exp.Merge | exp.Create | exp.Drop | exp.Alter
    ):
        return None
    node = tree.this
    return node.this if isinstance(node, exp.Schema) else node


def _expand_view(
    node: exp.Table, ref: tuple[str, str, str], sql: str, now: dt.datetime, lookup: Lookup | None, depth: int
) -> Translated:
    if depth >= MAX_VIEW_DEPTH:
        raise QueryError("invalidQuery", f"View {'.'.join(ref)} nests views more than {MAX_VIEW_DEPTH} deep")
    statements = _parse(sql)
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise QueryError("invalidQuery", f"View {'.'.join(ref)} is not a single query")
    # Names in a view's query resolve in the view's project, not the querying one's.
    return _translate_one(statements[0], ref[0], now, lookup, depth + 1)


def _require_filter(node: exp.Table, ref: tuple[str, str, str], column: str) -> None:
    """requirePartitionFilter: the query reading the table must filter on its partition column."""
    select = node.find_ancestor(exp.Select, exp.Update, exp.Delete, exp.Merge)
    where = select.args.get("where") if select is not None else None
    if isinstance(select, exp.Merge):
        where = select.args.get("on")
    names = {c.name.lower() for c in where.find_all(exp.Column)} if where is not None else set()
    if column.lower() not in names:
        raise QueryError(
            "invalidQuery",
            f"Cannot query over table '{'.'.join(ref)}' without a filter over column(s) '{column}' that "
            "can be used for partition elimination",
        )


def _array_agg_limit(node: exp.Expression) -> exp.Expression:
    """BigQuery's ARRAY_AGG(x [IGNORE NULLS] ORDER BY y LIMIT n), which DuckDB lacks, as
    list_slice(ARRAY_AGG(x ORDER BY y) [FILTER (WHERE x IS NOT NULL)], 1, n)."""
    ignore_nulls = isinstance(node, exp.IgnoreNulls) and isinstance(node.this, exp.ArrayAgg)
    agg = node.this if ignore_nulls else node
    if not isinstance(agg, exp.ArrayAgg) or not isinstance(agg.this, exp.Limit):
        return node
    limit = agg.this
    inner = limit.this  # an Order over the value, or the value itself
    value = inner.this if isinstance(inner, exp.Order) else inner
    out: exp.Expression = exp.ArrayAgg(this=inner.copy())
    if ignore_nulls:
        out = exp.Filter(
            this=out,
            expression=exp.Where(this=exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null()))),
        )
    return exp.Anonymous(this="list_slice", expressions=[out, exp.Literal.number(1), limit.expression.copy()])


# --- parameters -------------------------------------------------------------------------------------


def parameter_value(ptype: dict[str, Any], pvalue: dict[str, Any] | None) -> Any:
    """A Python value for a BigQuery QueryParameter (type + value as the REST API carries them)."""
    kind = str(ptype.get("type", "STRING")).upper()
    pvalue = pvalue or {}
    if kind == "ARRAY":
        return [parameter_value(ptype.get("arrayType", {}), v) for v in pvalue.get("arrayValues", [])]
    if kind == "STRUCT":
        values = pvalue.get("structValues", {})
        return {
            f["name"]: parameter_value(f.get("type", {}), values.get(f["name"]))
            for f in ptype.get("structTypes", [])
        }
    raw = pvalue.get("value")
    if raw is None:
        return None
    try:
        return _SCALAR_PARSERS.get(kind, str)(raw)
    except (ValueError, TypeError, ArithmeticError):
        raise QueryError("invalidQuery", f"Invalid {kind} value {raw!r} for a query parameter") from None


def _parse_timestamp(raw: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(raw.replace(" UTC", "+00:00").replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


_SCALAR_PARSERS: dict[str, Any] = {
    "INT64": int,
    "INTEGER": int,
    "FLOAT64": float,
    "FLOAT": float,
    "NUMERIC": Decimal,
    "BIGNUMERIC": Decimal,
    "BOOL": lambda v: str(v).lower() == "true",
    "BOOLEAN": lambda v: str(v).lower() == "true",
    "STRING": str,
    "BYTES": base64.b64decode,
    "DATE": dt.date.fromisoformat,
    "DATETIME": lambda v: dt.datetime.fromisoformat(v.replace("T", " ")),
    "TIMESTAMP": _parse_timestamp,
    "TIME": dt.time.fromisoformat,
    "JSON": str,
}


def bind_parameters(query_params: list[dict[str, Any]], mode: str | None) -> dict[str, Any] | list[Any]:
    values = [parameter_value(p.get("parameterType", {}), p.get("parameterValue")) for p in query_params]
    if (mode or "").upper() == "POSITIONAL" or any(not p.get("name") for p in query_params):
        return values
    return {p["name"]: v for p, v in zip(query_params, values, strict=True)}


# --- types and values -------------------------------------------------------------------------------

_BQ_TO_DUCK = {
    "STRING": "VARCHAR",
    "INTEGER": "BIGINT",
    "INT64": "BIGINT",
    "FLOAT": "DOUBLE",
    "FLOAT64": "DOUBLE",
    "NUMERIC": "DECIMAL(38,9)",
    "BIGNUMERIC": "DECIMAL(38,9)",
    "BOOLEAN": "BOOLEAN",
    "BOOL": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMPTZ",
    "DATE": "DATE",
    "DATETIME": "TIMESTAMP",
    "TIME": "TIME",
    "BYTES": "BLOB",
    "JSON": "JSON",
    "GEOGRAPHY": "VARCHAR",
}


def duck_type(field: dict[str, Any]) -> str:
    """The DuckDB column type for a BigQuery TableFieldSchema."""
    kind = str(field.get("type", "STRING")).upper()
    if kind in ("RECORD", "STRUCT"):
        inner = ", ".join(f'"{f["name"]}" {duck_type(f)}' for f in field.get("fields", []))
        base = f"STRUCT({inner})"
    elif kind in _BQ_TO_DUCK:
        base = _BQ_TO_DUCK[kind]
    else:
        raise QueryError("invalid", f"Invalid field type {kind} for field {field.get('name')!r}")
    return base + "[]" if str(field.get("mode", "")).upper() == "REPEATED" else base


def column_ddl(field: dict[str, Any]) -> str:
    name = field.get("name", "")
    if not name or '"' in name:
        raise QueryError("invalid", f"Invalid field name {name!r}")
    required = " NOT NULL" if str(field.get("mode", "")).upper() == "REQUIRED" else ""
    return f'"{name}" {duck_type(field)}{required}'


def bq_field(name: str, duck: str, nullable: bool = True) -> dict[str, Any]:
    """A BigQuery TableFieldSchema for a DuckDB column type (as DuckDB spells it)."""
    duck = duck.strip()
    if duck.endswith("[]"):
        inner = bq_field(name, duck[:-2])
        inner["mode"] = "REPEATED"
        return inner
    upper = duck.upper()
    if upper.startswith("STRUCT(") and upper.endswith(")"):
        return {"name": name, "type": "RECORD", "mode": "NULLABLE", "fields": _struct_fields(duck[7:-1])}
    if upper.startswith("DECIMAL") or upper.startswith("NUMERIC"):
        kind = "NUMERIC"
    elif upper in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        kind = "TIMESTAMP"
    elif upper.startswith("TIMESTAMP"):
        kind = "DATETIME"
    else:
        kind = _DUCK_SCALARS.get(upper, "STRING")
    return {"name": name, "type": kind, "mode": "NULLABLE" if nullable else "REQUIRED"}


_DUCK_SCALARS = {
    **dict.fromkeys(
        [
            "BIGINT",
            "INTEGER",
            "SMALLINT",
            "TINYINT",
            "HUGEINT",
            "UBIGINT",
            "UINTEGER",
            "USMALLINT",
            "UTINYINT",
        ],
        "INTEGER",
    ),
    **dict.fromkeys(["DOUBLE", "FLOAT", "REAL"], "FLOAT"),
    "BOOLEAN": "BOOLEAN",
    "DATE": "DATE",
    "TIME": "TIME",
    "BLOB": "BYTES",
    "JSON": "JSON",
    "VARCHAR": "STRING",
    "INTERVAL": "STRING",
    "UUID": "STRING",
}


def _struct_fields(body: str) -> list[dict[str, Any]]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    fields = []
    for part in (p.strip() for p in parts if p.strip()):
        if part.startswith('"'):
            name, _, rest = part[1:].partition('"')
        else:
            name, _, rest = part.partition(" ")
        fields.append(bq_field(name, rest.strip()))
    return fields


def insert_value(field: dict[str, Any], value: Any) -> Any:
    """A JSON value of tabledata.insertAll as a Python value for its column (DuckDB casts strings)."""
    if value is None:
        return None
    if field.get("mode") == "REPEATED":
        return [insert_value({**field, "mode": "NULLABLE"}, v) for v in value]
    kind = field["type"]
    if kind == "RECORD":
        return {f["name"]: insert_value(f, value.get(f["name"])) for f in field["fields"]}
    if kind == "TIMESTAMP" and isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    if kind == "TIMESTAMP" and isinstance(value, str):
        return _parse_timestamp(value.replace("T", " "))
    if kind == "BYTES" and isinstance(value, str):
        return base64.b64decode(value)
    if kind == "JSON" and not isinstance(value, str):
        return json.dumps(value)
    if kind in ("DATE", "DATETIME", "TIME") and isinstance(value, str):
        return _SCALAR_PARSERS[kind](value)
    return value


def encode_value(field: dict[str, Any], value: Any) -> Any:
    """A cell as BigQuery's tabledata JSON carries it: scalars as strings, RECORD {"f"}, REPEATED [{"v"}]."""
    if value is None:
        return None
    if field.get("mode") == "REPEATED":
        scalar = {**field, "mode": "NULLABLE"}
        return [{"v": encode_value(scalar, v)} for v in value]
    kind = field["type"]
    if kind == "RECORD":
        return {"f": [{"v": encode_value(f, value.get(f["name"]))} for f in field["fields"]]}
    if kind == "BOOLEAN":
        return "true" if value else "false"
    if kind == "TIMESTAMP":
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=dt.UTC)
            delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
            return str((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)
        return str(value)
    if kind == "DATETIME" and isinstance(value, dt.datetime):
        return value.isoformat()
    if kind == "BYTES" and isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if kind == "FLOAT" and isinstance(value, float):
        return repr(value)
    if kind == "JSON" and not isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)
