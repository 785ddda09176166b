# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The execution ledger: BigQuery `<project>.cloudact_ops`, kept past Cloud Run's retention.

Append-only. BigQuery refuses UPDATE, DELETE and MERGE over rows streamed in the last 30 minutes,
and a job's own write at its end is a streaming insert; so nothing here ever changes a row. Every
writer appends an *observation* of one execution to the base table `job_execution_observations`
(partitioned by DAY on `created`, the retention as partition expiration), and the view
`job_executions` gives one row per execution:

- state fields from the observation that ranks first: a finished one (succeeded, failed,
  cancelled) before one that still runs; among those, Cloud Run's own record (sources `toolkit`,
  `reconcile`) before the job's word about itself (source `job`, whose clock and knowledge are
  the task's); then the latest `observed_at` (within the same second, one that carries a summary:
  the Date header that times Cloud Run's records has second resolution);
- `summary` from the latest observation of source `job` that has one, else from the latest that has
  one (the toolkit reads it from the run's log lines).

A writer appends only an observation that would change what the view shows (`changes`), so every
writer run twice adds nothing. Writers: the toolkit for each run it waited for, reconciliation
from Cloud Run's executions (make ledger-sync, after each release), and each job's
own runtime at its end (jobs/runtime/ledger.py, a streaming insert of the same columns).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime

from ansible_collections.cloudact.gcp.plugins.module_utils import bigquery as bq
from ansible_collections.cloudact.gcp.plugins.module_utils import run_execution as rx
from ansible_collections.cloudact.gcp.plugins.module_utils import runs, status
from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError
from ansible_collections.cloudact.gcp.plugins.module_utils.timefmt import parse_time, rfc3339

SCHEMA_VERSION = 1
DATASET = "cloudact_ops"
TABLE = "job_execution_observations"
VIEW = "job_executions"
SOURCES = ("job", "toolkit", "reconcile")
RESULTS = ("running", "succeeded", "failed", "cancelled")
FAILURE_CLASSES = (
    "exit_code",
    "timeout",
    "cancelled",
    "retries_exhausted",
    "missing_secret",
    "permission",
    "unknown",
)

# The view's columns, in order: (name, BigQuery type, mode, description).
FIELDS = (
    ("execution", "STRING", "REQUIRED", "The Cloud Run execution's short name (the key)."),
    ("job", "STRING", "REQUIRED", "The Cloud Run job."),
    ("environment", "STRING", "NULLABLE", "The inventory's environment (local, test, stage, prod)."),
    ("trigger", "STRING", "NULLABLE", "scheduler, manual or release."),
    ("principal", "STRING", "NULLABLE", "Who started a manual run (its creator); empty otherwise."),
    ("release_id", "STRING", "NULLABLE", "The release of a release run."),
    ("creator", "STRING", "NULLABLE", "Cloud Run's execution creator."),
    ("image", "STRING", "NULLABLE", "The execution's image (<repository>@sha256:<digest> when pinned)."),
    ("overrides", "STRING", "NULLABLE", "JSON of the run's overrides (env names only, never values)."),
    ("created", "TIMESTAMP", "REQUIRED", "When the execution was created."),
    ("started", "TIMESTAMP", "NULLABLE", "When its first task started."),
    ("completed", "TIMESTAMP", "NULLABLE", "When it finished."),
    ("duration_s", "FLOAT64", "NULLABLE", "completed - started, in seconds."),
    ("result", "STRING", "NULLABLE", "running, succeeded, failed or cancelled."),
    ("failure_class", "STRING", "NULLABLE", "Why it failed: " + ", ".join(FAILURE_CLASSES) + "."),
    ("exit_code", "INT64", "NULLABLE", "The failing container's exit code, when known."),
    ("attempts", "INT64", "NULLABLE", "Task attempts (task count plus retries, at least)."),
    ("retries", "INT64", "NULLABLE", "Tasks retried (Cloud Run's retriedCount)."),
    ("task_count", "INT64", "NULLABLE", "Tasks of the execution."),
    ("succeeded_count", "INT64", "NULLABLE", "Tasks that succeeded."),
    ("failed_count", "INT64", "NULLABLE", "Tasks that failed."),
    ("cancelled_count", "INT64", "NULLABLE", "Tasks cancelled."),
    ("log_uri", "STRING", "NULLABLE", "The execution's logs in the console."),
    ("summary", "STRING", "NULLABLE", "The job's own summary line."),
    ("source", "STRING", "NULLABLE", "Who observed it: job, toolkit or reconcile."),
    ("observed_at", "TIMESTAMP", "NULLABLE", "When that observation was made."),
)
BASE_FIELDS = (*FIELDS, ("schema_version", "INT64", "NULLABLE", "The writer's ledger schema version."))
COLUMNS = tuple(f[0] for f in FIELDS)
TIMESTAMPS = frozenset(f[0] for f in FIELDS if f[1] == "TIMESTAMP")
# What an observation is compared on (the observer's own columns are not the execution's state).
COMPARED = tuple(c for c in COLUMNS if c not in ("execution", "source", "observed_at", "summary"))


def table_schema():
    """The base table's schema fields, as tables.insert takes them."""
    return [{"name": n, "type": t, "mode": m, "description": d} for n, t, m, d in BASE_FIELDS]


_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_DATASET = re.compile(r"^[A-Za-z0-9_]{1,1024}$")


def table_path(project, dataset, table):
    """`project.dataset.table` for SQL, after checking both names (they are spliced, not bound)."""
    if not _PROJECT.match(project or ""):
        raise InputError("project %r is not a project ID (6-30 of a-z, 0-9, -)" % project)
    if not _DATASET.match(dataset or ""):
        raise InputError("ledger dataset %r: expected letters, digits and underscores" % dataset)
    return "`%s.%s.%s`" % (project, dataset, table)


def view_sql(project, dataset=DATASET):
    """The view's standard SQL: one row per execution (the rules in the module's docstring)."""
    base = table_path(project, dataset, TABLE)
    state = ", ".join("o.%s" % c for c in COLUMNS if c != "summary")
    return _VIEW % {"state": state, "base": base}


# Names spliced in are checked (table_path); no value is.
_VIEW = """SELECT %(state)s, s.summary
FROM (
  SELECT * FROM %(base)s
  WHERE TRUE
  QUALIFY ROW_NUMBER() OVER (PARTITION BY execution ORDER BY
    IF(result IS NULL OR result = 'running', 0, 1) DESC,
    IF(source = 'job', 0, 1) DESC, observed_at DESC, IF(summary IS NULL, 0, 1) DESC) = 1
) AS o
LEFT JOIN (
  SELECT execution, summary FROM %(base)s
  WHERE summary IS NOT NULL
  QUALIFY ROW_NUMBER() OVER (PARTITION BY execution ORDER BY
    IF(source = 'job', 1, 0) DESC, observed_at DESC) = 1
) AS s
ON s.execution = o.execution"""


# ---- observations --------------------------------------------------------------------------------------

_RESULT = {"SUCCEEDED": "succeeded", "FAILED": "failed", "CANCELLED": "cancelled"}
_EXIT_CODE = re.compile(r"exit(?:ed with)?(?: an error)? ?\(?(?:exit )?code:? ?(\d+)\)?|exit\((\d+)\)")
_PERMISSION = re.compile(r"permission|PERMISSION_DENIED|\b403\b|forbidden", re.IGNORECASE)


def _container(execution):
    containers = (execution.get("template") or {}).get("containers") or []
    return containers[0] if containers else {}


def overrides_of(execution, job_resource=None):
    """JSON of what the execution ran with beyond its job's template: args, env names, tasks, timeout.

    Without the job's resource, the execution's own args, env names, task count and timeout.
    """
    container = _container(execution)
    template = execution.get("template") or {}
    base_template = ((job_resource or {}).get("template") or {}).get("template") or {}
    base_container = (base_template.get("containers") or [{}])[0] if job_resource else {}
    base_env = {e.get("name"): e.get("value") for e in base_container.get("env") or []}
    out = {}
    args = container.get("args") or []
    if not job_resource or args != (base_container.get("args") or []):
        if args:
            out["args"] = list(args)
    names = sorted(
        e["name"]
        for e in container.get("env") or []
        if e.get("name") and (not job_resource or base_env.get(e["name"]) != e.get("value"))
    )
    if names:
        out["env"] = names
    tasks = int(execution.get("taskCount") or 1)
    if not job_resource or tasks != int(((job_resource or {}).get("template") or {}).get("taskCount") or 1):
        out["task_count"] = tasks
    timeout = template.get("timeout")
    if timeout and (not job_resource or timeout != base_template.get("timeout")):
        out["timeout"] = timeout
    return json.dumps(out, sort_keys=True, separators=(",", ":"))


def exit_code_of(summary, messages=()):
    """The failing exit code: the last non-zero `Container called exit(N)` line, else the condition's."""
    codes = []
    for text in [*(messages or []), summary.get("message") or ""]:
        for match in _EXIT_CODE.finditer(str(text)):
            code = int(match.group(1) or match.group(2))
            if code:
                codes.append(code)
    return codes[-1] if codes else None


def failure_class(summary, messages=()):
    """None for a run that did not fail; else the class of its failure (FAILURE_CLASSES)."""
    state = summary.get("state")
    if state == "CANCELLED":
        return "cancelled"
    if state != "FAILED":
        return None
    text = "\n".join([str(summary.get("message") or ""), *(str(m) for m in messages or [])])
    if runs._SECRET.search(text):
        return "missing_secret"
    if _PERMISSION.search(str(summary.get("message") or "")):
        return "permission"
    if runs._TIMEOUT.search(text):
        return "timeout"
    if int(summary.get("retried") or 0) > 0:
        return "retries_exhausted"
    if exit_code_of(summary, messages) is not None:
        return "exit_code"
    return "unknown"


def observation_from_execution(
    execution,
    job,
    env,
    *,
    source="reconcile",
    observed_at=None,
    job_resource=None,
    messages=(),
    summary=None,
    trigger_account="",
):
    """One observation (a dict of BASE_FIELDS) from a Cloud Run v2 Execution resource.

    `job`: the catalog entry (its schedule classifies the trigger), or None; `env`: the inventory's
    environment; `messages`: the run's log messages when the writer read them (exit code, summary);
    `trigger_account`: the environment's trigger account (status.trigger_of classifies the run).
    """
    now = observed_at or datetime.now(UTC)
    flat = rx.summary(execution, now)
    container = _container(execution)
    creator = execution.get("creator") or ""
    trigger, detail = status.trigger_of(job or {}, flat, trigger_account)
    created = parse_time(execution.get("createTime"))
    started = parse_time(execution.get("startTime"))
    completed = parse_time(execution.get("completionTime"))
    finished = flat["state"] in _RESULT
    duration = (completed - started).total_seconds() if started and completed else None
    task_count = int(execution.get("taskCount") or 1)
    retried = int(execution.get("retriedCount") or 0)
    return {
        "execution": flat["name"],
        "job": flat["job"],
        "environment": env or None,
        "trigger": trigger,
        "principal": detail if trigger == "manual" else "",
        "release_id": (detail or None) if trigger == "release" else None,
        "creator": creator or None,
        "image": container.get("image") or None,
        "overrides": overrides_of(execution, job_resource),
        "created": created,
        "started": started,
        "completed": completed if finished else None,
        "duration_s": round(duration, 3) if duration is not None and finished else None,
        "result": _RESULT.get(flat["state"], "running"),
        "failure_class": failure_class(flat, messages),
        "exit_code": exit_code_of(flat, messages) if flat["state"] == "FAILED" else None,
        "attempts": task_count + retried,
        "retries": retried,
        "task_count": task_count,
        "succeeded_count": flat["succeeded"],
        "failed_count": flat["failed"],
        "cancelled_count": flat["cancelled"],
        "log_uri": execution.get("logUri") or None,
        "summary": summary or (runs.summary_line(list(messages)) if messages else None) or None,
        "source": source,
        "observed_at": now,
        "schema_version": SCHEMA_VERSION,
    }


def _same(column, a, b):
    if column in TIMESTAMPS:
        return parse_time(a) == parse_time(b)
    if column == "duration_s" and a is not None and b is not None:
        return abs(float(a) - float(b)) < 0.001
    return (a if a != "" else None) == (b if b != "" else None)


def changes(observation, shown):
    """Whether appending `observation` changes what the view shows (`shown`: its row, or None)."""
    if shown is None:
        return True
    if observation.get("summary") and observation["summary"] != shown.get("summary"):
        return True
    if observation.get("result") == "running" and shown.get("result") not in (None, "running"):
        return False  # it would not rank first: a finished observation does
    if observation.get("source") == "job" and shown.get("source") != "job":
        # Cloud Run's record ranks first; the job adds its summary (above) and nothing else.
        return shown.get("result") in (None, "running") and observation.get("result") != "running"
    return any(not _same(c, observation.get(c), shown.get(c)) for c in COMPARED)


def to_json(observation):
    """An observation as tabledata.insertAll's `json` (timestamps as RFC 3339 with microseconds)."""
    out = {}
    for name, value in observation.items():
        if isinstance(value, datetime):
            value = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out[name] = value
    return out


def insert_id(observation):
    """The same observation gets the same insertId (BigQuery's best-effort de-duplication)."""
    known = to_json(observation)
    state = json.dumps({c: known.get(c) for c in (*COMPARED, "summary", "source")}, sort_keys=True)
    return "%s-%s" % (observation["execution"], hashlib.sha256(state.encode()).hexdigest()[:16])


# ---- reading and writing ---------------------------------------------------------------------------------


def read_rows(api, project, days=None, job=None, limit=None, dataset=DATASET, executions=None, since=None):
    """The view's rows (dicts with exactly its columns, timestamps as aware datetimes), newest first.

    `days`: created in the last N days (BigQuery's clock); `job`: one job; `executions`: only these
    names; `since`: created at or after this datetime; `limit`: at most N rows.
    """
    where, params = [], []
    if since is not None:
        where.append("created >= @since")
        params.append(bq.parameter("since", "TIMESTAMP", since))
    if days is not None:
        where.append("created >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL @days DAY)")
        params.append(bq.parameter("days", "INT64", int(days)))
    if job:
        where.append("job = @job")
        params.append(bq.parameter("job", "STRING", job))
    if executions is not None:
        where.append("execution IN UNNEST(@executions)")
        params.append(bq.parameter("executions", "STRING", list(executions)))
    sql = "SELECT %s FROM %s" % (", ".join(COLUMNS), table_path(project, dataset, VIEW))  # noqa: S608
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY created DESC, execution DESC"
    if limit is not None:
        sql += " LIMIT %d" % int(limit)
    rows = bq.query(api, project, sql, params, what="the ledger %s.%s.%s" % (project, dataset, VIEW))
    return [{c: row.get(c) for c in COLUMNS} for row in rows]


def pending(api, project, observations, dataset=DATASET, shown=None):
    """(the observations that change what the view shows, one per execution; the view's rows by
    execution). `shown`: those rows when the caller read them already (None: read them here, for these
    executions only)."""
    observations = [o for o in observations if o]
    if not observations:
        return [], shown or {}
    if shown is None:
        names = sorted({o["execution"] for o in observations})
        shown = {r["execution"]: r for r in read_rows(api, project, dataset=dataset, executions=names)}
    new, seen = [], set()
    for obs in observations:
        if obs["execution"] in seen or not changes(obs, shown.get(obs["execution"])):
            continue
        seen.add(obs["execution"])
        new.append(obs)
    return new, shown


def append(api, project, observations, dataset=DATASET):
    """Stream observations into the base table (insertIds: a resend is dropped by BigQuery)."""
    if observations:
        bq.insert_all(api, project, dataset, TABLE, [(insert_id(o), to_json(o)) for o in observations])


def record(api, project, observations, dataset=DATASET, shown=None):
    """Append those observations that change what the view shows; the appended ones (`pending`)."""
    new = pending(api, project, observations, dataset=dataset, shown=shown)[0]
    append(api, project, new, dataset=dataset)
    return new


def view_diff(observations, shown):
    """Diff mode's before/after of what the view shows of each execution an observation changes: the
    columns that differ (an execution the view lacks: before is empty)."""
    before, after = {}, {}
    for obs in observations:
        row = shown.get(obs["execution"])
        differ = [
            c for c in (*COMPARED, "summary", "source") if row is None or not _same(c, obs.get(c), row.get(c))
        ]
        before[obs["execution"]] = {c: _text(row.get(c)) for c in differ} if row else {}
        after[obs["execution"]] = {c: _text(obs.get(c)) for c in differ if row or obs.get(c) is not None}
    return {"before": before, "after": after}


def _text(value):
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value


def info(api, project, dataset=DATASET, job=None, days=None, limit=0):
    """What ledger_info returns: {exists, rows (timestamps as RFC 3339), server_time}; a ledger not
    converged yet is exists=False. InputError before any call for a bad count or dataset."""
    if limit is None or limit < 0 or (days is not None and days < 1):
        raise InputError(
            "limit %r, days %r: expected limit 0 (all) or more and days 1 or more" % (limit, days)
        )
    table_path(project, dataset, VIEW)
    try:
        rows = read_rows(api, project, days=days, job=job, limit=limit or None, dataset=dataset)
    except ApiError as exc:
        if exc.status != 404:
            raise
        rows = None
    return {
        "exists": rows is not None,
        "rows": [{k: _text(v) for k, v in r.items()} for r in rows or []],
        "server_time": rfc3339(rx.server_now(api)),
    }


# ---- the converge: dataset, base table, view -------------------------------------------------------------

_LOCATION = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")


def table_body(project, dataset, retention_days=None):
    """The base table as tables.insert takes it (the code's schema version, DAY partitions on created)."""
    return {
        "tableReference": {"projectId": project, "datasetId": dataset, "tableId": TABLE},
        "description": "CloudAct execution ledger: append-only observations (schema version %d)"
        % SCHEMA_VERSION,
        "schema": {"fields": table_schema()},
        "timePartitioning": bq.day_partitioning("created", retention_days),
    }


def view_body(project, dataset=DATASET):
    """The view as tables.insert takes it."""
    return {
        "tableReference": {"projectId": project, "datasetId": dataset, "tableId": VIEW},
        "description": "CloudAct execution ledger: one row per Cloud Run execution",
        "view": {"query": view_sql(project, dataset), "useLegacySql": False},
    }


def _shown(resource, kind):
    """What diff mode shows of a resource (None when it does not exist)."""
    if resource is None:
        return None
    if kind == "dataset":
        return {"location": resource.get("location")}
    if kind == "view":
        return {"query": ((resource.get("view") or {}).get("query") or "").splitlines()}
    part = resource.get("timePartitioning") or {}
    expiration = part.get("expirationMs")
    return {
        "columns": [f["name"] for f in (resource.get("schema") or {}).get("fields") or []],
        "partitioning": "%s on %s" % (part.get("type"), part.get("field")),
        "retention_days": int(expiration) // bq.DAY_MS if expiration else None,
    }


def check_converge(project, dataset, location, retention_days):
    """InputError naming a bad option, before any request."""
    table_path(project, dataset, TABLE)
    if not _LOCATION.match(location or ""):
        raise InputError("ledger location %r: expected a BigQuery location (US, EU or a region)" % location)
    if retention_days is not None and retention_days < 1:
        raise InputError(
            "retention_days %r: expected a number of days >= 1, or unset to keep everything" % retention_days
        )


def converge(api, project, dataset=DATASET, location="US", retention_days=None, check=False, diff=False):
    """Bring the ledger's dataset, base table and view to what this code writes and reads, in place:
    {changed, operations (one `<verb> <resource>` each), schema_version, diff (in diff mode, when
    something changes)}. Never deletes a row or a table. Every read and every refusal (a dataset in
    another location, a table that cannot change in place) comes before the first change; in check
    mode nothing is written."""
    check_converge(project, dataset, location, retention_days)
    where = "%s:%s" % (project, dataset)
    found = bq.get_dataset(api, project, dataset)
    if found and (found.get("location") or "").upper() != location.upper():
        raise InputError(
            "ledger dataset %s is in %s, the inventory says %s: a dataset cannot move; set "
            "cloudact_ledger_location to %s or choose another cloudact_ledger_dataset"
            % (where, found.get("location"), location, found.get("location"))
        )
    table = bq.get_table(api, project, dataset, TABLE) if found else None
    view = bq.get_table(api, project, dataset, VIEW) if found else None
    wanted_table, wanted_view = table_body(project, dataset, retention_days), view_body(project, dataset)
    steps = []  # (operation, the call that does it)
    if found is None:
        steps.append(
            (
                "create dataset %s" % dataset,
                lambda: bq.insert_dataset(api, project, dataset, location, "CloudAct execution ledger"),
            )
        )
    after_table = wanted_table
    if table is None:
        steps.append(
            ("create table %s" % TABLE, lambda: bq.insert_table(api, project, dataset, wanted_table))
        )
    else:
        patch, problem = bq.table_patch(table, wanted_table)
        if problem:
            raise InputError("ledger table %s.%s: %s" % (where, TABLE, problem))
        after_table = dict(table, **(patch or {}))
        if patch:
            steps.append(
                (
                    "update table %s (%s)" % (TABLE, ", ".join(sorted(patch))),
                    lambda: bq.patch_table(api, project, dataset, TABLE, patch, etag=table.get("etag")),
                )
            )
    if view is None:
        steps.append(("create view %s" % VIEW, lambda: bq.insert_table(api, project, dataset, wanted_view)))
    elif view.get("type") not in (None, "VIEW"):
        raise InputError("ledger view %s.%s: it is a %s, a VIEW is needed" % (where, VIEW, view.get("type")))
    elif (view.get("view") or {}).get("query") != wanted_view["view"]["query"]:
        steps.append(
            (
                "update view %s" % VIEW,
                lambda: bq.patch_table(
                    api, project, dataset, VIEW, {"view": wanted_view["view"]}, etag=view.get("etag")
                ),
            )
        )
    if not check:
        for _operation, call in steps:
            call()
    result = {
        "changed": bool(steps),
        "operations": [operation for operation, _call in steps],
        "schema_version": SCHEMA_VERSION,
    }
    if diff and steps:
        result["diff"] = {
            "before": {
                "dataset": _shown(found, "dataset"),
                "table": _shown(table, "table"),
                "view": _shown(view, "view"),
            },
            "after": {
                "dataset": {"location": (found or {}).get("location") or location},
                "table": _shown(after_table, "table"),
                "view": _shown(wanted_view, "view"),
            },
        }
    return result
