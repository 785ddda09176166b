#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the execution ledger's rows (its view: one row per execution)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ledger_info
short_description: Read the execution ledger (one row per Cloud Run execution)
description:
  - Reads the ledger's view C(job_executions), newest first, with the columns of
    module_utils/ledger.py's FIELDS; timestamps as RFC 3339 text. Changes nothing.
  - A ledger that does not exist yet (create-jobs has not converged it) is RV(exists=false), not an error.
version_added: 0.2.0
author: CloudAct platform team
options:
  dataset:
    description: The ledger's dataset.
    type: str
    default: cloudact_ops
  job:
    description: Only this Cloud Run job's executions.
    type: str
  days:
    description: Only executions created in the last this many days.
    type: int
  limit:
    description: At most this many rows (0 for all).
    type: int
    default: 0
extends_documentation_fragment:
  - google.cloud.gcp
  - cloudact.gcp.gcp
"""

EXAMPLES = r"""
- name: Read the last 30 days of the ledger
  cloudact.gcp.ledger_info:
    days: 30
  register: ledger_rows
"""

RETURN = r"""
exists:
  description: Whether the ledger's view exists.
  returned: always
  type: bool
rows:
  description: The view's rows, newest first.
  returned: always
  type: list
  elements: dict
server_time:
  description: BigQuery's clock (its Date header) at the last reply, RFC 3339.
  returned: always
  type: str
"""

from ansible_collections.cloudact.gcp.plugins.module_utils import bigquery as bq
from ansible_collections.cloudact.gcp.plugins.module_utils import ledger
from ansible_collections.cloudact.gcp.plugins.module_utils import run_execution as rx
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError
from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import ApiError, GcpApi, gcp_module
from ansible_collections.cloudact.gcp.plugins.module_utils.timefmt import rfc3339


def main():
    mod = gcp_module(
        argument_spec=dict(
            dataset=dict(type="str", default=ledger.DATASET),
            job=dict(type="str"),
            days=dict(type="int"),
            limit=dict(type="int", default=0),
        ),
        supports_check_mode=True,
    )
    p = mod.params
    if p["limit"] < 0 or (p["days"] is not None and p["days"] < 1):
        mod.fail_json(msg="limit %r / days %r: expected limit >= 0 and days >= 1" % (p["limit"], p["days"]))
    api = GcpApi(mod, bq.PRODUCT)
    try:
        rows = ledger.read_rows(
            api, p["project"], days=p["days"], job=p["job"], limit=p["limit"] or None, dataset=p["dataset"]
        )
    except InputError as exc:
        mod.fail_json(msg=str(exc))
    except ApiError as exc:
        if exc.status != 404:
            mod.fail_json(msg=str(exc), status=exc.status)
        mod.exit_json(changed=False, exists=False, rows=[], server_time=rfc3339(rx.server_now(api)))
    out = [
        {k: (v.isoformat().replace("+00:00", "Z") if hasattr(v, "isoformat") else v) for k, v in r.items()}
        for r in rows
    ]
    mod.exit_json(changed=False, exists=True, rows=out, server_time=rfc3339(rx.server_now(api)))


if __name__ == "__main__":
    main()
