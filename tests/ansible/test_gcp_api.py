"""cloudact.gcp module_utils: the request helper (retries, deadline, errors), LRO polling, paging,
against a real local HTTP server; and the normalise/compare functions, as data."""

from __future__ import annotations

import json
import socket
import time

import pytest
from ansible_collections.cloudact.gcp.plugins.module_utils import cloud_run, cloud_scheduler
from ansible_collections.cloudact.gcp.plugins.module_utils.fields import changed_fields, cpu, duration, memory
from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import ApiError, GcpApi
from werkzeug.wrappers import Response

TOKEN = "test-access-token"


class Module:
    """The parts of an AnsibleModule that GcpSession and GcpApi read."""

    def __init__(self, deadline: float = 30.0):
        self.params = {
            "auth_kind": "accesstoken",
            "access_token": TOKEN,
            "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
            "service_account_file": None,
            "service_account_contents": None,
            "service_account_email": None,
            "env_type": None,
            "request_deadline": deadline,
        }

    def fail_json(self, **kwargs):
        raise AssertionError(f"fail_json: {kwargs}")


def api(deadline: float = 30.0) -> GcpApi:
    return GcpApi(Module(deadline), "test")


def delays(client: GcpApi) -> list[float]:
    """The sleeps of the last call's retries (the client records them; real time passes)."""
    return [d for _, d in client.retries]


def error(code: int, status: str, message: str, headers: dict | None = None) -> Response:
    body = {"error": {"code": code, "status": status, "message": message}}
    return Response(json.dumps(body), status=code, headers=headers or {}, mimetype="application/json")


def test_retries_429_and_5xx_then_returns_the_body(httpserver):
    replies = [error(429, "RESOURCE_EXHAUSTED", "slow down"), error(503, "UNAVAILABLE", "try again")]
    seen = []

    def handler(request):
        seen.append(request.headers.get("Authorization"))
        return replies.pop(0) if replies else Response(json.dumps({"name": "x"}), mimetype="application/json")

    httpserver.expect_request("/v2/thing").respond_with_handler(handler)
    client = api()
    assert client.request("GET", httpserver.url_for("/v2/thing"), "thing x") == {"name": "x"}
    assert seen == [f"Bearer {TOKEN}"] * 3
    sleeps = delays(client)
    assert len(sleeps) == 2 and sleeps[0] <= 0.5 and sleeps[1] <= 1.0  # jittered, growing cap


def test_retry_after_is_honoured(httpserver):
    replies = [error(503, "UNAVAILABLE", "busy", {"Retry-After": "1"})]
    httpserver.expect_request("/v2/thing").respond_with_handler(
        lambda r: replies.pop(0) if replies else Response("{}", mimetype="application/json")
    )
    client = api()
    assert client.request("GET", httpserver.url_for("/v2/thing"), "thing") == {}
    assert delays(client) == [1.0]


@pytest.mark.parametrize(
    ("status", "reason", "message"),
    [
        (400, "INVALID_ARGUMENT", "Schedule 'x' is invalid"),
        (403, "PERMISSION_DENIED", "Permission 'run.jobs.update' denied on resource"),
        (409, "ALREADY_EXISTS", "Resource already exists"),
    ],
)
def test_a_client_error_fails_at_once_naming_the_resource_with_the_api_message(
    httpserver, status, reason, message
):
    httpserver.expect_request("/v2/jobs/j").respond_with_response(error(status, reason, message))
    client = api()
    with pytest.raises(ApiError) as exc:
        client.request("PATCH", httpserver.url_for("/v2/jobs/j"), "Cloud Run job j (update)", json={})
    assert str(exc.value) == f"Cloud Run job j (update): {status} {reason}: {message}"
    assert exc.value.status == status and exc.value.reason == reason
    assert delays(client) == [] and len(httpserver.log) == 1


def test_404_is_none_when_allowed_else_an_error(httpserver):
    httpserver.expect_request("/v2/jobs/gone").respond_with_response(
        error(404, "NOT_FOUND", "Resource 'gone' not found")
    )
    client = api()
    assert client.request("GET", httpserver.url_for("/v2/jobs/gone"), "job gone", allow_missing=True) is None
    with pytest.raises(ApiError, match=r"^job gone: 404 NOT_FOUND: Resource 'gone' not found$"):
        client.request("GET", httpserver.url_for("/v2/jobs/gone"), "job gone")


def test_gives_up_at_the_deadline(httpserver):
    httpserver.expect_request("/v2/thing").respond_with_response(error(500, "INTERNAL", "boom"))
    client = api(deadline=3)
    started = time.monotonic()
    with pytest.raises(ApiError, match=r"^thing: gave up after \d+ attempt\(s\) in 3s: 500 INTERNAL: boom$"):
        client.request("GET", httpserver.url_for("/v2/thing"), "thing")
    assert time.monotonic() - started <= 3.5 and len(httpserver.log) >= 3


def test_connection_errors_are_retried_until_the_deadline():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = api(deadline=2)
    with pytest.raises(ApiError, match=r"gave up after \d+ attempt\(s\) in 2s: ConnectionError"):
        client.request("GET", f"http://127.0.0.1:{port}/v2/x", "thing")
    assert len(delays(client)) >= 2


def test_waits_for_an_operation_and_returns_its_response(httpserver):
    polls = [{"name": "projects/p/locations/l/operations/o1"}]

    def op(request):
        done = {"name": "projects/p/locations/l/operations/o1", "done": True, "response": {"name": "job"}}
        return Response(json.dumps(polls.pop(0) if polls else done), mimetype="application/json")

    httpserver.expect_request("/v2/projects/p/locations/l/operations/o1").respond_with_handler(op)
    client = api()
    result = client.wait_operation(
        {"name": "projects/p/locations/l/operations/o1"}, httpserver.url_for("/v2"), "job j"
    )
    assert result == {"name": "job"}
    assert len(httpserver.log) == 2  # polled until done


def test_a_failed_operation_carries_its_error(httpserver):
    client = api()
    failed = {"name": "o", "done": True, "error": {"code": 9, "message": "image not found"}}
    with pytest.raises(
        ApiError, match=r"^Cloud Run job j \(create\): operation failed: image not found \(code 9\)$"
    ):
        client.wait_operation(failed, httpserver.url_for("/v2"), "Cloud Run job j (create)")


def test_list_all_follows_page_tokens(httpserver):
    def page(request):
        token = request.args.get("pageToken")
        body = (
            {"jobs": [{"name": "b"}]} if token == "t2" else {"jobs": [{"name": "a"}], "nextPageToken": "t2"}
        )
        return Response(json.dumps(body), mimetype="application/json")

    httpserver.expect_request("/v2/jobs").respond_with_handler(page)
    client = api()
    assert client.list_all(httpserver.url_for("/v2/jobs"), "jobs", "jobs") == [{"name": "a"}, {"name": "b"}]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(600, "600s"), ("600", "600s"), ("600s", "600s"), ("15m", "900s"), ("1h", "3600s"), ("1.5s", "1.5s")],
)
def test_duration(value, expected):
    assert duration(value) == expected


@pytest.mark.parametrize("value", ["soon", "-5s", True])
def test_bad_duration_names_the_value(value):
    with pytest.raises(ValueError, match="timeout"):
        duration(value)


@pytest.mark.parametrize(
    ("fn", "value", "expected"),
    [
        (cpu, "1000m", "1"),
        (cpu, "2", "2"),
        (cpu, "500m", "500m"),
        (memory, "2048Mi", "2Gi"),
        (memory, "512Mi", "512Mi"),
    ],
)
def test_limits_normalise(fn, value, expected):
    assert fn(value) == expected


SPEC = {
    "image": "img:1",
    "command": ["python", "jobs/daily/alerts_daily.py"],
    "args": [],
    "env": {"ENVIRONMENT": "local", "GCP_PROJECT_ID": "p"},
    "secret_env": {"CA_ROOT_API_KEY": {"secret": "ca-root-api-key-local", "version": "latest"}},
    "cpu": "1",
    "memory": "2Gi",
    "timeout": "1800s",
    "max_retries": 1,
    "task_count": 1,
    "parallelism": 0,
    "service_account": "sa@p.iam.gserviceaccount.com",
    "labels": {"managed-by": "cloudact-toolkit"},
}


def test_a_job_built_from_a_spec_reads_back_equal_even_as_the_server_rewrites_it():
    body = cloud_run.apply({}, SPEC)
    # What a server may echo: millicores, Mi, project-qualified secret names, no parallelism.
    box = body["template"]["template"]["containers"][0]
    box["resources"]["limits"] = {"cpu": "1000m", "memory": "2048Mi"}
    box["env"][-1]["valueSource"]["secretKeyRef"]["secret"] = "projects/p/secrets/ca-root-api-key-local"
    del body["template"]["parallelism"]
    body.update(name="projects/p/locations/l/jobs/j", uid="u", generation="2", etag="e")
    assert cloud_run.view(body, "p") == SPEC
    assert set(box["env"][-1]) == {"name", "valueSource"}  # a reference, never a value


def test_a_patch_keeps_fields_it_does_not_own_and_drops_output_only_ones():
    current = cloud_run.apply({}, SPEC)
    current["template"]["template"]["vpcAccess"] = {"connector": "c"}
    current.update(uid="u", conditions=[{}], latestCreatedExecution={"name": "e"}, etag="e1")
    body = cloud_run.apply(current, dict(SPEC, timeout="900s"))
    assert body["template"]["template"]["vpcAccess"] == {"connector": "c"}
    assert body["template"]["template"]["timeout"] == "900s" and body["etag"] == "e1"
    assert not {"uid", "conditions", "latestCreatedExecution"} & set(body)


def test_a_server_default_job_reads_as_cloud_run_defaults():
    job = {"template": {"template": {"containers": [{"image": "i"}]}}}
    view = cloud_run.view(job, "p")
    assert {k: view[k] for k in cloud_run.DEFAULTS} == cloud_run.DEFAULTS


def test_a_scheduler_job_echoed_with_server_defaults_and_headers_reads_back_equal():
    spec = dict(
        cloud_scheduler.DEFAULTS, schedule="0 8 * * *", uri="https://x/run", oauth_service_account_email="sa"
    )
    echoed = cloud_scheduler.body("projects/p/locations/l/jobs/t", spec)
    echoed["httpTarget"]["headers"] = {"User-Agent": "Google-Cloud-Scheduler"}
    echoed["httpTarget"]["httpMethod"] = 1  # an integer enum, as GAPIC clients send
    echoed["timeZone"] = "Etc/UTC"
    del echoed["retryConfig"]["retryCount"]  # 0 is omitted in proto3 JSON
    echoed.update(state="PAUSED", userUpdateTime="2026-01-01T00:00:00Z")
    assert cloud_scheduler.view(echoed) == spec
    assert cloud_scheduler.summary(echoed)["paused"] is True


@pytest.mark.parametrize(
    ("fields", "mask"),
    [
        (["schedule"], "schedule"),
        (["uri", "oauth_scope"], "httpTarget"),
        (["max_doublings", "time_zone"], "retryConfig,timeZone"),
    ],
)
def test_update_mask(fields, mask):
    assert cloud_scheduler.update_mask(fields) == mask


def test_changed_fields():
    assert changed_fields({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == ["b", "c"]


@pytest.mark.parametrize(
    ("labels", "timeout", "adopted"),
    [
        ({"cloudact-env": "stage"}, "1800s", True),  # made by this environment with this spec: ours
        ({"cloudact-env": "stage"}, "60s", False),  # another spec: not what this create made
        ({"cloudact-env": "test"}, "1800s", False),  # another environment's: a takeover
        ({}, "1800s", False),  # unlabelled: a create never adopts what it did not make
    ],
)
def test_a_create_that_meets_an_existing_job_adopts_only_its_own(
    httpserver, monkeypatch, labels, timeout, adopted
):
    # The race localcloud cannot stage: a create that meets 409 ALREADY_EXISTS (a concurrent converge,
    # or a resend whose first attempt went through).

    monkeypatch.setattr(cloud_run, "BASE", httpserver.url_for("/v2"))
    jobs = "/v2/projects/p/locations/l/jobs"
    wanted = dict(SPEC, labels={"cloudact-env": "stage"})
    existing = dict(
        cloud_run.apply({}, dict(wanted, timeout=timeout, labels=labels)),
        name="projects/p/locations/l/jobs/j",
    )
    httpserver.expect_request(jobs, method="POST").respond_with_response(
        error(409, "ALREADY_EXISTS", "exists")
    )
    httpserver.expect_request(f"{jobs}/j", method="GET").respond_with_json(existing)
    client = api()
    if adopted:
        assert cloud_run.create_job(client, "p", "l", "j", wanted, env="stage") == existing
    else:
        with pytest.raises(ApiError) as err:
            cloud_run.create_job(client, "p", "l", "j", wanted, env="stage")
        assert str(err.value).startswith("refused: Cloud Run job j already exists")
        assert "nothing was changed" in str(err.value)
    assert [r.method for r, _ in httpserver.log] == ["POST", "GET"]  # never a PATCH of what it met
