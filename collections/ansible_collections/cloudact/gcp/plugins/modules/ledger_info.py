#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ledger_info
short_description: Read the execution ledger (one row per Cloud Run execution)
description:
  - Reads the ledger's view C(job_executions), newest first, with the columns of
    module_utils/ledger.py's FIELDS; timestamps as RFC 3339 text. Changes nothing.
  - A ledger that does not exist yet (create-jobs has not converged it) is RV(exists=false), not an error.
  - The project and the credentials are the run's environment's (see the notes).
version_added: 0.2.0
author: CloudAct platform team (!UNKNOWN)
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
attributes:
  check_mode:
    support: full
    details: It reads only, the same in check mode.
  diff_mode:
    support: N/A
    details: It changes nothing.
extends_documentation_fragment:
  - cloudact.gcp.gcp.environment
  - ansible.builtin.action_common_attributes
seealso:
  - module: cloudact.gcp.bigquery_ledger
  - module: cloudact.gcp.ledger_sync
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
