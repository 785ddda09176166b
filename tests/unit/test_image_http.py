"""The image's HTTP calls (Cloud Storage uploads, Cloud Build, Artifact Registry, the pin) against a
real local HTTP server (pytest-httpserver), reached as the product reaches a private endpoint
($CLOUDACT_API_ENDPOINTS), with Google's REST shapes."""

from __future__ import annotations

import json

import pytest
from ansible_collections.cloudact.gcp.plugins.module_utils import artifact_registry as ar
from ansible_collections.cloudact.gcp.plugins.module_utils import cloud_build, image, storage
from ansible_collections.cloudact.gcp.plugins.module_utils.client import Client
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError
from google.oauth2.credentials import Credentials
from werkzeug.wrappers import Response

HOSTS = (
    "storage.googleapis.com",
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
    "logging.googleapis.com",
    "run.googleapis.com",
)
REPO = "us-central1-docker.pkg.dev/cloudact-testing-1/cloudact/cloudact-jobs-stage"
REPO_NAME = "projects/cloudact-testing-1/locations/us-central1/repositories/cloudact"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


@pytest.fixture
def api(httpserver, monkeypatch) -> Client:
    base = httpserver.url_for("/").rstrip("/")
    monkeypatch.setenv("CLOUDACT_API_ENDPOINTS", json.dumps(dict.fromkeys(HOSTS, base)))
    return Client(Credentials("test-token"))


def js(body, status=200, headers=None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers or {}, mimetype="application/json")


def not_found(message="not found") -> Response:
    return js({"error": {"code": 404, "message": message, "status": "NOT_FOUND"}}, 404)


# ---- Cloud Storage ----------------------------------------------------------------------------------


def test_a_missing_bucket_is_none_and_is_created_with_uniform_access(httpserver, api):
    httpserver.expect_request("/storage/v1/b/p_cloudbuild", method="GET").respond_with_response(not_found())
    httpserver.expect_request(
        "/storage/v1/b", method="POST", query_string={"project": "p"}
    ).respond_with_json({"name": "p_cloudbuild", "location": "US-CENTRAL1"})
    assert storage.get_bucket(api, "p_cloudbuild") is None
    assert storage.create_bucket(api, "p", "p_cloudbuild", "us-central1")["name"] == "p_cloudbuild"
    sent = json.loads(httpserver.log[-1][0].get_data())
    assert sent == {
        "name": "p_cloudbuild",
        "location": "US-CENTRAL1",
        "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": True}},
    }
    assert httpserver.log[-1][0].headers["Authorization"] == "Bearer test-token"


def test_a_small_object_goes_in_one_media_upload_that_only_creates(httpserver, api):
    httpserver.expect_request(
        "/upload/storage/v1/b/bkt/o",
        method="POST",
        query_string={"name": "source/a.tgz", "ifGenerationMatch": "0", "uploadType": "media"},
    ).respond_with_json({"name": "source/a.tgz", "generation": "17", "size": "5"})
    obj = storage.upload(api, "bkt", "source/a.tgz", b"hello")
    assert obj["generation"] == "17"
    request = httpserver.log[0][0]
    assert request.get_data() == b"hello" and request.headers["Content-Type"] == "application/gzip"


def test_a_large_object_goes_in_resumable_chunks_resuming_where_the_server_says(httpserver, api):
    session = "https://storage.googleapis.com/upload/storage/v1/b/bkt/o?uploadType=resumable&upload_id=U1"
    httpserver.expect_request(
        "/upload/storage/v1/b/bkt/o",
        method="POST",
        query_string={"uploadType": "resumable", "name": "big", "ifGenerationMatch": "0"},
    ).respond_with_response(Response("", status=200, headers={"Location": session}))
    received = []

    def put(request):
        received.append((request.headers["Content-Range"], request.get_data()))
        _first, last = request.headers["Content-Range"].split()[1].split("/")[0].split("-")
        if len(received) == 1:  # kept only 3 of the 4 bytes sent: the client resumes at byte 3
            return Response("", status=308, headers={"Range": "bytes=0-2"})
        if int(last) < 9:
            return Response("", status=308, headers={"Range": f"bytes=0-{last}"})
        return js({"name": "big", "generation": "3", "size": "10"})

    httpserver.expect_request("/upload/storage/v1/b/bkt/o", method="PUT").respond_with_handler(put)
    obj = storage.upload(api, "bkt", "big", b"0123456789", media_limit=4, chunk=4)
    assert obj["size"] == "10"
    start = json.loads(httpserver.log[0][0].get_data())
    assert start == {"name": "big", "contentType": "application/gzip"}
    assert received == [("bytes 0-3/10", b"0123"), ("bytes 3-6/10", b"3456"), ("bytes 7-9/10", b"789")]


# ---- Artifact Registry ------------------------------------------------------------------------------


def test_a_tag_resolves_to_its_version_digest_and_a_missing_tag_is_none(httpserver, api):
    ref = ar.parse(REPO)
    base = f"/v1/{REPO_NAME}/packages/cloudact-jobs-stage/tags"
    httpserver.expect_request(base + "/v1.4.0").respond_with_json(
        {"name": "x", "version": f"{REPO_NAME}/packages/cloudact-jobs-stage/versions/{D1}"}
    )
    httpserver.expect_request(base + "/v9").respond_with_response(not_found())
    assert ar.tag_digest(api, ref, "v1.4.0") == D1
    assert ar.tag_digest(api, ref, "v9") is None


def test_images_keep_the_package_newest_first(httpserver, api):
    other = "us-central1-docker.pkg.dev/cloudact-testing-1/cloudact/cloudact-jobs-test@" + D1
    httpserver.expect_request(f"/v1/{REPO_NAME}/dockerImages").respond_with_json(
        {
            "dockerImages": [
                {
                    "uri": f"{REPO}@{D1}",
                    "tags": ["v1", "git-1a2b3c4"],
                    "uploadTime": "2026-01-01T00:00:00Z",
                },
                {"uri": other, "tags": ["t"], "uploadTime": "2026-03-01T00:00:00Z"},
                {
                    "uri": f"{REPO}@{D2}",
                    "tags": ["git-5d6e7f8", "v2"],
                    "uploadTime": "2026-02-01T00:00:00Z",
                },
            ]
        }
    )
    found = ar.images(api, ar.parse(REPO))
    assert [i["digest"] for i in found] == [D2, D1]
    assert image.newest_tags(found) == ["v2", "v1"]
    assert image.git_revision(found[0]["tags"]) == "5d6e7f8"


def test_a_missing_repository_is_created_as_docker_and_waited_for(httpserver, api):
    ref = ar.parse(REPO)
    httpserver.expect_request(f"/v1/{REPO_NAME}").respond_with_response(not_found())
    httpserver.expect_request(
        "/v1/projects/cloudact-testing-1/locations/us-central1/repositories",
        method="POST",
        query_string={"repositoryId": "cloudact"},
    ).respond_with_json({"name": "projects/cloudact-testing-1/locations/us-central1/operations/o1"})
    httpserver.expect_request(
        "/v1/projects/cloudact-testing-1/locations/us-central1/operations/o1"
    ).respond_with_json({"name": "o1", "done": True, "response": {"name": REPO_NAME, "format": "DOCKER"}})
    assert ar.get_repository(api, ref) is None
    assert ar.create_repository(api, ref)["format"] == "DOCKER"
    assert json.loads(httpserver.log[1][0].get_data())["format"] == "DOCKER"


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (REPO + ":v1", (REPO, "v1", "")),
        (REPO + "@" + D1, (REPO, "", D1)),
        (REPO, (REPO, "", "")),
        ("localhost:5000/x:latest", ("localhost:5000/x", "latest", "")),
    ],
)
def test_image_references_split_into_path_tag_and_digest(image, expected):
    assert ar.split_ref(image) == expected


# ---- Cloud Build ------------------------------------------------------------------------------------

BUILD_OP = "projects/p/locations/us-central1/operations/op1"
BUILD_NAME = "projects/p/locations/us-central1/builds/b1"


def build_server(httpserver, final, log_batches):
    """builds.create -> an operation that is done on the second read; entries:list answers in batches."""
    reads = []
    httpserver.expect_request("/v1/projects/p/locations/us-central1/builds", method="POST").respond_with_json(
        {"name": BUILD_OP, "metadata": {"build": {"id": "b1", "name": BUILD_NAME, "status": "QUEUED"}}}
    )

    def operation(_request):
        reads.append(1)
        done = len(reads) >= 2
        body = {
            "name": BUILD_OP,
            "metadata": {"build": {"id": "b1", "name": BUILD_NAME, "status": "WORKING"}},
        }
        if done:
            body["done"] = True
            body["metadata"]["build"]["status"] = final["status"]
            if final["status"] != "SUCCESS":
                body["error"] = {"code": 2, "message": "Build failed; check build logs for details"}
        return js(body)

    httpserver.expect_request("/v1/" + BUILD_OP).respond_with_handler(operation)
    httpserver.expect_request("/v1/" + BUILD_NAME).respond_with_json(final)
    batches = list(log_batches)

    def entries(request):
        body = json.loads(request.get_data())
        assert body["filter"].startswith('resource.type="build" AND resource.labels.build_id="b1"')
        return js({"entries": batches.pop(0) if batches else []})

    httpserver.expect_request("/v2/entries:list", method="POST").respond_with_handler(entries)


def entry(n, text):
    return {"insertId": str(n), "timestamp": f"2026-01-01T00:00:0{n}Z", "textPayload": text}


def test_a_build_is_created_from_the_config_and_waited_for_with_its_log_lines(httpserver, api):
    final = {
        "id": "b1",
        "name": BUILD_NAME,
        "status": "SUCCESS",
        "results": {
            "images": [{"name": REPO + ":v1", "digest": D1}, {"name": REPO + ":git-1a2b3c4", "digest": D1}]
        },
    }
    build_server(httpserver, final, [[entry(1, "Step #0: ok")], [entry(1, "Step #0: ok"), entry(2, "PUSH")]])
    config = {
        "steps": [{"id": "build", "name": "gcr.io/cloud-builders/docker"}],
        "substitutions": {"_ENV": "", "_REGION": "us-central1"},
        "images": ["x"],
        "options": {"logging": "CLOUD_LOGGING_ONLY"},
    }
    body = cloud_build.build_body(config, "bkt", "source/a.tgz", "17", {"_ENV": "stage", "_RELEASE": "v1"})
    assert body["source"] == {
        "storageSource": {"bucket": "bkt", "object": "source/a.tgz", "generation": "17"}
    }
    assert body["substitutions"] == {"_ENV": "stage", "_REGION": "us-central1", "_RELEASE": "v1"}
    op = cloud_build.create(api, "p", "us-central1", body)
    lines = []
    build = cloud_build.wait(api, op, "p", "us-central1", on_line=lines.append)
    assert build["status"] == "SUCCESS"
    assert lines == ["Step #0: ok", "PUSH"]  # each line once, however often it is read
    assert cloud_build.pushed(build, REPO) == {"v1": D1, "git-1a2b3c4": D1}
    assert json.loads(httpserver.log[0][0].get_data())["steps"][0]["id"] == "build"


def test_a_failed_build_names_its_status_its_step_and_its_last_lines(httpserver, api):
    final = {
        "id": "b1",
        "name": BUILD_NAME,
        "status": "FAILURE",
        "statusDetail": "Build step failure: build step 2 exited with 1",
        "logUrl": "https://console.cloud.google.com/cloud-build/builds/b1",
        "steps": [
            {"id": "check-substitutions", "name": "bash:5.2", "status": "SUCCESS"},
            {"id": "build", "name": "gcr.io/cloud-builders/docker", "status": "SUCCESS"},
            {"id": "smoke-test-syntax", "name": "gcr.io/cloud-builders/docker", "status": "FAILURE"},
        ],
    }
    build_server(httpserver, final, [[entry(1, "SyntaxError: invalid syntax (jobs/daily/alerts_daily.py)")]])
    op = cloud_build.create(api, "p", "us-central1", {"steps": []})
    lines = []
    build = cloud_build.wait(api, op, "p", "us-central1", on_line=lines.append)
    text = cloud_build.failure(build, lines)
    assert "FAILURE at step smoke-test-syntax (gcr.io/cloud-builders/docker)" in text
    assert "SyntaxError: invalid syntax (jobs/daily/alerts_daily.py)" in text
    assert "nothing was pushed" in text and cloud_build.pushed(build, REPO) == {}


# ---- the pin ----------------------------------------------------------------------------------------


FACTS = {
    "cloudact_env": "stage",
    "cloudact_gcp_project": "cloudact-testing-1",
    "cloudact_gcp_region": "us-central1",
    "cloudact_image_repository": REPO,
    "cloudact_image": REPO + ":v2",
    "cloudact_image_tag": "v2",
    "cloudact_localcloud": False,
    "cloudact_root": "/nonexistent",
}


def registry(httpserver, tags):
    httpserver.expect_request(f"/v1/{REPO_NAME}/dockerImages").respond_with_json(
        {
            "dockerImages": [
                {
                    "uri": f"{REPO}@{D1}",
                    "tags": ["v1", "git-1a2b3c4"],
                    "uploadTime": "2026-01-01T00:00:00Z",
                },
                {
                    "uri": f"{REPO}@{D2}",
                    "tags": ["v2", "git-5d6e7f8"],
                    "uploadTime": "2026-02-01T00:00:00Z",
                },
            ]
        }
    )
    for tag, digest in tags.items():
        path = f"/v1/{REPO_NAME}/packages/cloudact-jobs-stage/tags/{tag}"
        if digest:
            httpserver.expect_request(path).respond_with_json({"version": "x/versions/" + digest})
        else:
            httpserver.expect_request(path).respond_with_response(not_found())


def test_the_tag_pins_every_job_to_its_digest_and_the_change_shows_old_and_new_tags(httpserver, api):
    registry(httpserver, {"v2": D2})
    deployed = [{"name": "a", "image": f"{REPO}@{D1}"}, {"name": "b", "image": f"{REPO}@{D2}"}]
    got = image.resolve(api, FACTS, ["a", "b", "c"], deployed=deployed)
    assert got["image"] == f"{REPO}@{D2}" and got["tags"] == ["git-5d6e7f8", "v2"]
    assert got["changes"] == [
        "image: sha256:111111111111 (git-1a2b3c4, v1) -> sha256:222222222222 (git-5d6e7f8, v2): a"
    ]
    kinds = {f["kind"]: f for f in got["stale"]}
    assert kinds["digests"]["jobs"] == ["a", "b"] and kinds["moved"]["jobs"] == ["a"]
    assert "make create-jobs ENV=stage" in kinds["moved"]["line"]
    with pytest.raises(
        InputError, match=r"a on sha256:111111111111; b on sha256:222222222222.*make create-jobs ENV=stage"
    ):
        image.check_one_digest(got, "stage")


def test_a_missing_tag_names_itself_and_the_newest_tags(httpserver, api):
    registry(httpserver, {"v3": None})
    with pytest.raises(InputError) as caught:
        image.resolve(
            api, dict(FACTS, cloudact_image_tag="v3", cloudact_image=REPO + ":v3"), ["a"], deployed=[]
        )
    assert str(caught.value) == (
        f"ENV=stage: cloudact_image_tag='v3' is not a tag of {REPO}; the newest tags: v2, v1"
    )


def test_an_empty_tag_pins_the_newest_build_and_another_image_is_not_resolved(httpserver, api):
    registry(httpserver, {"v1": D1})
    got = image.resolve(api, dict(FACTS, cloudact_image_tag="", cloudact_image=REPO), ["a"], deployed=[])
    assert (
        got["digest"] == D2
        and got["lines"][0] == "image: the newest build is sha256:222222222222 (git-5d6e7f8, v2)"
    )
    named = image.resolve(
        api, dict(FACTS, cloudact_image_tag="", cloudact_image=REPO + ":v1"), ["a"], deployed=[]
    )
    assert named["tag"] == "v1" and named["digest"] == D1  # an inventory's own cloudact_image names the tag
    jobs = "/v2/projects/cloudact-testing-1/locations/us-central1/jobs"
    deployed = {"name": f"{jobs}/a", "template": {"template": {"containers": [{"image": "localhost/x:1"}]}}}
    httpserver.expect_request(jobs).respond_with_json({"jobs": [deployed]})
    other = image.resolve(api, dict(FACTS, cloudact_image="localhost/cloudact-jobs-local:latest"), ["a"])
    assert other["pin"] is False and other["image"] == "localhost/cloudact-jobs-local:latest"
    assert other["jobs"] == [{"name": "a", "image": "localhost/x:1"}]  # the deployed jobs, read all the same
