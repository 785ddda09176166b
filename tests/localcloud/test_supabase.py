"""The Supabase Management API `database/query` of localcloud, over the proxy, on a real PostgreSQL."""

# Table names are the tests' own generated names; this SQL is the input under test.
# ruff: noqa: S608

from __future__ import annotations

import re
import uuid

import pytest
import requests
from google.cloud import secretmanager
from google.oauth2 import service_account

URL = "https://api.supabase.com/v1/projects/{ref}/database/query"


def access_secret(cloud, secret: str) -> str:
    """A secret's latest value through the official Secret Manager client (REST), as the jobs read it."""
    creds = service_account.Credentials.from_service_account_file(
        str(cloud.key_file), scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    client = secretmanager.SecretManagerServiceClient(credentials=creds, transport="rest")
    name = f"projects/cloudact-local/secrets/{secret}/versions/latest"
    return client.access_secret_version(name=name).payload.data.decode()


@pytest.fixture
def token(localcloud_env) -> str:
    return access_secret(localcloud_env, "supabase-access-token-local")


@pytest.fixture
def query(localcloud, token):
    session = requests.Session()
    session.trust_env = False
    session.proxies = {"https": localcloud.proxy_url}
    session.verify = str(localcloud.ca_file)

    def run(sql: str, *, ref: str = "local", bearer: str | None = token, **extra) -> requests.Response:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
        return session.post(URL.format(ref=ref), json={"query": sql, **extra}, headers=headers, timeout=60)

    yield run
    session.close()


@pytest.fixture
def table() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


def test_ddl_returns_empty_and_queries_return_row_objects(query, table: str) -> None:
    created = query(f"create table {table} (id serial primary key, name text not null, meta jsonb, day date)")
    assert created.status_code == 201, created.text
    assert created.json() == []
    inserted = query(
        f"insert into {table} (name, meta, day) values ('a', '{{\"k\": 1}}', '2024-01-31'), ('b', null, null)"
    )
    assert (inserted.status_code, inserted.json()) == (201, [])
    rows = query(f"select id, name, meta, day from {table} order by id")
    assert rows.status_code == 201
    assert rows.json() == [
        {"id": 1, "name": "a", "meta": {"k": 1}, "day": "2024-01-31"},
        {"id": 2, "name": "b", "meta": None, "day": None},
    ]
    # Several statements: the rows of the last statement that returned rows.
    several = query(
        f"select 1 as first; insert into {table} (name) values ('c'); select count(*) as n from {table}"
    )
    assert several.json() == [{"n": 3}]


def test_parameters_and_read_only(query, table: str) -> None:
    assert query(f"create table {table} (n int)").status_code == 201
    assert query(f"insert into {table} values ($1), ($2)", parameters=[4, 5]).status_code == 201
    total = query(f"select sum(n)::int as total from {table} where n >= $1", parameters=[4])
    assert total.json() == [{"total": 9}]
    refused = query(f"insert into {table} values (6)", read_only=True)
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("Failed to run sql query: ERROR:  25006: ")


def test_sql_error_is_400_with_sqlstate_and_line(query) -> None:
    resp = query("select *\nfrom missing_table_xyz")
    assert resp.status_code == 400
    assert resp.json() == {
        "message": 'Failed to run sql query: ERROR:  42P01: relation "missing_table_xyz" does not exist\n'
        "LINE 2: from missing_table_xyz\n"
        "             ^\n"
    }


def test_failing_multi_statement_query_rolls_back_entirely(query, table: str) -> None:
    assert query(f"create table {table} (n int)").status_code == 201
    failed = query(
        f"insert into {table} values (1); create table {table}_b (m int); select * from no_such_thing"
    )
    assert failed.status_code == 400
    assert "42P01" in failed.json()["message"]
    assert query(f"select count(*)::int as n from {table}").json() == [{"n": 0}]
    assert query(f"select to_regclass('{table}_b') is null as absent").json() == [{"absent": True}]


def test_statement_that_refuses_a_transaction_fails_inside_one(query, table: str) -> None:
    resp = query(f"create table {table} (n int); create index concurrently {table}_n on {table} (n)")
    assert resp.status_code == 400
    assert resp.json()["message"].startswith(
        "Failed to run sql query: ERROR:  25001: "
        "CREATE INDEX CONCURRENTLY cannot run inside a transaction block"
    )
    assert query(f"select to_regclass('{table}') is null as absent").json() == [{"absent": True}]


def test_the_seeded_token_is_one_supabase_issued(localcloud, token: str, query) -> None:
    # Shaped as Supabase's personal access tokens; never shown (tests/localcloud/test_supabase_tokens.py
    # has rotation, refusal of a wrong new version, restart, adoption and reset).
    shaped = re.fullmatch(r"sbp_[0-9a-f]{40}", token) is not None
    assert shaped, "the seeded supabase-access-token-local is not sbp_ + 40 hex characters"
    assert query("select 1").status_code == 201
    issued = localcloud.admin.admin("supabase", "tokens")["projects"]
    assert {project: tokens[0]["how"] for project, tokens in issued.items()} == {
        "cloudact-local": "seeded",
        "cloudact-testing-1": "seeded",
        "cloudact-prod": "seeded",
    }


def test_bad_or_missing_token_is_401(query) -> None:
    assert query("select 1", bearer="sbp_not_the_token").status_code == 401
    assert query("select 1", bearer=None).status_code == 401


def test_unknown_project_ref_is_404(query) -> None:
    resp = query("select 1", ref="abcdefghijklmnopqrst")
    assert resp.status_code == 404
    assert "not found" in resp.json()["message"]


def test_rate_limit_answers_429_with_headers(localcloud, query) -> None:
    localcloud.admin.admin("supabase", "rate-limit", "POST", {"limit": 3, "window_seconds": 60})
    try:
        answers = [query("select 1") for _ in range(4)]
        assert [r.status_code for r in answers] == [201, 201, 201, 429]
        assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["2", "1", "0", "0"]
        limited = answers[-1]
        assert limited.headers["X-RateLimit-Limit"] == "3"
        assert 0 < int(limited.headers["X-RateLimit-Reset"]) <= 60
        assert int(limited.headers["Retry-After"]) > 0
    finally:
        localcloud.admin.admin("supabase", "rate-limit", "POST", {"limit": 120, "window_seconds": 60})
