#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_run_job_info
short_description: List Cloud Run jobs with their latest execution (Admin API v2)
description:
  - Reads one Cloud Run job, or every job of a region, and returns for each its owned fields
    (the same normalised view C(cloudact.gcp.cloud_run_job) compares), its latest execution
    and, on request, its recent executions.
  - Changes nothing; runs in check mode too.
version_added: 0.1.0
author: CloudAct platform team (!UNKNOWN)
options:
  name:
    description: One job ID; every job of the region when unset.
    type: str
  location:
    description: Region of the jobs.
    type: str
    required: true
    aliases: [region]
  name_prefix:
    description: Only jobs whose ID starts with this prefix.
    type: str
  executions:
    description: Also list each job's executions, newest first (one extra request per job).
    type: bool
    default: false
  executions_limit:
    description: At most this many executions per job.
    type: int
    default: 10
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
"""

EXAMPLES = r"""
- name: Read every CloudAct job with its recent executions
  cloudact.gcp.cloud_run_job_info:
    project: cloudact-testing-1
    location: us-central1
    auth_kind: application
    name_prefix: cloudact-
    executions: true
  register: cloudact_jobs
"""

RETURN = r"""
jobs:
  description: The jobs found (none when O(name) does not exist), sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Job ID.
      type: str
      returned: always
    resource_name:
      description: Full resource name.
      type: str
      returned: always
    spec:
      description: Owned fields, normalised (image, command, env, secret_env, cpu, memory, timeout, ...).
      type: dict
      returned: always
    execution_count:
      description: Executions created so far.
      type: int
      returned: always
    latest_execution:
      description: Name, create/completion time and completion status of the latest execution, or null.
      type: dict
      returned: always
    executions:
      description:
        - Recent executions, newest first, each with name, create_time, completion_time,
          succeeded_count, failed_count and cancelled_count.
      type: list
      elements: dict
      returned: when O(executions)
    resource:
      description: The Job resource as the API returned it.
      type: dict
      returned: always
"""

from ansible_collections.cloudact.gcp.plugins.module_utils import cloud_run
from ansible_collections.cloudact.gcp.plugins.module_utils.batch import read_jobs
from ansible_collections.cloudact.gcp.plugins.module_utils.fields import short_name
from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import ApiError, GcpApi, gcp_module


def list_executions(api, project, location, name, limit):
    page = api.request(
        "GET",
        "%s/executions" % cloud_run.job_url(project, location, name),
        "executions of Cloud Run job %s" % name,
        params={"pageSize": limit},
    )
    return [
        {
            "name": short_name(e.get("name")),
            "create_time": e.get("createTime"),
            "completion_time": e.get("completionTime"),
            "succeeded_count": int(e.get("succeededCount") or 0),
            "failed_count": int(e.get("failedCount") or 0),
            "cancelled_count": int(e.get("cancelledCount") or 0),
        }
        for e in (page or {}).get("executions", [])[:limit]
    ]


def main():
    argument_spec = dict(
        name=dict(type="str"),
        location=dict(type="str", required=True, aliases=["region"]),
        name_prefix=dict(type="str"),
        executions=dict(type="bool", default=False),
        executions_limit=dict(type="int", default=10),
    )
    module = gcp_module(argument_spec, supports_check_mode=True)
    p = module.params
    project, location = p["project"], p["location"]
    try:
        api = GcpApi(module, "cloudact-cloud-run")
        found = read_jobs(api, cloud_run, project, location, p["name"])
        jobs = [cloud_run.summary(j, project) for j in found]
        if p["name_prefix"]:
            jobs = [j for j in jobs if j["name"].startswith(p["name_prefix"])]
        jobs.sort(key=lambda j: j["name"])
        if p["executions"]:
            for job in jobs:
                job["executions"] = list_executions(
                    api, project, location, job["name"], p["executions_limit"]
                )
    except ApiError as exc:
        module.fail_json(msg=str(exc), status=exc.status, reason=exc.reason)
    module.exit_json(changed=False, jobs=jobs)


if __name__ == "__main__":
    main()
