"""google-cloud-bigquery against localcloud's BigQuery, over the proxy, authenticated from the issued key."""

# Table names are the tests' own generated dataset IDs; values always go in as query parameters.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import itertools
import uuid

import pytest
import requests
from google.api_core import exceptions
from google.cloud import bigquery
from google.oauth2 import service_account

PROJECT = "cloudact-local"


@pytest.fixture
def bq(localcloud_env) -> bigquery.Client:
    creds = service_account.Credentials.from_service_account_file(
        str(localcloud_env.key_file), scopes=["https://www.googleapis.com/auth/bigquery"]
    )
    return bigquery.Client(project=PROJECT, credentials=creds)


@pytest.fixture
def dataset(bq: bigquery.Client):
    name = f"t_{uuid.uuid4().hex[:10]}"
    created = bq.create_dataset(name)
    yield created.dataset_id
    bq.delete_dataset(name, delete_contents=True, not_found_ok=True)


def _params(**values: tuple[str, object]) -> bigquery.QueryJobConfig:
    return bigquery.QueryJobConfig(
        query_parameters=[bigquery.ScalarQueryParameter(n, t, v) for n, (t, v) in values.items()]
    )


def test_dataset_insert_get_list_and_duplicate(bq: bigquery.Client, dataset: str) -> None:
    got = bq.get_dataset(dataset)
    assert got.dataset_id == dataset and got.project == PROJECT and got.location == "US"
    assert dataset in {d.dataset_id for d in bq.list_datasets()}
    with pytest.raises(exceptions.Conflict, match=f"Already Exists: Dataset {PROJECT}:{dataset}"):
        bq.create_dataset(dataset)
    with pytest.raises(exceptions.NotFound):
        bq.get_dataset(f"{dataset}_absent")


def test_table_dml_and_select_with_named_parameters(bq: bigquery.Client, dataset: str) -> None:
    table = bq.create_table(
        bigquery.Table(
            f"{PROJECT}.{dataset}.usage",
            schema=[
                bigquery.SchemaField("org_slug", "STRING", mode="REQUIRED"),
                bigquery.SchemaField("usage_date", "DATE"),
                bigquery.SchemaField("runs", "INT64"),
                bigquery.SchemaField("cost", "FLOAT64"),
                bigquery.SchemaField("active", "BOOL"),
                bigquery.SchemaField("updated", "TIMESTAMP"),
            ],
        )
    )
    assert [(f.name, f.field_type, f.mode) for f in bq.get_table(table).schema][:3] == [
        ("org_slug", "STRING", "REQUIRED"),
        ("usage_date", "DATE", "NULLABLE"),
        ("runs", "INTEGER", "NULLABLE"),
    ]
    ref = f"`{PROJECT}.{dataset}.usage`"  # backticked, with the dash of the project name
    today = dt.date.today()
    insert = bq.query(
        f"INSERT INTO {ref} (org_slug, usage_date, runs, cost, active, updated) VALUES "
        "('acme', @day, @runs, 1.5, TRUE, TIMESTAMP '2024-05-01 10:00:00+00'), "
        "('acme', DATE_SUB(@day, INTERVAL 100 DAY), 7, NULL, FALSE, NULL), "
        "('globex', @day, 3, 0.25, TRUE, NULL)",
        job_config=_params(day=("DATE", today), runs=("INT64", 5)),
    )
    insert.result()
    assert insert.num_dml_affected_rows == 3
    assert insert.statement_type == "INSERT"

    rows = list(
        bq.query(
            f"SELECT org_slug, usage_date, runs, cost, active, updated FROM {ref} "
            "WHERE runs >= @min_runs AND usage_date = @day ORDER BY org_slug",
            job_config=_params(min_runs=("INT64", 5), day=("DATE", today)),
        ).result()
    )
    assert [tuple(r.values()) for r in rows] == [
        ("acme", today, 5, 1.5, True, dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)),
    ]
    # query_and_wait (jobs.query) gives the same engine and typed rows.
    counted = list(
        bq.query_and_wait(
            f"SELECT org_slug, COUNT(*) AS n FROM {ref} WHERE usage_date >= DATE_SUB(CURRENT_DATE(), "
            "INTERVAL @d DAY) GROUP BY org_slug ORDER BY org_slug",
            job_config=_params(d=("INT64", 30)),
        )
    )
    assert [(r["org_slug"], r["n"]) for r in counted] == [("acme", 1), ("globex", 1)]

    delete = bq.query(
        f"DELETE FROM {ref} WHERE usage_date < DATE_SUB(CURRENT_DATE(), INTERVAL @d DAY)",
        job_config=_params(d=("INT64", 90)),
    )
    assert list(delete.result()) == []
    assert delete.num_dml_affected_rows == 1
    assert bq.get_table(table).num_rows == 2


def test_streaming_insert_list_rows_and_dry_run(bq: bigquery.Client, dataset: str) -> None:
    table = bq.create_table(
        bigquery.Table(
            f"{PROJECT}.{dataset}.events",
            schema=[
                bigquery.SchemaField("name", "STRING", mode="REQUIRED"),
                bigquery.SchemaField("day", "DATE"),
            ],
        )
    )
    assert bq.insert_rows_json(table, [{"name": "a", "day": "2024-02-29"}, {"name": "b"}]) == []
    refused = bq.insert_rows_json(table, [{"day": "2024-01-01"}, {"name": "c", "bogus": 1}])
    assert [e["index"] for e in refused] == [0, 1]
    assert [tuple(r.values()) for r in bq.list_rows(table)] == [("a", dt.date(2024, 2, 29)), ("b", None)]

    dry = bq.query(
        f"DELETE FROM `{PROJECT}.{dataset}.events` WHERE day < @day",
        job_config=bigquery.QueryJobConfig(
            dry_run=True, query_parameters=[bigquery.ScalarQueryParameter("day", "DATE", dt.date(2025, 1, 1))]
        ),
    )
    assert dry.state == "DONE" and dry.statement_type == "DELETE"
    got = bq.get_table(table)  # a dry run changes nothing; numRows leaves out the streaming buffer
    assert (got.num_rows, got.streaming_buffer.estimated_rows) == (0, 2)
    with pytest.raises(exceptions.NotFound):
        bq.query(
            f"SELECT * FROM `{PROJECT}.{dataset}.nope`", job_config=bigquery.QueryJobConfig(dry_run=True)
        )


def test_rows_are_paged(bq: bigquery.Client) -> None:
    job = bq.query("SELECT x, CAST(x AS STRING) AS s FROM UNNEST(GENERATE_ARRAY(1, 25)) AS x ORDER BY x")
    rows = job.result(page_size=10)
    pages = [[r["x"] for r in page] for page in rows.pages]
    assert [len(p) for p in pages] == [10, 10, 5]
    assert list(itertools.chain(*pages)) == list(range(1, 26))
    assert rows.total_rows == 25


def test_missing_table_raises_not_found(bq: bigquery.Client, dataset: str) -> None:
    sql = f"SELECT * FROM `{PROJECT}.{dataset}.nope`"
    with pytest.raises(exceptions.NotFound, match=rf"Table {PROJECT}:{dataset}\.nope"):
        bq.query(sql).result()
    with pytest.raises(exceptions.NotFound):
        bq.query_and_wait(sql)
    with pytest.raises(exceptions.NotFound, match="Dataset"):
        bq.query("SELECT * FROM no_such_dataset.t").result()


def test_syntax_error_raises_bad_request(bq: bigquery.Client) -> None:
    with pytest.raises(exceptions.BadRequest, match="Syntax error"):
        bq.query("SELEC 1 FROM").result()
    with pytest.raises(exceptions.BadRequest):
        bq.query_and_wait("SELECT FROM WHERE")


def test_missing_parameter_is_a_bad_request(bq: bigquery.Client) -> None:
    with pytest.raises(exceptions.BadRequest, match="parameter"):
        bq.query("SELECT @absent + 1", job_config=_params(other=("INT64", 1))).result()


def test_parameter_values_are_bound_not_interpolated(bq: bigquery.Client, dataset: str) -> None:
    bq.query(f"CREATE TABLE `{PROJECT}.{dataset}.names` (name STRING)").result()
    evil = "x'); DROP TABLE names; --"
    job = bq.query(
        f"INSERT INTO `{PROJECT}.{dataset}.names` (name) VALUES (@name)",
        job_config=_params(name=("STRING", evil)),
    )
    job.result()
    rows = bq.query_and_wait(f"SELECT name FROM `{PROJECT}.{dataset}.names`")
    assert [r["name"] for r in rows] == [evil]


def test_request_without_token_is_unauthenticated(localcloud) -> None:
    resp = requests.get(
        f"https://bigquery.googleapis.com/bigquery/v2/projects/{PROJECT}/datasets",
        proxies={"https": localcloud.proxy_url},
        verify=str(localcloud.ca_file),
        timeout=30,
    )
    assert resp.status_code == 401
    assert resp.json()["error"]["status"] == "UNAUTHENTICATED"
