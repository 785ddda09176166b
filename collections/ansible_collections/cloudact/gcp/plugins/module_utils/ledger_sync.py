# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operator side's ledger writers: the toolkit's record of a run it waited for, and reconciliation.

Both read Cloud Run's own record of the executions (v2 Execution resources), turn each into an
observation (module_utils/ledger.py) and append only those that change what the ledger's view shows.
Reconciliation reads every execution Cloud Run still has for the catalog's jobs (one paged list of
`jobs/-/executions`) and the view's rows created since the oldest of them (one query), so a second
run appends nothing; it fills result, duration and failure class of runs that died before their own
insert (a task timeout, a kill).
"""

from __future__ import annotations

from datetime import timedelta

from ansible_collections.cloudact.gcp.plugins.module_utils import cloud_run, ledger
from ansible_collections.cloudact.gcp.plugins.module_utils import run_execution as rx
from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError
from ansible_collections.cloudact.gcp.plugins.module_utils.timefmt import parse_time

PAGE = 1000  # executions per list page (Cloud Run's maximum)
MARGIN = timedelta(days=1)  # the view's rows read reach this far before the oldest execution listed


def job_resources(api, project, region):
    """The region's Cloud Run jobs by ID (their templates tell an execution's overrides)."""
    return {
        j["name"].rsplit("/", 1)[-1]: j
        for j in api.list_all(cloud_run.jobs_url(project, region), "jobs", "Cloud Run jobs of %s" % project)
    }


def run_observations(api, project, region, runs, catalog_jobs, env, trigger_account=""):
    """The toolkit's observations of `runs` = [{job, name, messages?, summary?}] it waited for (an
    execution Cloud Run no longer has is skipped)."""
    by_name = {j["name"]: j for j in catalog_jobs}
    observations = []
    resources = {}
    for run in runs:
        job = run["job"]
        if job not in resources:
            resources[job] = api.request(
                "GET", rx.job_url(project, region, job), "Cloud Run job %s" % job, allow_missing=True
            )
        execution = api.request(
            "GET",
            rx.execution_url(project, region, job, run["name"]),
            "Cloud Run execution %s" % run["name"],
            allow_missing=True,
        )
        if execution is None:
            continue
        observations.append(
            ledger.observation_from_execution(
                execution,
                by_name.get(job),
                env,
                source="toolkit",
                observed_at=rx.server_now(api),
                job_resource=resources[job],
                messages=run.get("messages") or (),
                summary=run.get("summary") or None,
                trigger_account=trigger_account,
            )
        )
    return observations


def execution_observations(
    api, project, region, catalog_jobs, env, trigger_account="", dataset=ledger.DATASET
):
    """Reconciliation's observations: (observations, the view's rows by execution, jobs listed), from
    every execution Cloud Run has of the catalog's jobs."""
    wanted = {j["name"]: j for j in catalog_jobs}
    resources = job_resources(api, project, region)
    executions = [
        e
        for e in api.list_all(
            rx.executions_url(project, region, "-"),
            "executions",
            "executions of %s/%s" % (project, region),
            params={"pageSize": PAGE},
        )
        if (e.get("job") or rx.summary(e)["job"]) in wanted
    ]
    now = rx.server_now(api)
    created = [t for t in (parse_time(e.get("createTime")) for e in executions) if t]
    shown = {}
    if executions:
        rows = ledger.read_rows(
            api, project, dataset=dataset, since=min(created) - MARGIN if created else None
        )
        shown = {r["execution"]: r for r in rows}
    observations = [
        ledger.observation_from_execution(
            e,
            wanted.get(e.get("job")),
            env,
            source="reconcile",
            observed_at=now,
            job_resource=resources.get(e.get("job")),
            trigger_account=trigger_account,
        )
        for e in executions
    ]
    return observations, shown, sorted({e.get("job") for e in executions})


def record_runs(api, project, region, runs, catalog_jobs, env, trigger_account="", dataset=ledger.DATASET):
    """The toolkit's writer: `runs` = [{job, name, messages?, summary?}] it waited for; the appended."""
    observations = run_observations(api, project, region, runs, catalog_jobs, env, trigger_account)
    return ledger.record(api, project, observations, dataset=dataset)


def reconcile(api, project, region, catalog_jobs, env, trigger_account="", dataset=ledger.DATASET):
    """Reconciliation: {listed, appended (observations), jobs} from every execution Cloud Run has."""
    observations, shown, jobs = execution_observations(
        api, project, region, catalog_jobs, env, trigger_account, dataset
    )
    appended = ledger.record(api, project, observations, dataset=dataset, shown=shown)
    return {"listed": len(observations), "appended": appended, "jobs": jobs}


def check_runs(runs):
    """InputError naming a run that is not {job, name, messages?, summary?}, before any request."""
    for index, item in enumerate(runs or []):
        if not isinstance(item, dict) or not item.get("job") or not item.get("name"):
            raise InputError("runs[%d]: expected {job, name, messages?, summary?}, got %r" % (index, item))


def sync(
    api,
    project,
    region,
    catalog_jobs,
    env,
    trigger_account="",
    dataset=ledger.DATASET,
    runs=None,
    check=False,
    diff=False,
    best_effort=False,
):
    """What ledger_sync returns: with `runs`, the toolkit's record of them; without, reconciliation.
    {changed, listed, appended, executions, lines[, diff][, warnings]}; in check mode nothing is appended
    (`appended` counts what would be). With `best_effort`, a ledger that cannot be read or written is a
    warning naming make ledger-sync, not a failure (the runs it records happened either way)."""
    check_runs(runs)
    ledger.table_path(project, dataset, ledger.TABLE)
    where = "%s.%s" % (project, dataset)
    would = "would be " if check else ""
    try:
        if runs is not None:
            observations = run_observations(api, project, region, runs, catalog_jobs, env, trigger_account)
            new, shown = ledger.pending(api, project, observations, dataset=dataset)
            listed = len(runs)
            line = "ledger %s: %s %s" % (
                where,
                "would record" if check else "recorded",
                ", ".join(o["execution"] for o in new) or "nothing new",
            )
        else:
            observations, shown, _jobs = execution_observations(
                api, project, region, catalog_jobs, env, trigger_account, dataset
            )
            new, shown = ledger.pending(api, project, observations, dataset=dataset, shown=shown)
            listed = len(observations)
            line = "ledger %s: %d execution(s) in Cloud Run, %d observation(s) %sappended" % (
                where,
                listed,
                len(new),
                would,
            )
        if not check:
            ledger.append(api, project, new, dataset=dataset)
    except ApiError as exc:
        if not best_effort:
            raise
        warning = "ledger %s not written (%s); make ledger-sync ENV=%s records it later" % (where, exc, env)
        return dict(changed=False, listed=0, appended=0, executions=[], lines=[], warnings=[warning])
    result = dict(
        changed=bool(new),
        listed=listed,
        appended=len(new),
        executions=[o["execution"] for o in new],
        lines=[line],
    )
    if diff and new:
        result["diff"] = ledger.view_diff(new, shown)
    return result
