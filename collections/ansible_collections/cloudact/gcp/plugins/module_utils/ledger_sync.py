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
from ansible_collections.cloudact.gcp.plugins.module_utils.timefmt import parse_time

PAGE = 1000  # executions per list page (Cloud Run's maximum)
MARGIN = timedelta(days=1)  # the view's rows read reach this far before the oldest execution listed


def job_resources(api, project, region):
    """The region's Cloud Run jobs by ID (their templates tell an execution's overrides)."""
    return {
        j["name"].rsplit("/", 1)[-1]: j
        for j in api.list_all(cloud_run.jobs_url(project, region), "jobs", "Cloud Run jobs of %s" % project)
    }


def record_runs(api, project, region, runs, catalog_jobs, env, trigger_account="", dataset=ledger.DATASET):
    """The toolkit's writer: `runs` = [{job, name, messages?, summary?}] it waited for; the appended."""
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
    return ledger.record(api, project, observations, dataset=dataset)


def reconcile(api, project, region, catalog_jobs, env, trigger_account="", dataset=ledger.DATASET):
    """Reconciliation: {listed, appended (observations), jobs} from every execution Cloud Run has."""
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
    appended = ledger.record(api, project, observations, dataset=dataset, shown=shown)
    return {
        "listed": len(executions),
        "appended": appended,
        "jobs": sorted({e.get("job") for e in executions}),
    }
