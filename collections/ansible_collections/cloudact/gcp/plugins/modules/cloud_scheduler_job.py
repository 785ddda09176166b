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
  - Authenticates like google.cloud's modules (same options and C(GCP_*) environment
    fallbacks), with one authorised session per run and retries of 429, 5xx and connection errors.
  - With O(jobs), converges several triggers in one run (one session; one list call reads
    them all, so a no-change converge of N triggers costs one request instead of N, and one token).
version_added: 0.1.0
author: CloudAct platform team
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
extends_documentation_fragment:
  - google.cloud.gcp
  - cloudact.gcp.gcp
  - cloudact.gcp.gcp.batch
seealso:
  - module: cloudact.gcp.cloud_scheduler_job_info
  - module: cloudact.gcp.cloud_run_job
"""

EXAMPLES = r"""
- name: Fire the alerts job every day at 08:00 UTC
  cloudact.gcp.cloud_scheduler_job:
    project: cloudact-testing-1
    location: us-central1
    auth_kind: application
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
    project: cloudact-testing-1
    location: us-central1
    auth_kind: application
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

from ansible_collections.cloudact.gcp.plugins.module_utils import cloud_run
from ansible_collections.cloudact.gcp.plugins.module_utils import cloud_scheduler as sched
from ansible_collections.cloudact.gcp.plugins.module_utils.batch import (
    batch_module,
    converge_all,
    field_diff,
    met_on_create,
    plan,
)
from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import ApiError, duration


def get_job(api, project, location, name):
    return api.request(
        "GET", sched.job_url(project, location, name), "Cloud Scheduler job %s" % name, allow_missing=True
    )


def create_job(api, project, location, name, spec, env=None):
    """jobs.create, never sent twice blindly: after a lost answer (or a 409) the trigger of that name
    is adopted only when it is this environment's and has `spec`; anything else is refused."""
    full = "%s/jobs/%s" % (sched.parent(project, location), name)

    def met(_lost=None):
        found = get_job(api, project, location, name)
        return None if found is None else met_on_create(sched, name, found, env, spec, sched.view)

    try:
        return api.request(
            "POST",
            sched.jobs_url(project, location),
            "Cloud Scheduler job %s (create)" % name,
            json=sched.body(full, spec),
            look=met,
        )
    except ApiError as exc:
        found = met() if exc.status == 409 else None  # made meanwhile (by us, or another converge)
        if not found:
            raise
        return found


def update_job(api, project, location, name, spec, fields):
    """A PATCH of the changed fields. Scheduler jobs have no etag: after a lost answer the trigger is
    read, and when it already shows `spec` in those fields the PATCH is not sent again."""
    full = "%s/jobs/%s" % (sched.parent(project, location), name)

    def applied(_lost):
        found = get_job(api, project, location, name)
        if found is None:
            return None
        have = sched.view(found)
        return found if not [k for k in fields if have.get(k) != spec.get(k)] else None

    return api.request(
        "PATCH",
        sched.job_url(project, location, name),
        "Cloud Scheduler job %s (update)" % name,
        json=sched.body(full, spec),
        params={"updateMask": sched.update_mask(fields)},
        look=applied,
    )


def set_paused(api, project, location, name, paused):
    """:pause or :resume. Resent after a lost answer it may find the state already set (a 400
    FAILED_PRECONDITION): the trigger is read, and it is the answer when it is in that state."""
    verb = "pause" if paused else "resume"
    url = "%s:%s" % (sched.job_url(project, location, name), verb)
    try:
        return api.request("POST", url, "Cloud Scheduler job %s (%s)" % (name, verb), json={})
    except ApiError as exc:
        if exc.status != 400:
            raise
        found = get_job(api, project, location, name)
        if found is None or (sched.state(found.get("state")) == "PAUSED") != paused:
            raise
        return found


def delete_job(api, project, location, name):
    api.request(
        "DELETE",
        sched.job_url(project, location, name),
        "Cloud Scheduler job %s (delete)" % name,
        allow_missing=True,
    )


def requested(params):
    """The flat fields the options set (only those given), normalised like the view."""
    want = {}
    if params["schedule"] is not None:
        want["schedule"] = " ".join(params["schedule"].split())
    if params["time_zone"] is not None:
        want["time_zone"] = sched.time_zone(params["time_zone"])
    if params["description"] is not None:
        want["description"] = params["description"]
    target = params["http_target"]
    if target is not None:
        want["uri"] = target["uri"]
        want["http_method"] = sched.method(target["http_method"])
        want["headers"] = {str(k): str(v) for k, v in (target.get("headers") or {}).items()}
        want["body"] = target.get("body") or ""
        oauth = target.get("oauth_token") or {}
        oidc = target.get("oidc_token") or {}
        if oauth and oidc:
            raise ValueError("job %s: http_target takes oauth_token or oidc_token, not both" % params["name"])
        want["oauth_service_account_email"] = oauth.get("service_account_email") or ""
        want["oauth_scope"] = oauth.get("scope") or sched.CLOUD_PLATFORM
        want["oidc_service_account_email"] = oidc.get("service_account_email") or ""
        want["oidc_audience"] = (oidc.get("audience") or target["uri"]) if oidc else ""
    retry = params["retry_config"] or {}
    for key in ("retry_count", "max_doublings"):
        if retry.get(key) is not None:
            want[key] = retry[key]
    if retry.get("retry_count") is not None and not 0 <= retry["retry_count"] <= 5:
        raise ValueError(
            "job %s: retry_config.retry_count %d must be 0 to 5" % (params["name"], retry["retry_count"])
        )
    for key in sched.DURATIONS:
        value = params["attempt_deadline"] if key == "attempt_deadline" else retry.get(key)
        if value is not None:
            want[key] = duration(value, key)
    return want


# Options of one trigger; also the schema of each entry of `jobs`.
JOB_OPTIONS = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent", "paused", "enabled"]),
    schedule=dict(type="str"),
    time_zone=dict(type="str"),
    description=dict(type="str"),
    http_target=dict(
        type="dict",
        options=dict(
            uri=dict(type="str", required=True),
            http_method=dict(type="str", default="POST", choices=list(sched.METHODS)),
            headers=dict(type="dict"),
            body=dict(type="str"),
            oauth_token=dict(
                type="dict",
                options=dict(
                    service_account_email=dict(type="str", required=True),
                    scope=dict(type="str", default=sched.CLOUD_PLATFORM),
                ),
            ),
            oidc_token=dict(
                type="dict",
                options=dict(
                    service_account_email=dict(type="str", required=True),
                    audience=dict(type="str"),
                ),
            ),
        ),
    ),
    retry_config=dict(
        type="dict",
        options=dict(
            retry_count=dict(type="int"),
            max_retry_duration=dict(type="str"),
            min_backoff_duration=dict(type="str"),
            max_backoff_duration=dict(type="str"),
            max_doublings=dict(type="int"),
        ),
    ),
    attempt_deadline=dict(type="str"),
)


def converge(api, p, current, project, location, check, env=None):
    """Bring one trigger to the options `p`; (result, diff)."""
    name = p["name"]
    before = sched.view(current) if current else {}
    was_paused = bool(current) and sched.state(current.get("state")) == "PAUSED"
    after = None
    if p["state"] != "absent":
        want = requested(p)
        if not current:
            missing = [k for k in ("schedule", "uri") if k not in want]
            if missing:
                raise ValueError(
                    "Cloud Scheduler job %s does not exist: %s required to create it"
                    % (name, " and ".join("http_target" if k == "uri" else k for k in missing))
                )
        after = dict(before or sched.DEFAULTS)
        after.update(want)
    result = plan(name, current, before, after, state_change="none")
    operation = result["operation"]
    job = current
    if not check and operation == "delete":
        delete_job(api, project, location, name)
    elif not check and operation == "create":
        job = create_job(api, project, location, name, after, env)
    elif not check and operation == "update":
        job = update_job(api, project, location, name, after, result["changed_fields"])
    if after is None:
        paused = False
        job = None
    else:
        # present keeps an operator's pause; paused/enabled set it.
        paused = was_paused if p["state"] == "present" else p["state"] == "paused"
        if paused != was_paused:
            result.update(changed=True, state_change="pause" if paused else "resume")
            if not check:
                job = set_paused(api, project, location, name, paused)
    result["paused"] = paused
    if job is not None and not check:
        result["job"] = job
    diff = field_diff("cloud_scheduler_job %s" % name, result, current, before, after)
    if paused != was_paused:
        diff["before"]["paused"] = was_paused
        diff["after"]["paused"] = paused
    return result, diff


def targets_owned(api, entries, project, location, env):
    """With an owner: refuse a trigger whose :run URI names a Cloud Run job another environment owns
    (a trigger and the job it runs have one owner). One list of the region's Cloud Run jobs."""
    if not env:
        return
    wanted = {}
    for entry in entries:
        target = sched.run_target((entry.get("http_target") or {}).get("uri"))
        if target and entry.get("state") != "absent":
            wanted[target] = entry["name"]
    if not wanted:
        return
    jobs = api.list_all(cloud_run.jobs_url(project, location), "jobs", "Cloud Run jobs of %s" % location)
    for job in jobs:
        name = job.get("name", "").rsplit("/", 1)[-1]
        found = cloud_run.owner_of(job)
        if name in wanted and found not in (None, env):
            raise ValueError(
                "refused: trigger %s runs Cloud Run job %s, which belongs to environment %s, not %s: a "
                "trigger and the job it runs have one owner; nothing was changed"
                % (wanted[name], name, found, env)
            )


def main():
    converge_all(
        batch_module(JOB_OPTIONS), JOB_OPTIONS, sched, converge, check=requested, before=targets_owned
    )


if __name__ == "__main__":
    main()
