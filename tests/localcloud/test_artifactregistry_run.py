"""Cloud Run executions run the files of the image they were started with: an image Cloud Build pushed
to Artifact Registry runs from its own files with its ENV, WORKDIR and CMD (not the checkout); editing
the source without rebuilding changes nothing; an image its repository lacks fails the execution as
Cloud Run does ("Image '...' not found."); `localhost/...` is the legacy local image (the checkout)."""

from __future__ import annotations

import io
import tarfile
import uuid

import pytest
from google.api_core import exceptions
from google.auth.transport.requests import AuthorizedSession
from google.cloud import artifactregistry_v1, run_v2, storage
from google.cloud.devtools import cloudbuild_v1

PROJECT = "cloudact-local"
LOCATION = f"projects/{PROJECT}/locations/us-central1"
DOCKERFILE = b"""FROM python:3.11-slim
ENV GREETING=from-the-image PYTHONPATH=/srv/lib
WORKDIR /srv
COPY app.py ./
COPY lib/ /srv/lib/
CMD ["python", "app.py"]
"""


def app(version: str) -> bytes:
    return (
        b"import os, sys, helper\n"
        b"print('version=" + version.encode() + b"', os.environ['GREETING'], helper.WHO)\n"
        b"print('cwd-is-srv=' + str(os.getcwd().endswith('/rootfs/srv')))\n"
        b"print('argv0=' + os.path.basename(sys.argv[0]))\n"
    )


@pytest.fixture
def clients(localcloud_env):
    registry = artifactregistry_v1.ArtifactRegistryClient(transport="rest")
    repo_id = f"run-{uuid.uuid4().hex[:8]}"
    repo = artifactregistry_v1.Repository(format_=artifactregistry_v1.Repository.Format.DOCKER)
    registry.create_repository(parent=LOCATION, repository_id=repo_id, repository=repo).result(30)
    bucket = storage.Client(project=PROJECT).create_bucket(f"ctx-{uuid.uuid4().hex[:10]}")
    return {
        "image": f"us-central1-docker.pkg.dev/{PROJECT}/{repo_id}/hello",
        "bucket": bucket,
        "builds": cloudbuild_v1.CloudBuildClient(transport="rest"),
        "jobs": run_v2.JobsClient(transport="rest"),
        "executions": run_v2.ExecutionsClient(transport="rest"),
    }


def build_image(clients, files: dict[str, bytes], tag: str) -> str:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    blob = clients["bucket"].blob(f"source/{uuid.uuid4().hex}.tgz")
    blob.upload_from_string(out.getvalue())
    ref = f"{clients['image']}:{tag}"
    build = cloudbuild_v1.Build(
        source={"storage_source": {"bucket": blob.bucket.name, "object_": blob.name}},
        steps=[{"name": "gcr.io/cloud-builders/docker", "args": ["build", "-t", ref, "."]}],
        images=[ref],
    )
    done = clients["builds"].create_build(parent=LOCATION, build=build).result(60)
    assert done.status == cloudbuild_v1.Build.Status.SUCCESS
    return done.results.images[0].digest


def job_for(clients, image: str, **container) -> str:
    job = run_v2.Job(
        template=run_v2.ExecutionTemplate(
            template=run_v2.TaskTemplate(
                containers=[run_v2.Container(image=image, **container)], max_retries=0
            )
        )
    )
    job_id = f"img-{uuid.uuid4().hex[:8]}"
    return clients["jobs"].create_job(parent=LOCATION, job_id=job_id, job=job).result(30).name


def lines(localcloud_env, execution: str) -> list[str]:
    import google.auth

    creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    with AuthorizedSession(creds) as session:
        body = {
            "resourceNames": [f"projects/{PROJECT}"],
            "filter": f'labels."run.googleapis.com/execution_name"="{execution.rsplit("/", 1)[1]}"',
            "pageSize": 1000,
        }
        entries = session.post("https://logging.googleapis.com/v2/entries:list", json=body, timeout=30).json()
    return [e.get("textPayload", "") for e in entries.get("entries", [])]


def test_an_execution_runs_its_images_files_not_the_checkout(clients, localcloud_env):
    files = {"Dockerfile": DOCKERFILE, "app.py": app("1"), "lib/helper.py": b"WHO = 'helper-from-image'\n"}
    digest = build_image(clients, files, "v1")
    job = job_for(clients, f"{clients['image']}:v1")
    first = clients["jobs"].run_job(name=job).result(60)
    out = lines(localcloud_env, first.name)
    assert "version=1 from-the-image helper-from-image" in out
    assert "cwd-is-srv=True" in out and "argv0=app.py" in out

    # A new build moves the tag; a job pinned to the old digest still runs the old files.
    build_image(clients, {**files, "app.py": app("2")}, "v1")
    pinned = job_for(clients, f"{clients['image']}@{digest}")
    assert "version=1 from-the-image helper-from-image" in lines(
        localcloud_env, clients["jobs"].run_job(name=pinned).result(60).name
    )
    assert "version=2 from-the-image helper-from-image" in lines(
        localcloud_env, clients["jobs"].run_job(name=job).result(60).name
    )

    # The job's command and env override the image's CMD and ENV, in the image's files.
    custom = job_for(
        clients,
        f"{clients['image']}:v1",
        command=["python", "-c", "import os, helper; print('custom', os.environ['GREETING'], helper.WHO)"],
        env=[run_v2.EnvVar(name="GREETING", value="from-the-job")],
    )
    assert "custom from-the-job helper-from-image" in lines(
        localcloud_env, clients["jobs"].run_job(name=custom).result(60).name
    )


def test_an_image_its_repository_lacks_fails_the_execution(clients, localcloud_env):
    build_image(clients, {"Dockerfile": DOCKERFILE, "app.py": app("1"), "lib/helper.py": b"WHO = 1\n"}, "v1")
    missing = f"{clients['image']}:no-such-tag"
    job = job_for(clients, missing)
    operation = clients["jobs"].run_job(name=job)
    with pytest.raises(exceptions.GoogleAPICallError):
        operation.result(60)
    execution = clients["executions"].get_execution(name=operation.metadata.name)
    assert execution.failed_count == 1 and execution.succeeded_count == 0
    assert f"Image '{missing}' not found." in lines(localcloud_env, execution.name)


def test_the_jobs_and_the_overrides_paths_in_the_image_resolve_in_its_files(clients, localcloud_env):
    # As in a real container, a job env value that is an absolute path inside the image (the migrate
    # job's MIGRATIONS_DIR=/app/migrations/supabase_db) finds the image's files; anything else is
    # passed unchanged (a path the image lacks, a URL, a relative path).
    dockerfile = b"FROM python:3.11-slim\nWORKDIR /app\nCOPY data/ /app/data/\nCOPY list.py /app/\n"
    lister = (
        b"import os\n"
        b"for name in ('SOME_DIR', 'OVERRIDE_DIR'):\n"
        b"    print(name, 'lists', sorted(os.listdir(os.environ[name])))\n"
        b"for name in ('ELSEWHERE', 'URL', 'RELATIVE'):\n"
        b"    print(name, '=', os.environ[name])\n"
    )
    files = {"Dockerfile": dockerfile, "list.py": lister, "data/a.sql": b"-- a\n", "data/sub/b.sql": b""}
    build_image(clients, files, "paths")
    env = {
        "SOME_DIR": "/app/data",
        "OVERRIDE_DIR": "/nowhere",
        "ELSEWHERE": "/srv/not/in/the/image",
        "URL": "http://app/data",
        "RELATIVE": "app/data",
    }
    job = job_for(
        clients,
        f"{clients['image']}:paths",
        command=["python", "/app/list.py"],
        env=[run_v2.EnvVar(name=k, value=v) for k, v in env.items()],
    )
    overrides = run_v2.RunJobRequest.Overrides(
        container_overrides=[
            run_v2.RunJobRequest.Overrides.ContainerOverride(
                env=[run_v2.EnvVar(name="OVERRIDE_DIR", value="/app/data/sub")]
            )
        ]
    )
    execution = clients["jobs"].run_job(request={"name": job, "overrides": overrides}).result(60)
    out = lines(localcloud_env, execution.name)
    assert "SOME_DIR lists ['a.sql', 'sub']" in out, out
    assert "OVERRIDE_DIR lists ['b.sql']" in out, out
    assert "ELSEWHERE = /srv/not/in/the/image" in out, out
    assert "URL = http://app/data" in out, out
    assert "RELATIVE = app/data" in out, out
