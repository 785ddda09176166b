# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cloud Run job executions on the operator's side: what the controller-side actions
cloudact.gcp.cloud_run_execution and cloud_run_execution_info do, and what an operator reads of a run.

- Start exactly one execution per call, also when an answer is lost: the job is read first (a job on
  another digest than the confirmed one is refused before anything is sent) and the `:run` carries
  the job's etag, so Cloud Run refuses a run of a job changed since, and this run's id
  (CLOUDACT_RUN_ID). After a lost answer the client (module_utils/client.py, the rule of verbs.py)
  never resends the `:run` blindly: `look_for_run` pages the job's executions for the one carrying
  the id and the client adopts it.
- Refuse to start while another execution of the job runs (`if_running: fail`), naming it.
- Wait for it (its own budget: task timeout x attempts x waves, plus slack), saying every
  `progress_interval` seconds how far it is; read its log lines in the call that saw it finish.
- Cancel one; list the newest executions of jobs.

The lines (`say`) are the operator's: the start with how to cancel it, progress, the log lines and the
result; a run's result also carries its summary line and, when it did not succeed, why, named.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from ansible_collections.cloudact.gcp.plugins.module_utils import run_execution as rx
from ansible_collections.cloudact.gcp.plugins.module_utils import runs
from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError
from ansible_collections.cloudact.gcp.plugins.module_utils.fields import duration, short_name
from ansible_collections.cloudact.gcp.plugins.module_utils.timefmt import (
    FINISHED,
    duration_seconds,
    parse_http_date,
    parse_time,
)

FIRST_POLL = 0.1  # seconds: the first polls come soon (most jobs finish in seconds)
FIRST_WAIT = 5.0  # seconds a waited start waits before it says what it started (and how to cancel it)
DEFAULT_TIMEOUT = "600s"  # Cloud Run's task timeout when the template names none
DEFAULT_RETRIES = 3  # Cloud Run's maxRetries when the template names none

ARGUMENT_SPEC = dict(
    job=dict(type="str", required=True),
    name=dict(type="str"),
    state=dict(type="str", default="present", choices=["present", "cancelled"]),
    location=dict(type="str", aliases=["region"]),
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
    wait_timeout=dict(type="float"),
    poll_interval=dict(type="float", default=2.0),
    progress_interval=dict(type="float", default=10.0),
    logs=dict(type="bool", default=False),
    report=dict(type="bool", default=False),
)
VALIDATION = dict(required_if=[("state", "cancelled", ["name"])], mutually_exclusive=[("args", "clear_args")])

INFO_ARGUMENT_SPEC = dict(
    jobs=dict(type="list", elements="str", required=True),
    name=dict(type="str"),
    limit=dict(type="int", default=10),
    location=dict(type="str", aliases=["region"]),
)


def check_options(p):
    """Refuse, before any request, what cloud_run_execution cannot do; one line naming the value."""
    if p["command"]:
        raise InputError(
            "command override %r refused: Cloud Run runs the job's own command; pass arguments with args "
            "(ARGS=...) or change the job's command in the catalog" % " ".join(p["command"])
        )
    if p["task_count"] is not None and not 1 <= p["task_count"] <= 10000:
        raise InputError("task_count %r: expected 1..10000" % p["task_count"])
    if p["timeout"]:
        duration(p["timeout"])  # ValueError naming the value
    if (p["wait_timeout"] is not None and p["wait_timeout"] < 0) or p["poll_interval"] <= 0:
        raise InputError("wait_timeout must be >= 0 and poll_interval > 0")
    if p["progress_interval"] <= 0:
        raise InputError("progress_interval %r: expected seconds > 0" % p["progress_interval"])
    if p["state"] == "present" and p["name"] and (p["args"] or p["env"] or p["task_count"] or p["timeout"]):
        raise InputError("overrides apply only when starting an execution; remove name to start a new one")


def check_info_options(p):
    if p["limit"] < 0:
        raise InputError("limit %r: expected 0 (all) or a positive number" % p["limit"])
    if p["name"] and len(p["jobs"]) != 1:
        raise InputError("name %r: give exactly its job in jobs, got %d" % (p["name"], len(p["jobs"])))


# ---- the calls ---------------------------------------------------------------------------------------


def get_execution(api, p, name, allow_missing=False):
    return api.request(
        "GET",
        rx.execution_url(p["project"], p["location"], p["job"], name),
        "Cloud Run execution %s" % name,
        allow_missing=allow_missing,
    )


def existing_execution(api, p, name):
    execution = get_execution(api, p, name, allow_missing=True)
    if execution is None:
        raise InputError("execution %s of job %s does not exist" % (name, p["job"]))
    return execution


def running_executions(api, p):
    """Names of the job's executions that have not finished (newest first)."""
    page = api.request(
        "GET",
        rx.executions_url(p["project"], p["location"], p["job"]),
        "executions of Cloud Run job %s" % p["job"],
        params={"pageSize": 20},
    )
    return [short_name(e.get("name")) for e in page.get("executions") or [] if rx.state(e) not in FINISHED]


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


def image_of(job):
    boxes = ((job.get("template") or {}).get("template") or {}).get("containers") or [{}]
    return boxes[0].get("image") or ""


def digest_of(job):
    """The sha256 digest the job's container image names, else ''."""
    image = image_of(job)
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


def run_overrides(p, run_id):
    return rx.overrides(
        args=p["args"],
        env=p["env"],
        task_count=p["task_count"],
        timeout=p["timeout"],
        clear_args=p["clear_args"],
        run_id=run_id,
    )


def start_execution(api, p, job, run_id):
    """:run with this run's id and the job's etag; the execution, exactly one whatever is lost on the way."""
    body = {"overrides": run_overrides(p, run_id)}
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


def budget(execution):
    """Seconds to wait for an execution: its task timeout x attempts x waves of tasks, plus slack."""
    template = execution.get("template") or {}
    retries = template.get("maxRetries")
    return runs.wait_budget(
        duration_seconds(template.get("timeout") or DEFAULT_TIMEOUT),
        DEFAULT_RETRIES if retries is None else int(retries),
        int(execution.get("taskCount") or 1),
        int(execution.get("parallelism") or 0),
    )


def wait_execution(api, p, execution, seconds, on_progress=None, clock=time.monotonic, sleep=time.sleep):
    """Poll until finished or `seconds` pass; the latest resource.

    The first polls come sooner (0.1 s, growing by half up to poll_interval): most jobs finish in
    seconds, and a fixed interval would leave up to one interval between the end and the result.
    `on_progress(execution)` is called every progress_interval seconds while it has not finished.
    """
    give_up = clock() + seconds
    name = execution["name"].rsplit("/", 1)[-1]
    interval = min(FIRST_POLL, p["poll_interval"])
    next_progress = clock() + p["progress_interval"]
    while rx.state(execution) not in FINISHED:
        left = give_up - clock()
        if left <= 0:
            break
        sleep(min(interval, left))
        interval = min(interval * 1.5, p["poll_interval"])
        execution = get_execution(api, p, name)
        if on_progress and clock() >= next_progress and rx.state(execution) not in FINISHED:
            on_progress(execution)
            next_progress = clock() + p["progress_interval"]
    return execution


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


def read_executions(api, p):
    """cloud_run_execution_info: {executions (summaries), missing_jobs, server_time}."""
    executions, missing = [], []
    if p["name"]:
        p = dict(p, job=p["jobs"][0])
        executions = [existing_execution(api, p, p["name"])]
    else:
        for job in p["jobs"]:
            items = list_executions(api, p, job)
            if items is None:
                missing.append(job)
            else:
                executions.extend(items)
    now = rx.server_now(api)
    return dict(
        changed=False,
        executions=[rx.summary(e, now) for e in executions],
        missing_jobs=missing,
        server_time=_rfc3339(now),
    )


# ---- one call of cloud_run_execution -------------------------------------------------------------------


def _rfc3339(now):
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


class Operator:
    """Where the operator's lines go (`say`, printed at once; None: nowhere) and what they name: the
    job's word (its catalog shortcut) and the environment, for `make cancel` and `make logs`."""

    def __init__(self, say=None, word="", env=""):
        self._say, self.word, self.env = say, word, env

    def say(self, *lines):
        if self._say is not None:
            self._say(*lines)


class Refused(InputError):
    """A refusal before anything was sent, with data for the result (the running executions)."""

    def __init__(self, message, **result):
        super().__init__(message)
        self.result = result


def execute(api, p, check_mode=False, diff=False, operator=None, clock=time.monotonic, sleep=time.sleep):
    """One call: cancel p.name, read (and wait for) p.name, or start an execution (and wait for it).

    The result is the action's; for state=present it also carries `ok`, `summary` and `failure` (what a
    report or a release step needs). The operator's lines are said as they happen. Raises InputError
    (Refused) or ApiError; api.lost says what was lost on the way."""
    operator = operator or Operator(word=p["job"])
    if p["state"] == "cancelled":
        return cancel(api, p, check_mode, diff)
    if p["name"]:
        execution = existing_execution(api, p, p["name"])
        return finish(api, p, execution, False, operator, clock, sleep)
    if p["if_running"] == "fail":
        running = running_executions(api, p)
        if running:
            hint = (". " + p["running_hint"]) if p["running_hint"] else ""
            raise Refused(
                "%s already has an execution running: %s%s" % (p["job"], ", ".join(running), hint),
                running=running,
            )
    job = get_job(api, p)
    check_confirmed(job, p)
    run_id = p["run_id"] or rx.new_run_id()
    changes = {"before": {}, "after": {"job": p["job"], "overrides": run_overrides(p, run_id)}}
    if check_mode:
        line = "would start an execution of %s on %s; nothing was started (check mode)" % (
            p["job"],
            image_of(job) or "its image",
        )
        operator.say("%s: %s" % (operator.word, line))
        result = dict(changed=True, done=False, execution={}, msg=line, lost_answers=list(api.lost))
        result.update(ok=True, summary="", failure="", shortcut=operator.word)
        return dict(result, diff=changes) if diff else result
    execution = start_execution(api, p, job, run_id)
    result = finish(api, p, execution, True, operator, clock, sleep)
    changes["after"]["execution"] = result["execution"]["name"]
    return dict(result, diff=changes) if diff else result


def finish(api, p, execution, started, operator, clock=time.monotonic, sleep=time.sleep):
    """Wait (p.wait) with progress lines, read the log lines of a finished execution (p.logs), and say
    the start, then the log lines and the result."""
    seconds = budget(execution) if p["wait_timeout"] is None else p["wait_timeout"]
    begun = clock()
    if p["wait"] and started:  # a first while, so that a quick run's start line needs no cancel hint
        first = min(FIRST_WAIT, p["progress_interval"], seconds)
        execution = wait_execution(api, p, execution, first, clock=clock, sleep=sleep)
    result = _result(api, execution, started)
    if started:
        operator.say(started_line(result, operator.word, operator.env, p["wait"]))
    if p["wait"] and not result["done"]:

        def progress(ex):
            operator.say("  " + runs.progress(rx.summary(ex, rx.server_now(api))))

        left = max(0.0, seconds - (clock() - begun))
        execution = wait_execution(api, p, execution, left, progress, clock, sleep)
        result = _result(api, execution, started)
    entries = []
    if p["logs"] and result["done"]:
        name = result["execution"]["name"]
        # Same session (one token: the cloud-platform scope covers Logging).
        entries = rx.list_log_entries(api, p["project"], p["job"], rx.log_filter(p["job"], name), limit=1000)
        result.update(log_entries=entries, log_lines=rx.log_lines(entries, p["job"], name))
    summary = result["execution"]
    messages = [e["message"] for e in entries]
    result["ok"] = summary["state"] == "SUCCEEDED" if (p["wait"] or result["done"]) else True
    result["summary"] = runs.summary_line(messages)
    result["failure"] = ""
    result["shortcut"] = operator.word
    if not result["ok"]:
        logs = "make logs ENV=%s JOB=%s EXECUTION=%s" % (operator.env, operator.word, summary["name"])
        result["failure"] = runs.failure(summary, messages, logs)
    result["lost_answers"] = list(api.lost)
    if p["wait"] or not started:
        operator.say(*report_lines(dict(result, job=operator.word, lines=result.get("log_lines"))))
    return result


def _result(api, execution, changed):
    now = rx.server_now(api)
    summary = rx.summary(execution, now)
    return dict(
        changed=changed,
        execution=summary,
        done=summary["state"] in FINISHED,
        server_time=_rfc3339(now),
        lost_answers=list(api.lost),
    )


def cancel(api, p, check_mode, diff):
    execution = existing_execution(api, p, p["name"])
    before = rx.state(execution)
    changed = before not in FINISHED
    if changed and not check_mode:
        execution = cancel_execution(api, p, p["name"])
        if p["wait"]:
            seconds = 30.0 if p["wait_timeout"] is None else p["wait_timeout"]
            execution = wait_execution(api, p, execution, seconds)
    result = _result(api, execution, changed)
    if check_mode and changed:
        result["msg"] = "would cancel %s (%s); nothing was cancelled (check mode)" % (p["name"], before)
    if diff:
        after = "CANCELLED" if check_mode and changed else result["execution"]["state"]
        result["diff"] = {
            "before": {"execution": p["name"], "state": before},
            "after": {"execution": p["name"], "state": after},
        }
    return result


# ---- the operator's lines ------------------------------------------------------------------------------


def started_line(started: dict[str, Any], job: str, env: str, wait: bool) -> str:
    """'bootstrap: started <execution> (waiting; ...); cancel with: make cancel ...'; the cancel hint
    only while it runs (an execution that finished within the first wait needs none)."""
    execution = started.get("execution")
    name = execution.get("name", "") if isinstance(execution, dict) else ""
    line = f"{job}: started {name}"
    lost = "".join(f"; a lost answer: {text}" for text in started.get("lost_answers") or [])
    if started.get("done"):
        return line + lost
    waiting = "waiting; an interrupt leaves it running" if wait else "not waiting"
    return f"{line} ({waiting}); cancel with: make cancel ENV={env} JOB={job} EXECUTION={name}{lost}"


def report_lines(result: dict[str, Any]) -> list[str]:
    """The execution's log lines ('  | ' each), then 'job: <execution> succeeded in 1.2s: <summary>'."""
    execution = result.get("execution") or {}
    try:
        elapsed = float(execution.get("elapsed_seconds"))
    except (TypeError, ValueError):
        elapsed = 0.0
    state = str(execution.get("state")).lower()
    line = f"{result.get('job')}: {execution.get('name')} {state} in {elapsed:.1f}s"
    if result.get("summary"):
        line += f": {result['summary']}"
    return ["  | " + str(text) for text in result.get("lines") or []] + [line]
