"""cloudact-daily-quota-cleanup: delete old rows of organizations.org_usage_quotas (01:00 UTC).

Talks to BigQuery directly (the only job that loads google-cloud-bigquery), with application
default credentials. Counts the rows whose `usage_date` is older than DAYS_TO_KEEP days, then
deletes them with the same parameterised condition, and reports the DML's affected-row count:
`Deleted N quota records older than D days`. A row exactly D days old is kept.

Environment:
  GCP_PROJECT_ID   the project holding the `organizations` dataset (required)
  DAYS_TO_KEEP     whole days of quota rows to keep (default 90, at least 7)
  LOG_LEVEL, CLOUD_RUN_* (see jobs/runtime/__init__.py)

Exit codes: 0 done, 1 failed (BigQuery error, table or dataset missing), 2 bad configuration.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys

from jobs import runtime

log = logging.getLogger("cloudact.jobs.quota_cleanup")

DATASET = "organizations"
TABLE = "org_usage_quotas"
DEFAULT_DAYS = 90
MIN_DAYS = 7  # a floor, so a typo cannot wipe the quota history that billing still reads
QUERY_TIMEOUT = 600.0  # seconds to wait for one query job; the task timeout is 30 minutes
CONDITION = "usage_date < DATE_SUB(CURRENT_DATE(), INTERVAL @days DAY)"


def days_to_keep(environ) -> int:
    raw = runtime.env_str("DAYS_TO_KEEP", environ)
    if not raw:
        return DEFAULT_DAYS
    if not re.fullmatch(r"[0-9]{1,6}", raw) or int(raw) < MIN_DAYS:
        raise runtime.ConfigError(
            f"DAYS_TO_KEEP={raw!r} is not valid; use a whole number of days, at least {MIN_DAYS} "
            f"(default {DEFAULT_DAYS})"
        )
    return int(raw)


def project_id(environ) -> str:
    project = runtime.require_env(
        "GCP_PROJECT_ID", environ, "the GCP project holding the organizations dataset"
    )
    if not re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", project):
        raise runtime.ConfigError(
            f"GCP_PROJECT_ID={project!r} is not a valid project id (6-30 of a-z, 0-9, -)"
        )
    return project


def run(project: str, days: int, dry_run: bool) -> str:
    # Loaded here, after the configuration is known good: it is the heaviest import of any job.
    import google.auth.exceptions
    from google.api_core import exceptions as api_errors
    from google.cloud import bigquery

    from jobs.runtime.google_retry import honouring

    retry = honouring(bigquery.DEFAULT_RETRY)  # the library's policy, and the server's Retry-After

    table = f"`{project}.{DATASET}.{TABLE}`"
    params = bigquery.QueryJobConfig(query_parameters=[bigquery.ScalarQueryParameter("days", "INT64", days)])
    try:
        client = bigquery.Client(project=project)
    except google.auth.exceptions.DefaultCredentialsError as exc:
        raise runtime.ConfigError(f"no Google credentials for BigQuery: {_first_line(exc)}") from None
    try:
        count_job = client.query(
            f"SELECT COUNT(*) AS n FROM {table} WHERE {CONDITION}",  # noqa: S608
            job_config=params,
            retry=retry,
        )
        older = next(iter(count_job.result(timeout=QUERY_TIMEOUT, retry=retry)))["n"]
        log.info("%d quota records in %s.%s.%s are older than %d days", older, project, DATASET, TABLE, days)
        if dry_run:
            return f"Deleted 0 quota records older than {days} days (dry run: {older} would be deleted)"
        if older == 0:
            return f"Deleted 0 quota records older than {days} days"
        delete_job = client.query(
            f"DELETE FROM {table} WHERE {CONDITION}",  # noqa: S608
            job_config=params,
            retry=retry,
        )
        delete_job.result(timeout=QUERY_TIMEOUT, retry=retry)
    except api_errors.NotFound as exc:
        raise runtime.JobFailed(
            f"{project}.{DATASET}.{TABLE} not found ({_bq_message(exc)}); is the project bootstrapped "
            "(run the bootstrap job)?"
        ) from None
    except api_errors.Forbidden as exc:
        raise runtime.JobFailed(
            f"BigQuery refused access to {project}.{DATASET}.{TABLE}: {_bq_message(exc)}; the job's "
            "service account needs BigQuery Data Editor and Job User"
        ) from None
    except api_errors.GoogleAPICallError as exc:
        raise runtime.JobFailed(f"BigQuery query failed: {_bq_message(exc)}") from None
    except google.auth.exceptions.GoogleAuthError as exc:
        raise runtime.JobFailed(
            f"cannot get a Google access token for BigQuery: {_first_line(exc)}"
        ) from None
    deleted = delete_job.num_dml_affected_rows
    if deleted is None:
        raise runtime.JobFailed("BigQuery did not report how many rows the DELETE affected")
    if deleted != older:
        # Rows can arrive or age between the two statements; the DML's own count is the truth.
        log.info("counted %d before the delete; the delete removed %d", older, deleted)
    return f"Deleted {deleted} quota records older than {days} days"


def _bq_message(exc) -> str:
    message = getattr(exc, "message", "") or str(exc)
    return _first_line(message.split("; reason:")[0])  # the client repeats the error's fields after it


def _first_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=f"Delete rows of {DATASET}.{TABLE} older than DAYS_TO_KEEP days.",
        epilog=(
            f"Environment: GCP_PROJECT_ID, DAYS_TO_KEEP (default {DEFAULT_DAYS}, at least {MIN_DAYS}), "
            "LOG_LEVEL;\ncredentials: application default credentials.\n"
            "Exit codes: 0 done, 1 failed (Cloud Run retries), 2 bad configuration or usage."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dry-run", action="store_true", help="count the rows that would go; delete nothing")
    return p


def main(argv: list[str] | None = None) -> int:
    def work(args: argparse.Namespace) -> str:
        return run(project_id(os.environ), days_to_keep(os.environ), args.dry_run)

    return runtime.run_job(parser(), work, argv, logger=log)


if __name__ == "__main__":
    sys.exit(main())
