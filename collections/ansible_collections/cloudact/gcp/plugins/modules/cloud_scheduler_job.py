#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_scheduler_job
short_description: Create, update, pause, resume or delete a Cloud Scheduler HTTP job
description:
  - Converges one Cloud Scheduler (v1) job with an HTTP target. Reads the job, compares the
    fields this module owns (normalised with the defaults the API echoes back), and acts
    only on a difference; an update is a PATCH with an C(updateMask) of the changed fields.
  - Unlike C(google.cloud.gcp_cloudscheduler_job), it supports check mode (so a plan shows
    trigger changes), diff mode, and the pause state.
  - O(state=present) keeps the pause state an operator chose (a paused job stays paused);
    V(paused) and V(enabled) set it. With V(paused)/V(enabled) and no O(schedule), only the
    state of an existing job is changed.
  - With O(jobs), converges several triggers in one run (one session; one list call reads
    them all, so a no-change converge of N triggers costs one request instead of N, and one token).
version_added: 0.1.0
author: CloudAct platform team (!UNKNOWN)
options:
  state:
    description:
      - V(present) creates or updates the job and keeps its pause state (new jobs are enabled).
      - V(paused) / V(enabled) also pause or resume it. V(absent) deletes it.
    type: str
    choices: [present, absent, paused, enabled]
    default: present
  schedule:
    description: Unix-cron schedule. Required to create a job.
    type: str
  time_zone:
    description: IANA time zone of the schedule.
    type: str
  description:
    description: Free text shown in the console.
    type: str
  http_target:
    description: The HTTP request the job sends. Required to create a job.
    type: dict
    suboptions:
      uri:
        description: Full URL of the request.
        type: str
        required: true
      http_method:
        description: HTTP method.
        type: str
        choices: [POST, GET, HEAD, PUT, DELETE, PATCH, OPTIONS]
        default: POST
      headers:
        description: Request headers.
        type: dict
      body:
        description: Request body (text), for POST, PUT and PATCH.
        type: str
      oauth_token:
        description: Send an OAuth access token of this service account (Google APIs, e.g. Cloud Run C(:run)).
        type: dict
        suboptions:
          service_account_email:
            description: Service account whose token is sent.
            type: str
            required: true
          scope:
            description: OAuth scope of the token.
            type: str
            default: https://www.googleapis.com/auth/cloud-platform
      oidc_token:
        description: Send an OIDC ID token of this service account (other HTTPS endpoints).
        type: dict
        suboptions:
          service_account_email:
            description: Service account whose ID token is sent.
            type: str
            required: true
          audience:
            description: Audience of the token; the URI when unset.
            type: str
  retry_config:
    description: Retries of a failed attempt.
    type: dict
    suboptions:
      retry_count:
        description: Retries (0-5) within one scheduled run.
        type: int
      max_retry_duration:
        description: Time limit for retrying, as seconds or a duration; V(0s) means no limit.
        type: str
      min_backoff_duration:
        description: Minimum wait before a retry.
        type: str
      max_backoff_duration:
        description: Maximum wait before a retry.
        type: str
      max_doublings:
        description: Times the wait doubles before growing linearly.
        type: int
  attempt_deadline:
    description: Deadline of one attempt (V(15s) to V(1800s) for HTTP targets).
    type: str
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
  - module: cloudact.gcp.cloud_scheduler_job_info
  - module: cloudact.gcp.cloud_run_job
"""

EXAMPLES = r"""
- name: Fire the alerts job every day at 08:00 UTC
  cloudact.gcp.cloud_scheduler_job:
    location: us-central1
    name: cloudact-daily-alerts-trigger
    schedule: "0 8 * * *"
    time_zone: UTC
    http_target:
      uri: >-
        https://us-central1-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/cloudact-testing-1/jobs/cloudact-daily-alerts:run
      oauth_token:
        service_account_email: cloudact-jobs@cloudact-testing-1.iam.gserviceaccount.com
    retry_config:
      retry_count: 1
    attempt_deadline: 180s

- name: Pause it (a later converge with state=present keeps it paused)
  cloudact.gcp.cloud_scheduler_job:
    location: us-central1
    name: cloudact-daily-alerts-trigger
    state: paused
"""

RETURN = r"""
jobs:
  description: With O(jobs), one result per job (listed, then purged), each with the keys below and C(name).
  returned: with O(jobs)
  type: list
  elements: dict
operation:
  description: What was done to the configuration (or would be, in check mode).
  returned: with O(name)
  type: str
  choices: [create, update, delete, none]
  sample: update
state_change:
  description: V(pause) or V(resume) when the pause state was (or would be) changed, else V(none).
  returned: with O(name)
  type: str
  sample: none
changed_fields:
  description: Owned fields that differ between the job and the request.
  returned: with O(name)
  type: list
  elements: str
  sample: [schedule]
spec:
  description: The owned fields after the run (in check mode, as they would be); V({}) when absent.
  returned: with O(name)
  type: dict
paused:
  description: Whether the job is (or would be) paused after the run.
  returned: with O(name)
  type: bool
job:
  description: The job resource the API returned last.
  returned: with O(name), when the job exists and not in check mode
  type: dict
diff:
  description: Before and after of the changed owned fields and the pause state (with O(jobs), a list).
  returned: in diff mode
  type: raw
"""
