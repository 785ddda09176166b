"""The job's own line in the execution ledger, as a job runs it (a subprocess, on localcloud's BigQuery):
written at its end with its summary; a job that cannot reach BigQuery (no answer, a 503, no network at
all) still succeeds and says exactly once that the ledger insert failed; outside Cloud Run, or with no
ledger configured, nothing is attempted."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from ansible_collections.cloudact.gcp.plugins.module_utils import bigquery as bq
from ansible_collections.cloudact.gcp.plugins.module_utils import client, ledger

from .conftest import ROOT

PROJECT = "cloudact-local"
JOB = "cloudact-daily-alerts"
INSERT_ALL = f"/bigquery/v2/projects/{PROJECT}/datasets/*/tables/{ledger.TABLE}/insertAll"
# The job's work, through the runtime's entry point as every script uses it.
SCRIPT = (
    "import sys\n"
    "from jobs.runtime import parser, run_job\n"
    "sys.exit(run_job(parser('ledger test'), lambda args: 'Processed alerts for 3 orgs', []))\n"
)
FAILING = SCRIPT.replace("lambda args: 'Processed alerts for 3 orgs'", "lambda args: int('x')")


@pytest.fixture(scope="module")
def ledger_dataset(localcloud):
    saved = dict(os.environ)
    os.environ.update(localcloud.client_env)
    api = client.Client(client.credentials("serviceaccount", str(localcloud.key_file)))
    name = f"ledger_{uuid.uuid4().hex[:10]}"
    bq.insert_dataset(api, PROJECT, name, "US")
    bq.insert_table(api, PROJECT, name, ledger.table_body(PROJECT, name, None))
    bq.insert_table(api, PROJECT, name, ledger.view_body(PROJECT, name))
    try:
        yield api, name
    finally:
        api.request("DELETE", bq.dataset_url(PROJECT, name), "cleanup", params={"deleteContents": "true"})
        os.environ.clear()
        os.environ.update(saved)


def run_in_cloud_run(localcloud, dataset: str, script: str = SCRIPT, **extra: str):
    execution = f"{JOB}-{uuid.uuid4().hex[:5]}"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    env.update(localcloud.client_env)
    env.update(
        GOOGLE_APPLICATION_CREDENTIALS=str(localcloud.key_file),
        GCP_PROJECT_ID=PROJECT,
        CLOUD_RUN_JOB=JOB,
        CLOUD_RUN_EXECUTION=execution,
        CLOUD_RUN_TASK_INDEX="0",
        CLOUD_RUN_TASK_COUNT="1",
        CLOUD_RUN_TASK_ATTEMPT="0",
        CLOUDACT_LEDGER_DATASET=dataset,
        CLOUDACT_ENV="local",
    )
    env.update(extra)
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    return execution, proc


def test_the_job_writes_its_summary_at_its_end(localcloud, ledger_dataset):
    api, dataset = ledger_dataset
    execution, proc = run_in_cloud_run(localcloud, dataset)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ledger insert failed" not in proc.stdout + proc.stderr
    (row,) = ledger.read_rows(api, PROJECT, dataset=dataset, executions=[execution])
    assert row["source"] == "job" and row["summary"] == "Processed alerts for 3 orgs"
    assert row["result"] == "succeeded" and row["job"] == JOB and row["environment"] == "local"


def test_a_failed_job_records_why_and_keeps_its_exit_code(localcloud, ledger_dataset):
    api, dataset = ledger_dataset
    execution, proc = run_in_cloud_run(localcloud, dataset, FAILING)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (row,) = ledger.read_rows(api, PROJECT, dataset=dataset, executions=[execution])
    assert row["result"] == "failed" and row["exit_code"] == 1 and row["failure_class"] == "exit_code"
    assert row["summary"] == "job failed with an unexpected error: ValueError"


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ({"delay": 6.0}, "no answer within the 1.5s read timeout"),
        # The token endpoint hangs (google.auth waits 120 s for it): the 2 s deadline ends the wait.
        ({"delay": 6.0, "host": "oauth2.googleapis.com", "path": "/token"}, "no answer within 2 s"),
        ({"status": 503}, "503"),
        ({"drop": True}, "ledger insert failed ("),
        (None, "ledger insert failed ("),  # no network at all: the proxy's port is dead
    ],
    ids=["no-answer", "token-hangs", "503", "dropped", "unreachable"],
)
def test_a_job_that_cannot_reach_bigquery_still_succeeds_and_says_so_once(
    localcloud, ledger_dataset, fault, said
):
    api, dataset = ledger_dataset
    extra = {}
    if fault is None:
        extra = {"HTTPS_PROXY": "http://127.0.0.1:9"}
    else:
        where = {"host": "bigquery.googleapis.com", "path": INSERT_ALL}
        where.update(fault)
        host, path = where.pop("host"), where.pop("path")
        localcloud.admin.fault(host, path, count=1, **where)
    try:
        execution, proc = run_in_cloud_run(localcloud, dataset, **extra)
    finally:
        localcloud.admin.clear_faults()
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert output.count("ledger insert failed") == 1, output
    assert said in output, output
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert any('"message": "Processed alerts for 3 orgs"' in line for line in lines)
    assert '"severity": "WARNING"' in next(line for line in lines if "ledger insert failed" in line)
    if fault is not None and "delay" not in fault:  # a refused insert wrote nothing
        assert ledger.read_rows(api, PROJECT, dataset=dataset, executions=[execution]) == []


@pytest.mark.parametrize("unset", ["CLOUD_RUN_EXECUTION", "CLOUDACT_LEDGER_DATASET"])
def test_nothing_is_attempted_outside_cloud_run_or_without_a_ledger(localcloud, ledger_dataset, unset):
    _, dataset = ledger_dataset
    localcloud.admin.reset_requests()
    env = {unset: ""}
    _, proc = run_in_cloud_run(localcloud, dataset, **env)
    assert proc.returncode == 0 and "ledger" not in proc.stdout + proc.stderr
    assert "bigquery.googleapis.com" not in localcloud.admin.requests()["by_host"]
