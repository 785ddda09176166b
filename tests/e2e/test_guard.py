"""The prod guard names what will run, and only that runs; every prod-changing target and playbook takes
a typed, piped or CONFIRM=yes answer; environments never overwrite each other; a prune never takes an
empty selector. Through make, ansible-playbook and ansible on a localcloud of this module's own
(cloudact-prod and cloudact-testing-1 rehearsed with REHEARSE=1, cloudact-local as ENV=local).

Each test stands alone, in any order: the module's fixture builds g1, converges prod and local on it
and builds g2 (newer, not converged); a test that needs a trigger paused or a job unlabelled sets it
so itself, and puts back what it changed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.makecloud import RUN, SCHEDULER, own_localcloud
from toolkit import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.localcloud]

PROD = "cloudact-prod"
LOCAL = "cloudact-local"
PROD_REF = "guardprodref000001"
PROD_ARGS = f"-e cloudact_supabase_project_ref={PROD_REF}"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
ZEROS = "sha256:" + "0" * 64
ADOPTED = (
    "adopted (unlabelled, of the catalog's names; now marked as this environment's): cloudact-daily-alerts"
)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    source = tmp_path_factory.mktemp("cloudact") / "supabase_db"
    shutil.copytree(ROOT / "migrations", source)
    with own_localcloud("localcloud-guard-") as c:
        c.source = f"-e cloudact_migrations_source={source}"  # type: ignore[attr-defined]
        r = c.make("image", "ENV=prod", "RELEASE=g1", f"ANSIBLE_ARGS={c.source}", REHEARSE="1", stdin="yes\n")
        assert r.returncode == 0, r.out[-4000:]
        c.g1 = DIGEST.search(r.out.split("pushed ", 1)[1]).group(0)  # type: ignore[attr-defined]
        r = c.make("create-jobs", "ENV=prod", f"ANSIBLE_ARGS={PROD_ARGS}", REHEARSE="1", CONFIRM="yes")
        assert r.returncode == 0, r.out[-4000:]
        r = c.make("create-jobs")  # ENV=local: builds the local image, converges
        assert r.returncode == 0, r.out[-4000:]
        # A newer build under a new tag, not converged: prod's jobs stay on g1.
        r = c.make(
            "image",
            "ENV=prod",
            "RELEASE=g2",
            "FORCE=1",
            f"ANSIBLE_ARGS={c.source}",
            REHEARSE="1",
            CONFIRM="yes",
        )
        assert r.returncode == 0, r.out[-3000:]
        yield c


def prod(cloud, *args: str, stdin: str = "", **extra: str):
    return cloud.make(*args, "ENV=prod", f"ANSIBLE_ARGS={PROD_ARGS}", REHEARSE="1", stdin=stdin, **extra)


def playbook(cloud, playbook: str, *args: str, stdin: str = "", **extra: str):
    return cloud.playbook(
        playbook,
        "prod",
        "-e",
        f"cloudact_supabase_project_ref={PROD_REF}",
        *args,
        stdin=stdin,
        REHEARSE="1",
        **extra,
    )


def pinned(cloud, project: str, job: str) -> str:
    image = cloud.jobs(project)[job]["template"]["template"]["containers"][0]["image"]
    return image.rpartition("@")[2]


def trigger_state(cloud, project: str, trigger: str, state: str) -> None:
    """Put a trigger in `state` (ENABLED or PAUSED) by hand, when it is not (Scheduler refuses a second
    pause)."""
    url = f"{SCHEDULER.format(project)}/jobs/{trigger}"
    if cloud.api(project, "GET", url)["state"] != state:
        cloud.api(project, "POST", f"{url}:{'pause' if state == 'PAUSED' else 'resume'}", json={})


# ---- the prod yes names what will run, and only that runs ------------------------------------------------


def test_the_release_question_names_the_pinned_digest_not_the_tags_newest(cloud) -> None:
    """A newer build under a new tag (g2), not converged: the jobs still run g1, and the question says so."""
    mark = cloud.mark()
    r = prod(cloud, "release", stdin="no\n")
    assert r.returncode != 0
    question = re.search(
        r"About to release to prod: migrate -> bootstrap -> org-sync-all on image \S+@(sha256:\w+)", r.out
    )
    assert question and question.group(1) == cloud.g1 == pinned(cloud, PROD, "cloudact-manual-bootstrap"), (
        r.out
    )
    assert cloud.writes(mark) == []


def test_the_converge_question_names_the_digest_it_will_pin_with_its_tags(cloud) -> None:
    r = prod(cloud, "create-jobs", stdin="no\n")
    assert r.returncode != 0
    assert re.search(r"pinning every job to \S+@sha256:\w+ \(g2, git-\w+\)", r.out), r.out


def test_a_play_refuses_a_digest_other_than_the_confirmed_one_before_any_change(cloud) -> None:
    confirmed = ["-e", "cloudact_confirmed=true", "-e", f"cloudact_confirmed_digest={ZEROS}"]
    for book, extra in (
        ("playbooks/release.yml", []),
        ("playbooks/run-job.yml", ["-e", "cloudact_run_job=quota-reset"]),
        ("playbooks/create-jobs.yml", []),
    ):
        mark = cloud.mark()
        r = playbook(cloud, book, *confirmed, *extra)
        assert r.returncode != 0, r.out[-3000:]
        assert f"refused: you confirmed {ZEROS} but " in r.out and "; nothing was changed" in r.out, r.out[
            -3000:
        ]
        assert cloud.writes(mark) == [], book


def test_each_run_carries_the_etag_of_the_job_it_read_and_its_run_id(cloud) -> None:
    mark = cloud.mark()
    r = cloud.make("run", "JOB=quota-cleanup")  # ENV=local
    assert "quota-cleanup: started" in r.out, r.out[-3000:]
    sent = cloud.calls(mark, "POST", "/jobs/cloudact-daily-quota-cleanup:run")
    assert len(sent) == 1
    body = sent[0]["body"]
    assert body["etag"] == cloud.jobs(LOCAL)["cloudact-daily-quota-cleanup"]["etag"]
    names = {e["name"] for e in body["overrides"]["containerOverrides"][0]["env"]}
    assert {"CLOUDACT_TRIGGER", "CLOUDACT_RUN_ID"} <= names


# ---- every prod-changing target takes a typed, piped or CONFIRM=yes answer --------------------------------


@pytest.mark.parametrize(("target", "extra"), [("pause", ["JOB=alerts"]), ("resume", ["JOB=alerts"])])
def test_pause_and_resume_take_a_piped_yes_and_refuse_anything_else(cloud, target, extra) -> None:
    before = "ENABLED" if target == "pause" else "PAUSED"
    trigger_state(cloud, PROD, "cloudact-daily-alerts-trigger", before)
    mark = cloud.mark()
    r = prod(cloud, target, *extra, stdin="nope\n")
    assert r.returncode != 0 and "prod needs a typed \"yes\" and got 'nope': nothing was changed" in r.out
    assert cloud.writes(mark) == []
    r = prod(cloud, target, *extra, stdin="yes\n")
    assert r.returncode == 0, r.out[-3000:]
    want = "PAUSED" if target == "pause" else "ENABLED"
    assert cloud.triggers(PROD)["cloudact-daily-alerts-trigger"]["state"] == want
    trigger_state(cloud, PROD, "cloudact-daily-alerts-trigger", "ENABLED")  # as the catalog has it


def test_a_playbook_run_directly_asks_in_the_play_and_reads_a_pipe(cloud) -> None:
    trigger_state(cloud, PROD, "cloudact-daily-alerts-trigger", "ENABLED")
    args = ["-e", "cloudact_trigger_state=paused", "-e", "cloudact_trigger_job=alerts"]
    mark = cloud.mark()
    r = playbook(cloud, "playbooks/trigger-state.yml", *args, stdin="no\n")
    assert r.returncode != 0
    assert (
        "About to pause cloudact-daily-alerts-trigger" in r.out
        and 'prod needs a typed "yes" and got no' in r.out
    )
    assert cloud.writes(mark) == []
    r = playbook(cloud, "playbooks/trigger-state.yml", *args, stdin="yes\n")
    assert r.returncode == 0, r.out[-3000:]
    assert cloud.triggers(PROD)["cloudact-daily-alerts-trigger"]["state"] == "PAUSED"
    r = playbook(
        cloud,
        "playbooks/trigger-state.yml",
        "-e",
        "cloudact_trigger_state=enabled",
        "-e",
        "cloudact_trigger_job=alerts",
        CONFIRM="yes",
    )
    assert r.returncode == 0, r.out[-3000:]
    assert cloud.triggers(PROD)["cloudact-daily-alerts-trigger"]["state"] == "ENABLED"


def test_cancel_in_prod_takes_a_piped_yes(cloud) -> None:
    r = prod(cloud, "cancel", "JOB=alerts", stdin="yes\n")  # nothing running: asked, then nothing to cancel
    assert r.returncode == 0, r.out[-3000:]
    assert "About to cancel alerts" in r.out and "no running execution to cancel" in r.out


def test_make_image_on_an_unchanged_context_has_nothing_to_build_and_asks_nothing(cloud) -> None:
    mark = cloud.mark()
    r = cloud.make("image", "ENV=prod", "RELEASE=g1", f"ANSIBLE_ARGS={cloud.source}", REHEARSE="1")
    assert r.returncode == 0, r.out[-3000:]
    assert re.search(rf"image for \w+ exists: \S+@{cloud.g1} \(g1[^)]*\); nothing to build", r.out), r.out
    assert "About to" not in r.out and cloud.writes(mark) == []


# ---- environments cannot overwrite each other ------------------------------------------------------------


def relabel(cloud, project: str, job: str, labels: dict) -> None:
    """Set a job's labels by hand, as someone with the console would."""
    found = cloud.jobs(project)[job]
    body = {"labels": labels, "template": found["template"], "etag": found["etag"]}
    cloud.api(project, "PATCH", f"{RUN.format(project)}/jobs/{job}", json=body)


def test_a_converge_refuses_to_take_over_another_environments_job_and_changes_nothing(cloud) -> None:
    labels = cloud.jobs(LOCAL)["cloudact-daily-alerts"]["labels"]
    relabel(
        cloud, LOCAL, "cloudact-daily-alerts", {"managed-by": "cloudact-toolkit", "cloudact-env": "stage"}
    )
    try:
        mark = cloud.mark()
        for target in ("create-jobs", "plan"):
            r = cloud.make(target)
            assert r.returncode != 0
            assert (
                "refused: Cloud Run job cloudact-daily-alerts belongs to environment stage "
                "(cloudact-env=stage), not local: a converge of local never takes over another environment's "
                "resources; nothing was changed"
            ) in r.out, r.out[-3000:]
        assert cloud.writes(mark) == []
    finally:
        relabel(cloud, LOCAL, "cloudact-daily-alerts", labels)


def test_the_first_converge_adopts_an_unlabelled_job_and_says_so(cloud) -> None:
    # cloudact-daily-alerts without its cloudact-env label, as before the first converge that marks it
    relabel(cloud, LOCAL, "cloudact-daily-alerts", {"managed-by": "cloudact-toolkit", "category": "daily"})
    r = cloud.make("plan")
    assert r.returncode == 0, r.out[-3000:]
    assert "would be " + ADOPTED in r.out, r.out[-3000:]
    r = cloud.make("create-jobs")
    assert r.returncode == 0, r.out[-3000:]
    assert ADOPTED in r.out, r.out[-3000:]
    assert cloud.jobs(LOCAL)["cloudact-daily-alerts"]["labels"]["cloudact-env"] == "local"
    again = cloud.make("create-jobs")
    assert "adopted" not in again.out and "jobs: 0 created, 0 updated, 8 unchanged" in again.out


def test_a_trigger_of_another_environment_is_refused(cloud) -> None:
    url = f"{SCHEDULER.format(LOCAL)}/jobs/cloudact-daily-alerts-trigger"
    found = cloud.api(LOCAL, "GET", url)
    marked = found["description"].replace("[cloudact-env=local]", "[cloudact-env=prod]")
    cloud.api(LOCAL, "PATCH", url, params={"updateMask": "description"}, json={"description": marked})
    try:
        mark = cloud.mark()
        r = cloud.make("create-jobs")
        assert r.returncode != 0
        assert (
            "refused: Cloud Scheduler job cloudact-daily-alerts-trigger belongs to environment prod" in r.out
        )
        assert cloud.writes(mark) == []
    finally:
        cloud.api(
            LOCAL,
            "PATCH",
            url,
            params={"updateMask": "description"},
            json={"description": found["description"]},
        )


def test_a_prune_never_removes_another_environments_job(cloud) -> None:
    body = {
        "template": {
            "template": {"containers": [{"image": "localhost/x:1", "command": ["python", "-c", "0"]}]}
        },
        "labels": {"cloudact-env": "stage"},
    }
    cloud.api(LOCAL, "POST", f"{RUN.format(LOCAL)}/jobs", params={"jobId": "cloudact-stage-owned"}, json=body)
    cloud.wait_for(lambda: "cloudact-stage-owned" in cloud.jobs(LOCAL), "the foreign job")
    body["labels"] = {}
    cloud.api(LOCAL, "POST", f"{RUN.format(LOCAL)}/jobs", params={"jobId": "cloudact-nobodys"}, json=body)
    cloud.wait_for(lambda: "cloudact-nobodys" in cloud.jobs(LOCAL), "the unlabelled job")
    try:
        r = cloud.make("create-jobs", PRUNE="1")
        assert r.returncode == 0, r.out[-3000:]
        assert "- cloudact-nobodys" in r.out and "cloudact-stage-owned" not in r.out
        assert "cloudact-stage-owned" in cloud.jobs(LOCAL) and "cloudact-nobodys" not in cloud.jobs(LOCAL)
    finally:  # the other environment's job goes, by hand
        if "cloudact-stage-owned" in cloud.jobs(LOCAL):
            cloud.api(LOCAL, "DELETE", f"{RUN.format(LOCAL)}/jobs/cloudact-stage-owned")
            cloud.wait_for(lambda: "cloudact-stage-owned" not in cloud.jobs(LOCAL), "its deletion")


# ---- nothing is deleted by accident ------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["cloud_run_job", "cloud_scheduler_job"])
def test_an_empty_purge_prefix_is_refused_by_the_module_itself(cloud, module) -> None:
    env = cloud.env(**dict(cloud.client_env, GCP_SERVICE_ACCOUNT_FILE=cloud.keys[LOCAL]))
    env.update(GCP_AUTH_KIND="serviceaccount", GCP_PROJECT=LOCAL, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    before = sorted(cloud.jobs(LOCAL))
    mark = cloud.mark()
    for prefix in ("", " "):
        args = json.dumps({"location": "us-central1", "jobs": [], "purge_prefix": prefix})
        r = subprocess.run(
            [str(ROOT / ".venv/bin/ansible"), "localhost", "-m", f"cloudact.gcp.{module}", "-a", args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        out = r.stdout + r.stderr
        assert r.returncode != 0
        assert (
            "an empty prefix would select every" in out and "leave purge_prefix out to prune nothing" in out
        ), out
    assert cloud.writes(mark) == []
    assert sorted(cloud.jobs(LOCAL)) == before
