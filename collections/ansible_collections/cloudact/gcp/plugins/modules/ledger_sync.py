#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
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
  - In check mode it reads Cloud Run and the ledger and appends nothing; RV(appended) counts what would
    be. In diff mode the diff shows, per execution appended, the view's columns that change.
  - The project and the credentials are the run's environment's (see the notes).
version_added: 0.2.0
author: CloudAct platform team (!UNKNOWN)
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
    description: The region of the jobs; by default the environment's (C(cloudact_gcp_region)).
    type: str
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
      - A ledger that cannot be read or written is a warning naming C(make ledger-sync), not a failure
        (the run it records has happened either way). A bad option is a failure all the same.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
extends_documentation_fragment:
  - cloudact.gcp.gcp.environment
  - ansible.builtin.action_common_attributes
seealso:
  - module: cloudact.gcp.bigquery_ledger
  - module: cloudact.gcp.ledger_info
"""

EXAMPLES = r"""
- name: Reconcile the ledger with Cloud Run's executions
  cloudact.gcp.ledger_sync:
    jobs: "{{ cloudact_catalog.jobs }}"
    environment: stage

- name: Record a run the play waited for, never failing the play for the ledger
  cloudact.gcp.ledger_sync:
    jobs: "{{ cloudact_catalog.jobs }}"
    environment: stage
    runs:
      - job: cloudact-daily-alerts
        name: cloudact-daily-alerts-x7k2p
        summary: Processed alerts for 3 orgs
    best_effort: true
"""

RETURN = r"""
listed:
  description: Executions read from Cloud Run (with O(runs), the runs given).
  returned: always
  type: int
appended:
  description: Observations appended (in check mode, that would be).
  returned: always
  type: int
executions:
  description: The executions whose observation was (or would be) appended.
  returned: always
  type: list
  elements: str
lines:
  description: One line for the operator.
  returned: always
  type: list
  elements: str
  sample: ["ledger cloudact-testing-1.cloudact_ops: 12 execution(s) in Cloud Run, 0 observation(s) appended"]
diff:
  description: Per execution appended, the view's columns that change, before and after.
  returned: in diff mode, when something is appended
  type: dict
"""
