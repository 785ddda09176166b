#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: calendar
short_description: Each trigger's next fire times in UTC and in its time zone, with DST notes
description:
  - Runs on the controller (an action plugin) after C(cloudact.gcp.preflight); changes nothing.
  - The fire times come from the catalog's schedule and time zone as the inventory converges them
    (C(cloudact_catalog)), evaluated with cronsim (C(module_utils/calendar.py)), the library that
    C(make status)'s OVERDUE check and localcloud's Cloud Scheduler use.
  - One list call to Cloud Scheduler tells a trigger that is not deployed, paused, or deployed with
    another schedule or time zone, and, from the cloud's clock, Cloud Scheduler's own next time
    (C(scheduleTime)) when it differs.
  - "DST: Cloud Scheduler runs on wall-clock time; Google documents only that a time which occurs
    twice (clocks go back) may see execution anomalies, and recommends UTC. The times follow
    cron(8) as cronsim does: a job at a specific time whose wall time is skipped (clocks go forward)
    runs right after the jump, a repeated one runs once, at its first occurrence; a job with a
    C(*) hour runs on elapsed time. Each fire time a DST change touches carries a note."
version_added: 0.2.0
author: CloudAct platform team (!UNKNOWN)
options:
  count:
    description: How many fire times per trigger (1 to 100).
    type: str
    default: "5"
  at:
    description: Start from this RFC 3339 time instead of the cloud's clock.
    type: str
    default: ""
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
- name: Show the next fire times of the triggers
  cloudact.gcp.calendar:
    count: 5
"""

RETURN = r"""
calendar:
  description: "Per trigger: {trigger, shortcut, schedule, time_zone, fires: [{utc, local, note}]}."
  returned: always
  type: list
  elements: dict
"""
