#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_run_job
short_description: Create, update in place, or delete a Cloud Run job (Admin API v2)
description:
  - Converges one Cloud Run job to the given container spec. Reads the job, compares the
    fields this module owns (normalised, so server defaults do not count as changes), and
    acts only on a difference.
  - An existing job is updated in place with a PATCH (the job keeps its executions and
    their history); it is never deleted and recreated.
  - Waits for the long-running operation of a create, update or delete.
  - Supports check mode and diff mode (before/after of the owned fields).
  - With O(jobs), converges several jobs in one run (one session; one list call reads them
    all, so a no-change converge of N jobs costs one request instead of N, and one token).
version_added: 0.1.0
author: CloudAct platform team (!UNKNOWN)
options:
  state:
    description:
      - V(present) creates or updates the job; V(absent) deletes it (with its executions).
    type: str
    choices: [present, absent]
    default: present
  image:
    description: Container image. Required to create a job.
    type: str
  command:
    description: Container entrypoint, e.g. V([python, -m, jobs.daily.alerts_daily]). V([]) clears it.
    type: list
    elements: str
  args:
    description: Container arguments. V([]) clears them.
    type: list
    elements: str
  env:
    description:
      - "Plain environment variables, V(NAME: value). Owns every plain variable of the
        container when set (others are removed). Never put secrets here; use O(secret_env)."
    type: dict
  secret_env:
    description:
      - Environment variables read from Secret Manager at execution start, V(NAME) to a
        secret ID (or V(projects/P/secrets/S)) or to V({secret, version}). Only the
        reference is stored in the job, never the value. Owns every secret variable when set.
    type: dict
  cpu:
    description: CPU limit, e.g. V("1"), V("2"), V(1000m).
    type: str
  memory:
    description: Memory limit, e.g. V(512Mi), V(2Gi).
    type: str
  timeout:
    description: Task timeout as seconds or a duration (V(600s), V(15m), V(1h)).
    type: raw
  max_retries:
    description: Retries of a failed task before the execution fails.
    type: int
  task_count:
    description: Tasks per execution.
    type: int
  parallelism:
    description: Tasks run at once; V(0) means as many as possible.
    type: int
  service_account:
    description: Email of the service account the job runs as.
    type: str
  labels:
    description: Labels to set on the job. Other labels are kept unless O(purge_labels).
    type: dict
  purge_labels:
    description: Remove labels not listed in O(labels).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
extends_documentation_fragment:
  - cloudact.gcp.gcp.environment
  - ansible.builtin.action_common_attributes
  - cloudact.gcp.gcp.batch
seealso:
  - module: cloudact.gcp.cloud_run_job_info
  - module: cloudact.gcp.cloud_scheduler_job
"""

EXAMPLES = r"""
- name: Converge the alerts job
  cloudact.gcp.cloud_run_job:
    location: us-central1
    name: cloudact-daily-alerts
    image: us-central1-docker.pkg.dev/cloudact-testing-1/cloudact/cloudact-jobs-stage:latest
    command: [python, -m, jobs.daily.alerts_daily]
    env:
      GCP_PROJECT_ID: cloudact-testing-1
      ENVIRONMENT: staging
    secret_env:
      CA_ROOT_API_KEY: ca-root-api-key-test
    cpu: "1"
    memory: 2Gi
    timeout: 30m
    max_retries: 1
    service_account: cloudact-jobs@cloudact-testing-1.iam.gserviceaccount.com
    labels:
      managed-by: cloudact-toolkit

- name: Converge a catalog in one run, removing cloudact-* jobs it does not list
  cloudact.gcp.cloud_run_job:
    location: us-central1
    jobs:
      - name: cloudact-daily-alerts
        image: us-central1-docker.pkg.dev/cloudact-testing-1/cloudact/cloudact-jobs-stage:latest
        command: [python, -m, jobs.daily.alerts_daily]
        timeout: 30m
      - name: cloudact-bootstrap
        state: absent
    purge_prefix: cloudact-

- name: Remove a legacy job
  cloudact.gcp.cloud_run_job:
    location: us-central1
    name: cloudact-bootstrap
    state: absent
"""

RETURN = r"""
jobs:
  description: With O(jobs), one result per job (listed, then purged), each with the keys below and C(name).
  returned: with O(jobs)
  type: list
  elements: dict
operation:
  description: What was done (or would be, in check mode).
  returned: with O(name)
  type: str
  choices: [create, update, delete, none]
  sample: update
changed_fields:
  description: Owned fields that differ between the job and the requested spec.
  returned: with O(name)
  type: list
  elements: str
  sample: [timeout]
spec:
  description: The owned fields of the job after the run (in check mode, as they would be); V({}) when absent.
  returned: with O(name)
  type: dict
  sample: {image: "img:1", command: [python, -m, jobs.daily.alerts_daily], timeout: 1800s, max_retries: 1}
job:
  description: The job resource as the API returned it after the change (the read one when unchanged).
  returned: with O(name), when the job exists and not in check mode
  type: dict
diff:
  description: Before and after of the changed owned fields (with O(jobs), a list, one per changed job).
  returned: in diff mode
  type: raw
"""
