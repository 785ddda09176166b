"""The Docker Registry HTTP API V2 (read side) on Artifact Registry's registry host
`us-central1-docker.pkg.dev`, with `requests` through the session's proxy and CA: an image Cloud Build
built with `docker build --label ...` and pushed is read back as a registry client reads it (manifest
by tag or digest, its config blob's labels, its layer), with Artifact Registry's credentials (a bearer
access token, Basic `oauth2accesstoken`, the challenge's token endpoint), IAM and the registry's errors."""

from __future__ import annotations

import hashlib
import io
import shlex
import tarfile
import uuid
from dataclasses import dataclass

import pytest
import requests
from google.auth.transport.requests import Request
from google.cloud import artifactregistry_v1
from google.cloud.devtools import cloudbuild_v1
from google.oauth2 import service_account

from tests.localcloud.test_iam import SCOPES, IamCloud

PROJECT = "cloudact-local"
REGION = "us-central1"
HOST = f"{REGION}-docker.pkg.dev"
LOCATION = f"projects/{PROJECT}/locations/{REGION}"
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
REVISION = "0123456789abcdef0123456789abcdef01234567"
LABELS = {"ai.cloudact.migrations": "0007_add_ledger", "org.opencontainers.image.revision": REVISION}
PROXY_VARIABLES = ("https_proxy", "http_proxy", "HTTP_PROXY", "ALL_PROXY", "all_proxy", "no_proxy")


@dataclass
class Pushed:
    repo_id: str
    name: str  # <project>/<repo>/<image>, as the registry's paths name it
    digest: str  # as Artifact Registry's REST API reports it
    token: str  # the operator's access token
    http: requests.Session  # through the proxy, trusting its CA, no credentials
    iam: IamCloud

    def url(self, tail: str, host: str = HOST) -> str:
        return f"https://{host}/v2/{self.name}/{tail}"

    def get(self, url: str, token: str | None = None, method: str = "GET", **kw) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.token}"} if token != "" else {}
        return self.http.request(method, url, headers=headers, timeout=30, **kw)


def dockerfile_script() -> str:
    lines = [
        "FROM python:3.11-slim",
        "LABEL org.opencontainers.image.source=https://github.com/cloudact/tests maintainer=tests",
        "WORKDIR /app",
        "COPY hello.txt ./",
        'CMD ["cat", "hello.txt"]',
    ]
    return (
        "printf '%s\\n' "
        + " ".join(shlex.quote(line) for line in lines)
        + " > Dockerfile && echo hi > hello.txt"
    )


@pytest.fixture(scope="module")
def pushed(localcloud):
    """One image, built by Cloud Build with `--label`s and pushed to a repository of this module's own."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in localcloud.client_env.items():
            mp.setenv(name, value)
        for name in PROXY_VARIABLES:
            mp.delenv(name, raising=False)
        http = requests.Session()
        http.trust_env = False
        http.proxies = {"https": localcloud.proxy_url}
        http.verify = str(localcloud.ca_file)
        owner = service_account.Credentials.from_service_account_file(str(localcloud.key_file), scopes=SCOPES)
        owner.refresh(Request(http))

        registry = artifactregistry_v1.ArtifactRegistryClient(transport="rest")
        repo_id = f"reg-{uuid.uuid4().hex[:10]}"
        repo = artifactregistry_v1.Repository(format_=artifactregistry_v1.Repository.Format.DOCKER)
        registry.create_repository(parent=LOCATION, repository_id=repo_id, repository=repo).result(30)
        image = f"{HOST}/{PROJECT}/{repo_id}/app"
        label_args = [arg for k, v in LABELS.items() for arg in ("--label", f"{k}={v}")]
        build = cloudbuild_v1.Build(
            steps=[
                {"name": "bash", "args": ["-c", dockerfile_script()]},
                {
                    "name": "gcr.io/cloud-builders/docker",
                    "args": ["build", *label_args, "-t", f"{image}:v1", "."],
                },
                {"name": "gcr.io/cloud-builders/docker", "args": ["push", f"{image}:v1"]},
            ]
        )
        builds = cloudbuild_v1.CloudBuildClient(transport="rest")
        result = builds.create_build(parent=LOCATION, build=build).result(60)
        assert result.status == cloudbuild_v1.Build.Status.SUCCESS, result.status_detail
        (listed,) = registry.list_docker_images(parent=f"{LOCATION}/repositories/{repo_id}")
        yield Pushed(
            repo_id=repo_id,
            name=f"{PROJECT}/{repo_id}/app",
            digest=listed.uri.rsplit("@", 1)[1],
            token=owner.token,
            http=http,
            iam=IamCloud(localcloud.process, owner),
        )


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def error_of(resp: requests.Response) -> tuple[int, str, str]:
    (error,) = resp.json()["errors"]
    return resp.status_code, error["code"], error["message"]


def token_of(creds: service_account.Credentials, http: requests.Session) -> str:
    creds.refresh(Request(http))
    return creds.token


def test_the_version_check_answers_a_caller_with_a_token_and_challenges_one_without(pushed):
    base = f"https://{HOST}/v2/"
    ok = pushed.get(base)
    assert ok.status_code == 200 and ok.json() == {}
    assert ok.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    anonymous = pushed.get(base, token="")
    assert anonymous.status_code == 401 and error_of(anonymous)[1] == "UNAUTHORIZED"
    assert anonymous.headers["WWW-Authenticate"] == (
        f'Bearer realm="https://{HOST}/v2/token",service="{HOST}"'
    )
    bad = pushed.get(base, token="not-a-token")
    assert bad.status_code == 401 and "unknown access token" in error_of(bad)[2]


def test_the_manifest_by_tag_and_by_digest_is_the_same_bytes_named_by_the_rest_apis_digest(pushed):
    by_tag = pushed.get(pushed.url("manifests/v1"))
    assert by_tag.status_code == 200, by_tag.text
    by_digest = pushed.get(pushed.url(f"manifests/{pushed.digest}"))
    assert by_digest.status_code == 200 and by_digest.content == by_tag.content
    for resp in (by_tag, by_digest):
        assert resp.headers["Docker-Content-Digest"] == pushed.digest == sha256(resp.content)
        assert resp.headers["Content-Type"] == MANIFEST_TYPE == resp.json()["mediaType"]
        assert resp.headers["Content-Length"] == str(len(resp.content))
    head = pushed.get(pushed.url("manifests/v1"), method="HEAD")
    assert head.status_code == 200 and head.content == b""
    for name in ("Docker-Content-Digest", "Content-Type", "Content-Length"):
        assert head.headers[name] == by_tag.headers[name]


def test_the_config_blob_carries_the_labels_the_build_set_and_the_layer_its_files(pushed):
    manifest = pushed.get(pushed.url("manifests/v1")).json()
    config_digest = manifest["config"]["digest"]
    blob = pushed.get(pushed.url(f"blobs/{config_digest}"))
    assert blob.status_code == 200, blob.text
    assert sha256(blob.content) == config_digest == blob.headers["Docker-Content-Digest"]
    assert len(blob.content) == manifest["config"]["size"]
    config = blob.json()["config"]
    assert config["Labels"] == {
        **LABELS,
        "org.opencontainers.image.source": "https://github.com/cloudact/tests",
        "maintainer": "tests",
    }
    assert config["WorkingDir"] == "/app" and config["Cmd"] == ["cat", "hello.txt"]
    (layer,) = manifest["layers"]
    got = pushed.get(pushed.url(f"blobs/{layer['digest']}"))
    assert got.status_code == 200 and sha256(got.content) == layer["digest"]
    with tarfile.open(fileobj=io.BytesIO(got.content)) as tar:
        assert tar.extractfile("app/hello.txt").read() == b"hi\n"
    head = pushed.get(pushed.url(f"blobs/{config_digest}"), method="HEAD")
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(blob.content))


def test_missing_tags_blobs_and_repositories_are_the_registrys_404s(pushed):
    missing = pushed.get(pushed.url("manifests/v9"))
    assert error_of(missing) == (
        404,
        "MANIFEST_UNKNOWN",
        f'Failed to fetch "v9" from request "/v2/{pushed.name}/manifests/v9".',
    )
    assert error_of(pushed.get(pushed.url("manifests/sha256:" + "0" * 64)))[:2] == (404, "MANIFEST_UNKNOWN")
    assert error_of(pushed.get(pushed.url("blobs/sha256:" + "0" * 64)))[:2] == (404, "BLOB_UNKNOWN")
    other = f"https://{HOST}/v2/{PROJECT}/absent-{pushed.repo_id}/app/manifests/v1"
    assert error_of(pushed.get(other)) == (
        404,
        "NAME_UNKNOWN",
        f'Repository "absent-{pushed.repo_id}" not found',
    )
    tags = pushed.get(pushed.url("tags/list"))
    assert tags.json() == {"name": pushed.name, "tags": ["v1"]}


def test_reading_needs_download_artifacts_on_the_repository(pushed):
    anonymous = pushed.get(pushed.url("manifests/v1"), token="")
    resource = f"projects/{PROJECT}/locations/{REGION}/repositories/{pushed.repo_id}"
    assert error_of(anonymous) == (
        401,
        "UNAUTHORIZED",
        "Unauthenticated request. Unauthenticated requests do not have permission "
        f'"artifactregistry.repositories.downloadArtifacts" on resource "{resource}" (or it may not exist)',
    )
    assert anonymous.headers["WWW-Authenticate"] == (
        f'Bearer realm="https://{HOST}/v2/token",service="{HOST}",scope="repository:{pushed.name}:pull"'
    )
    _, nobody = pushed.iam.account("noreader")
    denied = pushed.get(pushed.url("manifests/v1"), token=token_of(nobody, pushed.http))
    assert error_of(denied) == (
        403,
        "DENIED",
        f'Permission "artifactregistry.repositories.downloadArtifacts" denied on resource "{resource}" '
        "(or it may not exist)",
    )
    _, reader = pushed.iam.account("reader", "roles/artifactregistry.reader")
    allowed = pushed.get(pushed.url("manifests/v1"), token=token_of(reader, pushed.http))
    assert allowed.status_code == 200 and allowed.headers["Docker-Content-Digest"] == pushed.digest


def test_basic_oauth2accesstoken_and_the_challenges_token_endpoint(pushed):
    basic = pushed.http.get(pushed.url("manifests/v1"), auth=("oauth2accesstoken", pushed.token), timeout=30)
    assert basic.status_code == 200 and basic.headers["Docker-Content-Digest"] == pushed.digest
    wrong_user = pushed.http.get(pushed.url("manifests/v1"), auth=("someone", pushed.token), timeout=30)
    assert error_of(wrong_user)[:2] == (401, "UNAUTHORIZED")
    params = {"service": HOST, "scope": f"repository:{pushed.name}:pull"}
    token_url = f"https://{HOST}/v2/token"
    granted = pushed.http.get(token_url, params=params, auth=("oauth2accesstoken", pushed.token), timeout=30)
    assert granted.status_code == 200, granted.text
    assert pushed.get(pushed.url("manifests/v1"), token=granted.json()["token"]).status_code == 200
    anonymous = pushed.http.get(token_url, params=params, timeout=30)
    assert error_of(anonymous)[:2] == (403, "DENIED")


def test_the_proxy_serves_the_registry_host_of_every_location_and_reads_only(pushed):
    # Another location's host is Artifact Registry's too (its repositories are elsewhere: 404).
    europe = pushed.get(pushed.url("manifests/v1", host="europe-west1-docker.pkg.dev"))
    assert error_of(europe)[:2] == (404, "NAME_UNKNOWN")
    with pytest.raises(requests.exceptions.ProxyError):
        pushed.get(f"https://docker.pkg.dev.example/v2/{pushed.name}/manifests/v1")
    put = pushed.get(pushed.url("manifests/v2"), method="PUT", data=b"{}")
    assert error_of(put)[:2] == (405, "UNSUPPORTED")
