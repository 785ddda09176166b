"""supabase_migrate's pure parts: file names, checksums, SQL splitting and quoting, error parsing."""

from __future__ import annotations

import hashlib
import time

import pytest

from jobs import migrate_sql, runtime, supabase_api
from jobs.manual import supabase_migrate as migrate

# --------------------------------------------------------------------------- quoting


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("01_init.sql", "'01_init.sql'"),
        ("it's", "'it''s'"),
        ("''", "''''''"),
        ("back\\slash", "E'back\\\\slash'"),
        ("both\\'", "E'both\\\\'''"),
        ("", "''"),
        ("ünïcode $tag$", "'ünïcode $tag$'"),
    ],
)
def test_literal(value, expected):
    assert migrate_sql.literal(value) == expected


def test_literal_refuses_nul():
    with pytest.raises(ValueError, match="NUL"):
        migrate_sql.literal("a\x00b")


def test_dollar_quote_picks_a_tag_absent_from_the_value():
    assert migrate_sql.dollar_quote("x") == "$cloudact$x$cloudact$"
    quoted = migrate_sql.dollar_quote("a $cloudact$ b $cloudact_1$")
    assert quoted == "$cloudact_2$a $cloudact$ b $cloudact_1$$cloudact_2$"
    # a value ending in "$tag" would merge with the closing delimiter
    assert migrate_sql.dollar_quote("ends with $cloudact").startswith("$cloudact_1$")


# --------------------------------------------------------------------------- splitting


SPLIT_CASES = [
    ("one", "SELECT 1", [("SELECT",)]),
    ("two with trailing comment", "SELECT 1; SELECT 2; -- done", [("SELECT",), ("SELECT",)]),
    ("semicolon in string", "SELECT 'a;b'; SELECT 2", [("SELECT",), ("SELECT",)]),
    ("doubled quote", "SELECT 'it''s;'; SELECT 2", [("SELECT",), ("SELECT",)]),
    ("E string backslash quote", r"SELECT E'\';'; SELECT 2", [("SELECT",), ("SELECT",)]),
    ("quoted identifier", 'SELECT 1 AS "a;b"; SELECT 2', [("SELECT",), ("SELECT",)]),
    ("line comment", "SELECT 1 -- x; y\n; SELECT 2", [("SELECT",), ("SELECT",)]),
    ("nested block comment", "/* a /* b; */ c; */ SELECT 1", [("SELECT",)]),
    (
        "dollar-quoted body",
        "CREATE FUNCTION f() RETURNS int AS $fn$ BEGIN RETURN 1; END; $fn$ LANGUAGE plpgsql; SELECT 2",
        [("CREATE", "FUNCTION"), ("SELECT",)],
    ),
    (
        "BEGIN ATOMIC body",
        "CREATE OR REPLACE FUNCTION g(a int) RETURNS int LANGUAGE sql BEGIN ATOMIC "
        "SELECT CASE WHEN a > 0 THEN 1 ELSE 2 END; SELECT 3; END; SELECT 4",
        [("CREATE", "OR"), ("SELECT",)],
    ),
    ("positional parameter is not a dollar quote", "SELECT $1; SELECT 2", [("SELECT",), ("SELECT",)]),
    ("only comments", "-- nothing\n/* here */ ;;", []),
]


@pytest.mark.parametrize(("sql", "heads"), [c[1:] for c in SPLIT_CASES], ids=[c[0] for c in SPLIT_CASES])
def test_split(sql, heads):
    statements = migrate_sql.split(sql)
    assert [s.words[: len(h)] for s, h in zip(statements, heads, strict=False)] == heads
    assert len(statements) == len(heads)


def test_split_reports_the_line_of_each_statement():
    statements = migrate_sql.split("-- header\n\nCREATE TABLE a (x int);\n\nCREATE TABLE b (y int);\n")
    assert [s.line for s in statements] == [3, 5]
    assert statements[0].text.endswith("CREATE TABLE a (x int)")


@pytest.mark.parametrize(
    "sql", ["SELECT 'open", 'SELECT "open', "SELECT $x$ open", "/* open", "SELECT E'\\'"]
)
def test_split_refuses_unterminated_text(sql):
    with pytest.raises(migrate_sql.SqlSyntaxError, match="line 1: unterminated"):
        migrate_sql.split(sql)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("BEGIN", "BEGIN"),
        ("begin transaction isolation level serializable", "BEGIN"),
        ("START TRANSACTION", "START TRANSACTION"),
        ("COMMIT", "COMMIT"),
        ("commit work", "COMMIT"),
        ("END", "END"),
        ("ROLLBACK", "ROLLBACK"),
        ("ROLLBACK PREPARED 'x'", "ROLLBACK PREPARED"),
        ("COMMIT PREPARED 'x'", "COMMIT PREPARED"),
        ("PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION"),
        ("ROLLBACK TO SAVEPOINT s", None),
        ("ROLLBACK WORK TO s", None),
        ("SAVEPOINT s", None),
        ("CREATE TABLE begin_log (id int)", None),
        ("DO $$ BEGIN PERFORM 1; COMMIT; END $$", None),
    ],
)
def test_transaction_control(sql, expected):
    assert migrate_sql.transaction_control(migrate_sql.split(sql)[0]) == expected


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("CREATE INDEX CONCURRENTLY i ON t (x)", "CREATE INDEX CONCURRENTLY"),
        ("create unique index concurrently if not exists i on t (x)", "CREATE INDEX CONCURRENTLY"),
        ("DROP INDEX CONCURRENTLY IF EXISTS i", "DROP INDEX CONCURRENTLY"),
        ("REINDEX INDEX CONCURRENTLY i", "REINDEX INDEX CONCURRENTLY"),
        ("REINDEX (VERBOSE) TABLE CONCURRENTLY t", "REINDEX TABLE CONCURRENTLY"),
        ("REINDEX DATABASE postgres", "REINDEX DATABASE"),
        ("VACUUM ANALYZE t", "VACUUM"),
        ("ALTER SYSTEM SET work_mem = '64MB'", "ALTER SYSTEM"),
        ("CREATE DATABASE x", "CREATE DATABASE"),
        ("CREATE INDEX i ON t (x)", None),
        ("CREATE INDEX i ON concurrently (x)", None),
        ("REINDEX TABLE t", None),
        ("ALTER TABLE t ADD COLUMN vacuum int", None),
    ],
)
def test_needs_no_transaction(sql, expected):
    assert migrate_sql.needs_no_transaction(migrate_sql.split(sql)[0]) == expected


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("01_init.sql", True),
        ("001_init.sql", True),
        ("20240101_add-col.v2.sql", True),
        ("1_short.sql", False),
        ("01-init.sql", False),
        ("01_.sql", False),
        ("01_init.SQL", False),
        ("01_in it.sql", False),
        ("01_x';drop.sql", False),
        ("aa_init.sql", False),
    ],
)
def test_file_name_pattern(name, valid):
    assert bool(migrate.FILE_NAME.fullmatch(name)) is valid


def test_load_migrations_orders_reads_and_marks(tmp_path):
    (tmp_path / "02_b.sql").write_text("-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (x);\n")
    (tmp_path / "01_a.sql").write_bytes(b"CREATE TABLE t (x int);\r\n")
    (tmp_path / "README.md").write_text("not a migration")
    found = migrate.load_migrations(tmp_path)
    assert [m.name for m in found] == ["01_a.sql", "02_b.sql"]
    assert [m.no_transaction for m in found] == [False, True]
    # the checksum covers the text as read (universal newlines), as the earlier scripts computed it
    assert found[0].checksum == hashlib.sha256(b"CREATE TABLE t (x int);\n").hexdigest()
    assert len(found[0].checksum) == 64
    assert all(m.problems() is None for m in found)


def test_load_migrations_refuses_bad_names_all_at_once(tmp_path):
    for name in ("01_ok.sql", "1_short.sql", "x.sql", "01_a b.sql"):
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(runtime.ConfigError) as err:
        migrate.load_migrations(tmp_path)
    message = str(err.value)
    assert "'1_short.sql'" in message and "'x.sql'" in message and "'01_a b.sql'" in message
    assert "'01_ok.sql'" not in message
    assert "NN_name.sql" in message


def test_load_migrations_refuses_non_utf8(tmp_path):
    (tmp_path / "01_latin1.sql").write_bytes("SELECT 'caf\xe9';".encode("latin-1"))
    with pytest.raises(runtime.ConfigError, match=r"01_latin1\.sql is not UTF-8"):
        migrate.load_migrations(tmp_path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("BEGIN;\nCREATE TABLE t (x int);\nCOMMIT;\n", "line 1: BEGIN controls the transaction"),
        ("CREATE TABLE t (x int);\n\nCOMMIT;\n", "line 3: COMMIT controls the transaction"),
        (
            "CREATE INDEX CONCURRENTLY i ON t (x);",
            "CREATE INDEX CONCURRENTLY cannot run inside a transaction",
        ),
        ("-- only a comment\n", "has no SQL statements"),
        ("SELECT 'unterminated;", "cannot read its SQL: line 1: unterminated string"),
        ("-- migrate:no-transaction\nBEGIN;\nVACUUM t;\nCOMMIT;", "line 2: BEGIN controls the transaction"),
    ],
)
def test_problems(tmp_path, text, problem):
    (tmp_path / "05_x.sql").write_text(text)
    (m,) = migrate.load_migrations(tmp_path)
    assert problem in (m.problems() or "")
    assert (m.problems() or "").startswith("05_x.sql")


# --------------------------------------------------------------------------- checksums


FULL = hashlib.sha256(b"x").hexdigest()


@pytest.mark.parametrize(
    ("recorded", "expected"),
    [
        (FULL, True),
        (FULL.upper(), True),
        (FULL[:16], True),  # the earlier scripts' form
        (FULL[:15], False),
        (FULL[:17], False),
        ("0" * 16, False),
        ("0" * 64, False),
        (None, None),
        ("", None),
    ],
)
def test_checksum_matches(recorded, expected):
    assert migrate.checksum_matches(recorded, FULL) is expected


# --------------------------------------------------------------------------- API answers


def test_parse_sql_error_in_supabase_form():
    err = supabase_api.parse_sql_error(
        'Failed to run sql query: ERROR:  42P01: relation "nope" does not exist\n'
        "LINE 4: INSERT INTO nope VALUES (1);\n"
        "                    ^\n"
        "HINT:  Create it first.\n"
    )
    assert (err.sqlstate, err.text) == ("42P01", 'relation "nope" does not exist')
    m = migrate.Migration("03_x.sql", "-- 1\n-- 2\nINSERT INTO nope VALUES (1);\n", "0" * 64, False)
    described = migrate.describe_sql_error(err, m, line_offset=1)
    assert (
        described == '42P01: relation "nope" does not exist (at line 3 of 03_x.sql); HINT:  Create it first.'
    )
    # a LINE past the file's end is in what the job wrapped around it
    beyond = supabase_api.parse_sql_error(
        "Failed to run sql query: ERROR:  42501: permission denied\nLINE 9: INSERT"
    )
    assert "in the lock, guard or tracking row" in migrate.describe_sql_error(beyond, m, line_offset=1)


def test_parse_sql_error_without_sqlstate():
    err = supabase_api.parse_sql_error("Failed to run sql query: ERROR:  something odd")
    assert (err.sqlstate, err.text) == ("?????", "something odd")
    assert supabase_api.parse_sql_error("gateway said no").text == "gateway said no"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5.0),
        ("0", 0.0),
        ("2.5", 2.5),
        ("3600", supabase_api.RATE_LIMIT_WAIT_MAX),  # never longer than the one-minute window
        (None, None),
        ("soon", None),
        ("-3", None),
    ],
)
def test_rate_limit_wait(value, expected):
    assert supabase_api.rate_limit_wait(value) == expected


def test_rate_limit_wait_accepts_epoch_forms():
    now = time.time()
    assert supabase_api.rate_limit_wait(str(int(now) + 10), now=int(now)) == pytest.approx(10)
    assert supabase_api.rate_limit_wait(str(int(now * 1000) + 7000), now=now) == pytest.approx(7, abs=0.01)
    assert supabase_api.rate_limit_wait(str(int(now) - 10), now=now) == 0.0


def test_transactional_sql_keeps_the_file_at_line_two(tmp_path):
    (tmp_path / "07_it's.sql").write_text("CREATE TABLE t (x int);\nSELECT 1/0;")
    # a name outside the pattern never gets here; this checks that values are quoted even so
    m = migrate.Migration("07_it's.sql", (tmp_path / "07_it's.sql").read_text(), "ab" * 32, False)
    config = migrate.Config("t", "local", tmp_path, "https://x", runtime.HttpSettings(), "me\\you")
    sql = migrate.Migrator(config, [m], api=None).transactional_sql(m)
    lines = sql.split("\n")
    assert lines[1:3] == ["CREATE TABLE t (x int);", "SELECT 1/0;"]
    assert lines[0].startswith(f"SELECT pg_advisory_xact_lock({migrate.LOCK_KEY}); DO $cloudact_guard$")
    assert "filename = '07_it''s.sql'" in lines[0]
    assert lines[-1].startswith("INSERT INTO public.schema_migrations")
    assert "E'me\\\\you'" in lines[-1] and "'07_it''s.sql'" in lines[-1]
