"""The job's own line in the execution ledger: one best-effort streaming insert at its end.

Inside Cloud Run (CLOUD_RUN_EXECUTION and CLOUD_RUN_JOB set) with a ledger configured
(CLOUDACT_LEDGER_DATASET, which create-jobs sets), the end of every job appends one observation
(source `job`) of its execution to `<GCP_PROJECT_ID>.<dataset>.job_execution_observations` with
`tabledata.insertAll` and an insertId of its task attempt: its summary line (or failure line), its
result as this task sees it, its exit code and its own start and end times. Cloud Run's record of the
execution (creator, image, exact times) comes from the toolkit's writers, which rank first in the
ledger's view; this line keeps scheduled runs in the ledger when nobody runs the toolkit.

Best effort, bounded: the whole write (credentials, token, insert) runs in a daemon thread that the
job waits for at most DEADLINE_S seconds; a write that fails or does not finish in time is one
WARNING line and never changes the exit code. Credentials are application default credentials (the
metadata server in Cloud Run; GOOGLE_APPLICATION_CREDENTIALS elsewhere).

The columns are those of the collection's module_utils/ledger.py (SCHEMA_VERSION, FIELDS); a test
keeps the two in step (the job image carries jobs/ only).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from jobs.runtime.config import HttpSettings
from jobs.runtime.logs import log
from jobs.runtime.redaction import add_secret, redact

SCHEMA_VERSION = 1
TABLE = "job_execution_observations"
DEADLINE_S = 2.0
BIGQUERY_URL = "https://bigquery.googleapis.com/bigquery/v2"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
TRIGGER_ENV = "CLOUDACT_TRIGGER"  # the toolkit's mark in a run's overrides: manual, release:<id>
# One attempt: a retry would add a warning line and time; reconciliation fills any gap.
SETTINGS = HttpSettings(connect_timeout=1.0, read_timeout=1.5, max_attempts=1, deadline=1.8)


def _stamp(value: float) -> str:
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def observation(
    exit_code: int, summary: str | None, started: float, ended: float, environ: Mapping[str, str]
) -> dict[str, Any]:
    """The row this task attempt writes (the ledger's columns it knows; the others are null)."""
    tasks = _int(environ.get("CLOUD_RUN_TASK_COUNT"), 1)
    attempt = _int(environ.get("CLOUD_RUN_TASK_ATTEMPT"), 0)
    mark = environ.get(TRIGGER_ENV, "")
    trigger = "release" if mark.startswith("release") else ("manual" if mark else None)
    ok = exit_code == 0
    single = tasks == 1
    return {
        "execution": environ["CLOUD_RUN_EXECUTION"],
        "job": environ["CLOUD_RUN_JOB"],
        "environment": environ.get("CLOUDACT_ENV") or None,
        "trigger": trigger,
        "release_id": (mark.partition(":")[2] or None) if trigger == "release" else None,
        # The task's own start: Cloud Run's createTime is not known inside the container.
        "created": _stamp(started),
        "started": _stamp(started),
        "completed": _stamp(ended) if ok or single else None,
        "duration_s": round(ended - started, 3),
        # A task that succeeded while others may still run says running; a failed attempt says
        # failed (a retry's own line, later, supersedes it).
        "result": ("succeeded" if single else "running") if ok else "failed",
        "failure_class": None if ok else "exit_code",
        "exit_code": None if ok else exit_code,
        "attempts": attempt + 1,
        "retries": 1 if attempt else 0,
        "task_count": tasks,
        "succeeded_count": (1 if ok else 0) if single else None,
        "failed_count": (0 if ok else 1) if single else None,
        "cancelled_count": 0 if single else None,
        "summary": redact(summary)[:1024] if summary else None,
        "source": "job",
        "observed_at": _stamp(ended),
        "schema_version": SCHEMA_VERSION,
    }


def insert_id(environ: Mapping[str, str]) -> str:
    index = environ.get("CLOUD_RUN_TASK_INDEX") or "0"
    attempt = environ.get("CLOUD_RUN_TASK_ATTEMPT") or "0"
    return f"{environ['CLOUD_RUN_EXECUTION']}-task{index}-attempt{attempt}-job"


def _insert(project: str, dataset: str, row: dict[str, Any], row_id: str, outcome: dict[str, Any]) -> None:
    """The write, in the worker thread; its error text (never raised) in `outcome`."""
    try:
        import google.auth
        from google.auth.transport.requests import Request

        from jobs.runtime.http import HttpClient, new_session

        session = new_session()
        credentials, found = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
        project = project or found or ""
        if not project:
            outcome["error"] = "no project: GCP_PROJECT_ID is not set and the credentials name none"
            return
        credentials.refresh(Request(session))
        add_secret(credentials.token)
        client = HttpClient(
            BIGQUERY_URL,
            headers={"Authorization": f"Bearer {credentials.token}"},
            settings=SETTINGS,
            session=session,
            name="BigQuery",
        )
        answer = client.post(
            f"/projects/{project}/datasets/{dataset}/tables/{TABLE}/insertAll",
            {"rows": [{"insertId": row_id, "json": row}]},
            idempotent=True,  # the insertId makes a repeat harmless
        )
        problems = (answer or {}).get("insertErrors") or []
        if problems:
            errors = problems[0].get("errors") or [{}]
            outcome["error"] = f"the row was refused: {errors[0].get('message', errors[0])}"
    except Exception as exc:  # noqa: BLE001 - best effort: any failure is reported, never raised
        text = str(exc).strip().splitlines()
        outcome["error"] = f"{type(exc).__name__}: {text[0][:300] if text else ''}".rstrip(": ")
    finally:
        outcome["done"] = True


def record(
    exit_code: int,
    summary: str | None,
    started: float,
    environ: Mapping[str, str] | None = None,
    deadline: float = DEADLINE_S,
) -> bool | None:
    """Append this task's observation; True when written, False when it failed (said once, as a
    warning), None when there is nothing to record (not in Cloud Run, or no ledger configured)."""
    environ = os.environ if environ is None else environ
    dataset = (environ.get("CLOUDACT_LEDGER_DATASET") or "").strip()
    if not (environ.get("CLOUD_RUN_EXECUTION") and environ.get("CLOUD_RUN_JOB") and dataset):
        return None
    row = observation(exit_code, summary, started, time.time(), environ)
    outcome: dict[str, Any] = {}
    worker = threading.Thread(
        target=_insert,
        args=((environ.get("GCP_PROJECT_ID") or "").strip(), dataset, row, insert_id(environ), outcome),
        name="ledger-insert",
        daemon=True,  # never keeps the job's process alive past its end
    )
    worker.start()
    worker.join(deadline)
    if outcome.get("done") and not outcome.get("error"):
        return True
    why = outcome.get("error") or f"no answer within {deadline:g} s"
    log.warning(
        "ledger insert failed (%s): the job's result stands; reconciliation (make ledger-sync) records "
        "this execution from Cloud Run",
        why,
    )
    return False
