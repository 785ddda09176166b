# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cloud Run Admin API v2 executions: URLs, overrides, and the flat summary both execution modules return.

The summary is what operators and the toolkit's status code need from an Execution resource:
a state word (PENDING, RUNNING, CANCELLING, SUCCEEDED, FAILED, CANCELLED), task counts, times,
the elapsed seconds and the Completed condition's message. Enums arrive as names from plain
REST calls and as integers from GAPIC clients (`enum-encoding=int`); both are understood.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ansible_collections.cloudact.gcp.plugins.module_utils.fields import duration, short_name
from ansible_collections.cloudact.gcp.plugins.module_utils.timefmt import parse_http_date, parse_time

BASE = "https://run.googleapis.com/v2"
PRODUCT = "cloudact-cloud-run"

# Overrides env marking a run the toolkit started: `manual`, or `release:<release id>` for a release
# step. Executions without it were started by a Cloud Scheduler trigger (their `creator` is the
# trigger account) or by someone else (console, gcloud: their creator names who).
TRIGGER_ENV = "CLOUDACT_TRIGGER"
# Overrides env naming each run the toolkit starts: after a lost answer to its :run, the execution
# carrying this id is the one that run started (look before you leap), never another.
RUN_ID_ENV = "CLOUDACT_RUN_ID"
# How far before the failed :run's Date the look pages back (clocks and queueing).
LOOK_BACK_SECONDS = 60

_CONDITION_STATES = {
    0: "STATE_UNSPECIFIED",
    1: "CONDITION_PENDING",
    2: "CONDITION_RECONCILING",
    3: "CONDITION_FAILED",
    4: "CONDITION_SUCCEEDED",
}
_EXECUTION_REASONS = {
    0: "EXECUTION_REASON_UNDEFINED",
    1: "JOB_STATUS_SERVICE_POLLING_ERROR",
    2: "NON_ZERO_EXIT_CODE",
    3: "CANCELLED",
    4: "CANCELLING",
    5: "DELETED",
}


def job_url(project, location, job):
    return "%s/projects/%s/locations/%s/jobs/%s" % (BASE, project, location, job)


def executions_url(project, location, job):
    return job_url(project, location, job) + "/executions"


def execution_url(project, location, job, execution):
    return "%s/%s" % (executions_url(project, location, job), execution)


def operations_base():
    return BASE


def new_run_id():
    """A fresh id for one intended run (12 hex characters)."""
    import secrets

    return secrets.token_hex(6)


def overrides(
    args=None, env=None, task_count=None, timeout=None, clear_args=False, trigger="manual", run_id=None
):
    """RunJobRequest.overrides; `args` replace the job's, `env` merges over it; `run_id` names the run."""
    container = {}
    if args:
        container["args"] = [str(a) for a in args]
    elif clear_args:
        container["clearArgs"] = True
    items = dict(env or {})
    if trigger:
        items.setdefault(TRIGGER_ENV, trigger)
    if run_id:
        items[RUN_ID_ENV] = run_id
    if items:
        container["env"] = [{"name": str(k), "value": str(v)} for k, v in sorted(items.items())]
    body = {}
    if container:
        body["containerOverrides"] = [container]
    if task_count:
        body["taskCount"] = int(task_count)
    if timeout:
        body["timeout"] = duration(timeout)
    return body


def _enum(value, names):
    if isinstance(value, int) and not isinstance(value, bool):
        return names.get(value, str(value))
    return value or ""


def completed_condition(execution):
    for cond in execution.get("conditions") or []:
        if cond.get("type") == "Completed":
            return cond
    return {}


def state(execution):
    """One word for an Execution resource."""
    cond = completed_condition(execution)
    cond_state = _enum(cond.get("state"), _CONDITION_STATES)
    reason = _enum(cond.get("executionReason"), _EXECUTION_REASONS)
    counts = {k: int(execution.get(k) or 0) for k in ("runningCount", "cancelledCount", "failedCount")}
    if execution.get("completionTime") or cond_state in ("CONDITION_FAILED", "CONDITION_SUCCEEDED"):
        if reason == "CANCELLED" or counts["cancelledCount"]:
            return "CANCELLED"
        if cond_state == "CONDITION_FAILED" or counts["failedCount"]:
            return "FAILED"
        return "SUCCEEDED"
    if reason == "CANCELLING":
        return "CANCELLING"
    if counts["runningCount"] or execution.get("startTime"):
        return "RUNNING"
    return "PENDING"


def env_value(execution, name):
    """The value of env `name` in an execution's containers (its overrides included), else ''."""
    template = execution.get("template") or {}
    for box in template.get("containers") or []:
        for item in box.get("env") or []:
            if item.get("name") == name and item.get("value"):
                return item["value"]
    return ""


def trigger(execution):
    """The toolkit's mark in the run's overrides (`manual`, `release:<id>`), else ''."""
    return env_value(execution, TRIGGER_ENV)


def run_id(execution):
    """The id of the run the toolkit started this execution for, else ''."""
    return env_value(execution, RUN_ID_ENV)


def summary(execution, now=None):
    """The flat view of an Execution both modules return."""
    now = now or datetime.now(UTC)
    created = parse_time(execution.get("createTime"))
    started = parse_time(execution.get("startTime")) or created
    completed = parse_time(execution.get("completionTime"))
    elapsed = None
    if started:
        elapsed = max(0.0, ((completed or now) - started).total_seconds())
    cond = completed_condition(execution)
    template = execution.get("template") or {}
    return {
        "name": short_name(execution.get("name")),
        "resource_name": execution.get("name"),
        "job": execution.get("job") or _job_of(execution.get("name")),
        "state": state(execution),
        "task_count": int(execution.get("taskCount") or 1),
        "running": int(execution.get("runningCount") or 0),
        "succeeded": int(execution.get("succeededCount") or 0),
        "failed": int(execution.get("failedCount") or 0),
        "cancelled": int(execution.get("cancelledCount") or 0),
        "retried": int(execution.get("retriedCount") or 0),
        "create_time": execution.get("createTime"),
        "start_time": execution.get("startTime"),
        "completion_time": execution.get("completionTime"),
        "elapsed_seconds": round(elapsed, 1) if elapsed is not None else None,
        "timeout": template.get("timeout"),
        "max_retries": template.get("maxRetries"),
        "message": cond.get("message", ""),
        "reason": _enum(cond.get("executionReason"), _EXECUTION_REASONS),
        "trigger": trigger(execution),
        "run_id": run_id(execution),
        "creator": execution.get("creator", ""),
        "log_uri": execution.get("logUri", ""),
    }


def _job_of(name):
    parts = (name or "").split("/")
    return parts[parts.index("jobs") + 1] if "jobs" in parts[:-1] else ""


def server_now(api):
    """The last reply's Date (the client keeps it) as an aware datetime, else this machine's clock.

    Elapsed times and overdue checks compare against the API's timestamps, so they use the
    server's clock rather than this machine's (which may be skewed).
    """
    return parse_http_date(getattr(api, "server_date", None)) or datetime.now(UTC)


# ---- Cloud Logging: a job's (or one execution's) log entries, shared by cloud_logging_entries_info
# and cloud_run_execution (which returns an execution's lines in the call that saw it finish).

LOGGING_URL = "https://logging.googleapis.com/v2/entries:list"
LOGGING_PAGE = 1000


def log_filter(job, execution=None, since=None, min_severity=None):
    terms = ['resource.type="cloud_run_job"', 'resource.labels.job_name="%s"' % job]
    if execution:
        terms.append('labels."run.googleapis.com/execution_name"="%s"' % execution)
    if since:
        terms.append('timestamp>="%s"' % since)
    if min_severity:
        terms.append("severity>=%s" % min_severity)
    return " AND ".join(terms)


def log_message(entry):
    if "textPayload" in entry:
        return entry["textPayload"]
    payload = entry.get("jsonPayload")
    if isinstance(payload, dict):
        if isinstance(payload.get("message"), str):
            return payload["message"]
        return json.dumps(payload, sort_keys=True)
    return ""


def flatten_entry(entry):
    labels = entry.get("labels") or {}
    return {
        "timestamp": entry.get("timestamp", ""),
        "severity": entry.get("severity") or "DEFAULT",
        "message": log_message(entry),
        "execution": labels.get("run.googleapis.com/execution_name", ""),
        "task_index": labels.get("run.googleapis.com/task_index", ""),
        "attempt": labels.get("run.googleapis.com/task_attempt", ""),
    }


def list_log_entries(api, project, job, filter_text, limit=1000, newest_first=False):
    """Flat entries in time order (oldest first), at most `limit` (the newest ones with newest_first)."""
    body = {
        "resourceNames": ["projects/%s" % project],
        "filter": filter_text,
        "orderBy": "timestamp desc" if newest_first else "timestamp asc",
        "pageSize": min(LOGGING_PAGE, limit),
    }
    entries = []
    while len(entries) < limit:
        page = api.request("POST", LOGGING_URL, "log entries of %s" % job, json=body, idempotent=True) or {}
        entries.extend(page.get("entries") or [])
        token = page.get("nextPageToken")
        if not token:
            break
        body["pageToken"] = token
    entries = entries[:limit]
    if newest_first:
        entries.reverse()
    return [flatten_entry(e) for e in entries]


def log_lines(entries, job, execution=None):
    """'<time> <severity> [<execution>] <message>'; the execution only when not filtering by one."""
    return [
        "%s %-7s %s%s"
        % (
            e["timestamp"][:19].replace("T", " "),
            e["severity"],
            "" if execution else "[%s] " % e["execution"].replace(job + "-", "", 1),
            e["message"],
        )
        for e in entries
    ]
