"""Artifact Registry v1 on localcloud through google-cloud-artifact-registry (transport="rest"):
repositories create (an Operation), get, list and Google's errors; an image pushed by Cloud Build's
`docker push` (all tags) is listed with its tags, and tags resolve to versions."""

from __future__ import annotations

import uuid

import pytest
from google.api_core import exceptions
from google.cloud import artifactregistry_v1
from google.cloud.devtools import cloudbuild_v1

PROJECT = "cloudact-local"
LOCATION = f"projects/{PROJECT}/locations/us-central1"


@pytest.fixture
def client(localcloud_env):
    return artifactregistry_v1.ArtifactRegistryClient(transport="rest")


def new_repo(client) -> artifactregistry_v1.Repository:
    repo_id = f"t-{uuid.uuid4().hex[:10]}"
    docker = artifactregistry_v1.Repository.Format.DOCKER
    repo = artifactregistry_v1.Repository(format_=docker, description="test")
    return client.create_repository(parent=LOCATION, repository_id=repo_id, repository=repo).result(30)


def test_repositories_create_get_list_and_errors(client):
    repo = new_repo(client)
    repo_id = repo.name.rsplit("/", 1)[1]
    assert repo.name == f"{LOCATION}/repositories/{repo_id}"
    assert repo.format_ == artifactregistry_v1.Repository.Format.DOCKER and repo.create_time
    assert client.get_repository(name=repo.name).description == "test"
    assert repo.name in [r.name for r in client.list_repositories(parent=LOCATION)]
    with pytest.raises(exceptions.Conflict, match="the repository already exists"):
        client.create_repository(parent=LOCATION, repository_id=repo_id, repository=repo).result(30)
    with pytest.raises(exceptions.NotFound, match="Requested entity was not found"):
        client.get_repository(name=f"{LOCATION}/repositories/absent-{repo_id}")
    with pytest.raises(exceptions.BadRequest, match="repository id 'Bad_Id' is invalid"):
        client.create_repository(parent=LOCATION, repository_id="Bad_Id", repository=repo)
    assert list(client.list_docker_images(parent=repo.name)) == []


def test_a_pushed_image_is_listed_with_its_tags_and_versions(client):
    repo = new_repo(client)
    repo_id = repo.name.rsplit("/", 1)[1]
    image = f"us-central1-docker.pkg.dev/{PROJECT}/{repo_id}/tool"
    dockerfile = (
        r"FROM scratch\nENV GREETING=hello\nWORKDIR /srv\nCOPY hello.txt ./\nCMD [\"cat\", \"hello.txt\"]\n"
    )
    script = f"printf '{dockerfile}' > Dockerfile && echo hi > hello.txt"
    build = cloudbuild_v1.Build(
        steps=[
            {"name": "bash", "args": ["-c", script]},
            {"name": "gcr.io/cloud-builders/docker", "args": ["build", "-t", f"{image}:one", "."]},
            {"name": "gcr.io/cloud-builders/docker", "args": ["tag", f"{image}:one", f"{image}:two"]},
            {"name": "gcr.io/cloud-builders/docker", "args": ["push", "--all-tags", image]},
            {"name": "gcr.io/cloud-builders/docker", "args": ["run", f"{image}:two"]},
        ]
    )
    builds = cloudbuild_v1.CloudBuildClient(transport="rest")
    result = builds.create_build(parent=LOCATION, build=build).result(60)
    assert result.status == cloudbuild_v1.Build.Status.SUCCESS
    (listed,) = client.list_docker_images(parent=repo.name)
    digest = listed.uri.rsplit("@", 1)[1]
    assert listed.uri == f"{image}@{digest}" and sorted(listed.tags) == ["one", "two"]
    package = f"{repo.name}/packages/tool"
    assert [p.name for p in client.list_packages(parent=repo.name)] == [package]
    wanted = f'version="{package}/versions/{digest}"'
    tags = list(client.list_tags(request={"parent": package, "filter": wanted}))
    assert sorted(t.name.rsplit("/", 1)[1] for t in tags) == ["one", "two"]
    version = client.get_version(request={"name": f"{package}/versions/{digest}", "view": "FULL"})
    assert sorted(t.name.rsplit("/", 1)[1] for t in version.related_tags) == ["one", "two"]
    with pytest.raises(exceptions.NotFound):
        client.get_tag(name=f"{package}/tags/three")


def test_the_in_process_api_resolves_tags_and_digests_to_files(tmp_path):
    """What other services use (Cloud Run's runner): image(ref), image_files(ref), image_config(ref)."""
    from localcloud.server import LocalCloud
    from localcloud.services.artifactregistry import PushError
    from localcloud.services.artifactregistry_images import image_manifest

    specs = ["oauth2:OAuth2", "logging_v2:Logging", "artifactregistry:ArtifactRegistryService"]
    cloud = LocalCloud(tmp_path / "state", 0, specs)
    try:
        registry = cloud.service("artifactregistry")
        files = tmp_path / "files"
        (files / "app").mkdir(parents=True)
        (files / "app" / "main.py").write_text("print('hi')\n")
        config = {"Env": ["A=1"], "WorkingDir": "/app", "Cmd": ["python", "main.py"]}
        digest, manifest, _, size = image_manifest(files, config)
        ref = "us-central1-docker.pkg.dev/cloudact-local/repo/app"
        with pytest.raises(PushError, match='Repository "repo" not found'):
            registry.push(f"{ref}:v1", files, config, digest, manifest, size, "2026-01-01T00:00:00Z")
        registry._state["repositories"][registry._repo_name("cloudact-local", "us-central1", "repo")] = {
            "name": "projects/cloudact-local/locations/us-central1/repositories/repo"
        }
        registry.push(f"{ref}:v1", files, config, digest, manifest, size, "2026-01-01T00:00:00Z")
        for name in (f"{ref}:v1", f"{ref}@{digest}"):
            assert registry.image(name)["digest"] == digest
            assert (registry.image_files(name) / "app" / "main.py").read_text() == "print('hi')\n"
            assert registry.image_config(name)["Cmd"] == ["python", "main.py"]
        assert registry.image(f"{ref}:v2") is None and registry.image_files(f"{ref}:v2") is None
        assert registry.image(ref) is None  # no tag means latest, which was never pushed
        assert (
            registry.image("localhost/app:v1") is None and registry.repository_of("localhost/app:v1") is None
        )
        assert registry.repository_of(f"{ref}:v2")["name"].endswith("/repositories/repo")
    finally:
        cloud.server.server_close()
