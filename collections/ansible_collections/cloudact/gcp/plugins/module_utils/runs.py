"""Running jobs by hand and the release: inputs, progress lines, named failures, the release plan.

Pure functions on the data the cloudact.gcp modules return, used by the cloudact_run and
cloudact_release roles through the `cloudact.gcp` ops filters, and unit-tested as data.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError as ToolkitError
from ansible_collections.cloudact.gcp.plugins.module_utils.table import table
from ansible_collections.cloudact.gcp.plugins.module_utils.timefmt import seconds

# The one summary line each job script ends with (docs/cloudact-api.md, "Summary lines").
SUMMARY_PATTERNS = [
    re.compile(p)
    for p in (
        r"^Bootstrap completed: \d+ tables? synced",
        r"^Synced \d+ org datasets?",
        r"^\d+ migrations? already applied, \d+ new",
        r"^Daily quota reset complete for \d+ orgs?",
        r"^Cleaned up \d+ stale concurrent counters?",
        r"^Processed alerts for \d+ orgs?",
        r"^Monthly quota reset complete for \d+ orgs?",
        r"^Deleted \d+ quota records? older than \d+ days?",
        r"^Monthly quota reset skipped",
    )
]
_SYSTEM = re.compile(r"^Container called exit\(\d+\)\.$")
_EXIT = re.compile(r"Container called exit\((\d+)\)")
_TIMEOUT = re.compile(r"maximum timeout|timed? ?out|deadline exceeded", re.IGNORECASE)
_SECRET = re.compile(
    r"secret[^\n]*(not found|does not exist|permission|denied|missing|no enabled version)", re.IGNORECASE
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_args(text: str | None) -> list[str]:
    """ARGS="--dry-run --org-slug acme" -> ['--dry-run', '--org-slug', 'acme']; one-line error if bad."""
    if not text or not str(text).strip():
        return []
    try:
        return shlex.split(str(text))
    except ValueError as exc:
        raise ToolkitError(f"ARGS={text!r}: {exc}; quote arguments the way a shell would") from None


def parse_env(text: str | None) -> dict[str, str]:
    """RUN_ENV="A=1 B=two" -> {'A': '1', 'B': 'two'}; names must be env names."""
    out: dict[str, str] = {}
    for item in parse_args(text):
        name, sep, value = item.partition("=")
        if not sep or not _ENV_NAME.match(name):
            raise ToolkitError(
                f"RUN_ENV item {item!r}: expected NAME=value with NAME like DRY_RUN or DAYS_TO_KEEP"
            )
        out[name] = value
    return out


def wait_budget(timeout_seconds: int, max_retries: int, task_count: int = 1, parallelism: int = 0) -> int:
    """Seconds to wait for an execution: timeout x (retries + 1) per wave of tasks, plus start-up slack."""
    waves = 1 if not parallelism or parallelism >= task_count else -(-task_count // parallelism)
    return int(timeout_seconds) * (int(max_retries) + 1) * waves + 60


def progress(execution: dict[str, Any]) -> str:
    """'RUNNING  tasks: 1 running, 0 succeeded, 0 failed  elapsed 12s'."""
    return (
        f"{execution.get('state', '?'):<10} tasks: {execution.get('running', 0)} running, "
        f"{execution.get('succeeded', 0)} succeeded, {execution.get('failed', 0)} failed "
        f"of {execution.get('task_count', 1)}  elapsed {seconds(execution.get('elapsed_seconds'))}"
    )


def summary_line(messages: list[str]) -> str:
    """The job's summary line among its log messages (the last one that matches), else ''."""
    for message in reversed(messages):
        text = str(message).strip()
        if any(p.search(text) for p in SUMMARY_PATTERNS):
            return text
    return ""


def failure(execution: dict[str, Any], messages: list[str], logs_command: str) -> str:
    """Why an execution did not succeed, named: cancelled, task timeout, missing secret, non-zero exit,
    retries exhausted; with the command that shows the full logs."""
    name = execution.get("name", "?")
    state = execution.get("state", "?")
    text = "\n".join(str(m) for m in messages)
    reasons: list[str] = []
    if state == "CANCELLED":
        reasons.append("cancelled")
    else:
        condition = str(execution.get("message") or "")
        if _SECRET.search(condition) or _SECRET.search(text):
            reasons.append("missing secret")
        if _TIMEOUT.search(condition) or any("maximum timeout" in m for m in messages):
            reasons.append(f"task timeout ({execution.get('timeout') or '?'})")
        codes = [c for c in _EXIT.findall(text) if c != "0"]
        code = re.search(r"exit(?:ed with)? code:? ?(\d+)", condition)
        if code and code.group(1) != "0":
            codes.append(code.group(1))
        if codes:
            reasons.append(f"non-zero exit (code {codes[-1]})")
        attempts = int(execution.get("max_retries") or 0) + 1
        if state == "FAILED" and attempts > 1 and int(execution.get("retried") or 0) > 0:
            reasons.append(f"retries exhausted ({attempts} attempts)")
        if state != "FAILED":
            reasons.append(f"not finished ({state.lower()})")
        if not reasons:
            reasons.append(condition or "failed")
    detail = str(execution.get("message") or "").strip()
    line = f"{name} {state.lower()}: {', '.join(reasons)}"
    if detail and detail not in line:
        line += f" - {detail}"
    return f"{line}\nfull logs: {logs_command}"


def release_plan(catalog_jobs: list[dict[str, Any]], start: str | None = None) -> list[dict[str, Any]]:
    """The release steps in order, from `start` (a shortcut or alias) on; one-line error for a bad FROM."""
    steps = sorted((j for j in catalog_jobs if j.get("release_order")), key=lambda j: j["release_order"])
    if not start:
        return steps
    word = str(start).strip().lower()
    for index, job in enumerate(steps):
        names = {job["shortcut"], job["name"], job["name"].removeprefix("cloudact-"), *job.get("aliases", [])}
        if word in names:
            return steps[index:]
    valid = ", ".join(j["shortcut"] for j in steps)
    raise ToolkitError(f"FROM={start!r} is not a release step: valid steps are {valid}")


def dependency_warning(
    job: dict[str, Any], catalog_jobs: list[dict[str, Any]], executions: list[dict[str, Any]]
) -> str:
    """'' when every dependency of a release job succeeded since the last migrate, else why not.

    `executions`: summaries of the release jobs, any order. The first release step is the
    "migrate": a dependency run older than the last migrate does not count.
    """
    if not job.get("depends_on"):
        return ""
    by_short = {j["shortcut"]: j for j in catalog_jobs}
    steps = sorted((j for j in catalog_jobs if j.get("release_order")), key=lambda j: j["release_order"])
    first = steps[0]["name"] if steps else None
    runs = sorted(executions, key=lambda e: e.get("create_time") or "")
    migrate_runs = [e for e in runs if e["job"] == first]
    since = migrate_runs[-1]["create_time"] if migrate_runs else ""
    problems = []
    for dep in job["depends_on"]:
        dep_job = by_short[dep]
        ok = [
            e
            for e in runs
            if e["job"] == dep_job["name"]
            and e["state"] == "SUCCEEDED"
            and (e.get("create_time") or "") >= since
        ]
        if not ok:
            last = [e for e in runs if e["job"] == dep_job["name"]]
            what = f"its last run {last[-1]['name']} {last[-1]['state'].lower()}" if last else "it never ran"
            scope = " since the last migrate" if since and dep_job["name"] != first else ""
            problems.append(f"{dep}, which has not succeeded{scope} ({what})")
    if not problems:
        return ""
    return f"{job['shortcut']} depends on " + "; ".join(problems)


def release_report(
    env: str, results: list[dict[str, Any]], api: dict[str, Any], datasets: list[str], suffix: str
) -> dict[str, Any]:
    """The report after the release: each step's summary line, then the seed's "Validate After Release"
    checks (API /health, bootstrap status SYNCED, org datasets with the env's suffix). {lines, ok, failed}.
    `results`: the steps' cloud_run_execution results (shortcut, execution, summary), in order."""
    rows = []
    for r in results:
        ex = r.get("execution") or {}
        rows.append(
            [
                r.get("shortcut") or "?",
                ex.get("name", "-"),
                str(ex.get("state") or ("would start" if r.get("changed") else "?")).lower(),
                seconds(ex.get("elapsed_seconds")),
                r.get("summary") or "-",
            ]
        )
    lines = [f"release {env}: {len(results)} step(s)"]
    lines += ["  " + line for line in table(["step", "execution", "result", "duration", "summary"], rows)]
    health = api.get("health") or {}
    boot = api.get("bootstrap") or {}
    body = health.get("body") or {}
    checks = [
        (
            "API /health",
            bool(health.get("ok")),
            f"{body.get('status', '?')} (version {body.get('version', '?')}, {body.get('environment', '?')})"
            if health.get("ok")
            else health.get("error", "no answer"),
        ),
        (
            "bootstrap status",
            boot.get("status") == "SYNCED",
            (boot.get("status") or boot.get("error", "no answer"))
            + ("" if boot.get("status") in ("SYNCED", None) else " (SYNCED expected)"),
        ),
        (f"org datasets (*_{suffix})", True, str(len(datasets))),
    ]
    lines.append("validation:")
    lines += [
        "  " + line
        for line in table(
            ["check", "result", "detail"], [[n, "ok" if ok else "FAILED", d] for n, ok, d in checks]
        )
    ]
    failed = [n for n, ok, _detail in checks if not ok]
    return {"lines": lines, "ok": not failed, "failed": failed}
