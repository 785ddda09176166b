"""The job image end to end on a localcloud of its own, through make in a temporary clone of the
checkout (so a test may commit to it): a fresh release builds the image first; make image builds from
the committed tree with localcloud's Cloud Build and pushes to its Artifact Registry; create-jobs
pins every job to the digest; an execution runs that image's files; a commit to a job script makes
the image stale until it is rebuilt; refusals (latest, a dirty tree, no migrations source, a missing
tag, a syntax error, jobs on different digests) change nothing.

Each test stands alone, in any order: what several share is made once by the module's fixtures, each
on the one before it as an operator's day would be (`released`: the fresh release; `t1`: an image
built and pinned; `t2`: a committed job change, then its image built and pinned). A test that
commits to the clone resets it to where it found it.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from ansible_collections.cloudact.gcp.plugins.module_utils import client

from localcloud.client import LocalCloudProcess
from toolkit import ROOT

REPO = "us-central1-docker.pkg.dev/cloudact-local/cloudact/cloudact-jobs-local"
RUN = "https://run.googleapis.com/v2/projects/cloudact-local/locations/us-central1/jobs"
TAGS = "https://artifactregistry.googleapis.com/v1/projects/cloudact-local/locations/us-central1/repositories/cloudact/packages/cloudact-jobs-local/tags"
CANARY = "image canary: rebuilt"


class Clone:
    def __init__(self, root: Path, proc: LocalCloudProcess):
        self.root = root
        self.proc = proc

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if k.lower() not in ("https_proxy", "http_proxy", "all_proxy")
        }
        env.update(self.proc.client_env)
        env.update(LOCALCLOUD_STATE_DIR=str(self.proc.state_dir), NO_COLOR="1", ANSIBLE_NOCOLOR="1")
        env.pop("CONFIRM", None)
        env.pop("REHEARSE", None)
        env.update(extra)
        return env

    def make(self, *args: str, timeout: float = 600, **extra: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            ["make", "-s", "--no-print-directory", *args],
            cwd=self.root,
            env=self.env(**extra),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        done.out = done.stdout + done.stderr  # type: ignore[attr-defined]
        return done

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(self.root), *args], capture_output=True, text=True, check=True, timeout=60
        ).stdout.strip()

    def commit(self, path: str, text: str, message: str) -> str:
        (self.root / path).write_text(text)
        self.git("add", path)
        self.git("-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-q", "-m", message)
        return self.git("rev-parse", "--short=7", "HEAD")

    @contextlib.contextmanager
    def committed(self, path: str, text: str, message: str):
        """`path` committed as `text` for the block; then HEAD and the tree as they were (an image's
        labels carry HEAD's revision: the tests after this one build from the same one)."""
        before = self.git("rev-parse", "HEAD")
        try:
            yield self.commit(path, text, message)
        finally:
            self.git("reset", "-q", "--hard", before)

    def api(self, project: str = "cloudact-local") -> client.Client:
        keys = json.loads((self.proc.state_dir / "keys.json").read_text())  # the issued key per project
        key = str(keys.get(project) or self.proc.key_file)
        return client.Client(lambda: client.credentials("serviceaccount", key))

    def call(self, method: str, url: str, **kw):
        with client.applied_environment(self.proc.client_env):
            api = self.api()
            return api.request(method, url, url, **kw)

    def job_images(self) -> dict[str, str]:
        with client.applied_environment(self.proc.client_env):
            jobs = self.api().list_all(RUN, "jobs", "jobs")
        return {
            j["name"].rsplit("/", 1)[-1]: j["template"]["template"]["containers"][0]["image"] for j in jobs
        }


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("image")
    proc = LocalCloudProcess(tmp / "state")
    proc.start(timeout=120)
    try:
        assert proc.pid is not None
        proc.files.pid.write_text(f"{proc.pid}\n")  # so make's `localcloud up` finds this one
        root = tmp / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(root)], check=True, timeout=120)
        (root / ".venv").symlink_to(ROOT / ".venv")  # the checkout's venv (its .pth names the checkout)
        for name in ("requirements/dev.txt", "pyproject.toml"):  # older than its stamp: make keeps the venv
            os.utime(root / name, (0, 0))
        yield Clone(root, proc)
    finally:
        proc.stop()


def pushed(out: str) -> str:
    found = re.search(r"pushed " + re.escape(REPO) + r"@(sha256:[0-9a-f]{64}) \(tags ([^)]*)\)", out)
    assert found, out[-3000:]
    return found.group(1)


@dataclass(frozen=True)
class Released:
    run: subprocess.CompletedProcess  # make release on the clone's fresh state
    images: dict[str, str]  # each job's image after it


@pytest.fixture(scope="module")
def released(clone) -> Released:
    """The release on the clone's fresh state: it builds the local image and creates the jobs."""
    r = clone.make("release", timeout=900)
    assert r.returncode == 0, r.out[-4000:]
    return Released(r, clone.job_images())


@dataclass(frozen=True)
class T1:
    digest: str
    head: str  # the clone's HEAD it was built from (short)
    image: subprocess.CompletedProcess  # make image RELEASE=t1
    images: dict[str, str]  # each job's image after make create-jobs
    status: subprocess.CompletedProcess  # make status after it


@pytest.fixture(scope="module")
def t1(clone, released: Released) -> T1:
    """make image RELEASE=t1 from the committed tree, then make create-jobs pins every job to it."""
    image = clone.make("image", "RELEASE=t1")
    assert image.returncode == 0, image.out[-4000:]
    head = clone.git("rev-parse", "--short=7", "HEAD")
    r = clone.make("create-jobs")
    assert r.returncode == 0, r.out[-4000:]
    images = clone.job_images()
    status = clone.make("status")
    assert status.returncode == 0, status.out[-3000:]
    return T1(pushed(image.out), head, image, images, status)


@dataclass(frozen=True)
class T2:
    digest: str
    built_from: str  # t1's HEAD (short), which the committed change left behind
    stale_status: subprocess.CompletedProcess  # make status after the commit
    stale_release: subprocess.CompletedProcess  # make release after it
    old_run: subprocess.CompletedProcess  # make run JOB=bootstrap before the rebuild
    status: subprocess.CompletedProcess  # make status after make image RELEASE=t2 and create-jobs
    new_run: subprocess.CompletedProcess  # make run JOB=bootstrap after them


@pytest.fixture(scope="module")
def t2(clone, t1: T1) -> T2:
    """A committed change to a job script (a canary line; the clone keeps it): the image is stale, and
    the old code runs until make image RELEASE=t2 and make create-jobs."""
    path = "jobs/manual/bootstrap_smart.py"
    text = (clone.root / path).read_text()
    marker = "def main("
    assert marker in text
    changed = text.replace(marker, f"print({CANARY!r}, flush=True)\n\n\n{marker}", 1)
    built_from = clone.git("rev-parse", "--short=7", "HEAD")
    clone.commit(path, changed, "bootstrap: a canary line")
    stale_status = clone.make("status")
    stale_release = clone.make("release", timeout=900)
    old_run = clone.make("run", "JOB=bootstrap", timeout=600)
    image = clone.make("image", "RELEASE=t2")
    assert image.returncode == 0, image.out[-4000:]
    assert clone.make("create-jobs").returncode == 0
    status = clone.make("status")
    new_run = clone.make("run", "JOB=bootstrap", timeout=600)
    return T2(pushed(image.out), built_from, stale_status, stale_release, old_run, status, new_run)


def test_a_fresh_release_builds_the_local_image_first(released: Released) -> None:
    r = released.run
    assert f"no image in {REPO} yet" in r.out
    digest = pushed(r.out)
    assert "local has no jobs yet: creating the 8 jobs and their triggers first" in r.out
    assert "Bootstrap completed: " in r.out
    assert set(released.images.values()) == {f"{REPO}@{digest}"}


def test_refusals_change_nothing(clone, released: Released) -> None:
    before = clone.job_images()
    r = clone.make("image", "RELEASE=latest")
    assert r.returncode != 0 and "RELEASE=latest: a moving tag is refused" in r.out

    script = clone.root / "jobs/daily/alerts_daily.py"
    original = script.read_text()
    script.write_text(original + "# uncommitted\n")
    try:
        r = clone.make("image", "RELEASE=t-dirty")
        assert r.returncode != 0
        assert "uncommitted changes to the image's inputs: jobs/daily/alerts_daily.py: commit them" in r.out
    finally:
        script.write_text(original)

    r = clone.make("image", "ENV=stage", REHEARSE="1")
    assert r.returncode != 0
    assert (
        "ENV=stage: cloudact_migrations_source is empty: set it in inventories/stage/group_vars/all/" in r.out
    )
    assert clone.call("GET", TAGS + "/t-dirty", allow_missing=True) is None
    assert clone.job_images() == before


def test_a_clean_build_is_pinned_by_create_jobs_and_its_code_runs(t1: T1) -> None:
    assert f"(tags t1, git-{t1.head})" in t1.image.out
    assert 'Starting Step #2 - "smoke-test-syntax"' in t1.image.out  # the build's log lines as progress
    assert set(t1.images.values()) == {f"{REPO}@{t1.digest}"}
    assert t1.digest[7:19] in t1.status.out and "STALE" not in t1.status.out


def test_a_committed_job_change_is_stale_and_the_old_code_runs_until_rebuilt(t2: T2) -> None:
    text_out = " ".join(t2.stale_status.out.split())
    assert "STALE" in t2.stale_status.out
    fix = "make image ENV=local && make create-jobs ENV=local"
    assert f"image built from {t2.built_from}, 1 commit behind on jobs/: {fix}" in text_out
    r = t2.stale_release  # the release says so too, and runs the image it names
    assert r.returncode == 0, r.out[-4000:]
    assert f"stale image: image built from {t2.built_from}, 1 commit behind on jobs/: {fix}" in " ".join(
        r.out.split()
    )
    r = t2.old_run
    assert r.returncode == 0, r.out[-4000:]
    assert CANARY not in r.out  # the image's files run, not the checkout's

    assert "STALE" not in t2.status.out, t2.status.out[-3000:]
    r = t2.new_run
    assert r.returncode == 0 and CANARY in r.out, r.out[-4000:]


def test_a_plan_shows_the_digest_change_and_nothing_else_and_a_second_converge_changes_nothing(
    clone, t1: T1, t2: T2
) -> None:
    r = clone.make("plan", ANSIBLE_ARGS="-e cloudact_image_tag=t1")
    assert r.returncode == 0, r.out[-4000:]
    old, new = t2.digest[:19], t1.digest[:19]
    change = re.escape(f"image: {old} (") + r"[^)]*t2[^)]*\) -> " + re.escape(f"{new} (") + r"[^)]*t1\): "
    assert re.search(change, r.out), r.out[-4000:]
    assert "jobs: 0 would be created, 8 would be updated, 0 unchanged" in r.out
    assert len(re.findall(r"^  ~ cloudact-\S+: image$", r.out, re.M)) == 8
    assert "triggers: 0 would be created, 0 would be updated, 5 unchanged" in r.out
    assert set(clone.job_images().values()) == {f"{REPO}@{t2.digest}"}  # a plan changes nothing
    r = clone.make("create-jobs")
    assert r.returncode == 0 and "jobs: 0 created, 0 updated, 8 unchanged" in r.out, r.out[-3000:]


def test_a_missing_tag_names_itself_and_the_tags_that_exist(clone, t2: T2) -> None:
    r = clone.make("plan", ANSIBLE_ARGS="-e cloudact_image_tag=v9")
    assert r.returncode != 0
    assert f"ENV=local: cloudact_image_tag='v9' is not a tag of {REPO}; the newest tags: t2, t1" in r.out


def test_a_rebuild_of_the_same_context_is_nothing_to_do_and_a_release_tag_moves_only_with_force(
    clone, t2: T2
) -> None:
    r = clone.make("image", "RELEASE=t2")
    assert r.returncode == 0, r.out[-3000:]  # the same build context under that tag: nothing to build
    head = clone.git("rev-parse", "--short=7", "HEAD")
    assert f"image for {head} exists: {REPO}@{t2.digest} (" in r.out and "; nothing to build" in r.out
    assert "uploaded gs://" not in r.out
    r = clone.make("image", "RELEASE=t2", "FORCE=1")
    assert r.returncode == 0, r.out[-3000:]
    assert f"release tag t2 moves from {t2.digest[:19]} (FORCE=1)" in r.out
    assert pushed(r.out) == t2.digest  # the same tree, files and labels: the same digest
    # Another context under that tag (here: another HEAD of the image's inputs) is refused, as ever.
    path = "jobs/daily/alerts_daily.py"
    good = (clone.root / path).read_text()
    with clone.committed(path, good + "\n# another context\n", "alerts: a comment"):
        r = clone.make("image", "RELEASE=t2")
        assert r.returncode != 0
        text = " ".join(r.out.split())
        assert f"release tag {REPO}:t2 exists ({t2.digest[:19]}) and holds another build context" in text
        assert (
            "a release tag is never moved to a new build; name another RELEASE, or FORCE=1 moves it" in text
        )


def test_a_syntax_error_fails_the_smoke_test_and_nothing_is_pushed(clone, t2: T2) -> None:
    path = "jobs/daily/alerts_daily.py"
    good = (clone.root / path).read_text()
    with clone.committed(path, good + "\ndef broken(:\n", "alerts: a syntax error"):
        r = clone.make("image", "RELEASE=t3")
        assert r.returncode != 0
        assert "FAILURE at step smoke-test-syntax (gcr.io/cloud-builders/docker)" in r.out, r.out[-3000:]
        assert "SyntaxError" in r.out and "nothing was pushed" in r.out
        assert clone.call("GET", TAGS + "/t3", allow_missing=True) is None
        assert set(clone.job_images().values()) == {f"{REPO}@{t2.digest}"}


def test_the_release_refuses_jobs_on_different_digests(clone, t1: T1, t2: T2) -> None:
    name = "cloudact-manual-bootstrap"
    job = clone.call("GET", f"{RUN}/{name}")
    job["template"]["template"]["containers"][0]["image"] = f"{REPO}@{t1.digest}"
    op = clone.call("PATCH", f"{RUN}/{name}", json={"template": job["template"]})
    assert op.get("name")
    r = clone.make("release")
    assert r.returncode != 0
    text = " ".join(r.out.split())
    found = re.search(
        r"the release jobs are not on one digest \((.*?)\): converge them with make create-jobs ENV=local",
        text,
    )
    assert found, text[-3000:]
    assert sorted(found.group(1).split("; ")) == sorted(
        [
            f"cloudact-manual-bootstrap on {t1.digest[:19]}",
            f"cloudact-manual-org-sync-all, cloudact-manual-supabase-migrate on {t2.digest[:19]}",
        ]
    )
    assert "migrate: started" not in r.out
    assert clone.make("create-jobs").returncode == 0


def test_a_stage_image_carries_its_sources_migrations_never_the_examples(clone, tmp_path) -> None:
    source = tmp_path / "supabase_db"
    source.mkdir()
    (source / "10_real.sql").write_text("create table if not exists real_one(id int);\n")
    r = clone.make(
        "image",
        "ENV=stage",
        "RELEASE=s1",
        REHEARSE="1",
        ANSIBLE_ARGS=f"-e cloudact_migrations_source={source}",
    )
    assert r.returncode == 0, r.out[-4000:]
    assert f"migrations: 1 file(s) from {source}" in r.out
    uploaded = re.search(r"uploaded gs://(\S+?)/(\S+) \((\d+) bytes\)", r.out)
    assert uploaded, r.out[-3000:]
    bucket, name = uploaded.group(1), uploaded.group(2)
    with client.applied_environment(clone.proc.client_env):
        reply = clone.api("cloudact-testing-1").send(
            "GET",
            f"https://storage.googleapis.com/storage/v1/b/{bucket}/o/{name.replace('/', '%2F')}",
            "source",
            params={"alt": "media"},
        )
    assert reply.status_code == 200, reply.text[:300]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(reply.content))) as tar:
        names = {m.name for m in tar.getmembers()}
    assert "migrations/10_real.sql" in names
    assert not [n for n in names if n.startswith("migrations/") and n != "migrations/10_real.sql"]
    assert "jobs/manual/bootstrap_smart.py" in names and "README.md" not in names

    # prod asks for a typed yes (none here), after showing what it would build and create.
    # (make asks; the plan's lines come before its question.)
    r = clone.make(
        "image",
        "ENV=prod",
        "RELEASE=p1",
        REHEARSE="1",
        ANSIBLE_ARGS=f"-e cloudact_migrations_source={source}",
    )
    assert r.returncode != 0
    assert "build bucket gs://cloudact-prod_cloudbuild: will be created in us-central1" in r.out
    assert 'prod needs a typed "yes"' in r.out and "uploaded gs://" not in r.out
