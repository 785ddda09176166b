"""localcloud held to Google's discovery documents (localcloud/conformance.py): every route is a method
of its API's document, unknown request fields are refused in Google's words, responses are checked."""

from __future__ import annotations

import json
import re
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import ClassVar

import google.auth
import pytest
from google.auth.transport.requests import AuthorizedSession
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from localcloud import conformance
from localcloud.conformance import (
    DOCUMENTS,
    EXEMPT,
    Conformance,
    document,
    find_method,
    response_problems,
    route_methods,
    unknown_name_message,
    unknown_names,
)
from localcloud.server import LocalCloud
from localcloud.service import Service, json_response
from localcloud.services import SERVICES

ROOT = Path(__file__).resolve().parents[2]
PARENT = "/v2/projects/cloudact-local/locations/us-central1"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


def run_v2(method_id: str):
    doc = document("run.v2")
    return doc, next(m for m in doc.methods if m.id == method_id)


# ---- the documents and the pin ---------------------------------------------------------------------


def test_google_api_python_client_is_the_pinned_release_and_ships_every_document():
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "requirements/dev.txt").read_text().splitlines()
        if "==" in line
    )
    assert version("google-api-python-client") == pins["google-api-python-client"]
    assert "google-api-python-client" in (ROOT / "requirements/dev.in").read_text().split()
    for apis in DOCUMENTS.values():
        for api in apis:
            assert len(document(api).methods) > 0, api


# ---- routes ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built_cloud():
    """localcloud's services constructed (never started): their route tables."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="localcloud-test-"))
    cloud = LocalCloud(root / "state", 0)
    yield cloud
    cloud.server.server_close()
    shutil.rmtree(root, ignore_errors=True)


def test_every_route_localcloud_serves_for_a_google_api_is_a_method_of_its_document(built_cloud):
    names = {svc.name for svc in built_cloud.services}
    assert len(names) == len(SERVICES)
    assert not set(DOCUMENTS) & set(EXEMPT)
    for name in names:
        assert name in DOCUMENTS or name in EXEMPT, f"{name}: name its discovery document or exempt it"
    emulated, strays = route_methods(built_cloud)
    assert strays == [], "routes that are no method of their API's discovery document:\n" + "\n".join(strays)
    # Not vacuous: the jobs the toolkit drives are there, each once.
    assert "run.projects.locations.jobs.run" in emulated["run.v2"]
    assert "run.namespaces.jobs.run" in emulated["run.v1"]
    assert "cloudscheduler.projects.locations.jobs.pause" in emulated["cloudscheduler.v1"]
    assert "secretmanager.projects.secrets.versions.access" in emulated["secretmanager.v1"]
    assert emulated["logging.v2"] == {"logging.entries.list", "logging.entries.write"}
    assert "bigquery.jobs.query" in emulated["bigquery.v2"]


def test_a_route_that_is_no_method_is_reported(built_cloud):
    scheduler = next(s for s in built_cloud.services if s.name == "scheduler")
    scheduler._routes.append(("POST", re.compile(r"/v1/projects/(?P<p>[^/]+)/jobs:frobnicate$"), None))
    try:
        _, strays = route_methods(built_cloud)
    finally:
        scheduler._routes.pop()
    assert strays == ["scheduler: POST /v1/projects/{p}/jobs:frobnicate"]


def test_methods_match_by_http_method_and_flat_path_template():
    doc, method = find_method("run", "GET", PARENT + "/jobs/j1")
    assert (doc.api, method.id) == ("run.v2", "run.projects.locations.jobs.get")
    assert find_method("run", "POST", PARENT + "/jobs/j1:run")[1].id == "run.projects.locations.jobs.run"
    assert find_method("run", "PUT", PARENT + "/jobs/j1") is None
    v1 = "/apis/run.googleapis.com/v1/namespaces/cloudact-local/jobs/j1:run"
    assert find_method("run", "POST", v1)[1].id == "run.namespaces.jobs.run"
    # BigQuery's servicePath (bigquery/v2/) is part of the path.
    bq = find_method("bigquery", "GET", "/bigquery/v2/projects/p/datasets/d/tables/t/data")
    assert bq[1].id == "bigquery.tabledata.list"
    assert find_method("bigquery", "GET", "/projects/p/datasets/d") is None
    assert find_method("oauth2", "POST", "/token") is None


# ---- requests: unknown names -----------------------------------------------------------------------

GOOD_JOB = {
    "labels": {"app": "cloudact"},
    "template": {
        "taskCount": 1,
        "template": {
            "containers": [
                {
                    "image": "us-docker.pkg.dev/p/r/i@sha256:" + "0" * 64,
                    "command": ["python"],
                    "env": [
                        {"name": "A", "value": "1"},
                        {"name": "K", "valueSource": {"secretKeyRef": {"secret": "s", "version": "latest"}}},
                    ],
                    "resources": {"limits": {"memory": "512Mi", "cpu": "1"}},
                }
            ],
            "maxRetries": 3,
            "timeout": "600s",
            "serviceAccount": "sa@p.iam.gserviceaccount.com",
        },
    },
}


def test_a_good_request_body_has_no_unknown_name_and_proto_names_are_accepted():
    doc, create = run_v2("run.projects.locations.jobs.create")
    assert unknown_names(doc, create, GOOD_JOB) == []
    # Google's JSON parser takes the proto field names too.
    assert unknown_names(doc, create, {"template": {"task_count": 2, "template": {"max_retries": 1}}}) == []


def test_unknown_names_are_found_at_googles_path():
    doc, create = run_v2("run.projects.locations.jobs.create")
    body = json.loads(json.dumps(GOOD_JOB))
    body["template"]["x"] = 1
    body["template"]["template"]["containers"][0]["envs"] = []
    body["template"]["template"]["maxRetry"] = 2
    body["lables"] = {}
    assert sorted(unknown_names(doc, create, body)) == [
        ("job", "lables"),
        ("job.template", "x"),
        ("job.template.template", "maxRetry"),
        ("job.template.template.containers[0]", "envs"),
    ]
    assert (
        unknown_name_message("job.template", "x")
        == "Invalid JSON payload received. Unknown name \"x\" at 'job.template': Cannot find field."
    )
    # A *Request body is the whole request: an unknown name at its top has no path.
    doc, run = run_v2("run.projects.locations.jobs.run")
    assert unknown_names(doc, run, {"overides": {}}) == [("", "overides")]
    assert unknown_name_message("", "overides") == (
        'Invalid JSON payload received. Unknown name "overides": Cannot find field.'
    )
    assert unknown_names(doc, run, {"overrides": {"containerOverrides": [{"argz": []}]}}) == [
        ("overrides.container_overrides[0]", "argz")
    ]


def test_map_values_are_checked_at_their_entry():
    doc = document("bigquery.v2")
    insert_all = next(m for m in doc.methods if m.id == "bigquery.tabledata.insertAll")
    body = {"rows": [{"insertId": "1", "json": {"a": 1}}], "skipInvalidRows": True}
    assert unknown_names(doc, insert_all, body) == []
    assert unknown_names(doc, insert_all, {"rows": [{"jsn": {}}]}) == [("rows.rows[0]", "jsn")]
    doc = document("cloudscheduler.v1")
    create = next(m for m in doc.methods if m.id == "cloudscheduler.projects.locations.jobs.create")
    assert unknown_names(doc, create, {"httpTarget": {"headers": {"X-A": "b"}, "oauthTokn": {}}}) == [
        ("job.http_target", "oauthTokn")
    ]


# ---- responses -------------------------------------------------------------------------------------


def test_a_good_response_has_no_problem_and_a_bad_one_each_of_its_problems():
    doc, get = run_v2("run.projects.locations.jobs.get")
    good = {
        "name": "projects/p/locations/l/jobs/j",
        "uid": "u",
        "generation": "3",
        "createTime": "2026-11-27T00:00:00.123456Z",
        "launchStage": "GA",
        "executionCount": 2,
        "reconciling": False,
        "template": GOOD_JOB["template"],
        "terminalCondition": {"type": "Ready", "state": "CONDITION_SUCCEEDED"},
    }
    assert response_problems(doc, get, good) == []
    bad = {
        **good,
        "generation": 3,
        "createTime": "yesterday",
        "launchStage": "SOMEDAY",
        "reconciling": "no",
        "executionCount": "2",
        "jobId": "j",
        "template": {**GOOD_JOB["template"], "parallelism": None},
    }
    assert sorted(response_problems(doc, get, bad)) == [
        ("response.createTime", 'expected an RFC 3339 timestamp, got "yesterday"'),
        ("response.executionCount", 'expected an integer (int32), got "2"'),
        ("response.generation", "expected a string (int64), got 3"),
        ("response.jobId", "a key the schema lacks"),
        (
            "response.launchStage",
            "'SOMEDAY' is not one of the enum "
            + str(doc.schemas["GoogleCloudRunV2Job"]["properties"]["launchStage"]["enum"]),
        ),
        ("response.reconciling", 'expected a boolean, got "no"'),
        ("response.template.parallelism", "null (proto3 JSON leaves a default value out)"),
    ]


def test_an_operation_is_checked_through_the_type_of_its_any():
    doc, create = run_v2("run.projects.locations.jobs.create")
    op = {
        "name": "projects/p/locations/l/operations/o",
        "done": True,
        "metadata": {"@type": "type.googleapis.com/google.cloud.run.v2.Job", "name": "j", "jobName": "j"},
        "response": {"@type": "type.googleapis.com/google.cloud.run.v2.Job", "name": "j"},
    }
    assert response_problems(doc, create, op) == [("response.metadata.jobName", "a key the schema lacks")]


# ---- the hook: refusal and the violation log -------------------------------------------------------


class Scheduler(Service):
    """A service under the name of one that has a document, answering whatever it was told to."""

    name = "scheduler"
    hosts = ("cloudscheduler.googleapis.com",)

    def __init__(self, answer: Response):  # no Cloud: the judge needs none here
        self.answer = answer
        self.handled = 0

    def handle(self, request: Request) -> Response:
        self.handled += 1
        return self.answer


def call(judge: Conformance, svc: Service, method: str, path: str, body=None) -> Response:
    environ = EnvironBuilder(
        method=method, path=path, base_url="https://cloudscheduler.googleapis.com", json=body
    ).get_environ()
    return judge.handle(svc, Request(environ))


def test_the_judge_refuses_unknown_names_before_the_service_and_logs_bad_answers(tmp_path):
    log = tmp_path / "violations.jsonl"
    judge = Conformance(log)
    jobs = "/v1/projects/p/locations/l/jobs"
    svc = Scheduler(json_response({"name": f"{jobs}/a", "schedule": "* * * * *", "nextRun": "soon"}))
    refused = call(
        judge, svc, "POST", jobs, {"schedule": "* * * * *", "retryConfig": {"retryCount": 1, "x": 2}}
    )
    assert refused.status_code == 400 and svc.handled == 0
    error = refused.get_json()["error"]
    message = "Invalid JSON payload received. Unknown name \"x\" at 'job.retry_config': Cannot find field."
    assert error["message"] == message and error["status"] == "INVALID_ARGUMENT"
    assert error["details"][0]["fieldViolations"] == [{"field": "job.retry_config", "description": message}]
    assert not log.exists()
    assert call(judge, svc, "GET", f"{jobs}/a").status_code == 200
    assert call(judge, svc, "GET", "/v1/projects/p/frobs").status_code == 200
    svc.answer = json_response({"error": {"code": 404}}, status=404)
    call(judge, svc, "GET", "/v1/projects/p/unknown")  # a 404 for an unknown URL is no violation
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(v["method"], v["at"], v["problem"]) for v in lines] == [
        ("cloudscheduler.projects.locations.jobs.get", "response.nextRun", "a key the schema lacks"),
        ("", "route", "no method of the documents ['cloudscheduler.v1'] has this HTTP method and path"),
    ]


def test_without_the_switch_nothing_is_logged_and_refusal_stays(tmp_path, monkeypatch):
    monkeypatch.delenv(conformance.LOG_ENV, raising=False)
    judge = Conformance.from_env()
    assert judge.log_file is None
    svc = Scheduler(json_response({"bogus": 1}))
    assert call(judge, svc, "GET", "/v1/projects/p/locations/l/jobs/a").status_code == 200
    assert call(judge, svc, "POST", "/v1/projects/p/locations/l/jobs/a:pause", {"now": 1}).status_code == 400


def test_localcloud_refuses_a_misspelt_field_as_google_does(localcloud_env):
    credentials, _ = google.auth.default(scopes=SCOPES)
    job_id = f"conf-{uuid.uuid4().hex[:8]}"
    body = {"template": {"template": {"containers": [{"image": "python:3.11", "comand": ["true"]}]}}}
    with AuthorizedSession(credentials) as session:
        resp = session.post(f"https://run.googleapis.com{PARENT}/jobs", params={"jobId": job_id}, json=body)
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["message"] == (
            'Invalid JSON payload received. Unknown name "comand" at '
            "'job.template.template.containers[0]': Cannot find field."
        )
        assert resp.json()["error"]["status"] == "INVALID_ARGUMENT"
        assert session.get(f"https://run.googleapis.com{PARENT}/jobs/{job_id}").status_code == 404
        # The same body spelt right is created.
        body["template"]["template"]["containers"][0]["command"] = body["template"]["template"]["containers"][
            0
        ].pop("comand")
        created = session.post(
            f"https://run.googleapis.com{PARENT}/jobs", params={"jobId": job_id}, json=body
        )
        assert created.status_code == 200, created.text
        session.delete(f"https://run.googleapis.com{PARENT}/jobs/{job_id}")


def test_unknown_query_parameters_are_refused_and_system_and_proto_names_are_not(tmp_path):
    judge = Conformance(tmp_path / "v.jsonl")
    svc = Scheduler(json_response({}))
    jobs = "/v1/projects/p/locations/l/jobs"
    for query in (
        "pageSize=5&pageToken=t",
        "page_size=5",
        "$alt=json;enum-encoding=int",
        "alt=json&prettyPrint=false",
    ):
        assert call(judge, svc, "GET", f"{jobs}?{query}").status_code == 200, query
    refused = call(judge, svc, "GET", f"{jobs}?pageSize=5&limit=5")
    assert refused.status_code == 400 and svc.handled == 4
    assert refused.get_json()["error"]["message"] == (
        'Invalid JSON payload received. Unknown name "limit": Cannot bind query parameter. '
        "Field 'limit' could not be found in request message."
    )


class BadScheduler(Service):
    """Answers every call with a job that has a key Scheduler's Job lacks."""

    name = "scheduler"
    hosts = ("cloudscheduler.googleapis.com",)
    permissions: ClassVar[dict[str, str]] = {
        "cloudscheduler.projects.locations.jobs.get": "cloudscheduler.jobs.get",
        "cloudscheduler.projects.locations.jobs.patch": "cloudscheduler.jobs.update",
    }

    def handle(self, request: Request) -> Response:
        self.cloud.authenticate(request)
        return json_response(
            {"name": request.path.removeprefix("/v1/"), "nextRunTime": "2026-01-01T00:00:00Z"}
        )


def test_the_proxy_judges_every_call_and_the_switch_is_the_environment(tmp_path, monkeypatch):
    import requests

    log = tmp_path / "violations.jsonl"
    monkeypatch.setenv(conformance.LOG_ENV, str(log))
    cloud = LocalCloud(tmp_path / "state", 0, service_specs=["oauth2:OAuth2"])
    cloud.register(BadScheduler(cloud))
    cloud.start()
    try:
        with requests.Session() as s:
            s.trust_env = False
            s.proxies = {"https": cloud.proxy_url}
            s.verify = str(cloud.ca_file)
            # A hosted project: IAM judges the caller there (the issued operator key owns it).
            jobs = "https://cloudscheduler.googleapis.com/v1/projects/cloudact-local/locations/l/jobs"
            assert s.get(f"{jobs}/a").status_code == 401  # no token: the service's 401, nothing judged
            s.headers["Authorization"] = f"Bearer {cloud.mint_token(conformance_sa())}"
            assert s.get(f"{jobs}/a").status_code == 200
            refused = s.patch(f"{jobs}/a", json={"schedule": "* * * * *", "timezone": "UTC"})
            assert refused.status_code == 400
            assert refused.json()["error"]["message"] == (
                "Invalid JSON payload received. Unknown name \"timezone\" at 'job': Cannot find field."
            )
    finally:
        cloud.stop()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(v["method"], v["at"], v["status"]) for v in lines] == [
        ("cloudscheduler.projects.locations.jobs.get", "response.nextRunTime", 200)
    ]
    assert (
        lines[0]["request"]
        == "GET cloudscheduler.googleapis.com/v1/projects/cloudact-local/locations/l/jobs/a"
    )


def conformance_sa() -> str:
    return "cloudact-operator@cloudact-local.iam.gserviceaccount.com"  # the issued key's: it exists
