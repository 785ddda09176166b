"""localcloud's BigQuery streaming buffer, through google-cloud-bigquery: rows from tabledata.insertAll
refuse UPDATE/DELETE/MERGE for 30 emulated minutes with Google's message, tables.get shows the buffer,
insertId de-duplicates, skipInvalidRows / ignoreUnknownValues."""

# Table names are the tests' own generated dataset IDs; values go in as query parameters.
# ruff: noqa: S608

from __future__ import annotations

import uuid

import pytest
from google.api_core import exceptions
from google.cloud import bigquery
from google.oauth2 import service_account

PROJECT = "cloudact-local"
SCHEMA = [
    bigquery.SchemaField("execution", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("source", "STRING"),
    bigquery.SchemaField("attempts", "INT64"),
]


@pytest.fixture
def bq(localcloud_env) -> bigquery.Client:
    creds = service_account.Credentials.from_service_account_file(
        str(localcloud_env.key_file), scopes=["https://www.googleapis.com/auth/bigquery"]
    )
    return bigquery.Client(project=PROJECT, credentials=creds)


@pytest.fixture
def table(bq: bigquery.Client):
    name = f"t_{uuid.uuid4().hex[:10]}"
    bq.create_dataset(name)
    created = bq.create_table(bigquery.Table(f"{PROJECT}.{name}.obs", schema=SCHEMA))
    yield created
    bq.delete_dataset(name, delete_contents=True, not_found_ok=True)


def refusal(table: bigquery.Table) -> str:
    return (
        f"UPDATE or DELETE statement over table {PROJECT}.{table.dataset_id}.obs would affect rows in the "
        "streaming buffer, which is not supported"
    )


def rows(bq: bigquery.Client, table: bigquery.Table) -> list[tuple]:
    sql = f"SELECT execution, source, attempts FROM `{table}` ORDER BY execution, source"
    return [tuple(r.values()) for r in bq.query_and_wait(sql)]


def test_dml_over_streamed_rows_fails_until_30_minutes_pass(bq, table, localcloud) -> None:
    bq.query_and_wait(f"INSERT INTO `{table}` (execution, source, attempts) VALUES ('old', 'toolkit', 1)")
    before = localcloud.admin.now()
    assert bq.insert_rows_json(table, [{"execution": "e1", "source": "job", "attempts": 1}]) == []

    got = bq.get_table(table)
    assert got.streaming_buffer is not None
    assert got.streaming_buffer.estimated_rows == 1 and got.streaming_buffer.estimated_bytes > 0
    assert abs((got.streaming_buffer.oldest_entry_time - before).total_seconds()) < 5
    assert got.num_rows == 1  # numRows leaves out the streaming buffer

    update = f"UPDATE `{table}` SET attempts = attempts + 1 WHERE TRUE"
    job = bq.query(update)  # jobs.insert: the job is DONE with errorResult
    with pytest.raises(exceptions.BadRequest, match=refusal(table)):
        job.result()
    assert job.error_result["reason"] == "invalidQuery"
    assert job.error_result["message"] == refusal(table)
    with pytest.raises(exceptions.BadRequest, match=refusal(table)):  # jobs.query: an HTTP 400
        bq.query_and_wait(f"DELETE FROM `{table}` WHERE execution = 'e1'")
    merge = (
        f"MERGE `{table}` T USING (SELECT 'e1' AS execution) S ON T.execution = S.execution "
        "WHEN MATCHED THEN UPDATE SET attempts = 9"
    )
    with pytest.raises(exceptions.BadRequest, match=refusal(table)):
        bq.query_and_wait(merge)
    with pytest.raises(exceptions.BadRequest, match=refusal(table)):
        bq.query_and_wait(f"TRUNCATE TABLE `{table}`")
    noop = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ScalarQueryParameter("e", "STRING", "e1"),
            bigquery.ScalarQueryParameter("s", "STRING", "job"),
        ]
    )
    with pytest.raises(exceptions.BadRequest, match=refusal(table)):  # affected, though unchanged
        bq.query_and_wait(f"UPDATE `{table}` t SET source = @s WHERE t.execution = @e", job_config=noop)
    assert rows(bq, table) == [("e1", "job", 1), ("old", "toolkit", 1)]  # nothing changed

    # Rows outside the buffer stay modifiable (Google: "All other rows in the table remain modifiable").
    job = bq.query(f"UPDATE `{table}` SET attempts = 5 WHERE execution = 'old'")
    job.result()
    assert job.num_dml_affected_rows == 1

    localcloud.admin.advance("31m")
    assert bq.get_table(table).streaming_buffer is None
    assert bq.get_table(table).num_rows == 2
    job = bq.query(update)
    job.result()
    assert job.num_dml_affected_rows == 2
    bq.query_and_wait(merge)
    assert rows(bq, table) == [("e1", "job", 9), ("old", "toolkit", 6)]


def test_insert_id_deduplicates_a_retried_row(bq, table) -> None:
    first = [{"execution": "e1", "source": "job"}, {"execution": "e2", "source": "job"}]
    assert bq.insert_rows_json(table, first, row_ids=["e1/job", "e2/job"]) == []
    assert bq.insert_rows_json(table, first, row_ids=["e1/job", "e2/job"]) == []  # a retry: dropped
    # The same row under a new insertId is a new row (the client's default: a fresh uuid per row).
    assert bq.insert_rows_json(table, first[:1]) == []
    # Within one request, a repeated insertId is written once.
    same = [{"execution": "e3", "source": "job"}] * 2
    assert bq.insert_rows_json(table, same, row_ids=["e3/job", "e3/job"]) == []
    assert rows(bq, table) == [
        ("e1", "job", None),
        ("e1", "job", None),
        ("e2", "job", None),
        ("e3", "job", None),
    ]
    assert bq.get_table(table).streaming_buffer.estimated_rows == 4


def test_bad_rows_fail_the_request_or_are_skipped(bq, table) -> None:
    batch = [
        {"execution": "a", "attempts": 1},
        {"execution": "b", "bogus": 1},
        {"source": "no key"},
        {"execution": "d", "attempts": "many"},
    ]
    errors = bq.insert_rows_json(table, batch)
    by_index = {e["index"]: e["errors"][0] for e in errors}
    assert sorted(by_index) == [0, 1, 2, 3]
    assert by_index[0]["reason"] == "stopped"
    assert (by_index[1]["reason"], by_index[1]["location"], by_index[1]["message"]) == (
        "invalid",
        "bogus",
        "no such field.",
    )
    assert by_index[2]["message"] == "Missing required field: execution."
    assert by_index[3]["reason"] == "invalid" and by_index[3]["location"] == "attempts"
    assert rows(bq, table) == []  # nothing written

    errors = bq.insert_rows_json(table, batch, skip_invalid_rows=True)
    assert [e["index"] for e in errors] == [1, 2, 3]
    assert rows(bq, table) == [("a", None, 1)]

    errors = bq.insert_rows_json(table, batch[:2], ignore_unknown_values=True)
    assert errors == []
    assert bq.insert_rows_json(table, [{"EXECUTION": "c", "Attempts": 3}]) == []  # names: any case
    assert rows(bq, table) == [("a", None, 1), ("a", None, 1), ("b", None, None), ("c", None, 3)]
