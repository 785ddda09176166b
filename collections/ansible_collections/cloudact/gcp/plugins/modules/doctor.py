#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: doctor
short_description: Read-only checks of a CloudAct environment, each naming the cause and the fix
description:
  - Runs on the controller (an action plugin); changes nothing. Its reads are GETs, queries, token
    requests and (for permissions) testIamPermissions; never a create, patch, delete, setIamPolicy or
    C(:run). No secret value is returned or printed.
  - "Prints one aligned table: check, result (ok, warn, FAIL, skipped), what was found, and the
    command that fixes it. A check the operator has no permission for is C(skipped: you lack <permission>)."
  - "Checks: the environment word; localcloud (ENV=local, REHEARSE=1); the credentials (key file, C(~)
    expanded, its project, a token, the account); the operator's permissions for converge and run
    (testIamPermissions); the API's Cloud Run service and C(/health); bootstrap status; the Supabase
    token and the migrations (applied, pending, drift); organizations (the alerts dry run); the image
    (one image across the jobs, the stale findings); jobs and triggers against the catalog (the
    converge's own tasks and modules in check mode); paused triggers; access as converged (the trigger
    account runs each scheduled job, the runtime account reads each mounted secret); OVERDUE, FAILED,
    STUCK jobs; the cause of each failed last execution and its logs command."
  - Reads the environment itself (module_utils/environment.py), so it reports an unknown environment
    word or unusable credentials as rows instead of failing before the table.
  - Fails (naming the checks) when a check FAILs, and with O(strict) also on a warning.
version_added: 0.2.0
author: CloudAct platform team (!UNKNOWN)
options:
  env:
    description: The environment word (C(make doctor ENV=...)); empty means the play's C(cloudact_env).
    type: str
    default: ""
  root:
    description: The checkout (inventories, catalog, roles).
    type: path
    required: true
  strict:
    description: Fail on a warning too.
    type: bool
    default: false
  expect_paused:
    description: Triggers (job shortcuts or trigger names) that are paused on purpose.
    type: list
    elements: str
    default: []
  grace_minutes:
    description: Minutes past a due time (or a timeout) before a job is flagged.
    type: int
    default: 10
  probes:
    description:
      - Checks that POST, run only on request (C(make doctor PROBE=alerts)); C(alerts) runs the alerts
        endpoint's dry run once (never resent). Without it that row is C(skipped) naming how to ask.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
extends_documentation_fragment:
  - cloudact.gcp.gcp.environment
  - ansible.builtin.action_common_attributes
"""

EXAMPLES = r"""
- name: Check the environment and name the fix for each problem
  cloudact.gcp.doctor:
    env: stage
    root: "{{ playbook_dir }}/.."
    strict: false
"""

RETURN = r"""
rows:
  description: One per check, C({check, result, found, fix}).
  returned: always
  type: list
  elements: dict
verdict:
  description: "{failed, counts, summary, message}: counts per result; failed on a FAIL (or, strict, a warn)."
  returned: always
  type: dict
"""
