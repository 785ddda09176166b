"""Cloud Storage, Cloud Build and Artifact Registry with IAM enforced (LOCALCLOUD_IAM=enforce): each
call is judged on the bucket (under its project) or the project, and refused in the API's own words."""

from __future__ import annotations

import uuid

import pytest
from google.api_core import exceptions
from google.cloud import storage

from tests.localcloud.test_iam import PROJECT, start_iam_cloud

API = "https://storage.googleapis.com/storage/v1"
UPLOAD = "https://storage.googleapis.com/upload/storage/v1"


@pytest.fixture(scope="module")
def iam_cloud():
    yield from start_iam_cloud()


def test_storage_calls_are_judged_on_the_bucket_and_worded_as_cloud_storage(iam_cloud):
    owner = storage.Client(project=PROJECT, credentials=iam_cloud.owner)
    bucket = owner.create_bucket(f"iam-{uuid.uuid4().hex[:10]}")
    bucket.blob("a.txt").upload_from_string(b"hello")
    with pytest.raises(exceptions.NotFound):  # a missing bucket stays a 404 for its project's owner
        owner.get_bucket(f"absent-{uuid.uuid4().hex[:8]}")

    viewer_email, viewer = iam_cloud.account("viewer", "roles/storage.objectViewer")
    as_viewer = iam_cloud.session(viewer)
    listed = as_viewer.get(f"{API}/b/{bucket.name}/o")
    assert listed.status_code == 200 and [o["name"] for o in listed.json()["items"]] == ["a.txt"]
    got = as_viewer.get(f"{API}/b/{bucket.name}/o/a.txt", params={"alt": "media"})
    assert got.status_code == 200 and got.content == b"hello"
    refused = as_viewer.post(
        f"{UPLOAD}/b/{bucket.name}/o", params={"uploadType": "media", "name": "b.txt"}, data=b"no"
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == (
        f"{viewer_email} does not have storage.objects.create access to the Google Cloud Storage object. "
        "Permission 'storage.objects.create' denied on resource (or it may not exist)."
    )

    _, nobody = iam_cloud.account("nobody")
    denied = iam_cloud.session(nobody).get(f"{API}/b/{bucket.name}")
    assert (
        denied.status_code == 403
        and "storage.buckets.get access to the Google Cloud Storage bucket"
        in (denied.json()["error"]["message"])
    )
    created = iam_cloud.session(nobody).post(
        f"{API}/b", params={"project": PROJECT}, json={"name": "x-" + bucket.name}
    )
    assert (
        created.status_code == 403
        and "access to the Google Cloud project" in created.json()["error"]["message"]
    )


def test_builds_and_repositories_need_their_permissions(iam_cloud):
    _, nobody = iam_cloud.account("nobuild")
    session = iam_cloud.session(nobody)
    body = {"steps": [{"name": "bash", "args": ["-c", "true"]}]}
    build = session.post(
        f"https://cloudbuild.googleapis.com/v1/projects/{PROJECT}/locations/global/builds", json=body
    )
    assert build.status_code == 403 and "cloudbuild.builds.create" in build.json()["error"]["message"]
    repos = session.get(
        f"https://artifactregistry.googleapis.com/v1/projects/{PROJECT}/locations/us-central1/repositories"
    )
    assert (
        repos.status_code == 403 and "artifactregistry.repositories.list" in repos.json()["error"]["message"]
    )

    _, builder = iam_cloud.account("builder", "roles/cloudbuild.builds.editor")
    allowed = iam_cloud.session(builder).post(
        f"https://cloudbuild.googleapis.com/v1/projects/{PROJECT}/locations/global/builds", json=body
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["metadata"]["build"]["status"] == "QUEUED"
