"""The execution ledger on localcloud: the converge in four steps (check, real, idempotent check,
idempotent real) and a retention change; reconciliation twice adds nothing; a run killed by its
timeout is in the ledger with failure class timeout although its own insert never came; and an
UPDATE over just-streamed rows fails as on Google (why every writer only appends)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from ansible_collections.cloudact.gcp.plugins.module_utils import bigquery as bq
from ansible_collections.cloudact.gcp.plugins.module_utils import client, ledger, ledger_sync, timefmt
from ansible_collections.cloudact.gcp.plugins.module_utils import run_execution as rx

from .conftest import BIN, ROOT, base_env, environment_vars, run

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


def ledger_action(
    localcloud,
    directory: Path,
    args: dict,
    check: bool = False,
    diff: bool = False,
    action: str = "bigquery_ledger",
) -> tuple[int, dict]:
    """cloudact.gcp.<action> as `ansible localhost -m` ([--check] [--diff]) with the run's environment a
    play's cloudact_env and preflight roles give it (the project, the credentials, localcloud's client
    environment): the ansible process itself has no way to Google but that environment."""
    full = base_env(localcloud.state_dir, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json")
    cmd = [str(BIN / "ansible"), "localhost", "-i", "inventories/local", "-m", f"cloudact.gcp.{action}"]
    cmd += environment_vars("local", localcloud.state_dir, directory)
    flags = [*(["--check"] if check else []), *(["--diff"] if diff else [])]
    result = run([*cmd, "-a", json.dumps(args), *flags], full)
    out = json.loads(result.stdout)
    return result.rc, out["plays"][0]["tasks"][0]["hosts"]["localhost"]


def converge(api, dataset):
    bq.insert_dataset(api, PROJECT, dataset, "US")
    bq.insert_table(api, PROJECT, dataset, ledger.table_body(PROJECT, dataset, None))
    bq.insert_table(api, PROJECT, dataset, ledger.view_body(PROJECT, dataset))


def test_the_ledger_converges_in_four_steps_in_a_users_playbook(localcloud, ansible_env, google, dataset):
    """A user's own playbook: the cloudact_env and cloudact_preflight roles, then bigquery_ledger in four
    steps (tests/ansible/playbooks/ledger.yml asserts the results). localcloud shows that the check
    only read, the real step created the dataset, the table and the view, and the idempotent steps only
    read; and what they are."""
    mark = localcloud.admin.request_seq()
    result = run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            "inventories/local",
            str(ROOT / "tests/ansible/playbooks/ledger.yml"),
            "-e",
            f"ledger_dataset={dataset}",
        ],
        ansible_env,
    )
    assert result.rc == 0, result.output[-4000:]
    assert "failed=0" in result.stdout

    datasets = f"/bigquery/v2/projects/{PROJECT}/datasets"
    mine = f"{datasets}/{dataset}"
    calls = [
        (r["method"], r["path"].removeprefix(mine) if r["path"].startswith(mine) else r["path"])
        for r in localcloud.admin.request_log(after=mark)
        if r["host"] == "bigquery.googleapis.com"
        and (r["path"].startswith(mine) or (r["path"] == datasets and dataset in json.dumps(r["body"])))
    ]
    reads = [("GET", ""), ("GET", f"/tables/{ledger.TABLE}"), ("GET", f"/tables/{ledger.VIEW}")]
    assert calls == [
        ("GET", ""),  # check: the dataset is missing; nothing written
        ("GET", ""),  # real: the dataset is missing, and is created with its table and view
        ("POST", datasets),
        ("POST", "/tables"),
        ("POST", "/tables"),
        *reads,  # idempotent check: reads only
        *reads,  # idempotent real: reads only
    ], calls

    base = f"https://bigquery.googleapis.com{mine}"
    found = google.get(base, timeout=30)
    assert found.status_code == 200 and found.json()["location"] == "US", found.text
    table = google.get(f"{base}/tables/{ledger.TABLE}", timeout=30).json()
    assert [f["name"] for f in table["schema"]["fields"]] == [f[0] for f in ledger.BASE_FIELDS]
    assert table["timePartitioning"] == {
        "type": "DAY",
        "field": "created",
        "expirationMs": str(400 * 86400 * 1000),
    }
    view = google.get(f"{base}/tables/{ledger.VIEW}", timeout=30).json()
    assert view["type"] == "VIEW" and view["view"]["query"] == ledger.view_sql(PROJECT, dataset)


def test_the_ledger_converges_in_four_steps_and_takes_a_retention(localcloud, api, dataset, tmp_path):
    args = {"dataset": dataset}
    rc, res = ledger_action(localcloud, tmp_path, args, check=True)
    assert rc == 0, res
    assert res["changed"] and res["operations"] == [
        f"create dataset {dataset}",
        "create table job_execution_observations",
        "create view job_executions",
    ]
    assert bq.get_dataset(api, PROJECT, dataset) is None  # the check changed nothing
    rc, res = ledger_action(localcloud, tmp_path, args)
    assert rc == 0 and res["changed"], res
    table = bq.get_table(api, PROJECT, dataset, ledger.TABLE)
    assert table["timePartitioning"] == {"type": "DAY", "field": "created"}
    assert [f["name"] for f in table["schema"]["fields"]] == [f[0] for f in ledger.BASE_FIELDS]
    view = bq.get_table(api, PROJECT, dataset, ledger.VIEW)
    assert view["type"] == "VIEW" and view["view"]["query"] == ledger.view_sql(PROJECT, dataset)
    for check in (True, False):
        rc, res = ledger_action(localcloud, tmp_path, args, check=check)
        assert rc == 0 and not res["changed"] and res["operations"] == [], res
    update = ["update table job_execution_observations (timePartitioning)"]
    rc, res = ledger_action(localcloud, tmp_path, {**args, "retention_days": 400}, check=True, diff=True)
    assert rc == 0 and res["changed"] and res["operations"] == update, res
    assert res["diff"]["before"]["table"]["retention_days"] is None
    assert res["diff"]["after"]["table"]["retention_days"] == 400
    assert bq.get_table(api, PROJECT, dataset, ledger.TABLE)["timePartitioning"] == table["timePartitioning"]
    rc, res = ledger_action(localcloud, tmp_path, {**args, "retention_days": 400})
    assert rc == 0 and res["operations"] == update, res
    part = bq.get_table(api, PROJECT, dataset, ledger.TABLE)["timePartitioning"]
    assert part["expirationMs"] == str(400 * 86400 * 1000)
    rc, res = ledger_action(localcloud, tmp_path, {**args, "retention_days": 400})
    assert rc == 0 and not res["changed"], res


def test_a_column_the_table_lacks_is_added_in_place(localcloud, api, dataset, tmp_path):
    """A ledger an older schema made: the column it lacks is added (NULLABLE), the rows it has stay."""
    bq.insert_dataset(api, PROJECT, dataset, "US")
    older = ledger.table_body(PROJECT, dataset)
    older["schema"]["fields"] = older["schema"]["fields"][:-1]  # without schema_version
    bq.insert_table(api, PROJECT, dataset, older)
    bq.insert_table(api, PROJECT, dataset, ledger.view_body(PROJECT, dataset))
    obs = {"execution": "x-1", "job": "x", "created": "2026-12-01T00:00:00Z", "source": "job"}
    bq.insert_all(api, PROJECT, dataset, ledger.TABLE, [("x-1", obs)])
    rc, res = ledger_action(localcloud, tmp_path, {"dataset": dataset}, check=True, diff=True)
    assert rc == 0 and res["operations"] == ["update table job_execution_observations (schema)"], res
    assert res["diff"]["after"]["table"]["columns"][-1] == "schema_version"
    assert "schema_version" not in res["diff"]["before"]["table"]["columns"]
    assert (
        len(bq.get_table(api, PROJECT, dataset, ledger.TABLE)["schema"]["fields"])
        == len(ledger.BASE_FIELDS) - 1
    )
    rc, res = ledger_action(localcloud, tmp_path, {"dataset": dataset})
    assert rc == 0 and res["changed"], res
    fields = bq.get_table(api, PROJECT, dataset, ledger.TABLE)["schema"]["fields"]
    assert fields[-1]["name"] == "schema_version" and fields[-1]["mode"] == "NULLABLE"
    assert [r["execution"] for r in base_rows(api, dataset)] == ["x-1"]
    rc, res = ledger_action(localcloud, tmp_path, {"dataset": dataset})
    assert rc == 0 and not res["changed"], res


def test_a_dataset_in_another_location_is_named_not_moved(localcloud, api, dataset, tmp_path):
    bq.insert_dataset(api, PROJECT, dataset, "EU")
    rc, res = ledger_action(localcloud, tmp_path, {"dataset": dataset})
    assert rc != 0 and f"{dataset} is in EU, the inventory says US" in res["msg"], res
    assert bq.get_table(api, PROJECT, dataset, ledger.TABLE) is None  # refused before any change


def test_bad_options_fail_in_one_line_before_any_request(localcloud, tmp_path):
    cases = [
        ("bigquery_ledger", {"dataset": "no-dashes"}, "ledger dataset 'no-dashes': expected letters"),
        ("bigquery_ledger", {"retention_days": 0}, "retention_days 0: expected a number of days >= 1"),
        ("ledger_info", {"limit": -1}, "limit -1, days None: expected limit 0 (all) or more"),
        (
            "ledger_sync",
            {"jobs": [], "environment": "local", "runs": [{"job": "x"}]},
            "runs[0]: expected {job, name, messages?, summary?}",
        ),
    ]
    mark = localcloud.admin.request_seq()
    for action, args, message in cases:
        rc, res = ledger_action(localcloud, tmp_path, args, action=action)
        assert rc != 0 and res["msg"].startswith(message) and "\n" not in res["msg"], (action, res)
    assert [
        r for r in localcloud.admin.request_log(after=mark) if r["host"] == "bigquery.googleapis.com"
    ] == []


def test_ledger_info_reads_a_ledger_that_does_not_exist_as_none(localcloud, dataset, tmp_path):
    rc, res = ledger_action(localcloud, tmp_path, {"dataset": dataset, "days": 30}, action="ledger_info")
    assert rc == 0 and not res["changed"], res
    assert res["exists"] is False and res["rows"] == [] and res["server_time"].endswith("Z")


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
        if rx.state(found) in timefmt.FINISHED:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{name} did not finish in {timeout}s")


def base_rows(api, dataset):
    return bq.query(
        api,
        PROJECT,
        f"SELECT execution, source FROM `{PROJECT}.{dataset}.{ledger.TABLE}`",  # noqa: S608 - our own name
    )


def test_sync_twice_adds_nothing_and_a_timeout_is_classed_though_the_job_never_wrote(
    localcloud, api, dataset, tmp_path
):
    converge(api, dataset)
    fast, slow = f"ledger-fast-{uuid.uuid4().hex[:6]}", f"ledger-slow-{uuid.uuid4().hex[:6]}"
    create_job(api, fast, ["python", "-c", "print('Synced 3 org datasets')"])
    create_job(api, slow, ["python", "-c", "import time; time.sleep(60)"], timeout="1s")
    jobs = [{"name": fast}, {"name": slow}]
    try:
        done = [run_and_wait(api, fast), run_and_wait(api, fast), run_and_wait(api, slow)]
        assert [rx.state(e) for e in done] == ["SUCCEEDED", "SUCCEEDED", "FAILED"]

        # cloudact.gcp.ledger_sync in check mode with diff: reads, says what it would append, appends nothing.
        sync = {"jobs": jobs, "environment": "local", "dataset": dataset}
        rc, res = ledger_action(localcloud, tmp_path, sync, check=True, diff=True, action="ledger_sync")
        assert rc == 0 and res["changed"] and (res["listed"], res["appended"]) == (3, 3), res
        assert res["lines"] == [
            f"ledger {PROJECT}.{dataset}: 3 execution(s) in Cloud Run, 3 observation(s) would be appended"
        ]
        slow_name = done[2]["name"].rsplit("/", 1)[-1]
        assert res["diff"]["before"][slow_name] == {}
        assert res["diff"]["after"][slow_name]["failure_class"] == "timeout", res["diff"]
        assert base_rows(api, dataset) == []

        first = ledger_sync.reconcile(api, PROJECT, REGION, jobs, "local", dataset=dataset)
        assert first["listed"] == 3 and len(first["appended"]) == 3
        again = ledger_sync.reconcile(api, PROJECT, REGION, jobs, "local", dataset=dataset)
        assert again["listed"] == 3 and again["appended"] == []
        assert len(base_rows(api, dataset)) == 3  # nothing added by the second sync
        rc, res = ledger_action(localcloud, tmp_path, sync, diff=True, action="ledger_sync")
        assert rc == 0 and not res["changed"] and (res["listed"], res["appended"]) == (3, 0), res
        assert "diff" not in res and len(base_rows(api, dataset)) == 3

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
