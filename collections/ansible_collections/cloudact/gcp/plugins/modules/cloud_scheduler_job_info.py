#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_scheduler_job_info
short_description: List Cloud Scheduler jobs with their state and last attempt
description:
  - Reads one Cloud Scheduler job, or every job of a region, and returns for each its owned
    fields (the normalised view C(cloudact.gcp.cloud_scheduler_job) compares), its state
    (ENABLED, PAUSED, ...), next and last attempt.
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
- name: Read the CloudAct triggers
  cloudact.gcp.cloud_scheduler_job_info:
    project: cloudact-testing-1
    location: us-central1
    auth_kind: application
    name_prefix: cloudact-
  register: cloudact_triggers
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
    state:
      description: ENABLED, PAUSED, DISABLED or UPDATE_FAILED.
      type: str
      returned: always
    paused:
      description: Whether the job is paused.
      type: bool
      returned: always
    spec:
      description: Owned fields, normalised (schedule, time_zone, uri, http_method, retry settings, ...).
      type: dict
      returned: always
    schedule_time:
      description: Next scheduled run.
      type: str
      returned: always
    last_attempt_time:
      description: Time of the last attempt, or null.
      type: str
      returned: always
    last_attempt_status:
      description: google.rpc code and message of the last attempt (code 0 is success).
      type: dict
      returned: always
    resource:
      description: The Job resource as the API returned it.
      type: dict
      returned: always
"""

from ansible_collections.cloudact.gcp.plugins.module_utils import cloud_scheduler as sched
from ansible_collections.cloudact.gcp.plugins.module_utils.batch import read_jobs
from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import ApiError, GcpApi, gcp_module


def main():
    argument_spec = dict(
        name=dict(type="str"),
        location=dict(type="str", required=True, aliases=["region"]),
        name_prefix=dict(type="str"),
    )
    module = gcp_module(argument_spec, supports_check_mode=True)
    p = module.params
    project, location = p["project"], p["location"]
    try:
        api = GcpApi(module, "cloudact-cloud-scheduler")
        found = read_jobs(api, sched, project, location, p["name"])
        jobs = sorted((sched.summary(j) for j in found), key=lambda j: j["name"])
        if p["name_prefix"]:
            jobs = [j for j in jobs if j["name"].startswith(p["name_prefix"])]
    except ApiError as exc:
        module.fail_json(msg=str(exc), status=exc.status, reason=exc.reason)
    module.exit_json(changed=False, jobs=jobs)


if __name__ == "__main__":
    main()
