#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bigquery_ledger
short_description: Converge the execution ledger (BigQuery dataset, observations table, view)
description:
  - Creates the ledger's dataset (O(dataset), in O(location)), its append-only base table
    C(job_execution_observations) (the schema of the code's ledger schema version, partitioned by
    DAY on C(created), the retention as partition expiration) and the view C(job_executions)
    (one row per execution), when they are missing; brings an existing table's expiration and new
    columns, and the view's query, up to date in place. Never deletes a row or a table.
  - Idempotent. In check mode it reads and plans only (RV(operations) says what would be done); in
    diff mode the diff shows the dataset's location, the table's columns, partitioning and retention
    and the view's query, before and after.
  - A dataset in another location, or a table whose partitioning or column types differ, cannot be
    changed in place; that is an error naming the value and what is expected, raised after the reads
    and before any change.
  - The project and the credentials are the run's environment's (see the notes).
version_added: 0.2.0
author: CloudAct platform team (!UNKNOWN)
options:
  dataset:
    description: The ledger's dataset ID (letters, digits and underscores).
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
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
extends_documentation_fragment:
  - cloudact.gcp.gcp.environment
  - ansible.builtin.action_common_attributes
seealso:
  - module: cloudact.gcp.ledger_sync
  - module: cloudact.gcp.ledger_info
"""

EXAMPLES = r"""
- name: Converge the execution ledger of the environment the cloudact_env role built
  cloudact.gcp.bigquery_ledger:
    dataset: cloudact_ops
    location: US
    retention_days: 400
  register: ledger_converge

- name: What creating the ledger would do, without doing it
  cloudact.gcp.bigquery_ledger:
    dataset: cloudact_ops
  check_mode: true
  diff: true
"""

RETURN = r"""
operations:
  description: What was (or, in check mode, would be) done, one C(<verb> <resource>) per change.
  returned: always
  type: list
  elements: str
  sample:
    - create dataset cloudact_ops
    - create table job_execution_observations
    - create view job_executions
schema_version:
  description: The code's ledger schema version.
  returned: always
  type: int
  sample: 1
diff:
  description: Before and after of the dataset, the table and the view (C(null) where one does not exist).
  returned: in diff mode, when something changes
  type: dict
"""
