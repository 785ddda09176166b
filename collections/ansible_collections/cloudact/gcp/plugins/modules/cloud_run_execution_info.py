#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read Cloud Run job executions: one by name, or the newest of jobs (the action plugin of the same name)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cloud_run_execution_info
short_description: Read Cloud Run job executions
description:
  - Returns one execution by O(name), or the newest O(limit) executions of each job in O(jobs),
    newest first, as flat summaries (state word, task counts, times, elapsed seconds).
  - A job that does not exist is reported in RV(missing_jobs), not as a failure.
  - Changes nothing.
version_added: 0.1.0
author: CloudAct platform team (!UNKNOWN)
options:
  jobs:
    description: Job IDs whose executions to list.
    type: list
    elements: str
    required: true
  name:
    description: One execution ID to read (then O(jobs) must hold exactly its job).
    type: str
  limit:
    description: At most this many executions per job (0 means all).
    type: int
    default: 10
  location:
    description: The region of the jobs; by default the environment's (C(cloudact_gcp_region)).
    type: str
    aliases: [region]
attributes:
  check_mode:
    support: full
    details: Reads only; the same in check mode.
  diff_mode:
    support: none
extends_documentation_fragment:
  - cloudact.gcp.gcp.environment
  - ansible.builtin.action_common_attributes
seealso:
  - module: cloudact.gcp.cloud_run_execution
"""

EXAMPLES = r"""
- name: The last 10 executions of alerts
  cloudact.gcp.cloud_run_execution_info:
    jobs: [cloudact-daily-alerts]
    limit: 10
  register: history
"""

RETURN = r"""
executions:
  description: Execution summaries, grouped by job in O(jobs) order, newest first within a job.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: The execution ID., type: str, returned: always}
    job: {description: The job ID., type: str, returned: always}
    state:
      description: PENDING, RUNNING, CANCELLING, SUCCEEDED, FAILED or CANCELLED.
      type: str
      returned: always
    create_time: {description: RFC 3339 creation time., type: str, returned: always}
    elapsed_seconds: {description: Seconds from start to completion (or now)., type: float, returned: always}
    trigger: {description: "C(manual) when the toolkit started it, else empty.", type: str, returned: always}
missing_jobs:
  description: Jobs of O(jobs) that do not exist.
  returned: always
  type: list
  elements: str
server_time:
  description: The API's clock (its Date header) at the last reply, RFC 3339.
  returned: always
  type: str
"""
