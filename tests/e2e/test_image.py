"""The job image end to end on a localcloud of its own, through make in a temporary clone of the
checkout (so a test may commit to it): a fresh release builds the image first; make image builds from
the committed tree with localcloud's Cloud Build and pushes to its Artifact Registry; create-jobs
pins every job to the digest; an execution runs that image's files; a commit to a job script makes
the image stale until it is rebuilt; refusals (latest, a dirty tree, no migrations source, a missing
tag, a syntax error, jobs on different digests) change nothing.

The tests run in order and build on each other, as an operator's day would.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
from ansible_collections.cloudact.gcp.plugins.module_utils import client

from localcloud.client import LocalCloudProcess
from toolkit import ROOT

REPO = "us-central1-docker.pkg.dev/cloudact-local/cloudact/cloudact-jobs-local"
RUN = "https://run.googleapis.com/v2/projects/cloudact-local/locations/us-central1/jobs"
TAGS = "https://artifactregistry.googleapis.com/v1/projects/cloudact-local/locations/us-central1/repositories/cloudact/packages/cloudact-jobs-local/tags"
CANARY = "image canary: rebuilt"
SEEN: dict[str, str] = {}


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


def test_a_fresh_release_builds_the_local_image_first(clone) -> None:
    r = clone.make("release", timeout=900)
    assert r.returncode == 0, r.out[-4000:]
    assert f"no image in {REPO} yet" in r.out
    digest = pushed(r.out)
    assert "local has no jobs yet: creating the 8 jobs and their triggers first" in r.out
    assert "Bootstrap completed: " in r.out
    assert set(clone.job_images().values()) == {f"{REPO}@{digest}"}


def test_refusals_change_nothing(clone) -> None:
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


def test_a_clean_build_is_pinned_by_create_jobs_and_its_code_runs(clone) -> None:
    r = clone.make("image", "RELEASE=t1")
    assert r.returncode == 0, r.out[-4000:]
    digest = pushed(r.out)
    short = clone.git("rev-parse", "--short=7", "HEAD")
    assert f"(tags t1, git-{short})" in r.out
    assert 'Starting Step #2 - "smoke-test-syntax"' in r.out  # the build's log lines as progress
    r = clone.make("create-jobs")
    assert r.returncode == 0, r.out[-4000:]
    assert set(clone.job_images().values()) == {f"{REPO}@{digest}"}
    r = clone.make("status")
    assert r.returncode == 0, r.out[-3000:]
    assert digest[7:19] in r.out and "STALE" not in r.out
    SEEN["t1"] = digest


def test_a_committed_job_change_is_stale_and_the_old_code_runs_until_rebuilt(clone) -> None:
    path = "jobs/manual/bootstrap_smart.py"
    text = (clone.root / path).read_text()
    marker = "def main("
    assert marker in text
    changed = text.replace(marker, f"print({CANARY!r}, flush=True)\n\n\n{marker}", 1)
    built_from = clone.git("rev-parse", "--short=7", "HEAD")
    clone.commit(path, changed, "bootstrap: a canary line")

    r = clone.make("status")
    text_out = " ".join(r.out.split())
    assert "STALE" in r.out
    fix = "make image ENV=local && make create-jobs ENV=local"
    assert f"image built from {built_from}, 1 commit behind on jobs/: {fix}" in text_out
    r = clone.make("release", timeout=900)  # the release says so too, and runs the image it names
    assert r.returncode == 0, r.out[-4000:]
    assert f"stale image: image built from {built_from}, 1 commit behind on jobs/: {fix}" in " ".join(
        r.out.split()
    )
    r = clone.make("run", "JOB=bootstrap", timeout=600)
    assert r.returncode == 0, r.out[-4000:]
    assert CANARY not in r.out  # the image's files run, not the checkout's

    r = clone.make("image", "RELEASE=t2")
    assert r.returncode == 0, r.out[-4000:]
    SEEN["t2"] = pushed(r.out)
    assert clone.make("create-jobs").returncode == 0
    r = clone.make("status")
    assert "STALE" not in r.out, r.out[-3000:]
    r = clone.make("run", "JOB=bootstrap", timeout=600)
    assert r.returncode == 0 and CANARY in r.out, r.out[-4000:]


def test_a_plan_shows_the_digest_change_and_nothing_else_and_a_second_converge_changes_nothing(clone) -> None:
    r = clone.make("plan", ANSIBLE_ARGS="-e cloudact_image_tag=t1")
    assert r.returncode == 0, r.out[-4000:]
    old, new = SEEN["t2"][:19], SEEN["t1"][:19]
    change = re.escape(f"image: {old} (") + r"[^)]*t2[^)]*\) -> " + re.escape(f"{new} (") + r"[^)]*t1\): "
    assert re.search(change, r.out), r.out[-4000:]
    assert "jobs: 0 would be created, 8 would be updated, 0 unchanged" in r.out
    assert len(re.findall(r"^  ~ cloudact-\S+: image$", r.out, re.M)) == 8
    assert "triggers: 0 would be created, 0 would be updated, 5 unchanged" in r.out
    assert set(clone.job_images().values()) == {f"{REPO}@{SEEN['t2']}"}  # a plan changes nothing
    r = clone.make("create-jobs")
    assert r.returncode == 0 and "jobs: 0 created, 0 updated, 8 unchanged" in r.out, r.out[-3000:]


def test_a_missing_tag_names_itself_and_the_tags_that_exist(clone) -> None:
    r = clone.make("plan", ANSIBLE_ARGS="-e cloudact_image_tag=v9")
    assert r.returncode != 0
    assert f"ENV=local: cloudact_image_tag='v9' is not a tag of {REPO}; the newest tags: t2, t1" in r.out


def test_a_rebuild_of_the_same_context_is_nothing_to_do_and_a_release_tag_moves_only_with_force(
    clone,
) -> None:
    r = clone.make("image", "RELEASE=t2")
    assert r.returncode == 0, r.out[-3000:]  # the same build context under that tag: nothing to build
    head = clone.git("rev-parse", "--short=7", "HEAD")
    assert f"image for {head} exists: {REPO}@{SEEN['t2']} (" in r.out and "; nothing to build" in r.out
    assert "uploaded gs://" not in r.out
    r = clone.make("image", "RELEASE=t2", "FORCE=1")
    assert r.returncode == 0, r.out[-3000:]
    assert f"release tag t2 moves from {SEEN['t2'][:19]} (FORCE=1)" in r.out
    assert pushed(r.out) == SEEN["t2"]  # the same tree, files and labels: the same digest
    # Another context under that tag (here: another HEAD of the image's inputs) is refused, as ever.
    path = "jobs/daily/alerts_daily.py"
    good = (clone.root / path).read_text()
    clone.commit(path, good + "\n# another context\n", "alerts: a comment")
    try:
        r = clone.make("image", "RELEASE=t2")
        assert r.returncode != 0
        text = " ".join(r.out.split())
        assert f"release tag {REPO}:t2 exists ({SEEN['t2'][:19]}) and holds another build context" in text
        assert (
            "a release tag is never moved to a new build; name another RELEASE, or FORCE=1 moves it" in text
        )
    finally:
        clone.commit(path, good, "alerts: without the comment")


def test_a_syntax_error_fails_the_smoke_test_and_nothing_is_pushed(clone) -> None:
    path = "jobs/daily/alerts_daily.py"
    good = (clone.root / path).read_text()
    clone.commit(path, good + "\ndef broken(:\n", "alerts: a syntax error")
    try:
        r = clone.make("image", "RELEASE=t3")
        assert r.returncode != 0
        assert "FAILURE at step smoke-test-syntax (gcr.io/cloud-builders/docker)" in r.out, r.out[-3000:]
        assert "SyntaxError" in r.out and "nothing was pushed" in r.out
        assert clone.call("GET", TAGS + "/t3", allow_missing=True) is None
        assert set(clone.job_images().values()) == {f"{REPO}@{SEEN['t2']}"}
    finally:
        clone.commit(path, good, "alerts: fixed")


def test_the_release_refuses_jobs_on_different_digests(clone) -> None:
    name = "cloudact-manual-bootstrap"
    job = clone.call("GET", f"{RUN}/{name}")
    job["template"]["template"]["containers"][0]["image"] = f"{REPO}@{SEEN['t1']}"
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
            f"cloudact-manual-bootstrap on {SEEN['t1'][:19]}",
            f"cloudact-manual-org-sync-all, cloudact-manual-supabase-migrate on {SEEN['t2'][:19]}",
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
