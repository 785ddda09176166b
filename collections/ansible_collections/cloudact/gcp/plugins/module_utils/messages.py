# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the roles print, refuse with and choose, from the data the cloudact.gcp modules return.

Pure functions, so that the YAML only wires module results through the `cloudact.gcp` filters of
plugins/filter/messages.py (no `x if c else y`, no and/or picking values in Jinja), and each
message is unit-tested as data (tests/unit/test_messages.py). Every text is word for word what
the roles printed when they built it in Jinja.
"""

from __future__ import annotations

from typing import Any

# Execution states in which there is something to cancel.
CANCELLABLE = ("PENDING", "RUNNING", "CANCELLING")
# What the converge prunes with PRUNE=1: every job or trigger of ours that the catalog does not list.
PRUNE_PREFIX = "cloudact-"


class BadInput(ValueError):
    """An input the roles should never pass; its text is one line."""


def _dict(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadInput(f"{what}: expected a mapping, got {type(value).__name__}")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise BadInput(f"{what}: expected a list, got {type(value).__name__}")
    return list(value)


def _unique(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


# ---- converge (cloudact_jobs, cloudact_triggers) -------------------------------------------------


def prune_prefix(prune: bool) -> str:
    """The purge_prefix of the converge: ours with PRUNE=1, else '' (the role omits the option)."""
    return PRUNE_PREFIX if prune else ""


def catalog_line(catalog: dict[str, Any], env: str) -> str:
    """'local: 8 jobs, 5 triggers, catalog valid' (playbooks/validate.yml)."""
    jobs = _list(_dict(catalog, "catalog").get("jobs"), "catalog.jobs")
    triggers = [j for j in jobs if _dict(j, "catalog job").get("schedule")]
    return f"{env}: {len(jobs)} jobs, {len(triggers)} triggers, catalog valid"


# ---- pause / resume (cloudact_triggers tasks_from state.yml) -------------------------------------


def trigger_targets(
    resolved: list[dict[str, Any]], catalog_jobs: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The jobs whose triggers to pause or resume: the one the word named, else every scheduled one."""
    resolved = _list(resolved, "resolved jobs")
    if resolved:
        return resolved
    return [j for j in _list(catalog_jobs, "catalog jobs") if _dict(j, "catalog job").get("schedule")]


def trigger_action(jobs: list[dict[str, Any]], state: str, env: str) -> str:
    """What the prod guard's prompt says: 'pause alerts-trigger, ... in prod'."""
    verb = "pause" if state == "paused" else "resume"
    triggers = ", ".join(str(_dict(j, "job").get("trigger")) for j in _list(jobs, "jobs"))
    return f"{verb} {triggers} in {env}"


def trigger_state_line(result: dict[str, Any]) -> str:
    """What one trigger set says: 'x-trigger: paused (changed)' / 'x-trigger: enabled (already so)'."""
    result = _dict(result, "result")
    state = "paused" if result.get("paused") else "enabled"
    change = "(changed)" if result.get("changed") else "(already so)"
    return f"{_dict(result.get('item'), 'result.item').get('trigger')}: {state} {change}"


# ---- run (cloudact_run) --------------------------------------------------------------------------


def checks_dependencies(target: dict[str, Any], check: bool) -> bool:
    """Whether the run checks the release order: asked to, and the job depends on another."""
    return bool(check) and bool(_dict(target, "job").get("depends_on"))


def run_reads(target: dict[str, Any], catalog_jobs: list[dict[str, Any]], dependencies: bool) -> list[str]:
    """The jobs whose executions the run's checks read: the job, and the release jobs for the order."""
    names = [_dict(target, "job")["name"]]
    if dependencies:
        names += [j["name"] for j in _list(catalog_jobs, "catalog jobs") if j.get("release_order")]
    return _unique(names)


def not_deployed(deployed: list[dict[str, Any]], name: str, env: str, project: str) -> str:
    """The refusal of a job that is not deployed, listing the deployed ones."""
    names = ", ".join(str(_dict(j, "job").get("name")) for j in _list(deployed, "deployed jobs"))
    return (
        f"{name} is not deployed in {env} ({project}); deployed: {names or 'none'}. "
        f"Create the jobs with: make create-jobs ENV={env}"
    )


def if_running(force: bool) -> str:
    """cloud_run_execution's if_running: start another anyway when forced, else refuse."""
    return "start" if force else "fail"


# ---- release (cloudact_release) ------------------------------------------------------------------


def release_converge_first(
    found: dict[str, Any], catalog_jobs: list[dict[str, Any]], localcloud: bool, enabled: bool
) -> bool:
    """Converge before releasing: on localcloud, when enabled and none of the catalog's jobs exists."""
    if not (localcloud and enabled):
        return False
    catalog = {j["name"] for j in _list(catalog_jobs, "catalog jobs")}
    return not any(j.get("name") in catalog for j in _list(_dict(found, "found").get("jobs"), "found.jobs"))


def release_refusal(
    deployed: dict[str, Any],
    api: dict[str, Any],
    catalog_jobs: list[dict[str, Any]],
    env: str,
    api_url: str,
    start: str = "",
    dependency: str = "",
) -> str:
    """'' when the release may start, else the first reason why not: a release job is not deployed,
    they run different images, the API does not answer /health, or FROM skips a dependency.
    `deployed`: {jobs: [{name, image}]} (image_pin's); `api`: {health} (cloudact_api_info's)."""
    jobs = _list(_dict(deployed, "deployed").get("jobs"), "deployed.jobs")
    names = [j["name"] for j in _list(catalog_jobs, "catalog jobs") if j.get("release_order")]
    deployed = [j.get("name") for j in jobs]
    missing = _unique([n for n in names if n not in deployed])
    images = _unique([j.get("image") for j in jobs if j.get("name") in names])
    health = _dict(_dict(api, "api").get("health"), "api.health")
    if missing:
        return (
            f"release jobs not deployed in {env}: {', '.join(missing)}; "
            f"create them with make create-jobs ENV={env}"
        )
    if len(images) != 1:
        return (
            f"the release jobs run different images ({', '.join(map(str, images))}); "
            f"converge them with make create-jobs ENV={env}"
        )
    if not health.get("ok"):
        return (
            f"the CloudAct API at {api_url} does not answer /health "
            f"({health.get('error', 'unhealthy')}): nothing was run"
        )
    if start and dependency:
        return f"FROM={start}: {dependency}; resume from an earlier step"
    return ""


def release_plan_line(steps: list[dict[str, Any]], deployed: dict[str, Any], env: str, project: str) -> str:
    """'release prod (project p, image i): migrate -> bootstrap -> org-sync-all'; `deployed` as
    release_refusal's."""
    steps = _list(steps, "steps")
    first = _dict(steps[0], "step")["name"] if steps else None
    jobs = _list(_dict(deployed, "deployed").get("jobs"), "deployed.jobs")
    images = [j.get("image") for j in jobs if j.get("name") == first]
    if not images:
        raise BadInput(f"release plan: the first step {first} is not deployed")
    order = " -> ".join(s["shortcut"] for s in steps)
    return f"release {env} (project {project}, image {images[0]}): {order}"


def release_stop(results: list[dict[str, Any]], steps: list[dict[str, Any]], env: str) -> str:
    """'' when every step that ran succeeded, else why the release stopped at the first that did not
    (its named failure), what was not run, and how to resume after a fix. `results` are the steps'
    cloud_run_execution results, in the order of `steps`."""
    shortcuts = [s["shortcut"] for s in _list(steps, "steps")]
    for index, result in enumerate(_list(results, "results")):
        result = _dict(result, "result")
        if result.get("ok"):
            continue
        step, rest = shortcuts[index], shortcuts[index + 1 :]
        not_run = f"; not run: {', '.join(rest)}" if rest else ""
        return (
            f"release stopped at step {step}: {result.get('failure')} {not_run}. "
            f"After fixing it, resume with: make release ENV={env} FROM={step}"
        )
    return ""


# ---- reports (cloudact_report) -------------------------------------------------------------------


def cancel_targets(runs: dict[str, Any], execution: str) -> list[str]:
    """The executions to cancel: the one named, else every one of the job still running."""
    if execution:
        return [execution]
    executions = _list(_dict(runs, "runs").get("executions"), "runs.executions")
    return [e["name"] for e in executions if e.get("state") in CANCELLABLE]


def cancel_lines(results: list[dict[str, Any]], job: str) -> list[str]:
    """'<execution> cancelled (cancelled now)' per execution, or that there was nothing to cancel; in
    check mode what would be cancelled (the action's `msg`)."""
    lines = []
    for result in _list(results, "results"):
        result = _dict(result, "result")
        if result.get("msg"):
            lines.append(str(result["msg"]))
            continue
        execution = _dict(result.get("execution"), "result.execution")
        what = "(cancelled now)" if result.get("changed") else "(had already finished)"
        lines.append(f"{execution.get('name')} {str(execution.get('state')).lower()} {what}")
    return lines or [f"{job}: no running execution to cancel"]


def logs_since(since: str, execution: str) -> str:
    """How far back to read logs: SINCE, except for one execution (all of its lines)."""
    return "" if execution else since


def log_lines(lines: list[str], job: str, execution: str, since: str) -> list[str]:
    """The log lines, or which ones there were none of."""
    lines = _list(lines, "lines")
    if lines:
        return lines
    where = f" for {execution}" if execution else f" in the last {since}"
    return [f"{job}: no log entries{where}"]
