"""IAM as Cloud Run, Cloud Scheduler and BigQuery apply it at run time, with enforcement on: acting as
a job's account, the runtime account's secrets checked at deploy and at execution, executions that
authenticate as their job's account, triggers refused on `:run`, and BigQuery dataset access."""

from __future__ import annotations

import time

import pytest
from google.api_core import exceptions
from google.cloud import bigquery, run_v2, scheduler_v1, secretmanager
from google.iam.v1 import iam_policy_pb2, policy_pb2

from tests.localcloud.test_iam import IAM, OPERATOR, PARENT, PROJECT, start_iam_cloud, unique

SECRET = f"projects/{PROJECT}/secrets/ca-root-api-key-local"
FIELD = "spec.template.spec.containers[0].env[0].value_from.secret_key_ref.name"
WHOAMI = (
    "import json, os, sys; "
    "email = json.load(open(os.environ['GOOGLE_APPLICATION_CREDENTIALS']))['client_email']; "
    "print('running as', email); sys.exit(0 if email == sys.argv[1] else 3)"
)


@pytest.fixture(scope="module")
def iam_cloud():
    yield from start_iam_cloud()


def job(account: str = "", secret: bool = True, expect: str = "") -> run_v2.Job:
    env = [
        run_v2.EnvVar(
            name="ROOT_KEY",
            value_source=run_v2.EnvVarSource(
                secret_key_ref=run_v2.SecretKeySelector(secret=SECRET, version="latest")
            ),
        )
    ]
    container = run_v2.Container(
        image="us-docker.pkg.dev/x/jobs/test:latest",
        command=["python", "-c", WHOAMI],
        args=[expect or account],
        env=env if secret else [],
    )
    task = run_v2.TaskTemplate(containers=[container], max_retries=0, service_account=account)
    return run_v2.Job(template=run_v2.ExecutionTemplate(template=task))


def set_policy(client, resource: str, *bindings: tuple[str, str]) -> None:
    """Replace a resource's bindings (read-modify-write with the etag, version 3)."""
    policy = client.get_iam_policy(
        request=iam_policy_pb2.GetIamPolicyRequest(resource=resource, options={"requested_policy_version": 3})
    )
    del policy.bindings[:]
    for role, member in bindings:
        policy.bindings.append(policy_pb2.Binding(role=role, members=[member]))
    client.set_iam_policy(request=iam_policy_pb2.SetIamPolicyRequest(resource=resource, policy=policy))


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_deploying_needs_act_as_on_the_jobs_account_and_that_account_needs_its_secrets(iam_cloud):
    _, deployer_creds = iam_cloud.account("deployer", "roles/run.developer")
    runtime = iam_cloud.create_account(unique("runtime"))["email"]
    deployer = run_v2.JobsClient(transport="rest", credentials=deployer_creds)
    secrets = secretmanager.SecretManagerServiceClient(transport="rest", credentials=iam_cloud.owner)
    job_id = unique("deploy")
    with pytest.raises(exceptions.Forbidden) as refused:
        deployer.create_job(parent=PARENT, job=job(runtime), job_id=job_id)
    assert refused.value.message.endswith(
        f"Permission 'iam.serviceaccounts.actAs' denied on service account {runtime} (or it may not exist)."
    )
    # actAs granted on the account itself (its own policy, IAM v1), not project-wide.
    session = iam_cloud.session()
    account_url = f"{IAM}/projects/{PROJECT}/serviceAccounts/{runtime}"
    policy = session.post(f"{account_url}:getIamPolicy").json()
    deployer_email = deployer_creds.service_account_email
    policy["bindings"] = [
        {"role": "roles/iam.serviceAccountUser", "members": [f"serviceAccount:{deployer_email}"]}
    ]
    assert session.post(f"{account_url}:setIamPolicy", json={"policy": policy}).status_code == 200
    with pytest.raises(exceptions.Forbidden) as no_secret:
        deployer.create_job(parent=PARENT, job=job(runtime), job_id=job_id)
    assert no_secret.value.message.endswith(
        f"{FIELD}: Permission denied on secret: {SECRET}/versions/latest for Revision service account "
        f"{runtime}. The service account used must be granted the 'Secret Manager Secret Accessor' role "
        "(roles/secretmanager.secretAccessor) at the secret, project or higher level."
    )
    set_policy(secrets, SECRET, ("roles/secretmanager.secretAccessor", f"serviceAccount:{runtime}"))
    try:
        created = deployer.create_job(parent=PARENT, job=job(runtime), job_id=job_id).result(timeout=30)
        assert created.template.template.service_account == runtime
        # A job without a serviceAccount runs as Compute Engine's default account: acting as it is needed too.
        with pytest.raises(exceptions.Forbidden, match=r"actAs' denied on service account \d{12}-compute@"):
            deployer.create_job(parent=PARENT, job=job("", secret=False), job_id=unique("compute"))
        deployer.delete_job(name=created.name).result(timeout=30)
    finally:
        set_policy(secrets, SECRET)


def test_an_execution_is_its_jobs_account_and_fails_when_that_account_cannot_read_its_secret(iam_cloud):
    runtime = iam_cloud.create_account(unique("exec"))["email"]
    secrets = secretmanager.SecretManagerServiceClient(transport="rest", credentials=iam_cloud.owner)
    jobs = run_v2.JobsClient(transport="rest", credentials=iam_cloud.owner)
    set_policy(secrets, SECRET, ("roles/secretmanager.secretAccessor", f"serviceAccount:{runtime}"))
    try:
        made = jobs.create_job(parent=PARENT, job=job(runtime), job_id=unique("exec")).result(timeout=30)
        ran = jobs.run_job(name=made.name).result(timeout=60)
        assert ran.succeeded_count == 1, ran  # the task checked its credentials are the runtime account's
        assert ran.creator == OPERATOR  # the caller of :run
        set_policy(secrets, SECRET)  # the binding removed: the next execution cannot read the secret
        refused = jobs.run_job(name=made.name)
        with pytest.raises(exceptions.FailedPrecondition, match="Permission denied on secret"):
            refused.result(timeout=60)  # the run's operation carries the execution's failure
        executions = run_v2.ExecutionsClient(transport="rest", credentials=iam_cloud.owner)
        failed = executions.get_execution(name=refused.metadata.name)
        assert failed.failed_count == 1 and failed.succeeded_count == 0
        message = next(c.message for c in failed.conditions if c.type_ == "ResourcesAvailable")
        assert message.startswith(
            f"{FIELD}: Permission denied on secret: {SECRET}/versions/latest for Revision service account "
            f"{runtime}."
        )
        # No serviceAccount: the execution runs as Compute Engine's default account.
        number = iam_cloud.session().get(f"https://cloudresourcemanager.googleapis.com/v1/projects/{PROJECT}")
        compute = f"{number.json()['projectNumber']}-compute@developer.gserviceaccount.com"
        plain = jobs.create_job(parent=PARENT, job=job("", False, compute), job_id=unique("plain")).result(
            timeout=30
        )
        assert jobs.run_job(name=plain.name).result(timeout=60).succeeded_count == 1
        for name in (made.name, plain.name):
            jobs.delete_job(name=name).result(timeout=30)
    finally:
        set_policy(secrets, SECRET)


def test_a_trigger_whose_account_lacks_run_jobs_run_shows_permission_denied(iam_cloud):
    jobs = run_v2.JobsClient(transport="rest", credentials=iam_cloud.owner)
    executions = run_v2.ExecutionsClient(transport="rest", credentials=iam_cloud.owner)
    scheduler = scheduler_v1.CloudSchedulerClient(transport="rest", credentials=iam_cloud.owner)
    number = iam_cloud.session().get(f"https://cloudresourcemanager.googleapis.com/v1/projects/{PROJECT}")
    compute = f"{number.json()['projectNumber']}-compute@developer.gserviceaccount.com"
    made = jobs.create_job(parent=PARENT, job=job("", False, compute), job_id=unique("fired")).result(
        timeout=30
    )
    job_id = made.name.rsplit("/", 1)[1]
    trigger_account, trigger_creds = iam_cloud.account("trigger")
    uri = f"https://us-central1-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/{PROJECT}/jobs/{job_id}:run"
    target = scheduler_v1.HttpTarget(
        uri=uri,
        http_method=scheduler_v1.HttpMethod.POST,
        oauth_token=scheduler_v1.OAuthToken(service_account_email=trigger_account),
    )
    trigger = scheduler_v1.Job(
        name=f"{PARENT}/jobs/{job_id}-trigger", schedule="0 0 * * *", http_target=target
    )
    # Creating a trigger that mints tokens for an account needs actAs on it: the account itself lacks it.
    as_trigger = scheduler_v1.CloudSchedulerClient(transport="rest", credentials=trigger_creds)
    iam_cloud.grant(f"serviceAccount:{trigger_account}", "roles/cloudscheduler.admin")
    with pytest.raises(exceptions.Forbidden) as refused:
        as_trigger.create_job(parent=PARENT, job=trigger)
    assert refused.value.message.endswith(
        'The principal (user or service account) lacks IAM permission "iam.serviceAccounts.actAs" for the '
        f'resource "{trigger_account}" (or the resource may not exist).'
    )
    created = scheduler.create_job(parent=PARENT, job=trigger)
    scheduler.run_job(name=created.name)
    denied = wait_for(
        lambda: (j := scheduler.get_job(name=created.name)).last_attempt_time and j,
        what="the refused attempt",
    )
    assert denied.status.code == 7  # PERMISSION_DENIED
    assert list(executions.list_executions(parent=made.name)) == []
    set_policy(jobs, made.name, ("roles/run.invoker", f"serviceAccount:{trigger_account}"))
    scheduler.run_job(name=created.name)
    execution = wait_for(lambda: next(iter(executions.list_executions(parent=made.name)), None), what="a run")
    assert execution.creator == trigger_account  # Cloud Run records the trigger's account as the caller
    wait_for(lambda: scheduler.get_job(name=created.name).status.code == 0, what="a successful attempt")
    scheduler.delete_job(name=created.name)
    jobs.delete_job(name=made.name).result(timeout=30)


def test_a_query_needs_jobs_create_and_read_access_to_its_tables(iam_cloud):
    owner = bigquery.Client(project=PROJECT, credentials=iam_cloud.owner)
    dataset_id = unique("acl").replace("-", "_")
    owner.create_dataset(dataset_id)
    table = owner.create_table(
        bigquery.Table(f"{PROJECT}.{dataset_id}.t", [bigquery.SchemaField("n", "INT64")])
    )
    assert owner.insert_rows_json(table, [{"n": 1}, {"n": 2}]) == []
    email, creds = iam_cloud.account("reader")
    reader = bigquery.Client(project=PROJECT, credentials=creds)
    sql = f"SELECT COUNT(*) AS c FROM `{PROJECT}.{dataset_id}.t`"  # noqa: S608 - a test's own names
    with pytest.raises(exceptions.Forbidden) as no_jobs:
        reader.query(sql).result()
    assert f"User does not have bigquery.jobs.create permission in project {PROJECT}." in str(no_jobs.value)
    iam_cloud.grant(f"serviceAccount:{email}", "roles/bigquery.jobUser")
    with pytest.raises(exceptions.Forbidden) as no_read:
        reader.query(sql).result()
    name = f"{PROJECT}:{dataset_id}.t"
    assert (
        f"Access Denied: Table {name}: User does not have permission to query table {name}, or perhaps it "
        "does not exist." in str(no_read.value)
    )
    # A READER access entry on the dataset (datasets.patch with its etag); a stale etag is 412.
    dataset = owner.get_dataset(dataset_id)
    assert {(e.role, e.entity_type) for e in dataset.access_entries} >= {("OWNER", "specialGroup")}
    dataset.access_entries = [*dataset.access_entries, bigquery.AccessEntry("READER", "userByEmail", email)]
    updated = owner.update_dataset(dataset, ["access_entries"])
    assert updated.etag != dataset.etag
    with pytest.raises(exceptions.PreconditionFailed, match=r"Precondition check failed\."):
        owner.update_dataset(dataset, ["access_entries"])
    assert [row.c for row in reader.query(sql).result()] == [2]
    assert sorted(r["n"] for r in reader.list_rows(f"{PROJECT}.{dataset_id}.t")) == [1, 2]
    with pytest.raises(
        exceptions.Forbidden, match=r"Permission bigquery\.tables\.updateData denied on table"
    ):
        reader.insert_rows_json(f"{PROJECT}.{dataset_id}.t", [{"n": 3}])
    owner.delete_dataset(dataset_id, delete_contents=True)


def test_a_binding_on_a_job_covers_its_executions_in_v2_and_v1(iam_cloud):
    jobs = run_v2.JobsClient(transport="rest", credentials=iam_cloud.owner)
    number = iam_cloud.session().get(f"https://cloudresourcemanager.googleapis.com/v1/projects/{PROJECT}")
    compute = f"{number.json()['projectNumber']}-compute@developer.gserviceaccount.com"
    mine = jobs.create_job(parent=PARENT, job=job("", False, compute), job_id=unique("mine")).result(
        timeout=30
    )
    other = jobs.create_job(parent=PARENT, job=job("", False, compute), job_id=unique("other")).result(
        timeout=30
    )
    email, creds = iam_cloud.account("executor")
    set_policy(jobs, mine.name, ("roles/run.jobsExecutor", f"serviceAccount:{email}"))
    as_executor = run_v2.JobsClient(transport="rest", credentials=creds)
    # Its operation is the project's (run.operations.get): the executor follows the execution instead.
    started = as_executor.run_job(name=mine.name).metadata
    executions = run_v2.ExecutionsClient(transport="rest", credentials=creds)
    ran = wait_for(
        lambda: (e := executions.get_execution(name=started.name)).completion_time and e, what="the run"
    )
    assert ran.creator == email and ran.succeeded_count == 1
    v1 = f"https://us-central1-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/{PROJECT}"
    session = iam_cloud.session(creds)
    exec_id = ran.name.rsplit("/", 1)[1]
    assert session.get(f"{v1}/executions/{exec_id}").json()["metadata"]["name"] == exec_id
    with pytest.raises(exceptions.Forbidden, match=r"Permission 'run\.jobs\.run' denied on resource"):
        as_executor.run_job(name=other.name)
    with pytest.raises(exceptions.Forbidden, match=r"Permission 'run\.jobs\.runWithOverrides' denied"):
        as_executor.run_job(
            request=run_v2.RunJobRequest(
                name=mine.name, overrides=run_v2.RunJobRequest.Overrides(task_count=1)
            )
        )
    for name in (mine.name, other.name):
        jobs.delete_job(name=name).result(timeout=30)


QUERY = (
    "import sys; from google.cloud import bigquery; "
    "sql = f'SELECT COUNT(*) AS c FROM `{sys.argv[2]}`'; "
    "rows = list(bigquery.Client(project=sys.argv[1]).query(sql).result()); print('rows', rows[0].c)"
)


def test_an_executions_query_is_its_runtime_accounts_and_needs_the_datasets_access(iam_cloud):
    owner = bigquery.Client(project=PROJECT, credentials=iam_cloud.owner)
    dataset_id = unique("run_acl").replace("-", "_")
    owner.create_dataset(dataset_id)
    table = f"{PROJECT}.{dataset_id}.t"
    owner.create_table(bigquery.Table(table, [bigquery.SchemaField("n", "INT64")]))
    runtime, _ = iam_cloud.account("querier", "roles/bigquery.jobUser")
    container = run_v2.Container(image="img", command=["python", "-c", QUERY], args=[PROJECT, table])
    task = run_v2.TaskTemplate(containers=[container], max_retries=0, service_account=runtime)
    jobs = run_v2.JobsClient(transport="rest", credentials=iam_cloud.owner)
    made = jobs.create_job(
        parent=PARENT,
        job=run_v2.Job(template=run_v2.ExecutionTemplate(template=task)),
        job_id=unique("query"),
    ).result(timeout=30)
    refused = jobs.run_job(name=made.name)
    with pytest.raises(exceptions.GoogleAPICallError):
        refused.result(timeout=90)  # the task's query is refused: it exits non-zero
    exec_id = refused.metadata.name.rsplit("/", 1)[1]
    logged = iam_cloud.session().post(
        "https://logging.googleapis.com/v2/entries:list",
        json={
            "resourceNames": [f"projects/{PROJECT}"],
            "filter": f'labels."run.googleapis.com/execution_name"="{exec_id}"',
            "pageSize": 1000,
        },
    )
    text = "\n".join(e.get("textPayload", "") for e in logged.json().get("entries", []))
    assert f"User does not have permission to query table {table.replace('.', ':', 1)}" in text, text[-2000:]
    dataset = owner.get_dataset(dataset_id)
    dataset.access_entries = [*dataset.access_entries, bigquery.AccessEntry("READER", "userByEmail", runtime)]
    owner.update_dataset(dataset, ["access_entries"])
    assert jobs.run_job(name=made.name).result(timeout=90).succeeded_count == 1
    jobs.delete_job(name=made.name).result(timeout=30)
    owner.delete_dataset(dataset_id, delete_contents=True)
