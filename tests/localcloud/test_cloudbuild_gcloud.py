"""The real gcloud CLI on localcloud's Cloud Build, Cloud Storage and Artifact Registry, as the seed's
first-time setup writes it: `gcloud builds submit --config=cloudbuild-jobs.yaml` (staging the source
in the default `<project>_cloudbuild` bucket), `--async`, `gcloud builds log|describe|list` and
`gcloud artifacts docker images list`, each `--format=json` compared with Google's Python clients.

GA `gcloud builds submit` shows no log lines for a CLOUD_LOGGING_ONLY build ("only displays logs from
Cloud Storage"): it polls builds.get until the build ends, which works through the proxy; `gcloud beta
builds submit` would tail Cloud Logging over a streaming RPC that an HTTP/1.1 proxy cannot carry.
`gcloud builds log ID` reads the same lines with entries:list.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import artifactregistry_v1, storage
from google.cloud.devtools import cloudbuild_v1

from localcloud.cli import gcloud_config, gcloud_env
from localcloud.config import StateFiles
from tests.localcloud.test_cloudbuild import own_cloud  # noqa: F401 - this module's own localcloud
from tests.localcloud.test_gcloud import Gcloud

pytestmark = pytest.mark.localcloud

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "cloudact-local"
REGION = "us-central1"
LOCATION = f"projects/{PROJECT}/locations/{REGION}"
REPO = f"{LOCATION}/repositories/cloudact"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/cloudact/cloudact-jobs-local"
Status = cloudbuild_v1.Build.Status


@pytest.fixture(scope="module")
def gcloud(own_cloud) -> Gcloud:  # noqa: F811 - the fixture imported above
    """gcloud on its own configuration in this localcloud's state directory, as `make local-env`
    makes it (see tests/localcloud/test_gcloud.py)."""
    exe = shutil.which("gcloud")
    if exe is None:
        pytest.fail("gcloud is not on the PATH: these tests need the real gcloud CLI", pytrace=False)
    exports = gcloud_config(StateFiles(own_cloud.state_dir))
    env = gcloud_env(Path(exports["CLOUDSDK_CONFIG"]))
    env.update(exports)
    for name in list(env):  # gcloud's proxy is its configuration's, nothing of this process
        if name.lower().endswith("_proxy"):
            env.pop(name)
    return Gcloud(exe, env)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """The committed tree, as `make image` archives it (`git archive HEAD`), in a directory."""
    out = tmp_path_factory.mktemp("context")
    archive = subprocess.run(
        ["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, check=True, capture_output=True
    )
    tar_path = out.parent / f"{out.name}.tar"
    tar_path.write_bytes(archive.stdout)
    with tarfile.open(tar_path) as tar:
        tar.extractall(out, filter="data")
    return out


@pytest.fixture(scope="module")
def clients(own_cloud):  # noqa: F811
    registry = artifactregistry_v1.ArtifactRegistryClient(transport="rest")
    try:
        registry.get_repository(name=REPO)
    except exceptions.NotFound:
        repo = artifactregistry_v1.Repository(format_=artifactregistry_v1.Repository.Format.DOCKER)
        registry.create_repository(parent=LOCATION, repository_id="cloudact", repository=repo).result(30)
    return cloudbuild_v1.CloudBuildClient(transport="rest"), registry


def substitutions(release: str) -> tuple[str, str]:
    """gcloud's --substitutions for a release of HEAD, and the git-<sha> tag it pushes."""
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, check=True, capture_output=True, text=True)
    full = sha.stdout.strip()
    flag = f"_ENV=local,_RELEASE={release},_REVISION={full},_REVISION_SHORT={full[:7]},_MIGRATIONS=examples"
    return flag, f"git-{full[:7]}"


def test_builds_submit_stages_the_source_builds_and_pushes(gcloud: Gcloud, clients, source):
    builds, registry = clients
    release = f"v9.{uuid.uuid4().int % 100000}"
    flag, git_tag = substitutions(release)
    build = gcloud.json(
        "builds",
        "submit",
        "--config=cloudbuild-jobs.yaml",
        f"--substitutions={flag}",
        f"--region={REGION}",
        str(source),
    )
    assert build["status"] == "SUCCESS"
    mine = builds.get_build(name=f"{LOCATION}/builds/{build['id']}")
    assert mine.status == cloudbuild_v1.Build.Status.SUCCESS
    assert {i["name"]: i["digest"] for i in build["results"]["images"]} == {
        i.name: i.digest for i in mine.results.images
    }
    staged = mine.source.storage_source
    assert staged.bucket == f"{PROJECT}_cloudbuild" and staged.object_.startswith("source/")
    assert storage.Client(project=PROJECT).bucket(staged.bucket).get_blob(staged.object_).size > 0

    # describe and list show the same build; log prints its lines from Cloud Logging.
    described = gcloud.json("builds", "describe", build["id"], f"--region={REGION}")
    assert (described["id"], described["status"], described["createTime"]) == (
        build["id"],
        "SUCCESS",
        build["createTime"],
    )
    listed = gcloud.json("builds", "list", f"--region={REGION}", "--limit=50")
    assert build["id"] in [b["id"] for b in listed]
    log = gcloud.text("builds", "log", build["id"], f"--region={REGION}")
    assert 'Starting Step #3 - "smoke-test"' in log and "DONE" in log

    # gcloud artifacts docker images list: the pushed image with both tags, as the API lists it.
    digest = mine.results.images[0].digest
    shown = gcloud.json(
        "artifacts",
        "docker",
        "images",
        "list",
        f"{REGION}-docker.pkg.dev/{PROJECT}/cloudact",
        "--include-tags",
    )
    row = next(r for r in shown if r["version"] == digest)
    assert row["package"] == IMAGE
    assert sorted(row["tags"]) == sorted([release, git_tag])
    api = next(i for i in registry.list_docker_images(parent=REPO) if i.uri.endswith(digest))
    assert sorted(api.tags) == sorted(row["tags"])
    assert row["createTime"] and row["updateTime"]
    # Listing the image itself goes through packages.versions.list (view FULL for the tags).
    versions = gcloud.json("artifacts", "docker", "images", "list", IMAGE, "--include-tags")
    mine_listed = next((r for r in versions if r["version"] == digest), versions)
    if not isinstance(mine_listed, dict):  # say which request gcloud got an answer it did not expect to
        http = gcloud.run("artifacts", "docker", "images", "list", IMAGE, "--include-tags", "--log-http")
        calls = [line for line in http.stderr.decode().splitlines() if line.startswith(("uri: ", "status: "))]
        raise AssertionError(f"{digest} not in {mine_listed}: {calls}")
    assert sorted(mine_listed["tags"]) == sorted([release, git_tag])
    tags = gcloud.json("artifacts", "docker", "tags", "list", IMAGE)
    on_digest = sorted(t["tag"].rsplit("/", 1)[1] for t in tags if t["version"].endswith(digest))
    assert on_digest == sorted([release, git_tag])


def test_builds_submit_async_without_a_region_builds_in_global(gcloud: Gcloud, clients, source):
    builds, _ = clients
    release = f"v8.{uuid.uuid4().int % 100000}"
    queued = gcloud.json(
        "builds",
        "submit",
        "--async",
        "--config=cloudbuild-jobs.yaml",
        f"--substitutions={substitutions(release)[0]}",
        str(source),
    )
    assert queued["status"] in ("QUEUED", "WORKING")
    name = f"projects/{PROJECT}/locations/global/builds/{queued['id']}"
    deadline = time.monotonic() + 120
    while (
        builds.get_build(name=name).status in (Status.QUEUED, Status.WORKING) and time.monotonic() < deadline
    ):
        time.sleep(0.5)
    assert builds.get_build(name=name).status == Status.SUCCESS


def test_builds_submit_of_a_failing_build_exits_nonzero(gcloud: Gcloud, clients, tmp_path):
    (tmp_path / "cloudbuild.yaml").write_text(
        "steps:\n- name: bash\n  args: [-c, 'echo going down; exit 3']\n"
        "options:\n  logging: CLOUD_LOGGING_ONLY\n"
    )
    proc = gcloud.run(
        "builds",
        "submit",
        f"--config={tmp_path / 'cloudbuild.yaml'}",
        f"--region={REGION}",
        str(tmp_path),
        check=False,
    )
    assert proc.returncode != 0
    assert b"FAILURE" in proc.stderr + proc.stdout
