# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cloud Scheduler v1 jobs: URLs, the owned-fields view, and the body/updateMask of a change.

The view is flat and normalised with the defaults the API echoes back (time zone UTC,
method POST, cloud-platform scope, retry config 0/0s/5s/3600s/5, attempt deadline 180s),
so a trigger created from the catalog reads back equal and a second converge is a no-op.
"""

from __future__ import annotations

import base64

from ansible_collections.cloudact.gcp.plugins.module_utils import owner as owners
from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import duration, short_name

BASE = "https://cloudscheduler.googleapis.com/v1"
PRODUCT = "cloudact-cloud-scheduler"
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
