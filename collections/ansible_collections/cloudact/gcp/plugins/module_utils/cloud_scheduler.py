# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cloud Scheduler v1 jobs: URLs, the owned-fields view, and the body/updateMask of a change.

The view is flat and normalised with the defaults the API echoes back (time zone UTC,
method POST, cloud-platform scope, retry config 0/0s/5s/3600s/5, attempt deadline 180s),
so a trigger created from the catalog reads back equal and a second converge is a no-op.

`converge` brings one trigger to its options (JOB_OPTIONS) with the verbs below, each safe to meet
a lost answer (module_utils/verbs.py). The cloud_scheduler_job action runs it over a batch
(module_utils/batch.py); the doctor plans with it in check mode.
"""

from __future__ import annotations

import base64

from ansible_collections.cloudact.gcp.plugins.module_utils import cloud_run
from ansible_collections.cloudact.gcp.plugins.module_utils import owner as owners
from ansible_collections.cloudact.gcp.plugins.module_utils.batch import field_diff, met_on_create, plan
from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError
from ansible_collections.cloudact.gcp.plugins.module_utils.fields import duration, short_name

BASE = "https://cloudscheduler.googleapis.com/v1"
KIND = "Cloud Scheduler job"  # names one in messages
LIST_PARAMS = {"pageSize": 500}
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
METHODS = ("POST", "GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS")
_METHOD_NUMBERS = {i + 1: m for i, m in enumerate(METHODS)}
_STATES = {0: "STATE_UNSPECIFIED", 1: "ENABLED", 2: "PAUSED", 3: "DISABLED", 4: "UPDATE_FAILED"}

DEFAULTS = {
    "time_zone": "UTC",
    "description": "",
    "http_method": "POST",
    "headers": {},
    "body": "",
    "oauth_service_account_email": "",
    "oauth_scope": CLOUD_PLATFORM,
    "oidc_service_account_email": "",
    "oidc_audience": "",
    "retry_count": 0,
    "max_retry_duration": "0s",
    "min_backoff_duration": "5s",
    "max_backoff_duration": "3600s",
    "max_doublings": 5,
    "attempt_deadline": "180s",
}

# Flat view key -> the updateMask path that carries it.
MASK = {
    "schedule": "schedule",
    "time_zone": "timeZone",
    "description": "description",
    "uri": "httpTarget",
    "http_method": "httpTarget",
    "headers": "httpTarget",
    "body": "httpTarget",
    "oauth_service_account_email": "httpTarget",
    "oauth_scope": "httpTarget",
    "oidc_service_account_email": "httpTarget",
    "oidc_audience": "httpTarget",
    "retry_count": "retryConfig",
    "max_retry_duration": "retryConfig",
    "min_backoff_duration": "retryConfig",
    "max_backoff_duration": "retryConfig",
    "max_doublings": "retryConfig",
    "attempt_deadline": "attemptDeadline",
}
# Headers the API adds to every stored target; not the user's, so not compared.
SERVER_HEADERS = {"User-Agent": "Google-Cloud-Scheduler", "Content-Type": "application/octet-stream"}
DURATIONS = ("max_retry_duration", "min_backoff_duration", "max_backoff_duration", "attempt_deadline")


def parent(project, location):
    return "projects/%s/locations/%s" % (project, location)


def jobs_url(project, location):
    return "%s/%s/jobs" % (BASE, parent(project, location))


def job_url(project, location, name):
    return "%s/%s" % (jobs_url(project, location), name)


def time_zone(value):
    return "UTC" if value in (None, "", "Etc/UTC") else value


def method(value):
    if isinstance(value, int):
        return _METHOD_NUMBERS.get(value, "POST")
    return "POST" if value in (None, "", "HTTP_METHOD_UNSPECIFIED") else str(value).upper()


def owner_of(job):
    """The environment the end of the trigger's description names (Scheduler jobs have no labels)."""
    return owners.of_description(job.get("description"))


def own(entry, env):
    """A trigger entry whose description ends with `[cloudact-env=<env>]` (when it sets a description)."""
    if entry.get("description") is None:
        return entry
    return dict(entry, description=owners.described(entry["description"], env))


def run_target(uri):
    """The Cloud Run job a trigger's `:run` URI names, else ''."""
    tail = (uri or "").rsplit("/", 1)[-1]
    return tail[: -len(":run")] if tail.endswith(":run") else ""


def state(value):
    if isinstance(value, int):
        return _STATES.get(value, "STATE_UNSPECIFIED")
    return value or "STATE_UNSPECIFIED"


def view(job):
    """The owned fields of a Scheduler Job resource, normalised (state is reported, not compared here)."""
    target = job.get("httpTarget") or {}
    oauth = target.get("oauthToken") or {}
    oidc = target.get("oidcToken") or {}
    retry = job.get("retryConfig") or {}
    body = target.get("body") or ""
    if body:
        body = base64.b64decode(body).decode("utf-8", "replace")
    return {
        "schedule": job.get("schedule", ""),
        "time_zone": time_zone(job.get("timeZone")),
        "description": job.get("description", ""),
        "uri": target.get("uri", ""),
        "http_method": method(target.get("httpMethod")),
        "headers": {k: v for k, v in (target.get("headers") or {}).items() if SERVER_HEADERS.get(k) != v},
        "body": body,
        "oauth_service_account_email": oauth.get("serviceAccountEmail", ""),
        "oauth_scope": (oauth.get("scope") or CLOUD_PLATFORM) if oauth else DEFAULTS["oauth_scope"],
        "oidc_service_account_email": oidc.get("serviceAccountEmail", ""),
        "oidc_audience": (oidc.get("audience") or target.get("uri", "")) if oidc else "",
        "retry_count": int(retry.get("retryCount") or 0),
        "max_retry_duration": duration(retry.get("maxRetryDuration") or DEFAULTS["max_retry_duration"]),
        "min_backoff_duration": duration(retry.get("minBackoffDuration") or DEFAULTS["min_backoff_duration"]),
        "max_backoff_duration": duration(retry.get("maxBackoffDuration") or DEFAULTS["max_backoff_duration"]),
        "max_doublings": int(retry.get("maxDoublings", DEFAULTS["max_doublings"])),
        "attempt_deadline": duration(job.get("attemptDeadline") or DEFAULTS["attempt_deadline"]),
    }


def summary(job):
    """What the info module returns per trigger."""
    status = job.get("status") or {}
    return {
        "name": short_name(job.get("name")),
        "resource_name": job.get("name"),
        "state": state(job.get("state")),
        "paused": state(job.get("state")) == "PAUSED",
        "spec": view(job),
        "schedule_time": job.get("scheduleTime"),
        "last_attempt_time": job.get("lastAttemptTime"),
        "last_attempt_status": {"code": int(status.get("code") or 0), "message": status.get("message", "")},
        "resource": job,
    }


def body(full_name, spec):
    """A Job resource for create/PATCH from a complete flat spec."""
    target = {"uri": spec["uri"], "httpMethod": spec["http_method"]}
    if spec["headers"]:
        target["headers"] = dict(spec["headers"])
    if spec["body"]:
        target["body"] = base64.b64encode(spec["body"].encode()).decode()
    if spec["oauth_service_account_email"]:
        target["oauthToken"] = {
            "serviceAccountEmail": spec["oauth_service_account_email"],
            "scope": spec["oauth_scope"],
        }
    elif spec["oidc_service_account_email"]:
        target["oidcToken"] = {"serviceAccountEmail": spec["oidc_service_account_email"]}
        if spec["oidc_audience"]:
            target["oidcToken"]["audience"] = spec["oidc_audience"]
    job = {
        "name": full_name,
        "schedule": spec["schedule"],
        "timeZone": spec["time_zone"],
        "httpTarget": target,
        "retryConfig": {
            "retryCount": spec["retry_count"],
            "maxRetryDuration": spec["max_retry_duration"],
            "minBackoffDuration": spec["min_backoff_duration"],
            "maxBackoffDuration": spec["max_backoff_duration"],
            "maxDoublings": spec["max_doublings"],
        },
        "attemptDeadline": spec["attempt_deadline"],
    }
    if spec["description"]:
        job["description"] = spec["description"]
    return job


def update_mask(fields):
    """The updateMask for changed flat fields, each API path once, in a stable order."""
    paths = []
    for key in fields:
        path = MASK.get(key)
        if path and path not in paths:
            paths.append(path)
    return ",".join(paths)


# ---- the converge of one trigger ------------------------------------------------------------------


def get_job(api, project, location, name):
    return api.request(
        "GET", job_url(project, location, name), "Cloud Scheduler job %s" % name, allow_missing=True
    )


def create_job(api, project, location, name, spec, env=None):
    """jobs.create, never sent twice blindly: after a lost answer (or a 409) the trigger of that name
    is adopted only when it is this environment's and has `spec`; anything else is refused."""
    full = "%s/jobs/%s" % (parent(project, location), name)

    def met(_lost=None):
        found = get_job(api, project, location, name)
        if found is None:
            return None
        return met_on_create(KIND, name, found, owner_of(found), view(found), env, spec)

    try:
        return api.request(
            "POST",
            jobs_url(project, location),
            "Cloud Scheduler job %s (create)" % name,
            json=body(full, spec),
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
    full = "%s/jobs/%s" % (parent(project, location), name)

    def applied(_lost):
        found = get_job(api, project, location, name)
        if found is None:
            return None
        have = view(found)
        return found if not [k for k in fields if have.get(k) != spec.get(k)] else None

    return api.request(
        "PATCH",
        job_url(project, location, name),
        "Cloud Scheduler job %s (update)" % name,
        json=body(full, spec),
        params={"updateMask": update_mask(fields)},
        look=applied,
    )


def set_paused(api, project, location, name, paused):
    """:pause or :resume. Resent after a lost answer it may find the state already set (a 400
    FAILED_PRECONDITION): the trigger is read, and it is the answer when it is in that state."""
    verb = "pause" if paused else "resume"
    url = "%s:%s" % (job_url(project, location, name), verb)
    try:
        return api.request("POST", url, "Cloud Scheduler job %s (%s)" % (name, verb), json={})
    except ApiError as exc:
        if exc.status != 400:
            raise
        found = get_job(api, project, location, name)
        if found is None or (state(found.get("state")) == "PAUSED") != paused:
            raise
        return found


def delete_job(api, project, location, name):
    api.request(
        "DELETE",
        job_url(project, location, name),
        "Cloud Scheduler job %s (delete)" % name,
        allow_missing=True,
    )


def requested(params):
    """The flat fields the options set (only those given), normalised like the view."""
    want = {}
    if params["schedule"] is not None:
        want["schedule"] = " ".join(params["schedule"].split())
    if params["time_zone"] is not None:
        want["time_zone"] = time_zone(params["time_zone"])
    if params["description"] is not None:
        want["description"] = params["description"]
    target = params["http_target"]
    if target is not None:
        want["uri"] = target["uri"]
        want["http_method"] = method(target["http_method"])
        want["headers"] = {str(k): str(v) for k, v in (target.get("headers") or {}).items()}
        want["body"] = target.get("body") or ""
        oauth = target.get("oauth_token") or {}
        oidc = target.get("oidc_token") or {}
        if oauth and oidc:
            raise ValueError("job %s: http_target takes oauth_token or oidc_token, not both" % params["name"])
        want["oauth_service_account_email"] = oauth.get("service_account_email") or ""
        want["oauth_scope"] = oauth.get("scope") or CLOUD_PLATFORM
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
    for key in DURATIONS:
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
            http_method=dict(type="str", default="POST", choices=list(METHODS)),
            headers=dict(type="dict"),
            body=dict(type="str"),
            oauth_token=dict(
                type="dict",
                options=dict(
                    service_account_email=dict(type="str", required=True),
                    scope=dict(type="str", default=CLOUD_PLATFORM),
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
    before = view(current) if current else {}
    was_paused = bool(current) and state(current.get("state")) == "PAUSED"
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
        after = dict(before or DEFAULTS)
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
        target = run_target((entry.get("http_target") or {}).get("uri"))
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
