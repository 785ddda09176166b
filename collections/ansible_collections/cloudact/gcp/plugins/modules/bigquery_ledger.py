#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converge the execution ledger's BigQuery dataset, base table and view."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: bigquery_ledger
short_description: Converge the execution ledger (BigQuery dataset, observations table, view)
description:
  - Creates the ledger's dataset (O(dataset), in O(location)), its append-only base table
    C(job_execution_observations) (the schema of the code's ledger schema version, partitioned by
    DAY on C(created), the retention as partition expiration) and the view C(job_executions)
    (one row per execution), when they are missing; brings an existing table's expiration and new
    columns, and the view's query, up to date in place. Never deletes a row or a table.
  - Idempotent; supports check mode and diff (the plan shows each resource to create or update).
  - A dataset in another location, or a table whose partitioning or column types differ, cannot be
    changed in place; that is an error naming the value and what is expected.
version_added: 0.2.0
author: CloudAct platform team
options:
  dataset:
    description: The ledger's dataset ID.
    type: str
    default: cloudact_ops
  location:
    description: BigQuery location of the dataset (C(US), C(EU), a region).
    type: str
    default: US
  retention_days:
    description:
      - Days a day's partition of observations is kept (partition expiration); unset keeps them forever.
    type: int
extends_documentation_fragment:
  - google.cloud.gcp
  - cloudact.gcp.gcp
notes:
  - Supports check mode and diff.
"""

EXAMPLES = r"""
- name: Converge the execution ledger
  cloudact.gcp.bigquery_ledger:
    project: cloudact-testing-1
    auth_kind: serviceaccount
    service_account_file: ~/keys/ops.json
    dataset: cloudact_ops
    retention_days: 400
"""

RETURN = r"""
operations:
  description: What was (or, in check mode, would be) done, one C(<verb> <resource>) per change.
  returned: always
  type: list
  elements: str
  sample: ["create dataset cloudact_ops", "create table job_execution_observations"]
schema_version:
  description: The code's ledger schema version.
  returned: always
  type: int
"""

from ansible_collections.cloudact.gcp.plugins.module_utils import bigquery as bq
from ansible_collections.cloudact.gcp.plugins.module_utils import ledger
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError
from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import ApiError, GcpApi, gcp_module

DAY_MS = 86400 * 1000


def partitioning(retention_days):
    spec = {"type": "DAY", "field": "created"}
    if retention_days:
        spec["expirationMs"] = str(int(retention_days) * DAY_MS)
    return spec


def table_body(project, dataset, retention_days):
    return {
        "tableReference": {"projectId": project, "datasetId": dataset, "tableId": ledger.TABLE},
        "description": "CloudAct execution ledger: append-only observations (schema version %d)"
        % ledger.SCHEMA_VERSION,
        "schema": {"fields": ledger.table_schema()},
        "timePartitioning": partitioning(retention_days),
    }


def view_body(project, dataset):
    return {
        "tableReference": {"projectId": project, "datasetId": dataset, "tableId": ledger.VIEW},
        "description": "CloudAct execution ledger: one row per Cloud Run execution",
        "view": {"query": ledger.view_sql(project, dataset), "useLegacySql": False},
    }


def table_changes(found, wanted):
    """(patch body or None, error or None) for an existing base table."""
    have = {f["name"]: f for f in (found.get("schema") or {}).get("fields") or []}
    for field in wanted["schema"]["fields"]:
        got = have.get(field["name"])
        if got and bq_type(got["type"]) != bq_type(field["type"]):
            return None, "column %s is %s, the ledger needs %s" % (field["name"], got["type"], field["type"])
    part = found.get("timePartitioning") or {}
    if (part.get("type"), part.get("field")) != ("DAY", "created"):
        return None, "partitioned by %s on %s, the ledger needs DAY on created" % (
            part.get("type") or "nothing",
            part.get("field") or "ingestion time",
        )
    patch = {}
    missing = [f for f in wanted["schema"]["fields"] if f["name"] not in have]
    if missing:
        fields = list(have.values()) + [dict(f, mode="NULLABLE") for f in missing]
        patch["schema"] = {"fields": fields}
    if part.get("expirationMs") != wanted["timePartitioning"].get("expirationMs"):
        patch["timePartitioning"] = dict(
            wanted["timePartitioning"], expirationMs=wanted["timePartitioning"].get("expirationMs")
        )
    return patch or None, None


def bq_type(kind):
    return {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN"}.get(kind, kind)


def shown(resource, kind):
    """What the diff shows of a resource (None when absent)."""
    if resource is None:
        return None
    if kind == "dataset":
        return {"location": resource.get("location")}
    if kind == "view":
        return {"query": ((resource.get("view") or {}).get("query") or "").splitlines()}
    part = resource.get("timePartitioning") or {}
    expiration = part.get("expirationMs")
    return {
        "columns": [f["name"] for f in (resource.get("schema") or {}).get("fields") or []],
        "partitioning": "%s on %s" % (part.get("type"), part.get("field")),
        "retention_days": int(expiration) // DAY_MS if expiration else None,
    }


ARGUMENT_SPEC = dict(
    dataset=dict(type="str", default=ledger.DATASET),
    location=dict(type="str", default="US"),
    retention_days=dict(type="int"),
)


def main():
    run(gcp_module(argument_spec=dict(ARGUMENT_SPEC), supports_check_mode=True))


def run(mod):
    p = mod.params
    project, dataset = p["project"], p["dataset"]
    if p["retention_days"] is not None and p["retention_days"] < 1:
        mod.fail_json(
            msg="retention_days %r: expected a number of days >= 1, or unset to keep everything"
            % p["retention_days"]
        )
    try:
        ledger.table_path(project, dataset, ledger.TABLE)
    except InputError as exc:
        mod.fail_json(msg=str(exc))
    api = GcpApi(mod, bq.PRODUCT)
    ops, before, after = [], {}, {}
    try:
        found = bq.get_dataset(api, project, dataset)
        before["dataset"] = shown(found, "dataset")
        after["dataset"] = {"location": found.get("location") if found else p["location"]}
        if found and (found.get("location") or "").upper() != p["location"].upper():
            mod.fail_json(
                msg="ledger dataset %s:%s is in %s, the inventory says %s: a dataset cannot move; set "
                "cloudact_ledger_location to %s or choose another cloudact_ledger_dataset"
                % (project, dataset, found.get("location"), p["location"], found.get("location"))
            )
        if found is None:
            ops.append("create dataset %s" % dataset)
            if not mod.check_mode:
                bq.insert_dataset(api, project, dataset, p["location"], "CloudAct execution ledger")
        wanted_table = table_body(project, dataset, p["retention_days"])
        table = bq.get_table(api, project, dataset, ledger.TABLE) if found else None
        before["table"] = shown(table, "table")
        after["table"] = shown(wanted_table, "table")
        if table is None:
            ops.append("create table %s" % ledger.TABLE)
            if not mod.check_mode:
                bq.insert_table(api, project, dataset, wanted_table)
        else:
            patch, problem = table_changes(table, wanted_table)
            if problem:
                mod.fail_json(msg="ledger table %s:%s.%s: %s" % (project, dataset, ledger.TABLE, problem))
            if patch:
                ops.append("update table %s (%s)" % (ledger.TABLE, ", ".join(sorted(patch))))
                if not mod.check_mode:
                    bq.patch_table(api, project, dataset, ledger.TABLE, patch, etag=table.get("etag"))
        wanted_view = view_body(project, dataset)
        view = bq.get_table(api, project, dataset, ledger.VIEW) if found else None
        before["view"] = shown(view, "view")
        after["view"] = shown(wanted_view, "view")
        if view is None:
            ops.append("create view %s" % ledger.VIEW)
            if not mod.check_mode:
                bq.insert_table(api, project, dataset, wanted_view)
        elif (view.get("view") or {}).get("query") != wanted_view["view"]["query"]:
            ops.append("update view %s" % ledger.VIEW)
            if not mod.check_mode:
                bq.patch_table(
                    api, project, dataset, ledger.VIEW, {"view": wanted_view["view"]}, etag=view.get("etag")
                )
    except ApiError as exc:
        mod.fail_json(msg=str(exc), status=exc.status)
    result = dict(changed=bool(ops), operations=ops, schema_version=ledger.SCHEMA_VERSION)
    if mod._diff and ops:
        result["diff"] = {"before": before, "after": after}
    mod.exit_json(**result)


if __name__ == "__main__":
    main()
