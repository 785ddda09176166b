"""Cloud Build v1 and Artifact Registry v1 on localcloud, through Google's own clients
(google-cloud-build and google-cloud-artifact-registry with transport="rest", google-cloud-storage):
the repository's cloudbuild-jobs.yaml built from a `git archive` tarball, its image pushed with both
tags and resolvable by tag; a failing smoke test, an unknown builder and bad substitutions refused or
failed as Cloud Build does, with the build's lines in Cloud Logging and nothing pushed.

The module runs on a localcloud of its own (`own_cloud`): the jobs image it pushes to
`cloudact-local`'s `cloudact` repository must not be found by other tests on the session's."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import tempfile
import uuid
from pathlib import Path

import pytest
import yaml
from google.api_core import exceptions
from google.cloud import artifactregistry_v1, storage
from google.cloud import logging as cloud_logging
from google.cloud.devtools import cloudbuild_v1

from localcloud.client import LocalCloudProcess

pytestmark = pytest.mark.localcloud

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "cloudact-local"
REGION = "us-central1"
LOCATION = f"projects/{PROJECT}/locations/{REGION}"
REPO = f"{LOCATION}/repositories/cloudact"
BUCKET = f"{PROJECT}_cloudbuild"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/cloudact/cloudact-jobs-local"
PACKAGE = f"{REPO}/packages/cloudact-jobs-local"
PROXY_VARIABLES = ("https_proxy", "http_proxy", "HTTP_PROXY", "ALL_PROXY", "all_proxy", "no_proxy")


@pytest.fixture(scope="module")
def own_cloud():
    """A localcloud of this module's own (stopped by its pid afterwards), os.environ pointed at it."""
    root = Path(tempfile.mkdtemp(prefix="localcloud-test-"))
    with pytest.MonkeyPatch.context() as mp:
        proc = LocalCloudProcess(root / "state")
        try:
            proc.start()
            for name, value in proc.client_env.items():
                mp.setenv(name, value)
            for name in PROXY_VARIABLES:
                mp.delenv(name, raising=False)
            yield proc
        finally:
            proc.stop()
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def builds(own_cloud):
    return cloudbuild_v1.CloudBuildClient(transport="rest")


@pytest.fixture(scope="module")
def registry(own_cloud):
    client = artifactregistry_v1.ArtifactRegistryClient(transport="rest")
    try:
        client.get_repository(name=REPO)
    except exceptions.NotFound:
        repo = artifactregistry_v1.Repository(format_=artifactregistry_v1.Repository.Format.DOCKER)
        client.create_repository(parent=LOCATION, repository_id="cloudact", repository=repo).result(30)
    return client


@pytest.fixture(scope="module")
def bucket(own_cloud):
    client = storage.Client(project=PROJECT)
    try:
        return client.get_bucket(BUCKET)
    except exceptions.NotFound:
        return client.create_bucket(BUCKET)


def head_tarball(change: dict[str, bytes] | None = None) -> bytes:
    """`git archive HEAD` as gzip, with files replaced or added (as a commit would change them)."""
    raw = subprocess.run(
        ["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(raw)) as src, tarfile.open(fileobj=out, mode="w:gz") as dst:
        for member in src.getmembers():
            if change and member.name in change:
                continue
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        for name, data in (change or {}).items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            dst.addfile(info, io.BytesIO(data))
    return out.getvalue()


def config_build(bucket, tarball: bytes, **substitutions: str) -> cloudbuild_v1.Build:
    name = f"source/{uuid.uuid4().hex}.tgz"
    blob = bucket.blob(name)
    blob.upload_from_string(tarball, content_type="application/gzip")
    config = yaml.safe_load((ROOT / "cloudbuild-jobs.yaml").read_text())
    config["substitutions"] = {**config["substitutions"], **substitutions}
    config["source"] = {
        "storageSource": {"bucket": bucket.name, "object": name, "generation": str(blob.generation)}
    }
    return cloudbuild_v1.Build.from_json(json.dumps(config))


def subs(release: str) -> dict[str, str]:
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    return {
        "_ENV": "local",
        "_RELEASE": release,
        "_REVISION": sha,
        "_REVISION_SHORT": sha[:7],
        "_MIGRATIONS": "examples",
    }


def run(builds, build: cloudbuild_v1.Build, location: str = LOCATION) -> cloudbuild_v1.Build:
    op = builds.create_build(request={"parent": location, "build": build})
    queued = op.metadata.build
    assert queued.status in (cloudbuild_v1.Build.Status.QUEUED, cloudbuild_v1.Build.Status.WORKING)
    assert queued.log_url and queued.id
    try:
        op.result(timeout=180)
    except exceptions.GoogleAPICallError:
        pass  # a failed build's operation carries an error; the Build says why
    return builds.get_build(name=f"{location}/builds/{queued.id}")


def build_lines(build_id: str) -> list[str]:
    client = cloud_logging.Client(project=PROJECT, _use_grpc=False)
    entries = client.list_entries(
        resource_names=[f"projects/{PROJECT}"],
        filter_=f'logName="projects/{PROJECT}/logs/cloudbuild" AND resource.type="build" '
        f'AND resource.labels.build_id="{build_id}" AND timestamp>="2000-01-01T00:00:00Z"',
        page_size=1000,
    )
    return [e.payload for e in entries]


def tag_names(registry) -> set[str]:
    try:
        return {t.name.rsplit("/", 1)[1] for t in registry.list_tags(parent=PACKAGE)}
    except exceptions.NotFound:
        return set()


def test_the_jobs_image_builds_pushes_both_tags_and_resolves(builds, registry, bucket, own_cloud):
    release = f"v0.0.{uuid.uuid4().int % 100000}"
    values = subs(release)
    tarball = head_tarball()
    done = run(builds, config_build(bucket, tarball, **values))
    assert done.status == cloudbuild_v1.Build.Status.SUCCESS, done.status_detail
    assert [s.status for s in done.steps] == [cloudbuild_v1.Build.Status.SUCCESS] * 4
    assert all(s.timing.start_time and s.timing.end_time for s in done.steps)
    assert done.start_time and done.finish_time and set(done.timing) >= {"FETCHSOURCE", "BUILD", "PUSH"}
    images = {i.name: i.digest for i in done.results.images}
    assert set(images) == {f"{IMAGE}:{release}", f"{IMAGE}:git-{values['_REVISION_SHORT']}"}
    (digest,) = set(images.values())
    assert digest.startswith("sha256:") and len(digest) == 71

    # Artifact Registry: the image with both tags; the release tag resolves to the digest.
    listed = [i for i in registry.list_docker_images(parent=REPO) if i.uri == f"{IMAGE}@{digest}"]
    assert len(listed) == 1
    assert set(listed[0].tags) == {release, f"git-{values['_REVISION_SHORT']}"}
    assert listed[0].image_size_bytes > 0 and listed[0].upload_time and listed[0].media_type
    tag = registry.get_tag(name=f"{PACKAGE}/tags/{release}")
    assert tag.version == f"{PACKAGE}/versions/{digest}"
    version = registry.get_version(name=tag.version)
    assert version.name == tag.version
    assert registry.get_docker_image(name=listed[0].name).uri == listed[0].uri

    # The image is what the Dockerfile's COPY lines placed, nothing else of the context.
    root = Path(own_cloud.state_dir, "artifactregistry/images", digest.replace(":", "-"), "files")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    names = {p.relative_to(root).as_posix() for p in files}
    assert "app/jobs/manual/bootstrap_smart.py" in names and "app/requirements/jobs.txt" in names
    assert any(n.startswith("app/migrations/supabase_db/") for n in names)
    assert not any(
        "__pycache__" in n or n.startswith(("app/tests", "app/localcloud", "tests", "localcloud"))
        for n in names
    )
    image_config = json.loads((root.parent / "config.json").read_text())
    assert "PYTHONPATH=/app" in image_config["Env"] and image_config["WorkingDir"] == "/app"
    assert image_config["Labels"]["org.opencontainers.image.version"] == release
    assert image_config["User"] == "10001:10001" and image_config["Cmd"] == ["python", "-m", "jobs"]

    # The log lines are in Cloud Logging, step by step.
    lines = build_lines(done.id)
    assert lines[0] == "FETCHSOURCE" and lines[-1] == "DONE"
    assert 'Starting Step #3 - "smoke-test"' in lines and "PUSH" in lines
    assert any("usage" in line.lower() for line in lines)  # bootstrap_smart --help ran from the image

    # The same tree with the same substitutions gives the same digest.
    again = run(builds, config_build(bucket, tarball, **values))
    assert again.status == cloudbuild_v1.Build.Status.SUCCESS
    assert {i.digest for i in again.results.images} == {digest}


def test_a_syntax_error_fails_the_smoke_test_and_nothing_is_pushed(builds, registry, bucket):
    release = f"v0.1.{uuid.uuid4().int % 100000}"
    broken = head_tarball({"jobs/daily/alerts_daily.py": b"def main(:\n    pass\n"})
    done = run(builds, config_build(bucket, broken, **subs(release)))
    assert done.status == cloudbuild_v1.Build.Status.FAILURE
    detail = 'build step 2 "gcr.io/cloud-builders/docker" failed: step exited with non-zero status: 1'
    assert done.status_detail == f"Build step failure: {detail}"
    assert done.failure_info.type_ == cloudbuild_v1.Build.FailureInfo.FailureType.USER_BUILD_STEP
    statuses = [s.status.name for s in done.steps]
    assert statuses == ["SUCCESS", "SUCCESS", "FAILURE", "QUEUED"]
    assert done.steps[2].exit_code == 1
    assert not done.results.images
    assert release not in tag_names(registry)
    lines = build_lines(done.id)
    assert "SyntaxError: invalid syntax" in lines  # the image's own python parsed the broken script
    assert any('File "jobs/daily/alerts_daily.py", line 1' in line for line in lines)
    assert f"ERROR: {detail}" in lines


def test_an_unknown_builder_fails_the_build_naming_it(builds, bucket):
    build = cloudbuild_v1.Build(steps=[{"name": "gcr.io/cloud-builders/gcloud", "args": ["version"]}])
    done = run(builds, build, location=f"projects/{PROJECT}/locations/global")
    assert done.status == cloudbuild_v1.Build.Status.FAILURE
    assert "gcr.io/cloud-builders/gcloud" in done.status_detail
    assert any('builder image "gcr.io/cloud-builders/gcloud"' in line for line in build_lines(done.id))


def test_bash_steps_substitutions_and_the_legacy_project_path(builds):
    build = cloudbuild_v1.Build(
        steps=[
            {
                "name": "bash",
                "args": ["-c", "echo id=$BUILD_ID project=$PROJECT_ID loc=$LOCATION sha=[$COMMIT_SHA] $_WHO"],
            }
        ],
        substitutions={"_WHO": "tester"},
    )
    op = builds.create_build(project_id=PROJECT, build=build)  # POST /v1/projects/<p>/builds
    result = op.result(timeout=60)
    assert result.status == cloudbuild_v1.Build.Status.SUCCESS
    assert result.name == f"projects/{PROJECT}/locations/global/builds/{result.id}"
    assert f"id={result.id} project={PROJECT} loc=global sha=[] tester" in build_lines(result.id)
    assert result.id in [b.id for b in builds.list_builds(project_id=PROJECT, filter='status="SUCCESS"')]


def test_substitutions_are_checked_at_create(builds):
    cases = [
        ({"_X": "1"}, "echo $FOO", 'key in the template "FOO" is not a valid built-in substitution'),
        (
            {"_UNUSED": "1"},
            "echo hi",
            'key "_UNUSED" in the substitution data is not matched in the template',
        ),
        ({"lower": "1"}, "echo $_X", 'substitution key "lower" does not respect format'),
    ]
    for given, script, message in cases:
        build = cloudbuild_v1.Build(steps=[{"name": "bash", "args": ["-c", script]}], substitutions=given)
        with pytest.raises(exceptions.BadRequest, match=message):
            builds.create_build(parent=LOCATION, build=build)


def test_cancel_a_running_build(builds):
    build = cloudbuild_v1.Build(
        steps=[{"name": "bash", "args": ["-c", "sleep 30"]}, {"name": "bash", "args": ["-c", "true"]}]
    )
    op = builds.create_build(parent=LOCATION, build=build)
    name = f"{LOCATION}/builds/{op.metadata.build.id}"
    cancelled = builds.cancel_build(name=name)
    assert cancelled.status == cloudbuild_v1.Build.Status.CANCELLED
    with pytest.raises(exceptions.GoogleAPICallError):
        op.result(timeout=30)


def test_a_build_past_its_timeout_is_timeout_and_its_process_killed(builds):
    build = cloudbuild_v1.Build(steps=[{"name": "bash", "args": ["-c", "sleep 60"]}], timeout="2s")
    op = builds.create_build(parent=LOCATION, build=build)
    with pytest.raises(exceptions.GoogleAPICallError, match="Build timed out"):
        op.result(timeout=30)
    done = builds.get_build(name=f"{LOCATION}/builds/{op.metadata.build.id}")
    assert done.status == cloudbuild_v1.Build.Status.TIMEOUT
    assert done.steps[0].status == cloudbuild_v1.Build.Status.TIMEOUT


def test_secret_env_comes_from_secret_manager_and_is_not_printed(builds):
    version = f"projects/{PROJECT}/secrets/ca-root-api-key-local/versions/latest"
    build = cloudbuild_v1.Build(
        steps=[
            {"name": "bash", "args": ["-c", "test ${#KEY} -gt 20 && echo has-a-key"], "secret_env": ["KEY"]}
        ],
        available_secrets={"secret_manager": [{"version_name": version, "env": "KEY"}]},
    )
    done = builds.create_build(parent=LOCATION, build=build).result(timeout=60)
    assert done.status == cloudbuild_v1.Build.Status.SUCCESS
    assert "has-a-key" in build_lines(done.id)
