"""localcloud's BigQuery tables beyond plain ones, through google-cloud-bigquery: views (the latest
observation per key), time partitioning with expiration and requirePartitionFilter, schema updates."""

# Table names are the tests' own generated dataset IDs; values go in as query parameters.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from google.api_core import exceptions
from google.cloud import bigquery
from google.oauth2 import service_account

from localcloud.client import LocalCloudProcess

PROJECT = "cloudact-local"
DAY = dt.timedelta(days=1)


@pytest.fixture
def bq(localcloud_env) -> bigquery.Client:
    creds = service_account.Credentials.from_service_account_file(
        str(localcloud_env.key_file), scopes=["https://www.googleapis.com/auth/bigquery"]
    )
    return bigquery.Client(project=PROJECT, credentials=creds)


@pytest.fixture
def dataset(bq: bigquery.Client):
    name = f"t_{uuid.uuid4().hex[:10]}"
    bq.create_dataset(name)
    yield f"{PROJECT}.{name}"
    bq.delete_dataset(name, delete_contents=True, not_found_ok=True)


OBSERVATIONS = [
    bigquery.SchemaField("execution", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("source", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("observed_at", "TIMESTAMP", mode="REQUIRED"),
    bigquery.SchemaField("created", "TIMESTAMP"),
    bigquery.SchemaField("completed", "TIMESTAMP"),
    bigquery.SchemaField("result", "STRING"),
    bigquery.SchemaField("summary", "STRING"),
    bigquery.SchemaField("overrides", "JSON"),
    bigquery.SchemaField("tasks", "RECORD", fields=[bigquery.SchemaField("succeeded", "INT64")]),
    bigquery.SchemaField("labels", "STRING", mode="REPEATED"),
]
LATEST = """
SELECT
  execution,
  ARRAY_AGG(result IGNORE NULLS ORDER BY observed_at DESC LIMIT 1)[SAFE_OFFSET(0)] AS result,
  ARRAY_AGG(IF(source = 'job', summary, NULL) IGNORE NULLS ORDER BY observed_at DESC LIMIT 1)[SAFE_OFFSET(0)]
    AS summary,
  ANY_VALUE(created) AS created,
  TIMESTAMP_DIFF(MAX(completed), ANY_VALUE(created), SECOND) AS duration_s,
  COALESCE(JSON_VALUE(ANY_VALUE(overrides), '$.taskCount'), '1') AS task_count,
  COUNTIF(source = 'job') AS own_writes
FROM `{table}`
GROUP BY execution
"""
LATEST_ROW = """
SELECT * EXCEPT (n) FROM (
  SELECT execution, source, result, ROW_NUMBER() OVER (PARTITION BY execution ORDER BY observed_at DESC) AS n
  FROM `{table}`
) WHERE n = 1
"""


def test_view_gives_the_latest_observation_per_execution(bq: bigquery.Client, dataset: str) -> None:
    table = bq.create_table(bigquery.Table(f"{dataset}.observations", schema=OBSERVATIONS))
    t0 = dt.datetime(2026, 11, 1, 1, 0, tzinfo=dt.UTC)
    rows = [
        {"execution": "e1", "source": "toolkit", "observed_at": t0.isoformat(), "created": t0.isoformat(),
         "result": "RUNNING", "overrides": {"taskCount": 2}, "tasks": {"succeeded": 0}, "labels": ["a"]},
        {"execution": "e1", "source": "job", "observed_at": (t0 + dt.timedelta(minutes=5)).isoformat(),
         "created": t0.isoformat(), "completed": (t0 + dt.timedelta(minutes=4)).isoformat(),
         "result": "SUCCEEDED", "summary": "Deleted 3 quota records older than 90 days"},
        {"execution": "e2", "source": "job", "observed_at": t0.isoformat(), "created": t0.isoformat(),
         "summary": "Processed alerts for 2 orgs"},
        {"execution": "e2", "source": "reconcile", "observed_at": (t0 + DAY).isoformat(),
         "created": t0.isoformat(), "completed": (t0 + dt.timedelta(seconds=90)).isoformat(),
         "result": "FAILED", "summary": "not the job's own"},
    ]  # fmt: skip
    assert bq.insert_rows_json(table, rows) == []  # streamed, as the writers do

    view = bigquery.Table(f"{dataset}.job_executions")
    view.view_query = LATEST.format(table=table)
    created = bq.create_table(view)
    assert created.table_type == "VIEW" and "ARRAY_AGG" in created.view_query
    assert [f.name for f in created.schema][:3] == ["execution", "result", "summary"]

    got = bq.get_table(view)
    assert got.table_type == "VIEW" and got.view_use_legacy_sql is False
    assert {t.table_id: t.table_type for t in bq.list_tables(dataset)} == {
        "observations": "TABLE",
        "job_executions": "VIEW",
    }
    latest = [tuple(r.values()) for r in bq.query_and_wait(f"SELECT * FROM `{view}` ORDER BY execution")]
    assert latest == [
        ("e1", "SUCCEEDED", "Deleted 3 quota records older than 90 days", t0, 240, "2", 1),
        ("e2", "FAILED", "Processed alerts for 2 orgs", t0, 90, "1", 1),
    ]

    # The view's query is patched in place (tables.patch); a view over a view resolves too.
    got.view_query = LATEST_ROW.format(table=table)
    bq.update_table(got, ["view_query"])
    assert "ROW_NUMBER" in bq.get_table(view).view_query
    outer = bigquery.Table(f"{dataset}.failed")
    outer.view_query = f"SELECT execution FROM `{view}` WHERE result = 'FAILED'"
    bq.create_table(outer)
    assert [r["execution"] for r in bq.query_and_wait(f"SELECT * FROM `{outer}`")] == ["e2"]
    qualify = (
        f"SELECT execution, source FROM `{table}` WHERE TRUE "
        "QUALIFY ROW_NUMBER() OVER (PARTITION BY execution ORDER BY observed_at DESC) = 1 ORDER BY execution"
    )
    assert [tuple(r.values()) for r in bq.query_and_wait(qualify)] == [("e1", "job"), ("e2", "reconcile")]

    with pytest.raises(exceptions.Conflict):
        bq.create_table(outer)
    bad = bigquery.Table(f"{dataset}.bad")
    bad.view_query = f"SELECT nope FROM `{table}`"
    with pytest.raises(exceptions.BadRequest):
        bq.create_table(bad)
    bq.delete_table(outer)
    assert "failed" not in {t.table_id for t in bq.list_tables(dataset)}
    bq.delete_table(table)  # the view stays, a view of nothing: reading it is a 404 for the table
    assert bq.get_table(view).table_type == "VIEW"
    with pytest.raises(exceptions.NotFound, match="observations"):
        bq.query_and_wait(f"SELECT * FROM `{view}`")


def test_a_view_reads_the_clock_when_queried(bq: bigquery.Client, dataset: str, localcloud) -> None:
    table = bq.create_table(
        bigquery.Table(f"{dataset}.obs", schema=[bigquery.SchemaField("observed_at", "TIMESTAMP")])
    )
    now = localcloud.admin.now()
    bq.query_and_wait(
        f"INSERT INTO `{table}` (observed_at) VALUES (@t)",
        job_config=bigquery.QueryJobConfig(
            query_parameters=[bigquery.ScalarQueryParameter("t", "TIMESTAMP", now)]
        ),
    )
    view = bigquery.Table(f"{dataset}.recent")
    view.view_query = (
        f"SELECT * FROM `{table}` WHERE observed_at > TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 HOUR)"
    )
    bq.create_table(view)
    assert len(list(bq.query_and_wait(f"SELECT * FROM `{view}`"))) == 1
    localcloud.admin.advance("61m")
    assert list(bq.query_and_wait(f"SELECT * FROM `{view}`")) == []


def test_partition_expiration_hides_old_rows(bq: bigquery.Client, dataset: str, localcloud) -> None:
    table = bigquery.Table(
        f"{dataset}.runs",
        schema=[bigquery.SchemaField("name", "STRING"), bigquery.SchemaField("created", "TIMESTAMP")],
    )
    table.time_partitioning = bigquery.TimePartitioning(
        type_=bigquery.TimePartitioningType.DAY, field="created", expiration_ms=3 * 86_400_000
    )
    table = bq.create_table(table)
    assert (table.time_partitioning.type_, table.time_partitioning.field) == ("DAY", "created")
    assert table.time_partitioning.expiration_ms == 3 * 86_400_000

    # A DAY partition expires expirationMs after its end (midnight UTC after its day).
    now = localcloud.admin.now()
    edge = dt.datetime.combine((now - 3 * DAY).date(), dt.time(), tzinfo=dt.UTC)
    stamps = {
        "ten days": now - 10 * DAY,
        "just expired": edge - dt.timedelta(microseconds=1),
        "oldest kept": edge,
        "today": now,
    }
    for name, created in stamps.items():
        bq.query_and_wait(
            f"INSERT INTO `{table}` (name, created) VALUES (@n, @c)",
            job_config=bigquery.QueryJobConfig(
                query_parameters=[
                    bigquery.ScalarQueryParameter("n", "STRING", name),
                    bigquery.ScalarQueryParameter("c", "TIMESTAMP", created),
                ]
            ),
        )
    assert {r["name"] for r in bq.query_and_wait(f"SELECT name FROM `{table}`")} == {"oldest kept", "today"}
    assert bq.get_table(table).num_rows == 2
    assert [r["name"] for r in bq.list_rows(table)] == ["oldest kept", "today"]

    # Expiration changes through tables.patch; the partitioning itself does not.
    table.time_partitioning = bigquery.TimePartitioning(field="created", expiration_ms=86_400_000)
    table = bq.update_table(table, ["time_partitioning"])
    assert table.time_partitioning.expiration_ms == 86_400_000
    assert {r["name"] for r in bq.query_and_wait(f"SELECT name FROM `{table}`")} == {"today"}
    # Only what changes (a raw tables.patch body): the type and field stay, expirationMs goes.
    bq._call_api(
        None, method="PATCH", path=table.path, data={"timePartitioning": {"expirationMs": "3600000"}}
    )
    table = bq.get_table(table)
    assert (table.time_partitioning.type_, table.time_partitioning.field) == ("DAY", "created")
    assert table.time_partitioning.expiration_ms == 3_600_000
    table.time_partitioning = bigquery.TimePartitioning(type_="MONTH", field="created")
    with pytest.raises(exceptions.BadRequest, match="Cannot change partitioning spec"):
        bq.update_table(table, ["time_partitioning"])

    bad = bigquery.Table(f"{dataset}.bad", schema=[bigquery.SchemaField("name", "STRING")])
    bad.time_partitioning = bigquery.TimePartitioning(field="name")
    with pytest.raises(exceptions.BadRequest, match="Partitioning field name"):
        bq.create_table(bad)
    bad.time_partitioning = bigquery.TimePartitioning(field="absent")
    with pytest.raises(exceptions.BadRequest, match="cannot be found in the schema"):
        bq.create_table(bad)


def test_require_partition_filter(bq: bigquery.Client, dataset: str) -> None:
    table = bigquery.Table(f"{dataset}.runs", schema=[bigquery.SchemaField("created", "DATE")])
    table.time_partitioning = bigquery.TimePartitioning(field="created")
    table.require_partition_filter = True
    table = bq.create_table(table)
    assert bq.get_table(table).require_partition_filter is True
    bq.query_and_wait(f"INSERT INTO `{table}` (created) VALUES (DATE '2026-11-01')")
    with pytest.raises(exceptions.BadRequest, match="without a filter over column\\(s\\) 'created'"):
        bq.query_and_wait(f"SELECT * FROM `{table}`")
    got = bq.query_and_wait(f"SELECT COUNT(*) AS n FROM `{table}` WHERE created >= DATE '2026-01-01'")
    assert [r["n"] for r in got] == [1]


def test_schema_update_adds_nullable_fields_and_refuses_the_rest(bq: bigquery.Client, dataset: str) -> None:
    table = bq.create_table(
        bigquery.Table(
            f"{dataset}.ledger",
            schema=[
                bigquery.SchemaField("execution", "STRING", mode="REQUIRED", description="key"),
                bigquery.SchemaField("tasks", "RECORD", fields=[bigquery.SchemaField("failed", "INT64")]),
                bigquery.SchemaField("labels", "STRING", mode="REPEATED"),
            ],
        )
    )
    got = bq.get_table(table)
    assert [(f.name, f.field_type, f.mode) for f in got.schema] == [
        ("execution", "STRING", "REQUIRED"),
        ("tasks", "RECORD", "NULLABLE"),
        ("labels", "STRING", "REPEATED"),
    ]
    assert got.schema[0].description == "key"

    base = list(got.schema)
    grown = [
        bigquery.SchemaField("execution", "STRING", mode="NULLABLE", description="key"),  # relaxed: allowed
        bigquery.SchemaField(
            "tasks",
            "RECORD",
            fields=[bigquery.SchemaField("failed", "INT64"), bigquery.SchemaField("retried", "INT64")],
        ),
        base[2],
        bigquery.SchemaField("image", "STRING"),
    ]
    got.schema = grown
    got = bq.update_table(got, ["schema"])
    assert [f.name for f in got.schema] == ["execution", "tasks", "labels", "image"]
    assert got.schema[0].mode == "NULLABLE"
    assert [f.name for f in got.schema[1].fields] == ["failed", "retried"]
    row = {"tasks": {"failed": 0, "retried": 2}, "labels": ["x", "y"], "image": "sha256:1"}
    assert bq.insert_rows_json(got, [row]) == []
    listed = list(bq.list_rows(got))
    assert listed[0]["tasks"] == {"failed": 0, "retried": 2} and listed[0]["labels"] == ["x", "y"]

    refused = {
        "Cannot add required fields to an existing schema. (field: extra)": [
            *grown,
            bigquery.SchemaField("extra", "STRING", mode="REQUIRED"),
        ],
        "Field image has changed type from STRING to INTEGER": [
            *grown[:3],
            bigquery.SchemaField("image", "INT64"),
        ],
        "Field labels is missing in new schema": [*grown[:2], grown[3]],
        "Field image has changed mode from NULLABLE to REQUIRED": [
            *grown[:3],
            bigquery.SchemaField("image", "STRING", mode="REQUIRED"),
        ],
    }
    for message, schema in refused.items():
        got.schema = schema
        with pytest.raises(
            exceptions.BadRequest, match=f"Provided Schema does not match Table .*{re.escape(message)}"
        ):
            bq.update_table(got, ["schema"])
    assert [f.name for f in bq.get_table(table).schema] == ["execution", "tasks", "labels", "image"]


def test_views_from_sql_ddl(bq: bigquery.Client, dataset: str, localcloud) -> None:
    table = bq.create_table(
        bigquery.Table(f"{dataset}.obs", schema=[bigquery.SchemaField("observed_at", "TIMESTAMP")])
    )
    bq.query_and_wait(f"INSERT INTO `{table}` (observed_at) VALUES (CURRENT_TIMESTAMP())")
    job = bq.query(
        f"CREATE OR REPLACE VIEW `{dataset}.fresh` AS SELECT * FROM `{table}` "
        "WHERE observed_at > TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 10 MINUTE)"
    )
    job.result()
    assert job.statement_type == "CREATE_VIEW"
    got = bq.get_table(f"{dataset}.fresh")
    assert got.table_type == "VIEW" and "TIMESTAMP_SUB" in got.view_query
    assert len(list(bq.query_and_wait(f"SELECT * FROM `{dataset}.fresh`"))) == 1
    localcloud.admin.advance("11m")  # the view's clock is the query's, not its creation's
    assert list(bq.query_and_wait(f"SELECT * FROM `{dataset}.fresh`")) == []
    bq.query_and_wait(f"DROP VIEW `{dataset}.fresh`")
    with pytest.raises(exceptions.NotFound):
        bq.get_table(f"{dataset}.fresh")


def test_views_partitions_and_the_buffer_survive_a_restart(localcloud_state, monkeypatch) -> None:
    """Its own localcloud, stopped and started again (by pid) over the same state."""
    proc = LocalCloudProcess(localcloud_state)
    try:
        proc.start()
        for name, value in proc.client_env.items():
            monkeypatch.setenv(name, value)
        creds = service_account.Credentials.from_service_account_file(
            str(proc.key_file), scopes=["https://www.googleapis.com/auth/bigquery"]
        )
        bq = bigquery.Client(project=PROJECT, credentials=creds)
        bq.create_dataset("keep")
        table = bigquery.Table(f"{PROJECT}.keep.obs", schema=[bigquery.SchemaField("created", "TIMESTAMP")])
        table.time_partitioning = bigquery.TimePartitioning(field="created", expiration_ms=86_400_000)
        table = bq.create_table(table)
        view = bigquery.Table(f"{PROJECT}.keep.v")
        view.view_query = f"SELECT COUNT(*) AS n FROM `{table}`"
        bq.create_table(view)
        assert bq.insert_rows_json(table, [{"created": proc.admin.now().isoformat()}]) == []
        proc.stop()
        proc.start()
        got = bq.get_table(table)
        assert got.time_partitioning.expiration_ms == 86_400_000 and got.streaming_buffer.estimated_rows == 1
        assert bq.get_table(view).table_type == "VIEW"
        assert [r["n"] for r in bq.query_and_wait(f"SELECT n FROM `{view}`")] == [1]
        with pytest.raises(exceptions.BadRequest, match="streaming buffer"):
            bq.query_and_wait(f"DELETE FROM `{table}` WHERE TRUE")
        proc.admin.advance("2d")  # the row's partition expires; the buffer empties at 30 minutes
        assert [r["n"] for r in bq.query_and_wait(f"SELECT n FROM `{view}`")] == [0]
        assert bq.get_table(table).streaming_buffer is None
    finally:
        proc.stop()
