# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The doctor's checks of the jobs and triggers: the catalog plan, pauses, flags, failed executions.

- The plan is the converge's own: the entries module_utils/converge_plan.py makes of the environment
  (what the cloudact_jobs and cloudact_triggers roles send, through the job_entries and
  trigger_entries filters) and each resource's `converge` (module_utils/cloud_run.py,
  cloud_scheduler.py) in check mode, in this process, over one list of each (no ansible-playbook
  --check, no role YAML read).
- Flags are module_utils/status.py's (OVERDUE, FAILED, STUCK, MISSING) over its three reads.
- A failed last execution is named by module_utils/runs.py's `failure` (cancelled, task timeout,
  missing secret, non-zero exit, retries exhausted) from the execution and its log lines, with the
  `make logs` command that shows them.
"""

from __future__ import annotations

import re

from ansible_collections.cloudact.gcp.plugins.module_utils import (
    cloud_run,
    cloud_scheduler,
    converge_plan,
    status,
)
from ansible_collections.cloudact.gcp.plugins.module_utils import run_execution as rx
from ansible_collections.cloudact.gcp.plugins.module_utils.batch import read_jobs
from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError
from ansible_collections.cloudact.gcp.plugins.module_utils.doctor import (
    FAIL,
    OK,
    WARN,
    Context,
    Row,
    Skip,
    lacks,
)
from ansible_collections.cloudact.gcp.plugins.module_utils.doctor_api import api_url
from ansible_collections.cloudact.gcp.plugins.module_utils.doctor_image import resolved
from ansible_collections.cloudact.gcp.plugins.module_utils.fields import short_name, validate_entries
from ansible_collections.cloudact.gcp.plugins.module_utils.runs import failure

DENIED = re.compile(r"PERMISSION_DENIED|\b403\b|[Pp]ermission denied")
LOG_LINES = 200  # of one failed execution, newest, for its cause


def catalog_jobs(ctx: Context) -> list[dict]:
    return ctx.options["catalog"]["jobs"]


def deployed(ctx: Context) -> dict[str, dict]:
    """{name: Job resource} of the region (one list)."""

    def read():
        try:
            items = read_jobs(ctx.cloud(), cloud_run, ctx.project, ctx.region)
        except ApiError as exc:
            raise lacks("run.jobs.list", exc) or exc from None
        return {short_name(j.get("name")): j for j in items}

    return ctx.once("run_jobs", read)


def triggers(ctx: Context) -> dict[str, dict]:
    """{name: Scheduler Job resource} of the region (one list)."""

    def read():
        try:
            items = read_jobs(ctx.cloud(), cloud_scheduler, ctx.project, ctx.region)
        except ApiError as exc:
            raise lacks("cloudscheduler.jobs.list", exc) or exc from None
        return {short_name(j.get("name")): j for j in items}

    return ctx.once("triggers", read)


def entries(ctx: Context, kind: str) -> list[dict]:
    """The entries the converge would send for `kind` (jobs or triggers), validated as its action does:
    the environment's, over the image the converge pins and the API URL it finds first."""
    data = ctx.options.get("catalog")
    if data is None:
        raise Skip("no catalog: %s" % ctx.cache.get("catalog_error", "see environment"))
    if kind == "jobs":
        image = resolved(ctx).get("image") or ""
        wanted = converge_plan.job_entries(ctx.facts, data, image, api_url(ctx))
        return validate_entries(cloud_run.JOB_OPTIONS, wanted, "jobs")
    wanted = converge_plan.trigger_entries(ctx.facts, data)
    return validate_entries(cloud_scheduler.JOB_OPTIONS, wanted, "jobs")


def plan(ctx: Context) -> dict:
    """{jobs: [results], triggers: [results]}: the converge's check-mode results, over the two lists."""

    def read():
        api, out = ctx.cloud(), {}
        env = ctx.facts["cloudact_env"]
        for kind, resource, wanted, existing in (
            ("jobs", cloud_run, entries(ctx, "jobs"), deployed(ctx)),
            ("triggers", cloud_scheduler, entries(ctx, "triggers"), triggers(ctx)),
        ):
            # As the converge's modules mark them (owner=<env>): each present one as this environment's.
            owned = [resource.own(e, env) if e.get("state") != "absent" else e for e in wanted]
            out[kind] = [
                resource.converge(api, e, existing.get(e["name"]), ctx.project, ctx.region, True, env=env)[0]
                for e in owned
            ]
        return out

    return ctx.once("plan", read)


def _names(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 3 else "%s and %d more" % (", ".join(names[:2]), len(names) - 2)


def check_plan(ctx: Context) -> Row:
    found = plan(ctx)
    changes = []
    for kind in ("jobs", "triggers"):
        by_op = {}
        for r in found[kind]:
            by_op.setdefault(r["operation"], []).append(r)
        if by_op.get("create"):
            changes.append(
                "create %d %s (%s)"
                % (len(by_op["create"]), kind, _names([r["name"] for r in by_op["create"]]))
            )
        for r in by_op.get("update", []):
            changes.append("update %s (%s)" % (r["name"], ", ".join(r["changed_fields"])))
        if by_op.get("delete"):
            changes.append("prune legacy %s" % _names([r["name"] for r in by_op["delete"]]))
    if changes:
        return Row(
            "jobs and triggers", FAIL, "create-jobs would " + "; ".join(changes), ctx.make("create-jobs")
        )
    jobs = catalog_jobs(ctx)
    known = {j["name"] for j in jobs} | {j["trigger"] for j in jobs if j.get("trigger")}
    existing = list(deployed(ctx)) + list(triggers(ctx))
    extra = sorted(n for n in existing if n.startswith("cloudact-") and n not in known)
    counts = "%d jobs and %d triggers" % (len(jobs), sum(1 for j in jobs if j.get("schedule")))
    if extra:
        return Row(
            "jobs and triggers",
            WARN,
            "%s as the catalog says; not in the catalog: %s" % (counts, ", ".join(extra)),
            ctx.make("create-jobs", "PRUNE=1"),
        )
    return Row("jobs and triggers", OK, "%s as the catalog says (create-jobs would change nothing)" % counts)


def check_paused(ctx: Context) -> Row:
    expected = set(ctx.options.get("expect_paused") or [])
    by_trigger = {j["trigger"]: j for j in catalog_jobs(ctx) if j.get("trigger")}
    paused = sorted(
        n
        for n, t in triggers(ctx).items()
        if n in by_trigger and cloud_scheduler.state(t.get("state")) == "PAUSED"
    )
    unexpected = [n for n in paused if by_trigger[n]["shortcut"] not in expected and n not in expected]
    if unexpected:
        words = [by_trigger[n]["shortcut"] for n in unexpected]
        return Row(
            "paused triggers",
            FAIL,
            "paused, not expected by cloudact_doctor_expect_paused: %s (their jobs do not run)"
            % ", ".join(unexpected),
            "; ".join(ctx.make("resume", "JOB=%s" % w) for w in words),
        )
    return Row("paused triggers", OK, "none" if not paused else "as expected: %s" % ", ".join(paused))


def gathered(ctx: Context) -> dict:
    def read():
        try:
            return status.gather(ctx.cloud(), ctx.project, ctx.region, catalog_jobs(ctx))
        except ApiError as exc:
            raise lacks("run.executions.list", exc) or exc from None

    return ctx.once("status", read)


def check_flags(ctx: Context) -> Row:
    found = gathered(ctx)
    report = status.report(
        catalog_jobs(ctx),
        found["jobs"],
        found["triggers"],
        found["executions"],
        found["now"],
        int(ctx.options.get("grace_minutes") or 10) * 60,
    )
    by_flag = {}
    for shortcut, flags in sorted(report["flags"].items()):
        for flag in flags:
            by_flag.setdefault(flag, []).append(shortcut)
    if not by_flag:
        return Row("job status", OK, "no job OVERDUE, FAILED or STUCK")
    fixes, parts = [], []
    order = ["MISSING", "DENIED", "OVERDUE", "STUCK", "FAILED"]
    for flag in order + sorted(f for f in by_flag if f not in order):
        names = by_flag.get(flag) or []
        if not names:
            continue
        parts.append("%s: %s" % (flag, _names(names)))
        if flag == "OVERDUE":
            fixes += [ctx.make("run", "JOB=%s" % n) for n in names]
        elif flag == "STUCK":
            fixes += [ctx.make("cancel", "JOB=%s" % n) for n in names]
        elif flag == "FAILED":
            fixes.append("see failed: " + ", ".join(names))
        elif ctx.make("create-jobs") not in fixes:
            fixes.append(ctx.make("create-jobs"))
    notes = [n for n in report["notes"] if " was due " in n or " has run " in n]
    found_text = "; ".join(parts) + (" (%s)" % "; ".join(notes) if notes else "")
    return Row("job status", FAIL, found_text, "; ".join(fixes))


def check_failures(ctx: Context) -> list[Row]:
    found = gathered(ctx)
    by_name = {j["name"]: j for j in catalog_jobs(ctx)}
    failed = [e for e in found["executions"] if e.get("state") == "FAILED" and e.get("job") in by_name]
    if not failed:
        return [Row("failed executions", OK, "no job's last execution failed")]
    rows = []
    for execution in sorted(failed, key=lambda e: e["job"]):
        job = by_name[execution["job"]]
        logs = ctx.make("logs", "JOB=%s" % job["shortcut"], "EXECUTION=%s" % execution["name"])
        try:
            entries = rx.list_log_entries(
                ctx.cloud(),
                ctx.project,
                job["name"],
                rx.log_filter(job["name"], execution["name"]),
                limit=LOG_LINES,
                newest_first=True,
            )
            messages = [e["message"] for e in entries]
        except ApiError as exc:
            if exc.status != 403:
                raise
            messages = []  # the cause from the execution alone; the logs command still shows them
        cause = failure(execution, messages, logs).splitlines()[0]
        said = " ".join([str(execution.get("message") or ""), *messages])
        if DENIED.search(said) and "permission" not in cause:
            cause += "; permission denied (403) in its calls"
        again = ctx.make("run", "JOB=%s" % job["shortcut"])
        rows.append(Row("failed: %s" % job["shortcut"], FAIL, cause, "%s, then %s" % (logs, again)))
    return rows
