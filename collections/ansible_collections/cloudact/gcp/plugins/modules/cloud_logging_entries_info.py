#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the log entries of a Cloud Run job (or one execution) from Cloud Logging."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cloud_logging_entries_info
short_description: Read Cloud Run job log entries from Cloud Logging
description:
  - Lists log entries (C(entries:list)) of a Cloud Run job, optionally of one execution, since a
    time, at or above a severity, oldest first, and returns them as plain lines.
version_added: 0.1.0
author: CloudAct platform team (!UNKNOWN)
options:
  job:
    description: The Cloud Run job ID.
    type: str
    required: true
  execution:
    description: Only this execution's entries (its ID, C(<job>-xxxxx)).
    type: str
  since:
    description:
      - Only entries at or after this time, an RFC 3339 time or a duration back from now
        (C(90s), C(30m), C(1h), C(2d)).
    type: str
  min_severity:
    description: Only entries at or above this severity.
    type: str
    choices: [DEFAULT, DEBUG, INFO, NOTICE, WARNING, ERROR, CRITICAL, ALERT, EMERGENCY]
  limit:
    description: At most this many entries (the newest when O(newest_first), else the oldest).
    type: int
    default: 1000
  newest_first:
    description: Order newest first (the limit then keeps the newest); the result is still oldest first.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
extends_documentation_fragment:
  - google.cloud.gcp
  - cloudact.gcp.gcp
  - cloudact.gcp.gcp.module
  - ansible.builtin.action_common_attributes
notes:
  - Authentication options are those of google.cloud's modules.
  - Read-only; supports check mode.
"""

EXAMPLES = r"""
- name: The log lines of one execution
  cloudact.gcp.cloud_logging_entries_info:
    job: cloudact-manual-bootstrap
    execution: cloudact-manual-bootstrap-x7k2p
  register: logs
"""

RETURN = r"""
entries:
  description: Entries, oldest first.
  returned: always
  type: list
  elements: dict
  contains:
    timestamp: {description: RFC 3339 time., type: str, returned: always}
    severity: {description: Severity name (DEFAULT when unset)., type: str, returned: always}
    message:
      description: The text, or jsonPayload.message, or the JSON payload.
      type: str
      returned: always
    execution: {description: Execution ID., type: str, returned: always}
    task_index: {description: Task index., type: str, returned: always}
    attempt: {description: Task attempt., type: str, returned: always}
lines:
  description:
    - One "time severity message" line per entry, oldest first.
    - Without O(execution) the message is preceded by the execution's suffix in brackets.
  returned: always
  type: list
  elements: str
filter:
  description: The Logging filter used.
  returned: always
  type: str
"""

from ansible_collections.cloudact.gcp.plugins.module_utils import run_execution as rx
from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import ApiError, GcpApi
from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import gcp_module as module
from ansible_collections.cloudact.gcp.plugins.module_utils.timefmt import since_time


def main():
    mod = module(
        argument_spec=dict(
            job=dict(type="str", required=True),
            execution=dict(type="str"),
            since=dict(type="str"),
            min_severity=dict(
                type="str",
                choices=[
                    "DEFAULT",
                    "DEBUG",
                    "INFO",
                    "NOTICE",
                    "WARNING",
                    "ERROR",
                    "CRITICAL",
                    "ALERT",
                    "EMERGENCY",
                ],
            ),
            limit=dict(type="int", default=1000),
            newest_first=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = mod.params
    if p["limit"] < 1:
        mod.fail_json(msg="limit %r: expected a positive number" % p["limit"])
    for key in ("job", "execution"):
        if p[key] and '"' in p[key]:
            mod.fail_json(msg="%s %r: a name cannot contain a double quote" % (key, p[key]))
    if p["since"]:
        try:
            p["since"] = since_time(p["since"])
        except ValueError as exc:
            mod.fail_json(msg=str(exc))
    log_filter = rx.log_filter(p["job"], p["execution"], p["since"], p["min_severity"])
    api = GcpApi(mod, "cloudact-logging")
    try:
        entries = rx.list_log_entries(api, p["project"], p["job"], log_filter, p["limit"], p["newest_first"])
    except ApiError as exc:
        mod.fail_json(msg=str(exc), status=exc.status)
    # Without an execution filter, each line names its execution (the part after the job's name).
    lines = rx.log_lines(entries, p["job"], p["execution"])
    mod.exit_json(changed=False, entries=entries, lines=lines, filter=log_filter)


if __name__ == "__main__":
    main()
