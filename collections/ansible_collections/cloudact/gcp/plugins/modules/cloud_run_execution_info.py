#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read Cloud Run job executions: one by name, or the newest of one or more jobs."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cloud_run_execution_info
short_description: Read Cloud Run job executions
description:
  - Returns one execution by O(name), or the newest O(limit) executions of each job in O(jobs),
    newest first, as flat summaries (state word, task counts, times, elapsed seconds).
  - A job that does not exist is reported in RV(missing_jobs), not as a failure.
version_added: 0.1.0
author: CloudAct platform team
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
    description: The region of the jobs.
    type: str
    default: us-central1
extends_documentation_fragment:
  - google.cloud.gcp
  - cloudact.gcp.gcp
notes:
  - Authentication options are those of google.cloud's modules.
  - Read-only; supports check mode.
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
    trigger: {description: C(manual) when the toolkit started it, else empty., type: str, returned: always}
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

from ansible_collections.cloudact.gcp.plugins.module_utils import run_execution as rx
from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import ApiError, GcpApi
from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import gcp_module as module


def list_executions(api, p, job):
    """Newest first (the API's order); None when the job does not exist."""
    url = rx.executions_url(p["project"], p["location"], job)
    items = []
    params = {"pageSize": p["limit"]} if p["limit"] else {}
    while True:
        page = api.request(
            "GET", url, "executions of Cloud Run job %s" % job, params=params, allow_missing=True
        )
        if page is None:
            return None
        items.extend(page.get("executions") or [])
        token = page.get("nextPageToken")
        if not token or (p["limit"] and len(items) >= p["limit"]):
            break
        params["pageToken"] = token
    items.sort(key=lambda e: e.get("createTime") or "", reverse=True)
    return items[: p["limit"]] if p["limit"] else items


def main():
    mod = module(
        argument_spec=dict(
            jobs=dict(type="list", elements="str", required=True),
            name=dict(type="str"),
            limit=dict(type="int", default=10),
            location=dict(type="str", default="us-central1"),
        ),
        supports_check_mode=True,
    )
    p = mod.params
    if p["limit"] < 0:
        mod.fail_json(msg="limit %r: expected 0 (all) or a positive number" % p["limit"])
    if p["name"] and len(p["jobs"]) != 1:
        mod.fail_json(msg="name %r: give exactly its job in jobs, got %d" % (p["name"], len(p["jobs"])))
    api = GcpApi(mod, rx.PRODUCT)
    executions, missing = [], []
    try:
        if p["name"]:
            job = p["jobs"][0]
            found = api.request(
                "GET",
                rx.execution_url(p["project"], p["location"], job, p["name"]),
                "Cloud Run execution %s" % p["name"],
                allow_missing=True,
            )
            if found is None:
                mod.fail_json(msg="execution %s of job %s does not exist" % (p["name"], job))
            executions = [found]
        else:
            for job in p["jobs"]:
                items = list_executions(api, p, job)
                if items is None:
                    missing.append(job)
                else:
                    executions.extend(items)
    except ApiError as exc:
        mod.fail_json(msg=str(exc), status=exc.status)
    now = rx.server_now(api)
    mod.exit_json(
        changed=False,
        executions=[rx.summary(e, now) for e in executions],
        missing_jobs=missing,
        server_time=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


if __name__ == "__main__":
    main()
