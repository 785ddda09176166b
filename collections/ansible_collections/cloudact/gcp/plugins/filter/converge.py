# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the converge: a catalog job -> its Cloud Run spec, what to prune, the summary, word -> job.

Logic in Python rather than Jinja (README.md, Architecture); each filter is a pure function with unit tests
(tests/ansible/test_filters.py).
"""

from __future__ import annotations

from pathlib import Path

from ansible.errors import AnsibleFilterError
from ansible_collections.cloudact.gcp.plugins.filter.access import access_summary
from ansible_collections.cloudact.gcp.plugins.module_utils import catalog
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError as ToolkitError

DOCUMENTATION = ""

SUPABASE_SECRET = "supabase_access_token"  # noqa: S105 - a catalog key, not a secret


def job_spec(
    job,
    project,
    environment,
    api_url,
    secrets,
    supabase_project_ref="",
    migrations_dir="",
    labels=None,
    python="python",
    ledger_dataset="",
    env_name="",
):
    """A catalog job (dict) -> {command, env, secret_env, labels} for cloudact.gcp.cloud_run_job.

    Secrets become Secret Manager references (`secret_env`), never values. A job that uses the
    Supabase token (migrate) also gets SUPABASE_PROJECT_REF and MIGRATIONS_DIR. With a ledger
    dataset, CLOUDACT_LEDGER_DATASET and CLOUDACT_ENV tell the job's runtime where to record itself.
    """
    env = {"GCP_PROJECT_ID": project, "ENVIRONMENT": environment, "API_SERVICE_URL": api_url}
    if ledger_dataset:
        env["CLOUDACT_LEDGER_DATASET"] = ledger_dataset
        env["CLOUDACT_ENV"] = env_name
    if job.get("endpoint"):
        env["API_ENDPOINT_PATH"] = job["endpoint"]
    if SUPABASE_SECRET in (job.get("secrets") or []):
        env["SUPABASE_PROJECT_REF"] = supabase_project_ref
        env["MIGRATIONS_DIR"] = migrations_dir
    env.update(job.get("env") or {})
    secret_env = {}
    for key in job.get("secrets") or []:
        if key not in secrets:
            raise AnsibleFilterError(f"job {job.get('name')}: secret key {key!r} is not in cloudact_secrets")
        secret_env[secrets[key]["env"]] = {"secret": secrets[key]["secret"], "version": "latest"}
    all_labels = {**(labels or {}), "category": job.get("category", "")}
    return {
        "command": [python, "-m", job["module"]],
        "env": {k: str(v) for k, v in env.items()},
        "secret_env": secret_env,
        "labels": all_labels,
    }


def job_entries(
    catalog_data,
    image,
    project,
    environment,
    api_url,
    secrets,
    service_account,
    supabase_project_ref="",
    migrations_dir="",
    labels=None,
    python="python",
    ledger_dataset="",
    env_name="",
):
    """cloudact_catalog -> `jobs` entries of cloudact.gcp.cloud_run_job: each job, then legacy ones absent."""
    entries = []
    for job in catalog_data["jobs"]:
        spec = job_spec(
            job,
            project,
            environment,
            api_url,
            secrets,
            supabase_project_ref,
            migrations_dir,
            labels,
            python,
            ledger_dataset,
            env_name,
        )
        entries.append(
            {
                "name": job["name"],
                "state": "present",
                "image": image,
                "command": spec["command"],
                "args": [],
                "env": spec["env"],
                "secret_env": spec["secret_env"],
                "cpu": str(job["cpu"]),
                "memory": str(job["memory"]),
                "timeout": int(job["timeout_seconds"]),
                "max_retries": int(job["max_retries"]),
                "task_count": 1,
                "parallelism": 0,
                "service_account": service_account,
                "labels": spec["labels"],
            }
        )
    entries += [{"name": name, "state": "absent"} for name in catalog_data.get("legacy_jobs") or []]
    return entries


def trigger_entries(catalog_data, run_url, service_account, retry_config=None, attempt_deadline=None):
    """The catalog -> `jobs` entries of cloudact.gcp.cloud_scheduler_job: `<job>-trigger` per scheduled job.

    state present keeps a trigger an operator paused paused. Legacy triggers follow as absent.
    """
    entries = []
    for job in catalog_data["jobs"]:
        if not job.get("schedule"):
            continue
        entry = {
            "name": job["trigger"],
            "state": "present",
            "schedule": job["schedule"],
            "time_zone": job["time_zone"],
            "description": "Runs Cloud Run job %s: %s" % (job["name"], job.get("description", "")),
            "http_target": {
                "uri": "%s/%s:run" % (run_url.rstrip("/"), job["name"]),
                "http_method": "POST",
                "oauth_token": {"service_account_email": service_account},
            },
        }
        if retry_config:
            entry["retry_config"] = dict(retry_config)
        if attempt_deadline:
            entry["attempt_deadline"] = str(attempt_deadline)
        entries.append(entry)
    entries += [{"name": name, "state": "absent"} for name in catalog_data.get("legacy_triggers") or []]
    return entries


def converge_summary(jobs=None, triggers=None, check=False, access_results=None, ledger=None):
    """The registered results of the batch job and trigger tasks -> {jobs, triggers, lines} per kind.

    `access_results`: the registered results of the iam_access tasks (a list), summed up first.
    `ledger`: the registered result of the bigquery_ledger task (the execution ledger), a line of its own.
    """

    def kind(registered):
        out = {
            "created": [],
            "updated": {},
            "unchanged": [],
            "pruned": [],
            "paused": [],
            "resumed": [],
            "adopted": [],
        }
        for r in (registered or {}).get("jobs") or []:
            op = r.get("operation")
            if r.get("adopted"):
                out["adopted"].append(r["name"])
            if op == "create":
                out["created"].append(r["name"])
            elif op == "update":
                out["updated"][r["name"]] = list(r.get("changed_fields") or [])
            elif op == "delete":
                out["pruned"].append(r["name"])
            elif op == "none" and r.get("spec"):
                out["unchanged"].append(r["name"])
            if r.get("state_change") == "pause":
                out["paused"].append(r["name"])
            elif r.get("state_change") == "resume":
                out["resumed"].append(r["name"])
        return out

    summary = {"check_mode": bool(check), "jobs": kind(jobs), "triggers": kind(triggers)}
    verb = "would be " if check else ""
    lines = []
    if any("resources" in (r or {}) for r in access_results or []):  # the access tasks ran
        summary["access"] = access_summary(access_results, check=check)
        lines += summary["access"]["lines"]
    if ledger and "operations" in ledger:
        summary["ledger"] = list(ledger["operations"])
        done = "; ".join(ledger["operations"])
        lines.append("ledger: %s" % (("would %s" % done if check else done) if done else "unchanged"))
    for label in ("jobs", "triggers"):
        k = summary[label]
        lines.append(
            "%s: %d %screated, %d %supdated, %d unchanged, %d %spruned"
            % (
                label,
                len(k["created"]),
                verb,
                len(k["updated"]),
                verb,
                len(k["unchanged"]),
                len(k["pruned"]),
                verb,
            )
        )
        lines += ["  + %s" % name for name in k["created"]]
        lines += ["  ~ %s: %s" % (name, ", ".join(fields)) for name, fields in k["updated"].items()]
        lines += ["  - %s" % name for name in k["pruned"]]
        lines += ["  paused: %s" % name for name in k["paused"]]
        lines += ["  resumed: %s" % name for name in k["resumed"]]
        if k["adopted"]:
            lines.append(
                "  %sadopted (unlabelled, of the catalog's names; now marked as this environment's): %s"
                % (verb, ", ".join(k["adopted"]))
            )
    summary["lines"] = lines
    return summary


def resolve_job(word, root, catalog_file="catalog/jobs.yml", scheduled=False):
    """A user's word -> the catalog job (dict); one-line error naming the valid words."""
    try:
        parsed = catalog.load_catalog(Path(root) / catalog_file, root=Path(root))
        job = parsed.resolve(word)
    except ToolkitError as exc:
        raise AnsibleFilterError(str(exc)) from None
    if scheduled and not job.scheduled:
        names = ", ".join(j.shortcut for j in parsed.scheduled)
        raise AnsibleFilterError(
            f"job {job.shortcut!r} has no trigger (it runs by hand); jobs with triggers: {names}"
        )
    return job.as_dict()


class FilterModule:
    def filters(self):
        return {
            "job_entries": job_entries,
            "trigger_entries": trigger_entries,
            "converge_summary": converge_summary,
            "resolve_job": resolve_job,
        }
