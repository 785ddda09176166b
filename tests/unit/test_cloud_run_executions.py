"""module_utils/cloud_run_executions: what cloudact.gcp.cloud_run_execution does, against a scripted API.

Start exactly one execution (the job read first, its etag and this run's id on the :run), refuse
before anything is sent (a digest other than the confirmed one, a running execution), start nothing
in check mode, wait with progress lines on a fake clock, name a failure, cancel; and the operator's
lines (the start with its cancel hint, the log lines and the result) word for word.
"""

from __future__ import annotations

import sys

import pytest

from toolkit import ROOT

sys.path.insert(0, str(ROOT / "collections"))
from ansible_collections.cloudact.gcp.plugins.module_utils import cloud_run_executions as cre
from ansible_collections.cloudact.gcp.plugins.module_utils import runs
from ansible_collections.cloudact.gcp.plugins.module_utils.client import Ambiguous, ApiError
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

JOB = "cloudact-manual-bootstrap"
EXEC = f"{JOB}-x7k2p"
BASE = f"https://run.googleapis.com/v2/projects/p/locations/r/jobs/{JOB}"
DIGEST = "sha256:" + "a" * 64
IMAGE = f"r-docker.pkg.dev/p/cloudact/jobs@{DIGEST}"
T0 = "2026-12-07T10:00:00Z"


def execution(state="RUNNING", **kw):
    """An Execution resource in one of the states the state word reads."""
    body = {
        "name": f"projects/p/locations/r/jobs/{JOB}/executions/{EXEC}",
        "job": JOB,
        "createTime": T0,
        "taskCount": 1,
        "template": {"timeout": "60s", "maxRetries": 0},
    }
    if state != "PENDING":
        body["startTime"] = T0
    if state == "RUNNING":
        body["runningCount"] = 1
    if state in ("SUCCEEDED", "FAILED"):
        body["completionTime"] = "2026-12-07T10:00:12Z"
        ok = state == "SUCCEEDED"
        body["succeededCount" if ok else "failedCount"] = 1
        body["conditions"] = [
            {
                "type": "Completed",
                "state": "CONDITION_SUCCEEDED" if ok else "CONDITION_FAILED",
                **({} if ok else {"executionReason": "NON_ZERO_EXIT_CODE", "message": "Task failed"}),
            }
        ]
    body.update(kw)
    return body


class Api:
    """The client as the verbs use it: request(method, url, what, ...), `lost`, `server_date`. Each GET
    of the execution answers the next of `states` (the last one from then on)."""

    def __init__(self, job=None, states=("SUCCEEDED",), listed=(), messages=()):
        self.job = (
            {"etag": "e1", "template": {"template": {"containers": [{"image": IMAGE}]}}}
            if job is None
            else job
        )
        self.states = list(states)
        self.listed = list(listed)
        self.messages = list(messages)
        self.calls: list[tuple[str, str, dict | None]] = []
        self.lost: list[str] = []
        self.server_date = "Mon, 07 Dec 2026 10:00:30 GMT"

    def request(self, method, url, what, allow_missing=False, look=None, **call):
        self.calls.append((method, url.replace(BASE, ""), call.get("json")))
        if url.endswith("entries:list"):
            return {
                "entries": [{"timestamp": T0, "severity": "INFO", "textPayload": m} for m in self.messages]
            }
        path = url.replace(BASE, "")
        if path == "":
            return self.job
        if path == ":run":
            return {"name": "operations/o1", "metadata": {"name": f"{BASE}/executions/{EXEC}"}}
        if path == "/executions":
            return {"executions": self.listed}
        if path.endswith(":cancel"):
            self.states = ["CANCELLED"]
            return {}
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        if state == "CANCELLED":
            return execution("FAILED", cancelledCount=1, failedCount=0)
        return execution(state)

    def sent(self, method="POST"):
        return [path for m, path, _ in self.calls if m == method]


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def options(**kw):
    p = {k: v.get("default") for k, v in cre.ARGUMENT_SPEC.items()}
    p.update(job=JOB, project="p", location="r", poll_interval=1.0)
    p.update(kw)
    return p


def run(api, check_mode=False, diff=False, **kw):
    lines: list[str] = []
    clock = Clock()
    operator = cre.Operator(lambda *said: lines.extend(said), "bootstrap", "stage")
    result = cre.execute(api, options(**kw), check_mode, diff, operator, clock, clock.sleep)
    return result, lines


def test_a_start_reads_the_job_and_runs_it_once_with_its_etag_and_this_runs_id() -> None:
    api = Api(states=["SUCCEEDED"], messages=["Bootstrap completed: 9 tables synced"])
    result, lines = run(api, wait=True, logs=True, run_id="r1", env={"CLOUDACT_TRIGGER": "release:rel-1"})
    assert [(m, p) for m, p, _ in api.calls][:2] == [("GET", ""), ("POST", ":run")]
    body = api.calls[1][2]
    assert body["etag"] == "e1"
    env = {e["name"]: e["value"] for e in body["overrides"]["containerOverrides"][0]["env"]}
    assert env == {"CLOUDACT_RUN_ID": "r1", "CLOUDACT_TRIGGER": "release:rel-1"}
    assert (result["ok"], result["done"], result["changed"], result["failure"]) == (True, True, True, "")
    assert result["summary"] == "Bootstrap completed: 9 tables synced"
    assert result["shortcut"] == "bootstrap"
    assert lines == [
        f"bootstrap: started {EXEC}",  # finished within the first wait: no cancel hint
        "  | 2026-12-07 10:00:00 INFO    Bootstrap completed: 9 tables synced",
        f"bootstrap: {EXEC} succeeded in 12.0s: Bootstrap completed: 9 tables synced",
    ]


def test_a_long_run_says_how_to_cancel_it_then_a_progress_line_per_interval() -> None:
    api = Api(states=["PENDING"] + ["RUNNING"] * 30 + ["SUCCEEDED"])
    result, lines = run(api, wait=True, progress_interval=5.0)
    assert lines[0] == (
        f"bootstrap: started {EXEC} (waiting; an interrupt leaves it running); "
        f"cancel with: make cancel ENV=stage JOB=bootstrap EXECUTION={EXEC}"
    )
    progress = [line for line in lines if line.startswith("  RUNNING")]
    assert progress and all("tasks: 1 running, 0 succeeded, 0 failed of 1" in line for line in progress)
    assert lines[-1].startswith(f"bootstrap: {EXEC} succeeded in ")
    assert result["ok"] and api.sent() == [":run"]


def test_a_failed_run_is_named_with_its_logs_command() -> None:
    api = Api(states=["FAILED"], messages=["boom", "Container called exit(3)."])
    result, lines = run(api, wait=True, logs=True)
    assert not result["ok"]
    first, second = result["failure"].splitlines()
    assert first.startswith(f"{EXEC} failed: non-zero exit (code 3)")
    assert second == f"full logs: make logs ENV=stage JOB=bootstrap EXECUTION={EXEC}"
    assert lines[-1] == f"bootstrap: {EXEC} failed in 12.0s"


def test_a_run_still_going_when_the_wait_ends_is_not_ok_and_says_so() -> None:
    api = Api(states=["RUNNING"])
    result, _ = run(api, wait=True, wait_timeout=20.0)
    assert (result["done"], result["ok"]) == (False, False)
    assert "not finished (running)" in result["failure"]


def test_the_wait_budget_is_the_executions_own() -> None:
    assert cre.budget(execution()) == runs.wait_budget(60, 0, 1, 0) == 120
    assert cre.budget({"taskCount": 4, "parallelism": 2}) == 600 * 4 * 2 + 60  # Cloud Run's defaults


def test_without_waiting_the_start_is_the_result() -> None:
    api = Api(states=["PENDING"])
    result, lines = run(api)
    assert (result["ok"], result["done"]) == (True, False)
    assert lines == [
        f"bootstrap: started {EXEC} (not waiting); "
        f"cancel with: make cancel ENV=stage JOB=bootstrap EXECUTION={EXEC}"
    ]


def test_check_mode_starts_nothing_and_says_what_it_would_start() -> None:
    api = Api()
    result, lines = run(api, check_mode=True, diff=True, wait=True, if_running="fail", args=["--dry-run"])
    assert api.sent() == []
    assert (result["changed"], result["ok"], result["done"], result["execution"]) == (True, True, False, {})
    assert lines == [
        f"bootstrap: would start an execution of {JOB} on {IMAGE}; nothing was started (check mode)"
    ]
    assert result["diff"]["after"]["overrides"]["containerOverrides"][0]["args"] == ["--dry-run"]


def test_a_job_on_another_digest_than_the_confirmed_one_is_refused_before_any_run() -> None:
    api = Api()
    with pytest.raises(ApiError) as refused:
        run(api, confirmed_digest="sha256:" + "b" * 64)
    assert str(refused.value) == (
        f"refused: you confirmed sha256:{'b' * 64} but {JOB} is pinned to {DIGEST}; nothing was changed"
    )
    assert api.sent() == []


def test_a_running_execution_is_named_and_nothing_is_started() -> None:
    api = Api(listed=[execution("RUNNING"), execution("SUCCEEDED", name="x/executions/old")])
    with pytest.raises(cre.Refused) as refused:
        run(api, if_running="fail", running_hint="Cancel it first")
    assert str(refused.value) == f"{JOB} already has an execution running: {EXEC}. Cancel it first"
    assert refused.value.result == {"running": [EXEC]}
    assert api.sent() == [] and api.sent("GET") == ["/executions"]


def test_options_are_refused_before_any_request() -> None:
    for bad, text in (
        ({"command": ["python", "x.py"]}, "command override 'python x.py' refused"),
        ({"task_count": 0}, "task_count 0: expected 1..10000"),
        ({"timeout": "soon"}, "timeout 'soon'"),
        ({"name": EXEC, "args": ["x"]}, "overrides apply only when starting an execution"),
    ):
        with pytest.raises((InputError, ValueError)) as refused:
            cre.check_options(options(**bad))
        assert str(refused.value).startswith(text), refused.value


def test_a_lost_run_is_adopted_by_its_run_id_and_two_are_refused() -> None:
    lost = Ambiguous("lost", 502, "Mon, 07 Dec 2026 10:00:30 GMT")
    mine = execution(template={"containers": [{"env": [{"name": "CLOUDACT_RUN_ID", "value": "r1"}]}]})
    other = execution(name="x/executions/other", template={})
    assert cre.look_for_run(Api(listed=[other, mine]), options(), "r1", lost) == {"metadata": mine}
    assert cre.look_for_run(Api(listed=[other]), options(), "r1", lost) is None
    with pytest.raises(ApiError, match="both carry run id r1"):
        cre.look_for_run(Api(listed=[mine, dict(mine, name="x/executions/twin")]), options(), "r1", lost)


def test_cancel_cancels_a_running_one_only_and_nothing_in_check_mode() -> None:
    api = Api(states=["RUNNING"])
    result, _ = run(api, check_mode=True, diff=True, state="cancelled", name=EXEC)
    assert api.sent() == [] and result["changed"]
    assert result["diff"]["after"] == {"execution": EXEC, "state": "CANCELLED"}
    result, _ = run(api, state="cancelled", name=EXEC, wait=True)
    assert api.sent() == [f"/executions/{EXEC}:cancel"] and result["changed"]
    assert result["execution"]["state"] == "CANCELLED"
    again, _ = run(api, state="cancelled", name=EXEC)
    assert not again["changed"] and api.sent() == [f"/executions/{EXEC}:cancel"]


def test_the_info_reads_missing_jobs_as_data() -> None:
    class Listing(Api):
        def request(self, method, url, what, allow_missing=False, look=None, **call):
            if "/jobs/gone/" in url:
                return None
            return super().request(method, url, what, allow_missing, look, **call)

    p = {"jobs": [JOB, "gone"], "name": None, "limit": 10, "project": "p", "location": "r"}
    found = cre.read_executions(Listing(listed=[execution("SUCCEEDED")]), p)
    assert found["missing_jobs"] == ["gone"]
    assert [(e["name"], e["state"]) for e in found["executions"]] == [(EXEC, "SUCCEEDED")]
    with pytest.raises(InputError, match="give exactly its job"):
        cre.check_info_options(dict(p, name=EXEC))


# ---- the operator's lines, word for word -------------------------------------------------------------


def ex(name=EXEC, state="SUCCEEDED", elapsed=12.34):
    return {"name": name, "state": state, "elapsed_seconds": elapsed}


@pytest.mark.parametrize(
    ("started", "job", "env", "wait", "expected"),
    [
        (
            {"execution": ex(state="RUNNING"), "done": False},
            "bootstrap",
            "local",
            True,
            f"bootstrap: started {EXEC} (waiting; an interrupt leaves it running); "
            f"cancel with: make cancel ENV=local JOB=bootstrap EXECUTION={EXEC}",
        ),
        (
            {"execution": ex(state="RUNNING"), "done": False},
            "bootstrap",
            "prod",
            False,
            f"bootstrap: started {EXEC} (not waiting); "
            f"cancel with: make cancel ENV=prod JOB=bootstrap EXECUTION={EXEC}",
        ),
        ({"execution": ex(), "done": True}, "bootstrap", "local", True, f"bootstrap: started {EXEC}"),
        (
            {
                "execution": ex(),
                "done": True,
                "lost_answers": ["502; found x and adopted it; nothing was sent twice"],
            },
            "b",
            "local",
            True,
            f"b: started {EXEC}; a lost answer: 502; found x and adopted it; nothing was sent twice",
        ),
    ],
    ids=["waiting", "not-waiting", "done", "lost-answer"],
)
def test_started_line(started, job, env, wait, expected) -> None:
    assert cre.started_line(started, job, env, wait) == expected


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (
            {
                "job": "bootstrap",
                "execution": ex(),
                "lines": ["a", "b"],
                "summary": "Bootstrap completed: 21 tables synced",
            },
            [
                "  | a",
                "  | b",
                f"bootstrap: {EXEC} succeeded in 12.3s: Bootstrap completed: 21 tables synced",
            ],
        ),
        (
            {"job": "bootstrap", "execution": ex(state="FAILED", elapsed=None), "lines": [], "summary": ""},
            [f"bootstrap: {EXEC} failed in 0.0s"],
        ),
    ],
    ids=["report", "report-no-summary"],
)
def test_report_lines(result, expected) -> None:
    assert cre.report_lines(result) == expected


def test_the_release_report_rows_are_the_steps_results() -> None:
    steps = [
        {"shortcut": "migrate", "execution": ex("m-1", elapsed=1.2), "summary": "3 new", "ok": True},
        {"shortcut": "bootstrap", "execution": ex(), "summary": "", "ok": True},
    ]
    api = {"health": {"ok": True, "body": {"status": "healthy", "version": "1", "environment": "local"}}}
    api["bootstrap"] = {"status": "SYNCED"}
    report = runs.release_report("local", steps, api, ["a_local"], "local")
    assert report["ok"] and report["lines"][0] == "release local: 2 step(s)"
    assert report["lines"][2].split() == ["migrate", "m-1", "succeeded", "1s", "3", "new"]
    assert report["lines"][3].split() == ["bootstrap", EXEC, "succeeded", "12s", "-"]
