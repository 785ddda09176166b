"""module_utils/messages.py: what the roles print, refuse with and choose, as data cases.

Each expected text is word for word what the roles printed when they built it in Jinja (the
e2e and Ansible tests assert many of them through the plays).
"""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.cloudact.gcp.plugins.filter.messages import FilterModule
from ansible_collections.cloudact.gcp.plugins.module_utils import messages as m


def job(name, shortcut, **kw):
    return {"name": f"cloudact-{name}", "shortcut": shortcut, "depends_on": [], **kw}


def scheduled(name, shortcut, cron):
    return job(name, shortcut, schedule=cron, trigger=f"cloudact-{name}-trigger")


MIGRATE = job("manual-supabase-migrate", "migrate", release_order=1)
BOOTSTRAP = job("manual-bootstrap", "bootstrap", release_order=2, depends_on=["migrate"])
ORG_SYNC = job("manual-org-sync-all", "org-sync-all", release_order=3, depends_on=["bootstrap"])
ALERTS = scheduled("daily-alerts", "alerts", "0 8 * * *")
QUOTA = scheduled("daily-quota-reset", "quota-reset", "0 0 * * *")
CATALOG = [MIGRATE, BOOTSTRAP, ORG_SYNC, ALERTS, QUOTA]
STEPS = [MIGRATE, BOOTSTRAP, ORG_SYNC]
IMG = "us-central1-docker.pkg.dev/cloudact-local/cloudact/cloudact-jobs-local:latest"
DEPLOYED = [{"name": j["name"], "image": IMG} for j in CATALOG]
HEALTHY = {"ok": True, "status_code": 200}
FOUND = {"jobs": DEPLOYED}  # the release jobs image_pin listed
API = {"health": HEALTHY}  # cloudact_api_info's answer
EXEC = "cloudact-manual-bootstrap-x7k2p"
FILTERS = FilterModule().filters()


def ex(name=EXEC, state="SUCCEEDED", elapsed=12.34, **kw):
    return {"name": name, "state": state, "elapsed_seconds": elapsed, **kw}


CASES = [
    # id, function, args, expected
    ("prune", m.prune_prefix, (True,), "cloudact-"),
    ("no-prune", m.prune_prefix, (False,), ""),
    (
        "catalog-line",
        m.catalog_line,
        ({"jobs": CATALOG}, "local"),
        "local: 5 jobs, 2 triggers, catalog valid",
    ),
    # pause / resume
    ("trigger-one", m.trigger_targets, ([ALERTS], CATALOG), [ALERTS]),
    ("trigger-all", m.trigger_targets, ([], CATALOG), [ALERTS, QUOTA]),
    ("trigger-all-from-map", m.trigger_targets, (iter([]), CATALOG), [ALERTS, QUOTA]),
    (
        "pause-action",
        m.trigger_action,
        ([ALERTS, QUOTA], "paused", "prod"),
        "pause cloudact-daily-alerts-trigger, cloudact-daily-quota-reset-trigger in prod",
    ),
    (
        "resume-action",
        m.trigger_action,
        ([ALERTS], "enabled", "local"),
        "resume cloudact-daily-alerts-trigger in local",
    ),
    (
        "trigger-paused",
        m.trigger_state_line,
        ({"item": ALERTS, "paused": True, "changed": True},),
        "cloudact-daily-alerts-trigger: paused (changed)",
    ),
    (
        "trigger-enabled",
        m.trigger_state_line,
        ({"item": QUOTA, "paused": False, "changed": False},),
        "cloudact-daily-quota-reset-trigger: enabled (already so)",
    ),
    # run
    ("deps-checked", m.checks_dependencies, (BOOTSTRAP, True), True),
    ("deps-not-asked", m.checks_dependencies, (BOOTSTRAP, False), False),
    ("deps-none", m.checks_dependencies, (MIGRATE, True), False),
    ("reads-job", m.run_reads, (ALERTS, CATALOG, False), ["cloudact-daily-alerts"]),
    (
        "reads-release",
        m.run_reads,
        (BOOTSTRAP, CATALOG, True),
        ["cloudact-manual-bootstrap", "cloudact-manual-supabase-migrate", "cloudact-manual-org-sync-all"],
    ),
    (
        "not-deployed",
        m.not_deployed,
        ([{"name": "a"}, {"name": "b"}], "cloudact-daily-alerts", "local", "cloudact-local"),
        "cloudact-daily-alerts is not deployed in local (cloudact-local); deployed: a, b. "
        "Create the jobs with: make create-jobs ENV=local",
    ),
    (
        "none-deployed",
        m.not_deployed,
        ([], "x", "local", "p"),
        "x is not deployed in local (p); deployed: none. Create the jobs with: make create-jobs ENV=local",
    ),
    ("force", m.if_running, (True,), "start"),
    ("no-force", m.if_running, (False,), "fail"),
    # release
    ("converge-fresh", m.release_converge_first, ({"jobs": [{"name": "other"}]}, CATALOG, True, True), True),
    ("converge-not-local", m.release_converge_first, ({"jobs": []}, CATALOG, False, True), False),
    ("converge-disabled", m.release_converge_first, ({"jobs": []}, CATALOG, True, False), False),
    ("converge-has-jobs", m.release_converge_first, ({"jobs": DEPLOYED[:1]}, CATALOG, True, True), False),
    ("release-ok", m.release_refusal, (FOUND, API, CATALOG, "local", "https://api"), ""),
    (
        "release-missing",
        m.release_refusal,
        ({"jobs": DEPLOYED[3:]}, API, CATALOG, "prod", "https://api"),
        "release jobs not deployed in prod: cloudact-manual-supabase-migrate, cloudact-manual-bootstrap, "
        "cloudact-manual-org-sync-all; create them with make create-jobs ENV=prod",
    ),
    (
        "release-image-check",  # image_pin's whole result: only its jobs count (listed after a converge)
        m.release_refusal,
        ({"pin": True, "deployed": {}, "jobs": DEPLOYED[:3], "missing": False}, API, CATALOG, "local", "u"),
        "",
    ),
    (
        "release-images",
        m.release_refusal,
        (
            {"jobs": [*DEPLOYED[:2], {"name": ORG_SYNC["name"], "image": "old"}]},
            API,
            CATALOG,
            "stage",
            "u",
        ),
        f"the release jobs run different images ({IMG}, old); converge them with make create-jobs ENV=stage",
    ),
    (
        "release-unhealthy",
        m.release_refusal,
        (
            FOUND,
            {"health": {"ok": False, "error": "HTTP 503"}},
            CATALOG,
            "local",
            "https://api.x",
        ),
        "the CloudAct API at https://api.x does not answer /health (HTTP 503): nothing was run",
    ),
    (
        "release-unhealthy-no-error",
        m.release_refusal,
        (FOUND, {"health": {"ok": False}}, CATALOG, "local", "https://api.x"),
        "the CloudAct API at https://api.x does not answer /health (unhealthy): nothing was run",
    ),
    (
        "release-dependency",
        m.release_refusal,
        (
            FOUND,
            API,
            CATALOG,
            "local",
            "u",
            "bootstrap",
            "bootstrap depends on migrate, which has not succeeded (it never ran)",
        ),
        "FROM=bootstrap: bootstrap depends on migrate, which has not succeeded (it never ran); "
        "resume from an earlier step",
    ),
    (
        "release-dependency-without-from",
        m.release_refusal,
        (FOUND, API, CATALOG, "local", "u", "", "x depends on y"),
        "",
    ),
    (
        "plan",
        m.release_plan_line,
        (STEPS, FOUND, "local", "cloudact-local"),
        f"release local (project cloudact-local, image {IMG}): migrate -> bootstrap -> org-sync-all",
    ),
    (
        "plan-from",
        m.release_plan_line,
        (STEPS[1:], {"jobs": DEPLOYED[1:3]}, "local", "p"),
        f"release local (project p, image {IMG}): bootstrap -> org-sync-all",
    ),
    (
        "stop-first",
        m.release_stop,
        (
            [{"ok": False, "failure": "x failed: non-zero exit (code 1)\nfull logs: make logs"}],
            STEPS,
            "local",
        ),
        "release stopped at step migrate: x failed: non-zero exit (code 1)\nfull logs: make logs "
        "; not run: bootstrap, org-sync-all. "
        "After fixing it, resume with: make release ENV=local FROM=migrate",
    ),
    (
        "stop-last",
        m.release_stop,
        ([{"ok": True}, {"ok": True}, {"ok": False, "failure": "f"}], STEPS, "prod"),
        "release stopped at step org-sync-all: f . "  # the space before the dot is what users see today
        "After fixing it, resume with: make release ENV=prod FROM=org-sync-all",
    ),
    ("stop-none", m.release_stop, ([{"ok": True}] * 3, STEPS, "local"), ""),
    ("stop-none-from", m.release_stop, ([{"ok": True}] * 2, STEPS[1:], "local"), ""),
    # reports
    ("cancel-named", m.cancel_targets, ({"skipped": True}, "e-1"), ["e-1"]),
    (
        "cancel-running",
        m.cancel_targets,
        (
            {
                "executions": [
                    ex("e-1", "RUNNING"),
                    ex("e-2", "SUCCEEDED"),
                    ex("e-3", "PENDING"),
                    ex("e-4", "CANCELLING"),
                ]
            },
            "",
        ),
        ["e-1", "e-3", "e-4"],
    ),
    (
        "cancel-lines",
        m.cancel_lines,
        (
            [
                {"execution": ex("e-1", "CANCELLED"), "changed": True},
                {"execution": ex("e-2", "SUCCEEDED"), "changed": False},
            ],
            "j",
        ),
        ["e-1 cancelled (cancelled now)", "e-2 succeeded (had already finished)"],
    ),
    (
        "cancel-check-mode",
        m.cancel_lines,
        (
            [
                {
                    "execution": ex("e-1", "RUNNING"),
                    "changed": True,
                    "msg": "would cancel e-1 (RUNNING); nothing",
                }
            ],
            "j",
        ),
        ["would cancel e-1 (RUNNING); nothing"],
    ),
    (
        "cancel-nothing",
        m.cancel_lines,
        ([], "cloudact-daily-alerts"),
        ["cloudact-daily-alerts: no running execution to cancel"],
    ),
    ("since", m.logs_since, ("1h", ""), "1h"),
    ("since-execution", m.logs_since, ("1h", "e-1"), ""),
    ("log-lines", m.log_lines, (["a", "b"], "j", "", "1h"), ["a", "b"]),
    (
        "no-logs-since",
        m.log_lines,
        ([], "cloudact-daily-alerts", "", "30m"),
        ["cloudact-daily-alerts: no log entries in the last 30m"],
    ),
    ("no-logs-execution", m.log_lines, ([], "j", "e-1", "1h"), ["j: no log entries for e-1"]),
]


@pytest.mark.parametrize(("fn", "args", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_message(fn, args, expected) -> None:
    assert fn(*args) == expected


def test_every_function_is_a_filter() -> None:
    functions = {c[1].__name__ for c in CASES}
    assert functions <= set(FILTERS), functions - set(FILTERS)


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        ("prune_prefix", ("false",), ""),  # -e cloudact_prune_unlisted=false is a string
        ("prune_prefix", ("true",), "cloudact-"),
        ("if_running", ("yes",), "start"),
        ("checks_dependencies", (BOOTSTRAP, "False"), False),
        ("run_reads", (BOOTSTRAP, CATALOG, "no"), ["cloudact-manual-bootstrap"]),
        ("release_converge_first", ({"jobs": []}, CATALOG, "true", "false"), False),
    ],
)
def test_filters_read_flags_as_the_bool_filter(name, args, expected) -> None:
    assert FILTERS[name](*args) == expected


@pytest.mark.parametrize(
    ("name", "args", "error"),
    [
        ("release_stop", ("text", STEPS, "local"), "results: expected a list, got str"),
        ("cancel_lines", ({"a": 1}, "j"), "results: expected a list, got dict"),
        (
            "release_plan_line",
            (STEPS, {"jobs": DEPLOYED[1:]}, "local", "p"),
            "release plan: the first step cloudact-manual-supabase-migrate is not deployed",
        ),
        (
            "release_stop",
            ([{"ok": True}] * 3 + [{"ok": False, "failure": "f"}], STEPS, "local"),
            "release_stop: unexpected input (IndexError: list index out of range)",
        ),
        ("run_reads", ({"shortcut": "x"}, CATALOG, False), "run_reads: unexpected input (KeyError: 'name')"),
    ],
)
def test_bad_input_is_one_filter_error_line(name, args, error) -> None:
    with pytest.raises(AnsibleFilterError) as raised:
        FILTERS[name](*args)
    assert raised.value.message == error
