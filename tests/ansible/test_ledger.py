"""The execution ledger on localcloud: the converge in four steps (check, real, idempotent check,
idempotent real) and a retention change; reconciliation twice adds nothing; a run killed by its
timeout is in the ledger with failure class timeout although its own insert never came; and an
UPDATE over just-streamed rows fails as on Google (why every writer only appends)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from ansible_collections.cloudact.gcp.plugins.module_utils import bigquery as bq
from ansible_collections.cloudact.gcp.plugins.module_utils import client, ledger, ledger_sync
from ansible_collections.cloudact.gcp.plugins.module_utils import run_execution as rx
from ansible_collections.cloudact.gcp.plugins.modules import bigquery_ledger

from .conftest import BIN, base_env, run

PROJECT = "cloudact-local"
REGION = "us-central1"


@pytest.fixture
def api(localcloud_env):
    return client.Client(client.credentials("serviceaccount", str(localcloud_env.key_file)))


@pytest.fixture
def dataset(api):
    name = f"ledger_{uuid.uuid4().hex[:10]}"
    yield name
    api.request(
        "DELETE",
        bq.dataset_url(PROJECT, name),
        "cleanup",
        params={"deleteContents": "true"},
        allow_missing=True,
    )


def ledger_module(localcloud, args: dict, check: bool = False) -> tuple[int, dict]:
    """cloudact.gcp.bigquery_ledger as `ansible localhost -m` ([--check]), pointed at localcloud."""
    env = dict(localcloud.client_env)
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    full = base_env(
        localcloud.state_dir, **env, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json"
    )
    args = {"project": PROJECT, "auth_kind": "serviceaccount", **args}
    cmd = [str(BIN / "ansible"), "localhost", "-i", "inventories/local", "-m", "cloudact.gcp.bigquery_ledger"]
    result = run([*cmd, "-a", json.dumps(args), *(["--check"] if check else [])], full)
    out = json.loads(result.stdout)
    return result.rc, out["plays"][0]["tasks"][0]["hosts"]["localhost"]


def converge(api, dataset):
    bq.insert_dataset(api, PROJECT, dataset, "US")
    bq.insert_table(api, PROJECT, dataset, bigquery_ledger.table_body(PROJECT, dataset, None))
    bq.insert_table(api, PROJECT, dataset, bigquery_ledger.view_body(PROJECT, dataset))


def test_the_ledger_converges_in_four_steps_and_takes_a_retention(localcloud, api, dataset):
    args = {"dataset": dataset}
    rc, res = ledger_module(localcloud, args, check=True)
    assert rc == 0, res
    assert res["changed"] and res["operations"] == [
        f"create dataset {dataset}",
        "create table job_execution_observations",
        "create view job_executions",
    ]
    assert bq.get_dataset(api, PROJECT, dataset) is None  # the check changed nothing
    rc, res = ledger_module(localcloud, args)
    assert rc == 0 and res["changed"], res
    table = bq.get_table(api, PROJECT, dataset, ledger.TABLE)
    assert table["timePartitioning"] == {"type": "DAY", "field": "created"}
    assert [f["name"] for f in table["schema"]["fields"]] == [f[0] for f in ledger.BASE_FIELDS]
    view = bq.get_table(api, PROJECT, dataset, ledger.VIEW)
    assert view["type"] == "VIEW" and view["view"]["query"] == ledger.view_sql(PROJECT, dataset)
    for check in (True, False):
        rc, res = ledger_module(localcloud, args, check=check)
        assert rc == 0 and not res["changed"] and res["operations"] == [], res
    rc, res = ledger_module(localcloud, {**args, "retention_days": 400})
    assert rc == 0 and res["operations"] == ["update table job_execution_observations (timePartitioning)"], (
        res
    )
    part = bq.get_table(api, PROJECT, dataset, ledger.TABLE)["timePartitioning"]
    assert part["expirationMs"] == str(400 * 86400 * 1000)
    rc, res = ledger_module(localcloud, {**args, "retention_days": 400})
    assert rc == 0 and not res["changed"], res


def test_a_dataset_in_another_location_is_named_not_moved(localcloud, api, dataset):
    bq.insert_dataset(api, PROJECT, dataset, "EU")
    rc, res = ledger_module(localcloud, {"dataset": dataset})
    assert rc != 0 and f"{dataset} is in EU, the inventory says US" in res["msg"], res


def create_job(api, name, command, timeout="60s"):
    body = {
        "template": {
            "template": {
                "containers": [{"image": "localhost/ledger-test", "command": command}],
                "timeout": timeout,
                "maxRetries": 0,
            }
        }
    }
    op = api.request(
        "POST",
        f"{rx.BASE}/projects/{PROJECT}/locations/{REGION}/jobs",
        "job",
        json=body,
        params={"jobId": name},
    )
    api.wait_operation(op, rx.BASE, "job")


def run_and_wait(api, job, timeout=60.0):
    op = api.request("POST", rx.job_url(PROJECT, REGION, job) + ":run", "run", json={})
    name = op["metadata"]["name"].rsplit("/", 1)[-1]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = api.request("GET", rx.execution_url(PROJECT, REGION, job, name), "execution")
        if rx.state(found) in rx.FINISHED:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{name} did not finish in {timeout}s")


def base_rows(api, dataset):
    return bq.query(
        api,
        PROJECT,
        f"SELECT execution, source FROM `{PROJECT}.{dataset}.{ledger.TABLE}`",  # noqa: S608 - our own name
    )


def test_sync_twice_adds_nothing_and_a_timeout_is_classed_though_the_job_never_wrote(api, dataset):
    converge(api, dataset)
    fast, slow = f"ledger-fast-{uuid.uuid4().hex[:6]}", f"ledger-slow-{uuid.uuid4().hex[:6]}"
    create_job(api, fast, ["python", "-c", "print('Synced 3 org datasets')"])
    create_job(api, slow, ["python", "-c", "import time; time.sleep(60)"], timeout="1s")
    jobs = [{"name": fast}, {"name": slow}]
    try:
        done = [run_and_wait(api, fast), run_and_wait(api, fast), run_and_wait(api, slow)]
        assert [rx.state(e) for e in done] == ["SUCCEEDED", "SUCCEEDED", "FAILED"]

        first = ledger_sync.reconcile(api, PROJECT, REGION, jobs, "local", dataset=dataset)
        assert first["listed"] == 3 and len(first["appended"]) == 3
        again = ledger_sync.reconcile(api, PROJECT, REGION, jobs, "local", dataset=dataset)
        assert again["listed"] == 3 and again["appended"] == []
        assert len(base_rows(api, dataset)) == 3  # nothing added by the second sync

        rows = {r["execution"]: r for r in ledger.read_rows(api, PROJECT, dataset=dataset)}
        killed = rows[done[2]["name"].rsplit("/", 1)[-1]]
        assert killed["result"] == "failed" and killed["failure_class"] == "timeout", killed
        assert killed["duration_s"] is not None and killed["completed"] is not None
        assert killed["summary"] is None and killed["source"] == "reconcile"  # its own insert never came
        ok = rows[done[0]["name"].rsplit("/", 1)[-1]]
        assert ok["result"] == "succeeded" and ok["failure_class"] is None and ok["trigger"] == "manual"
        assert set(ok) == set(ledger.COLUMNS)
        assert ok["created"].tzinfo is not None

        # The toolkit's record of a run it waited for, with the summary from its log lines.
        name = done[1]["name"].rsplit("/", 1)[-1]
        runs = [{"job": fast, "name": name, "messages": ["Synced 3 org datasets"]}]
        recorded = ledger_sync.record_runs(api, PROJECT, REGION, runs, jobs, "local", dataset=dataset)
        assert [o["execution"] for o in recorded] == [name]  # the summary is news
        assert ledger_sync.record_runs(api, PROJECT, REGION, runs, jobs, "local", dataset=dataset) == []
        row = ledger.read_rows(api, PROJECT, dataset=dataset, executions=[name])[0]
        assert row["summary"] == "Synced 3 org datasets" and row["source"] == "toolkit"
    finally:
        for job in (fast, slow):
            api.request("DELETE", rx.job_url(PROJECT, REGION, job), "cleanup", allow_missing=True)


def test_an_update_over_just_streamed_rows_fails_as_on_google(api, dataset):
    converge(api, dataset)
    obs = {"execution": "x-1", "job": "x", "created": "2026-12-01T00:00:00Z", "source": "job"}
    bq.insert_all(api, PROJECT, dataset, ledger.TABLE, [("x-1", obs)])
    with pytest.raises(
        client.ApiError, match="would affect rows in the streaming buffer, which is not supported"
    ):
        bq.query(
            api,
            PROJECT,
            f"UPDATE `{PROJECT}.{dataset}.{ledger.TABLE}` SET result = 'failed' WHERE TRUE",  # noqa: S608
        )
