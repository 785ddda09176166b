#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start, wait for or cancel one Cloud Run job execution."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cloud_run_execution
short_description: Start, wait for or cancel a Cloud Run job execution
description:
  - Starts a new execution of a Cloud Run job (C(jobs.run)) with optional overrides, or finds an
    existing one by name; optionally waits for it to finish, up to O(wait_timeout) seconds per call
    so that a play can loop and print progress; or cancels it.
  - Starting is an action, never idempotent. Each call with O(state=present) and no O(name) starts
    one execution (in check mode it reports C(changed) and starts nothing).
  - >-
    Exactly one execution per call, also when an answer is lost. The job is read first; the C(:run)
    carries the job's C(etag), so Cloud Run itself refuses the run if the job changed since, and an
    id of this run (O(run_id), in the overrides' env as C(CLOUDACT_RUN_ID)). After a lost answer (a
    500, 502 or 504, a read timeout, a dropped connection) the module never sends C(:run) again
    blindly: it pages the job's executions newest first, back to the failed request's Date minus
    60 s, and adopts the one carrying this run's id (two are refused, naming both). Only when none
    appears within 10 s is the run sent again. A 408, 429 or 503 (the server did not act) is resent.
  - With O(confirmed_digest), the run is refused before anything is sent when the job's image is
    not that digest (what was confirmed is what runs).
  - Cancelling an execution that has already finished changes nothing.
  - The Cloud Run API has no command override. O(command) is accepted only to refuse it clearly.
version_added: 0.1.0
author: CloudAct platform team
options:
  job:
    description: The Cloud Run job's ID (not the full resource name).
    type: str
    required: true
  name:
    description:
      - The execution's ID (C(<job>-xxxxx)); required for O(state=cancelled).
      - With O(state=present), the existing execution to report on or wait for.
    type: str
  state:
    description:
      - C(present) starts an execution (or reads O(name)); C(cancelled) cancels O(name).
    type: str
    choices: [present, cancelled]
    default: present
  location:
    description: The region of the job.
    type: str
    default: us-central1
  args:
    description: Replace the container's arguments for this execution.
    type: list
    elements: str
  clear_args:
    description: Run without the job's arguments.
    type: bool
    default: false
  env:
    description: Environment variables merged over the job's for this execution (plain values, never secrets).
    type: dict
  task_count:
    description: Number of tasks of this execution.
    type: int
  timeout:
    description: Task timeout of this execution, as seconds or C(600s), C(15m), C(1h).
    type: str
  run_id:
    description:
      - The id of this run, sent in the overrides' env as C(CLOUDACT_RUN_ID); empty makes a new one.
      - After a lost answer the execution carrying it is adopted instead of starting another.
    type: str
    default: ""
  confirmed_digest:
    description:
      - The image digest (C(sha256:...)) the operator confirmed. When the job's image is another
        digest (or no digest), nothing is started and the module fails naming both.
    type: str
    default: ""
  if_running:
    description:
      - When starting and an execution of the job is already running (or pending), C(start) starts
        another anyway (as Cloud Scheduler would); C(fail) refuses, naming the running ones.
    type: str
    choices: [start, fail]
    default: start
  running_hint:
    description: Text appended to the refusal of O(if_running=fail), e.g. how to cancel the running one.
    type: str
    default: ""
  command:
    description: Not supported by the Cloud Run API; any value is refused with an explanation.
    type: list
    elements: str
  wait:
    description: Wait until the execution has finished, at most O(wait_timeout) seconds in this call.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait in this call. When they pass the module returns RV(done=false) without
        failing, so a task can loop with C(until) and show progress between calls.
    type: float
    default: 600
  poll_interval:
    description: Seconds between polls while waiting (the first polls come sooner, from 0.25 s doubling).
    type: float
    default: 2
  logs:
    description:
      - When the execution has finished in this call, also return its log entries (RV(log_entries),
        RV(log_lines)), so that waiting and reading the result take one call.
    type: bool
    default: false
extends_documentation_fragment:
  - google.cloud.gcp
  - cloudact.gcp.gcp
notes:
  - Authentication options (O(auth_kind), O(service_account_file), O(project)...) are those of
    google.cloud's modules, with the same C(GCP_*) environment fallbacks.
  - Supports check mode.
"""

EXAMPLES = r"""
- name: Start bootstrap and return at once
  cloudact.gcp.cloud_run_execution:
    project: cloudact-testing-1
    auth_kind: serviceaccount
    service_account_file: ~/keys/cloudact-jobs.json
    job: cloudact-manual-bootstrap
  register: started

- name: Wait for it, printing progress between polls
  cloudact.gcp.cloud_run_execution:
    job: cloudact-manual-bootstrap
    name: "{{ started.execution.name }}"
    wait: true
    wait_timeout: 10
  register: waited
  until: waited.done
  retries: 200
  delay: 0

- name: Cancel it
  cloudact.gcp.cloud_run_execution:
    job: cloudact-manual-bootstrap
    name: "{{ started.execution.name }}"
    state: cancelled
"""

RETURN = r"""
execution:
  description: The execution (absent in check mode when it would have been started).
  returned: success
  type: dict
  contains:
    name: {description: The execution ID., type: str, returned: always}
    job: {description: The job ID., type: str, returned: always}
    state:
      description: PENDING, RUNNING, CANCELLING, SUCCEEDED, FAILED or CANCELLED.
      type: str
      returned: always
    task_count: {description: Tasks of the execution., type: int, returned: always}
    running: {description: Tasks running., type: int, returned: always}
    succeeded: {description: Tasks that succeeded., type: int, returned: always}
    failed: {description: Tasks that failed (after their retries)., type: int, returned: always}
    cancelled: {description: Tasks cancelled., type: int, returned: always}
    retried: {description: Task attempts that were retried., type: int, returned: always}
    create_time: {description: RFC 3339 creation time., type: str, returned: always}
    start_time: {description: RFC 3339 start time., type: str, returned: when started}
    completion_time: {description: RFC 3339 completion time., type: str, returned: when finished}
    elapsed_seconds:
      description: Seconds since start (to completion when finished).
      type: float
      returned: always
    timeout: {description: The task timeout of this execution (C(600s))., type: str, returned: always}
    max_retries: {description: Retries per task., type: int, returned: always}
    message: {description: The Completed condition's message (why it failed)., type: str, returned: always}
    reason: {description: The Completed condition's execution reason., type: str, returned: always}
    trigger: {description: C(manual) when started by this module, else empty., type: str, returned: always}
    run_id:
      description: The toolkit's id of the run (C(CLOUDACT_RUN_ID)), else empty.
      type: str
      returned: always
done:
  description: Whether the execution has finished (always true after a cancel).
  returned: success
  type: bool
server_time:
  description: The API's clock (its Date header) at the last reply, RFC 3339.
  returned: success
  type: str
lost_answers:
  description: One line per answer lost on the way (what was looked for, and what was adopted or resent).
  returned: success
  type: list
  elements: str
log_entries:
  description:
    - The execution's log entries, oldest first (timestamp, severity, message, execution, task_index,
      attempt), as cloud_logging_entries_info returns them.
  returned: when O(logs=true) and the execution has finished
  type: list
  elements: dict
log_lines:
  description: The entries as C(<time> <severity> <message>) lines.
  returned: when O(logs=true) and the execution has finished
  type: list
  elements: str
"""

import time
from datetime import UTC, datetime, timedelta

from ansible_collections.cloudact.gcp.plugins.module_utils import run_execution as rx
from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import (
    ApiError,
    GcpApi,
    duration,
    short_name,
)
from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import gcp_module as module
from ansible_collections.cloudact.gcp.plugins.module_utils.timefmt import parse_http_date, parse_time

FIRST_POLL = 0.1  # seconds


def get_execution(api, p, name, allow_missing=False):
    return api.request(
        "GET",
        rx.execution_url(p["project"], p["location"], p["job"], name),
        "Cloud Run execution %s" % name,
        allow_missing=allow_missing,
    )


def running_executions(api, p):
    """Names of the job's executions that have not finished (newest first)."""
    page = api.request(
        "GET",
        rx.executions_url(p["project"], p["location"], p["job"]),
        "executions of Cloud Run job %s" % p["job"],
        params={"pageSize": 20},
    )
    return [short_name(e.get("name")) for e in page.get("executions") or [] if rx.state(e) not in rx.FINISHED]


def get_job(api, p):
    """The job (its etag and image), or a failure naming it when it does not exist."""
    job = api.request(
        "GET",
        rx.job_url(p["project"], p["location"], p["job"]),
        "Cloud Run job %s" % p["job"],
        allow_missing=True,
    )
    if job is None:
        raise ApiError(
            "Cloud Run job %s does not exist in %s/%s" % (p["job"], p["project"], p["location"]), 404
        )
    return job


def digest_of(job):
    """The sha256 digest the job's container image names, else ''."""
    boxes = ((job.get("template") or {}).get("template") or {}).get("containers") or [{}]
    image = boxes[0].get("image") or ""
    return image.rpartition("@")[2] if "@sha256:" in image else ""


def check_confirmed(job, p):
    """Refuse, before anything is sent, a job whose image is not the digest the operator confirmed."""
    wanted = p["confirmed_digest"]
    found = digest_of(job)
    if wanted and found != wanted:
        raise ApiError(
            "refused: you confirmed %s but %s is pinned to %s; nothing was changed"
            % (wanted, p["job"], found or "an unpinned image")
        )


def look_for_run(api, p, run_id, lost):
    """The execution a lost :run started: the job's executions, newest first, back to the failed
    request's Date minus LOOK_BACK_SECONDS, that carry `run_id`; None when there is none yet."""
    sent = parse_http_date(lost.server_date) or datetime.now(UTC)
    since = sent - timedelta(seconds=rx.LOOK_BACK_SECONDS)
    url = rx.executions_url(p["project"], p["location"], p["job"])
    matches, params = [], {"pageSize": 50}
    while True:
        page = api.request("GET", url, "executions of Cloud Run job %s" % p["job"], params=params) or {}
        items = page.get("executions") or []
        matches += [e for e in items if rx.run_id(e) == run_id]
        older = [e for e in items if (parse_time(e.get("createTime")) or sent) < since]
        if older or not page.get("nextPageToken"):
            break
        params["pageToken"] = page["nextPageToken"]
    if len(matches) > 1:
        names = ", ".join(short_name(e.get("name")) for e in matches)
        raise ApiError(
            "refused: executions %s both carry run id %s of one run of %s; nothing was sent again: "
            "check them (make history) before running it again" % (names, run_id, p["job"])
        )
    return {"metadata": matches[0]} if matches else None


def start_execution(api, p, job):
    """:run with this run's id and the job's etag; the execution, exactly one whatever is lost on the way."""
    run_id = p["run_id"] or rx.new_run_id()
    body = {
        "overrides": rx.overrides(
            args=p["args"],
            env=p["env"],
            task_count=p["task_count"],
            timeout=p["timeout"],
            clear_args=p["clear_args"],
            run_id=run_id,
        )
    }
    if job.get("etag"):
        body["etag"] = job["etag"]  # a job changed since it was read (and confirmed) is not run
    operation = api.request(
        "POST",
        rx.job_url(p["project"], p["location"], p["job"]) + ":run",
        "Cloud Run job %s" % p["job"],
        json=body,
        look=lambda lost: look_for_run(api, p, run_id, lost),
    )
    # The run operation stays open until the execution ends; its metadata names the execution.
    metadata = operation.get("metadata") or {}
    name = metadata.get("name") or (operation.get("response") or {}).get("name")
    if not name:
        raise ApiError(
            "Cloud Run job %s: the run operation names no execution: %s" % (p["job"], operation.get("name"))
        )
    return get_execution(api, p, name.rsplit("/", 1)[-1])


def cancel_execution(api, p, name):
    url = rx.execution_url(p["project"], p["location"], p["job"], name) + ":cancel"
    try:
        api.request("POST", url, "Cloud Run execution %s" % name, json={})
    except ApiError as exc:
        if exc.status not in (400, 409, 412):  # it finished meanwhile: nothing to cancel
            raise
    return get_execution(api, p, name)


def wait_execution(api, p, execution, clock=time.monotonic, sleep=time.sleep):
    """Poll until finished or wait_timeout passes; the latest resource.

    The first polls come sooner (0.1 s, growing by half up to poll_interval): most jobs finish in
    seconds, and a fixed interval would leave up to one interval between the end and the result.
    """
    give_up = clock() + p["wait_timeout"]
    name = execution["name"].rsplit("/", 1)[-1]
    interval = min(FIRST_POLL, p["poll_interval"])
    while rx.state(execution) not in rx.FINISHED:
        left = give_up - clock()
        if left <= 0:
            break
        sleep(min(interval, left))
        interval = min(interval * 1.5, p["poll_interval"])
        execution = get_execution(api, p, name)
    return execution


ARGUMENT_SPEC = dict(
    job=dict(type="str", required=True),
    name=dict(type="str"),
    state=dict(type="str", default="present", choices=["present", "cancelled"]),
    location=dict(type="str", default="us-central1"),
    args=dict(type="list", elements="str"),
    clear_args=dict(type="bool", default=False),
    env=dict(type="dict"),
    task_count=dict(type="int"),
    timeout=dict(type="str"),
    run_id=dict(type="str", default=""),
    confirmed_digest=dict(type="str", default=""),
    if_running=dict(type="str", default="start", choices=["start", "fail"]),
    running_hint=dict(type="str", default=""),
    command=dict(type="list", elements="str"),
    wait=dict(type="bool", default=False),
    wait_timeout=dict(type="float", default=600.0),
    poll_interval=dict(type="float", default=2.0),
    logs=dict(type="bool", default=False),
)
REQUIRED_IF = [("state", "cancelled", ["name"])]
MUTUALLY_EXCLUSIVE = [("args", "clear_args")]


def main():
    run(
        module(
            argument_spec=dict(ARGUMENT_SPEC),
            required_if=REQUIRED_IF,
            mutually_exclusive=MUTUALLY_EXCLUSIVE,
            supports_check_mode=True,
        )
    )


def run(mod):
    """The module's work on a GcpModule, or on the action plugin's in-process stand-in."""
    p = mod.params
    if p["command"]:
        mod.fail_json(
            msg="command override %r refused: Cloud Run runs the job's own command; pass arguments with args "
            "(ARGS=...) or change the job's command in the catalog" % " ".join(p["command"])
        )
    if p["task_count"] is not None and not 1 <= p["task_count"] <= 10000:
        mod.fail_json(msg="task_count %r: expected 1..10000" % p["task_count"])
    if p["timeout"]:
        try:
            duration(p["timeout"])
        except ValueError as exc:
            mod.fail_json(msg=str(exc))
    if p["wait_timeout"] < 0 or p["poll_interval"] <= 0:
        mod.fail_json(msg="wait_timeout must be >= 0 and poll_interval > 0")
    if p["state"] == "present" and p["name"] and (p["args"] or p["env"] or p["task_count"] or p["timeout"]):
        mod.fail_json(msg="overrides apply only when starting an execution; remove name to start a new one")

    api = GcpApi(mod, rx.PRODUCT)
    changed = False
    try:
        if p["state"] == "cancelled":
            execution = get_execution(api, p, p["name"], allow_missing=True)
            if execution is None:
                mod.fail_json(msg="execution %s of job %s does not exist" % (p["name"], p["job"]))
            if rx.state(execution) not in rx.FINISHED:
                changed = True
                if not mod.check_mode:
                    execution = cancel_execution(api, p, p["name"])
                    if p["wait"]:
                        execution = wait_execution(api, p, execution)
        elif p["name"]:
            execution = get_execution(api, p, p["name"], allow_missing=True)
            if execution is None:
                mod.fail_json(msg="execution %s of job %s does not exist" % (p["name"], p["job"]))
            if p["wait"]:
                execution = wait_execution(api, p, execution)
        else:
            if p["if_running"] == "fail":
                running = running_executions(api, p)
                if running:
                    mod.fail_json(
                        msg="%s already has an execution running: %s%s"
                        % (
                            p["job"],
                            ", ".join(running),
                            (". " + p["running_hint"]) if p["running_hint"] else "",
                        ),
                        running=running,
                    )
            job = get_job(api, p)
            check_confirmed(job, p)
            changed = True
            if mod.check_mode:
                mod.exit_json(
                    changed=True, done=False, execution={}, msg="would start an execution of %s" % p["job"]
                )
            execution = start_execution(api, p, job)
            if p["wait"]:
                execution = wait_execution(api, p, execution)
        now = rx.server_now(api)
        summary = rx.summary(execution, now)
        result = dict(
            changed=changed,
            execution=summary,
            done=summary["state"] in rx.FINISHED,
            server_time=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            lost_answers=list(api.lost),
        )
        if p["logs"] and result["done"]:
            name = summary["name"]
            # Same session (one token: the cloud-platform scope covers Logging).
            entries = rx.list_log_entries(
                api, p["project"], p["job"], rx.log_filter(p["job"], name), limit=1000
            )
            result.update(log_entries=entries, log_lines=rx.log_lines(entries, p["job"], name))
    except ApiError as exc:
        mod.fail_json(msg=str(exc), status=exc.status, lost_answers=list(api.lost))
    mod.exit_json(**result)


if __name__ == "__main__":
    main()
