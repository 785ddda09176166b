#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: status
short_description: The catalog's jobs - a table, a count line, OVERDUE/FAILED/STUCK/MISSING flags
description:
  - Runs on the controller (an action plugin) after C(cloudact.gcp.preflight); changes nothing.
  - Three reads (the jobs with their latest executions, the triggers, one page of the newest
    executions of all jobs) and the rules of the collection's C(module_utils/status.py), the same
    code as C(make status) (C(toolkit/live_status.py)).
  - Prints the report (header, table, count line, one note per flag) under any stdout callback.
version_added: 0.2.0
author: CloudAct platform team (!UNKNOWN)
options:
  strict:
    description: Fail, naming each flag, when any job is flagged or a name is not in the catalog.
    type: bool
    default: false
  grace_minutes:
    description: Minutes past a due time (or a timeout) before a job is flagged.
    type: int
    default: 10
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
- name: Show the status of the catalog's jobs
  cloudact.gcp.status:
    strict: "{{ cloudact_status_strict }}"
"""

RETURN = r"""
report:
  description: "{lines, notes, flagged, flags, problem, now, strict_message} from module_utils/status.py."
  returned: always
  type: dict
"""
