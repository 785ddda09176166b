# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""BigQuery v2 REST through the collection's one client: datasets, tables, queries and streaming inserts.

Plain REST (docs/gcp-rest.md, BigQuery), as google-cloud-bigquery speaks it, so the modules need no BigQuery
library: `query` runs `jobs.query` with named parameters and pages `jobs.getQueryResults`; values
come back typed (TIMESTAMP as aware datetimes, INT64 as int, FLOAT64 as float, BOOL as bool);
`insert_all` streams rows with `insertId`s (`tabledata.insertAll`), in chunks under its limits.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError

BASE = "https://bigquery.googleapis.com/bigquery/v2"
PRODUCT = "cloudact-bigquery"
INSERT_CHUNK = 500  # rows per insertAll request (Google recommends at most 500)
PAGE_ROWS = 10000
QUERY_WAIT_MS = 20000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_MS = 86400 * 1000
_LEGACY = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN"}  # standard SQL -> legacy names


def dataset_url(project, dataset):
    return "%s/projects/%s/datasets/%s" % (BASE, project, dataset)


def table_url(project, dataset, table):
    return "%s/tables/%s" % (dataset_url(project, dataset), table)


def get_dataset(api, project, dataset):
    what = "BigQuery dataset %s:%s" % (project, dataset)
    return api.request("GET", dataset_url(project, dataset), what, allow_missing=True)


def list_datasets(api, project, suffix=""):
    """The IDs of the project's datasets (`datasets.list`, every page) ending with `suffix`, sorted."""
    items = api.list_all(
        "%s/projects/%s/datasets" % (BASE, project), "datasets", "BigQuery datasets of %s" % project
    )
    names = ((d.get("datasetReference") or {}).get("datasetId") or "" for d in items)
    return sorted(n for n in names if n and n.endswith(suffix or ""))


def insert_dataset(api, project, dataset, location, description=""):
    body = {"datasetReference": {"projectId": project, "datasetId": dataset}, "location": location}
    if description:
        body["description"] = description
    return api.request(
        "POST",
        "%s/projects/%s/datasets" % (BASE, project),
        "BigQuery dataset %s:%s" % (project, dataset),
        json=body,
        look=lambda _lost: get_dataset(api, project, dataset),
    )


def get_table(api, project, dataset, table):
    return api.request(
        "GET",
        table_url(project, dataset, table),
        "BigQuery table %s:%s.%s" % (project, dataset, table),
        allow_missing=True,
    )


def insert_table(api, project, dataset, body):
    table = body["tableReference"]["tableId"]
    return api.request(
        "POST",
        "%s/tables" % dataset_url(project, dataset),
        "BigQuery table %s:%s.%s" % (project, dataset, table),
        json=body,
        look=lambda _lost: get_table(api, project, dataset, table),
    )


def patch_table(api, project, dataset, table, body, etag=None):
    """tables.patch with the etag read (If-Match), so a resend after a lost answer meets 412 rather
    than writing twice; after a 412 the table is read again and is the answer when it has `body`."""
    what = "BigQuery table %s:%s.%s" % (project, dataset, table)
    headers = {"If-Match": etag} if etag else None
    try:
        return api.request("PATCH", table_url(project, dataset, table), what, json=body, headers=headers)
    except ApiError as exc:
        if exc.status != 412:
            raise
        now = get_table(api, project, dataset, table) or {}
        if any(now.get(k) != v for k, v in body.items()):
            raise ApiError("%s: it changed since it was read; run the converge again" % what, 412) from None
        return now


def day_partitioning(field, days=None):
    """Partitioning by DAY on `field`; `days` a partition is kept (its expiration), None for ever."""
    spec = {"type": "DAY", "field": field}
    if days:
        spec["expirationMs"] = str(int(days) * DAY_MS)
    return spec


def same_type(a, b):
    """Whether two column types are the same (legacy and standard SQL names: INTEGER is INT64)."""
    return _LEGACY.get(a, a) == _LEGACY.get(b, b)


def table_patch(found, wanted):
    """What brings an existing table to `wanted` in place: (tables.patch body or None, problem or None).

    In place: the columns it lacks (added NULLABLE, after its own) and the partition expiration. Not in
    place (the problem names the value and what is needed): a column of another type, another
    partitioning, or a view where a table is needed.
    """
    if found.get("type") not in (None, "TABLE"):
        return None, "it is a %s, a TABLE is needed" % found.get("type")
    have = {f["name"]: f for f in (found.get("schema") or {}).get("fields") or []}
    fields = wanted["schema"]["fields"]
    for field in fields:
        got = have.get(field["name"])
        if got and not same_type(got["type"], field["type"]):
            return None, "column %s is %s, %s is needed" % (field["name"], got["type"], field["type"])
    part, want = found.get("timePartitioning") or {}, wanted.get("timePartitioning") or {}
    if (part.get("type"), part.get("field")) != (want.get("type"), want.get("field")):
        return None, "partitioned by %s on %s, %s on %s is needed" % (
            part.get("type") or "nothing",
            part.get("field") or "ingestion time",
            want.get("type"),
            want.get("field"),
        )
    patch = {}
    missing = [dict(f, mode="NULLABLE") for f in fields if f["name"] not in have]
    if missing:
        patch["schema"] = {"fields": list(have.values()) + missing}
    if part.get("expirationMs") != want.get("expirationMs"):
        patch["timePartitioning"] = dict(want, expirationMs=want.get("expirationMs"))
    return patch or None, None


def delete_table(api, project, dataset, table):
    return api.request(
        "DELETE",
        table_url(project, dataset, table),
        "BigQuery table %s:%s.%s" % (project, dataset, table),
        allow_missing=True,
    )


# ---- values ---------------------------------------------------------------------------------------------


def timestamp_value(text):
    """A TIMESTAMP cell: int64 microseconds (useInt64Timestamp) or float seconds ('1.7E9') -> datetime."""
    if text is None:
        return None
    raw = str(text)
    if any(c in raw for c in ".eE"):
        return EPOCH + timedelta(seconds=float(raw))
    return EPOCH + timedelta(microseconds=int(raw))


def cell(field, value):
    if value is None:
        return None
    if field.get("mode") == "REPEATED":
        scalar = dict(field, mode="NULLABLE")
        return [cell(scalar, v.get("v")) for v in value]
    kind = field.get("type")
    if kind in ("RECORD", "STRUCT"):
        return {f["name"]: cell(f, v.get("v")) for f, v in zip(field["fields"], value["f"], strict=True)}
    if kind == "TIMESTAMP":
        return timestamp_value(value)
    if kind in ("INTEGER", "INT64"):
        return int(value)
    if kind in ("FLOAT", "FLOAT64", "NUMERIC", "BIGNUMERIC"):
        return float(value)
    if kind in ("BOOLEAN", "BOOL"):
        return str(value).lower() == "true"
    return value


def rows_of(schema, rows):
    fields = schema.get("fields") or []
    return [
        {f["name"]: cell(f, c.get("v")) for f, c in zip(fields, row.get("f") or [], strict=True)}
        for row in rows or []
    ]


def parameter(name, kind, value):
    """A named query parameter; None is a NULL of that type."""
    encoded = value
    if isinstance(value, datetime):
        encoded = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    elif isinstance(value, list):
        return {
            "name": name,
            "parameterType": {"type": "ARRAY", "arrayType": {"type": kind}},
            "parameterValue": {"arrayValues": [{"value": str(v)} for v in value]},
        }
    body = {"name": name, "parameterType": {"type": kind}, "parameterValue": {}}
    if encoded is not None:
        body["parameterValue"]["value"] = str(encoded)
    return body


def query(api, project, sql, params=(), location=None, what="BigQuery query"):
    """Every row of a standard-SQL query (dicts by column name, typed), over jobs.query and its pages."""
    body = {
        "query": sql,
        "useLegacySql": False,
        "parameterMode": "NAMED",
        "queryParameters": list(params),
        "maxResults": PAGE_ROWS,
        "timeoutMs": QUERY_WAIT_MS,
        "formatOptions": {"useInt64Timestamp": True},
        "requestId": str(uuid.uuid4()),  # makes the POST safe to retry
    }
    if location:
        body["location"] = location
    page = api.request("POST", "%s/projects/%s/queries" % (BASE, project), what, json=body, idempotent=True)
    ref = page.get("jobReference") or {}
    results_url = "%s/projects/%s/queries/%s" % (BASE, project, ref.get("jobId"))
    params_page = {"maxResults": PAGE_ROWS, "formatOptions.useInt64Timestamp": "true"}
    if ref.get("location"):
        params_page["location"] = ref["location"]
    waited = time.monotonic()
    while not page.get("jobComplete"):
        if time.monotonic() - waited > api.deadline:
            raise ApiError("%s: job %s not complete after %.0fs" % (what, ref.get("jobId"), api.deadline))
        page = api.request("GET", results_url, what, params=dict(params_page, timeoutMs=QUERY_WAIT_MS))
    schema = page.get("schema") or {}
    out = rows_of(schema, page.get("rows"))
    token = page.get("pageToken")
    while token:
        page = api.request("GET", results_url, what, params=dict(params_page, pageToken=token))
        out.extend(rows_of(schema, page.get("rows")))
        token = page.get("pageToken")
    return out


def insert_all(api, project, dataset, table, rows):
    """Stream rows ([(insert_id, json)]) into a table; the count written. ApiError naming the first
    refused row (nothing of that chunk is written: skipInvalidRows is off)."""
    url = table_url(project, dataset, table) + "/insertAll"
    what = "BigQuery table %s:%s.%s" % (project, dataset, table)
    written = 0
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[start : start + INSERT_CHUNK]
        body = {"rows": [{"insertId": i, "json": j} for i, j in chunk], "skipInvalidRows": False}
        # insertIds let BigQuery drop a repeated row: the POST is safe to retry.
        answer = api.request("POST", url, what, json=body, idempotent=True) or {}
        problems = answer.get("insertErrors") or []
        if problems:
            first = problems[0]
            errors = first.get("errors") or [{}]
            raise ApiError(
                "%s: insertAll refused row %s: %s"
                % (what, start + int(first.get("index", 0)), errors[0].get("message", errors[0]))
            )
        written += len(chunk)
    return written
