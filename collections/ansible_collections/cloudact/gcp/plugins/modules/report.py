#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: report
short_description: One self-contained HTML page of the catalog's jobs over the last DAYS days
description:
  - Runs on the controller (an action plugin) after C(cloudact.gcp.preflight); changes nothing in
    the cloud and writes one file.
  - Rows from the execution ledger (C(module_utils/ledger.py) C(read_rows)); flags from the status
    model (C(module_utils/status.py)); next fire times from C(module_utils/calendar.py).
  - The page (C(module_utils/report_html.py), C(report_svg.py)) has inline CSS and inline SVG, no
    JavaScript, no web font and no network resource. Per job a timeline (a mark per execution,
    coloured by result, shaped by trigger, each with C(data-job), C(data-result), C(data-trigger)
    and its hover text in an SVG C(<title>)), durations with p50, p95 and the task timeout, the
    success rate, the last failure and its logs command, the flags of C(make status)
    (OVERDUE, FAILED, STUCK, STALE, ...), the image digest and the next 5 fire times; a header with
    the release history.
  - >-
    Reads only: Cloud Run's executions the ledger lacks are merged into the page in memory, never
    appended (C(make ledger-sync) appends them); a note counts them.
version_added: 0.2.0
author: CloudAct platform team (!UNKNOWN)
options:
  days:
    description: How many days back (1 to 400).
    type: str
    default: "30"
  out:
    description: The file to write; empty means C(reports/report-<env>.html) in the checkout.
    type: str
    default: ""
  grace_minutes:
    description: Minutes past a due time (or a timeout) before a job is flagged, as in C(make status).
    type: int
    default: 10
  dataset:
    description:
      - The ledger's dataset. Where it does not exist yet, the page shows Cloud Run's own executions
        (kept only while among a job's newest 1,000 or younger than 7 days) and says so.
    type: str
    default: cloudact_ops
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
- name: Write the status page
  cloudact.gcp.report:
    days: 30
    out: /tmp/report.html
"""

RETURN = r"""
path:
  description: The file written.
  returned: always
  type: str
rows:
  description: How many executions the page shows.
  returned: always
  type: int
source:
  description: Where the rows came from (the ledger, or live Cloud Run executions).
  returned: always
  type: str
"""
