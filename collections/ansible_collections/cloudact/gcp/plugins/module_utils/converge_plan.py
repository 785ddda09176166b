# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the converge sends: the catalog's jobs and triggers as the entries of cloud_run_job and
cloud_scheduler_job, from the run's environment.

One function per kind. The converge's roles call them through the job_entries and trigger_entries
filters; the doctor plans with the same functions (module_utils/doctor_jobs.py), so what it checks is
what a converge would send. Their inputs are the environment's facts (roles/cloudact_env/defaults,
the inventory, -e): the labels and the interpreter of every job, the triggers' :run URL, retry
config and attempt deadline; plus what the converge resolves first (the image digest, the API URL).
"""

from __future__ import annotations

from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

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
            raise InputError(
                "job %s: secret key %r is not in cloudact_secrets (valid: %s)"
                % (job.get("name"), key, ", ".join(sorted(secrets)))
            )
        secret_env[secrets[key]["env"]] = {"secret": secrets[key]["secret"], "version": "latest"}
    all_labels = {**(labels or {}), "category": job.get("category", "")}
    return {
        "command": [python, "-m", job["module"]],
        "env": {k: str(v) for k, v in env.items()},
        "secret_env": secret_env,
        "labels": all_labels,
    }


def job_entries(facts, catalog, image, api_url):
    """The `jobs` of cloudact.gcp.cloud_run_job: each catalog job on `image`, then legacy names absent."""
    entries = []
    for job in catalog["jobs"]:
        spec = job_spec(
            job,
            facts["cloudact_gcp_project"],
            facts["cloudact_environment"],
            api_url,
            facts["cloudact_secrets"],
            facts.get("cloudact_supabase_project_ref") or "",
            facts.get("cloudact_migrations_dir") or "",
            facts.get("cloudact_jobs_labels") or {},
            facts.get("cloudact_jobs_python") or "python",
            facts.get("cloudact_ledger_dataset") or "",
            facts.get("cloudact_env") or "",
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
                "service_account": facts["cloudact_service_account"],
                "labels": spec["labels"],
            }
        )
    entries += [{"name": name, "state": "absent"} for name in catalog.get("legacy_jobs") or []]
    return entries


def trigger_entries(facts, catalog):
    """The `jobs` of cloudact.gcp.cloud_scheduler_job: `<job>-trigger` per scheduled job, then legacy
    triggers absent. state present keeps a trigger an operator paused paused."""
    run_url = facts["cloudact_triggers_run_url"].rstrip("/")
    retry_config = facts.get("cloudact_triggers_retry_config") or {}
    attempt_deadline = facts.get("cloudact_triggers_attempt_deadline") or ""
    entries = []
    for job in catalog["jobs"]:
        if not job.get("schedule"):
            continue
        entry = {
            "name": job["trigger"],
            "state": "present",
            "schedule": job["schedule"],
            "time_zone": job["time_zone"],
            "description": "Runs Cloud Run job %s: %s" % (job["name"], job.get("description", "")),
            "http_target": {
                "uri": "%s/%s:run" % (run_url, job["name"]),
                "http_method": "POST",
                "oauth_token": {"service_account_email": facts["cloudact_trigger_account"]},
            },
        }
        if retry_config:
            entry["retry_config"] = dict(retry_config)
        if attempt_deadline:
            entry["attempt_deadline"] = str(attempt_deadline)
        entries.append(entry)
    entries += [{"name": name, "state": "absent"} for name in catalog.get("legacy_triggers") or []]
    return entries


SEVERITY_BY_CATEGORY = {"manual": "WARNING", "daily": "ERROR", "monthly": "ERROR"}


def policy_documentation(job, env):
    """The markdown of a job's failure policy: the job's description and the commands for `env`."""
    shortcut = job["shortcut"]
    return "\n".join(
        [
            "**%s** (`make run JOB=%s`) failed in environment **%s**, after its retries."
            % (job["name"], shortcut, env),
            "",
            job.get("description") or "",
            "",
            "- Its logs: `make logs ENV=%s JOB=%s`" % (env, shortcut),
            "- What is wrong: `make doctor ENV=%s`" % env,
            "- Run it again: `make run ENV=%s JOB=%s`" % (env, shortcut),
        ]
    )


def policy_entries(facts, catalog):
    """The `policies` of cloudact.gcp.alert_policies: per catalog job, a `failed` policy (an execution
    that failed after its retries) notifying every channel of cloudact_alert_channels. Severity by
    category (manual WARNING, daily and monthly ERROR); cloudact_alert_severity overrides it per
    category or per job shortcut (the shortcut wins)."""
    env = facts["cloudact_env"]
    overrides = facts.get("cloudact_alert_severity") or {}
    channels = [c["name"] for c in facts.get("cloudact_alert_channels") or []]
    entries = []
    for job in catalog["jobs"]:
        severity = overrides.get(job["shortcut"]) or overrides.get(job["category"])
        severity = str(severity or SEVERITY_BY_CATEGORY.get(job["category"], "ERROR")).upper()
        if severity not in ("CRITICAL", "ERROR", "WARNING"):
            raise InputError(
                "cloudact_alert_severity: %r for job %s is not a severity (valid: CRITICAL, ERROR, WARNING)"
                % (severity, job["shortcut"])
            )
        entries.append(
            {
                "name": "%s failed (%s)" % (job["name"], env),
                "kind": "failed",
                "job": job["name"],
                "shortcut": job["shortcut"],
                "severity": severity,
                "documentation": policy_documentation(job, env),
                "notification_channels": list(channels),
                "enabled": True,
            }
        )
    return entries
