#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Append what Cloud Run knows of executions to the execution ledger (the toolkit's writers)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ledger_sync
short_description: Record Cloud Run executions in the execution ledger (append-only)
description:
  - With O(runs), records the runs the toolkit waited for (observations of source C(toolkit)),
    with the summary line and exit code read from their log lines.
  - Without O(runs), reconciles (source C(reconcile)) every execution Cloud Run still has of the
    O(jobs), which fills result, duration and failure class of runs that died before their own
    insert (a task timeout, a kill).
  - Appends only observations that change what the ledger's view shows; a second run appends
    nothing. Never updates or deletes a row.
  - In check mode nothing is appended; RV(appended) counts what would be.
version_added: 0.2.0
author: CloudAct platform team
options:
  jobs:
    description: The catalog's jobs (C(cloudact_catalog.jobs)); their schedules classify the trigger.
    type: list
    elements: dict
    required: true
  runs:
    description: Runs to record (C(job), C(name), optional C(messages) and C(summary)).
    type: list
    elements: dict
  location:
    description: The region of the jobs.
    type: str
    default: us-central1
  environment:
    description: The inventory's environment (C(local), C(test), C(stage), C(prod)).
    type: str
    required: true
  trigger_account:
    description: The account Cloud Scheduler runs the triggers as (a run it created is C(scheduler)).
    type: str
    default: ""
  dataset:
    description: The ledger's dataset.
    type: str
    default: cloudact_ops
  best_effort:
    description:
      - A ledger that cannot be written is a warning naming C(make ledger-sync), not a failure (the
        run it records has happened either way).
    type: bool
    default: false
extends_documentation_fragment:
  - google.cloud.gcp
  - cloudact.gcp.gcp
notes:
  - Supports check mode.
"""

EXAMPLES = r"""
- name: Reconcile the ledger with Cloud Run's executions
  cloudact.gcp.ledger_sync:
    jobs: "{{ cloudact_catalog.jobs }}"
    environment: stage
    location: us-central1
"""

RETURN = r"""
listed:
  description: Executions read from Cloud Run.
  returned: always
  type: int
appended:
  description: Observations appended (in check mode, that would be).
  returned: always
  type: int
executions:
  description: The executions whose observation was appended.
  returned: always
  type: list
  elements: str
lines:
  description: One line for the operator.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.cloudact.gcp.plugins.module_utils import bigquery as bq
from ansible_collections.cloudact.gcp.plugins.module_utils import ledger, ledger_sync
from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import ApiError, GcpApi, gcp_module

ARGUMENT_SPEC = dict(
    jobs=dict(type="list", elements="dict", required=True),
    runs=dict(type="list", elements="dict"),
    location=dict(type="str", default="us-central1"),
    environment=dict(type="str", required=True),
    trigger_account=dict(type="str", default=""),
    dataset=dict(type="str", default=ledger.DATASET),
    best_effort=dict(type="bool", default=False),
)


class _Dry:
    """In check mode: the client with insertAll counted, not sent."""

    def __init__(self, api):
        self.api = api

    def __getattr__(self, name):
        return getattr(self.api, name)

    def request(self, method, url, what, **call):
        if method == "POST" and url.endswith("/insertAll"):
            return {}
        return self.api.request(method, url, what, **call)


def main():
    run(gcp_module(argument_spec=dict(ARGUMENT_SPEC), supports_check_mode=True))


def run(mod):
    p = mod.params
    for index, item in enumerate(p["runs"] or []):
        if not isinstance(item, dict) or not item.get("job") or not item.get("name"):
            mod.fail_json(msg="runs[%d]: expected {job, name, messages?, summary?}, got %r" % (index, item))
    api = GcpApi(mod, bq.PRODUCT)
    client = _Dry(api) if mod.check_mode else api
    where = "%s.%s" % (p["project"], p["dataset"])
    try:
        if p["runs"] is not None:
            appended = ledger_sync.record_runs(
                client,
                p["project"],
                p["location"],
                p["runs"],
                p["jobs"],
                p["environment"],
                p["trigger_account"],
                p["dataset"],
            )
            listed = len(p["runs"])
            line = "ledger %s: recorded %s" % (
                where,
                ", ".join(o["execution"] for o in appended) or "nothing new",
            )
        else:
            found = ledger_sync.reconcile(
                client,
                p["project"],
                p["location"],
                p["jobs"],
                p["environment"],
                p["trigger_account"],
                p["dataset"],
            )
            appended, listed = found["appended"], found["listed"]
            line = "ledger %s: %d execution(s) in Cloud Run, %d observation(s) %sappended" % (
                where,
                listed,
                len(appended),
                "would be " if mod.check_mode else "",
            )
    except ApiError as exc:
        if not p["best_effort"]:
            mod.fail_json(msg=str(exc), status=exc.status)
        mod.warn(
            "ledger %s not written (%s); make ledger-sync ENV=%s records it later"
            % (where, exc, p["environment"])
        )
        mod.exit_json(changed=False, listed=0, appended=0, executions=[], lines=[])
    mod.exit_json(
        changed=bool(appended),
        listed=listed,
        appended=len(appended),
        executions=[o["execution"] for o in appended],
        lines=[line],
    )


if __name__ == "__main__":
    main()
