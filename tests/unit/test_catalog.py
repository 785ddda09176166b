"""The job catalog: the real one is valid everywhere; each kind of bad entry is one named error."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from ansible_collections.cloudact.gcp.plugins.module_utils import environment as inventory
from ansible_collections.cloudact.gcp.plugins.module_utils.catalog import load_catalog, parse_catalog

from toolkit import ROOT, ToolkitError

REAL = yaml.safe_load((ROOT / "catalog/jobs.yml").read_text())
SECRETS = {"ca_root_api_key", "supabase_access_token"}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A checkout holding every script the real catalog names, so only the edit under test is wrong."""
    for job in REAL["jobs"]:
        script = tmp_path / job["script"]
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text("")
    return tmp_path


def edited(edit) -> dict:
    data = copy.deepcopy(REAL)
    edit(data)
    return data


def job(data: dict, shortcut: str) -> dict:
    return next(j for j in data["jobs"] if j["shortcut"] == shortcut)


# id, edit of the real catalog, the fragment the one-line error must contain
BAD = [
    (
        "duplicate-name",
        lambda d: job(d, "alerts").update(name="cloudact-daily-quota-reset"),
        "job 'alerts' field 'name': duplicate name 'cloudact-daily-quota-reset'",
    ),
    (
        "duplicate-shortcut",
        lambda d: job(d, "alerts").update(shortcut="quota-reset"),
        "field 'shortcut': duplicate shortcut 'quota-reset'",
    ),
    (
        "cron-four-fields",
        lambda d: job(d, "quota-reset").update(schedule="0 0 * *"),
        "jobs[3] (quota-reset) field 'schedule': invalid cron expression '0 0 * *'",
    ),
    (
        "cron-bad-hour",
        lambda d: job(d, "alerts").update(schedule="0 25 * * *"),
        "(alerts) field 'schedule': invalid cron expression '0 25 * * *'",
    ),
    (
        "script-missing",
        lambda d: job(d, "stale-cleanup").update(script="jobs/daily/nope.py"),
        "(stale-cleanup) field 'script': 'jobs/daily/nope.py' does not exist",
    ),
    (
        "timeout-unit",
        lambda d: job(d, "bootstrap").update(timeout="30 minutes"),
        "(bootstrap) field 'timeout': '30 minutes' is not a duration like 30s, 15m or 1h",
    ),
    (
        "timeout-too-long",
        lambda d: job(d, "bootstrap").update(timeout="25h"),
        "(bootstrap) field 'timeout': '25h' exceeds",
    ),
    (
        "memory-unit",
        lambda d: job(d, "bootstrap").update(memory="4GB"),
        "(bootstrap) field 'memory': '4GB' is not a memory limit like 512Mi or 2Gi",
    ),
    (
        "memory-too-small",
        lambda d: job(d, "alerts").update(memory="128Mi"),
        "(alerts) field 'memory': '128Mi' is outside",
    ),
    ("cpu", lambda d: job(d, "alerts").update(cpu="two"), "(alerts) field 'cpu': 'two'"),
    (
        "alias-collides-with-shortcut",
        lambda d: job(d, "alerts").update(aliases=["bootstrap"]),
        "job 'alerts' field 'aliases': alias 'bootstrap' collides with job 'bootstrap'",
    ),
    (
        "alias-collides-with-alias",
        lambda d: job(d, "quota-monthly").update(aliases=["quota-daily"]),
        "job 'quota-monthly' field 'aliases': alias 'quota-daily' collides with job 'quota-reset'",
    ),
    (
        "secret-not-in-inventory",
        lambda d: job(d, "alerts").update(secrets=["slack_token"]),
        "(alerts) field 'secrets': 'slack_token' is not defined in the inventory's cloudact_secrets",
    ),
    (
        "unknown-field",
        lambda d: job(d, "alerts").update(schedul="0 8 * * *"),
        "(alerts) field 'schedul': unknown field",
    ),
    (
        "manual-with-schedule",
        lambda d: job(d, "migrate").update(schedule="0 0 * * *"),
        "(migrate) field 'schedule': a manual job has no schedule",
    ),
    (
        "daily-without-schedule",
        lambda d: job(d, "alerts").pop("schedule"),
        "(alerts) field 'schedule': a daily job needs a cron schedule",
    ),
    (
        "bad-category",
        lambda d: job(d, "alerts").update(category="hourly"),
        "(alerts) field 'category': 'hourly' is not one of manual, daily, monthly",
    ),
    (
        "bad-time-zone",
        lambda d: job(d, "alerts").update(time_zone="Mars/Olympus"),
        "(alerts) field 'time_zone': 'Mars/Olympus' is not an IANA time zone",
    ),
    (
        "name-prefix",
        lambda d: job(d, "alerts").update(name="daily-alerts-job"),
        "(alerts) field 'name': 'daily-alerts-job' must start with 'cloudact-'",
    ),
    (
        "unknown-dependency",
        lambda d: job(d, "bootstrap").update(depends_on=["migrat"]),
        "job 'bootstrap' field 'depends_on': unknown job 'migrat'",
    ),
    (
        "dependency-cycle",
        lambda d: job(d, "migrate").update(depends_on=["org-sync-all"]),
        "field 'depends_on': dependency cycle among bootstrap, migrate, org-sync-all",
    ),
    (
        "release-order-twice",
        lambda d: job(d, "bootstrap").update(release={"order": 1}),
        "job 'bootstrap' field 'release': order 1 is already job 'migrate'",
    ),
    (
        "reserved-env",
        lambda d: job(d, "quota-cleanup").update(env={"GCP_PROJECT_ID": "x"}),
        "(quota-cleanup) field 'env': GCP_PROJECT_ID is set by the converge",
    ),
    (
        "env-not-string",
        lambda d: job(d, "quota-cleanup").update(env={"DAYS_TO_KEEP": 90}),
        "(quota-cleanup) field 'env': DAYS_TO_KEEP: value 90 must be a string",
    ),
    (
        "max-retries",
        lambda d: job(d, "alerts").update(max_retries=-1),
        "(alerts) field 'max_retries': -1 must be an integer from 0 to 10",
    ),
    (
        "legacy-is-current",
        lambda d: d["legacy"]["jobs"].append("cloudact-daily-alerts"),
        "legacy field 'jobs': 'cloudact-daily-alerts' is a current catalog name",
    ),
]


@pytest.mark.parametrize(("edit", "fragment"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_entry_is_one_named_error(root: Path, edit, fragment: str) -> None:
    with pytest.raises(ToolkitError) as err:
        parse_catalog(edited(edit), root=root, secrets=SECRETS)
    message = str(err.value)
    assert fragment in message
    assert "\n" not in message
    assert message.startswith("catalog/jobs.yml: ")


def test_real_catalog_matches_the_design(root: Path) -> None:
    cat = parse_catalog(REAL, root=root, secrets=SECRETS)
    assert len(cat.jobs) == 8
    assert [j.shortcut for j in cat.release_sequence] == ["migrate", "bootstrap", "org-sync-all"]
    triggers = {j.trigger: (j.schedule, j.time_zone) for j in cat.scheduled}
    assert triggers == {
        "cloudact-daily-quota-reset-trigger": ("0 0 * * *", "UTC"),
        "cloudact-daily-quota-cleanup-trigger": ("0 1 * * *", "UTC"),
        "cloudact-daily-stale-cleanup-trigger": ("0 2 * * *", "UTC"),
        "cloudact-daily-alerts-trigger": ("0 8 * * *", "UTC"),
        "cloudact-monthly-quota-reset-trigger": ("5 0 1 * *", "UTC"),
    }
    timeouts = {j.shortcut: j.timeout_seconds // 60 for j in cat.jobs}
    assert timeouts == {
        "migrate": 15,
        "bootstrap": 30,
        "org-sync-all": 60,
        "quota-reset": 15,
        "quota-cleanup": 30,
        "stale-cleanup": 10,
        "alerts": 30,
        "quota-monthly": 15,
    }
    big = {j.shortcut for j in cat.jobs if (j.memory, j.cpu) == ("4Gi", "2")}
    assert big == {"bootstrap", "org-sync-all"}
    assert all(j.max_retries == 1 for j in cat.jobs)
    assert cat.by_shortcut("migrate").secrets == ("supabase_access_token",)
    assert "cloudact-15min-stale-cleanup" in cat.legacy_jobs


NAMES = [
    "cloudact-manual-supabase-migrate",
    "cloudact-manual-bootstrap",
    "cloudact-manual-org-sync-all",
    "cloudact-daily-quota-reset",
    "cloudact-daily-quota-cleanup",
    "cloudact-daily-stale-cleanup",
    "cloudact-daily-alerts",
    "cloudact-monthly-quota-reset",
]


def as_loaded(entry: dict) -> dict:
    """A catalog file's entry as the loaded catalog must give it: merged over job_defaults, with the
    derived fields (the module the command runs, the timeout in seconds, the trigger, the release order)."""
    job = {**REAL["job_defaults"], "datasets": {}, **entry}
    release = job.pop("release")
    seconds = int(job["timeout"][:-1]) * {"s": 1, "m": 60, "h": 3600}[job["timeout"][-1]]
    return dict(
        job,
        module=job["script"].removesuffix(".py").replace("/", "."),
        timeout_seconds=seconds,
        trigger=f"{job['name']}-trigger" if job["schedule"] else None,
        release_order=release["order"] if release else None,
    )


@pytest.mark.parametrize("env", ["local", "test", "stage", "prod"])
def test_real_catalog_is_valid_for_every_inventory(env: str) -> None:
    """Every inventory loads the catalog file as written: its 8 jobs in order, each field the entry's
    (or job_defaults'), each secret one the inventory defines, and the legacy names."""
    facts = inventory.load_environment(env, ROOT)
    catalog = load_catalog(root=ROOT, secrets=set(facts["cloudact_secrets"]))
    assert [j.name for j in catalog.jobs] == NAMES
    assert [j.as_dict() for j in catalog.jobs] == [as_loaded(entry) for entry in REAL["jobs"]]
    assert {s for j in catalog.jobs for s in j.secrets} == SECRETS <= set(facts["cloudact_secrets"])
    assert list(catalog.legacy_jobs) == REAL["legacy"]["jobs"]
    assert list(catalog.legacy_triggers) == REAL["legacy"]["triggers"]


RESOLVE = [
    ("bootstrap", "bootstrap"),
    ("bootstrap-sync", "bootstrap"),
    ("bootstrap-smart", "bootstrap"),
    ("supabase-migrate", "migrate"),
    ("org-sync", "org-sync-all"),
    ("stale", "stale-cleanup"),
    ("quota-reset-daily", "quota-reset"),
    ("quota-daily", "quota-reset"),
    ("daily-alerts", "alerts"),
    ("quota-reset-monthly", "quota-monthly"),
    ("cloudact-daily-alerts", "alerts"),
    ("daily-quota-cleanup", "quota-cleanup"),
    ("  Cloudact-Manual-Bootstrap ", "bootstrap"),
]


@pytest.mark.parametrize(("word", "shortcut"), RESOLVE)
def test_resolve_accepts_every_documented_word(root: Path, word: str, shortcut: str) -> None:
    assert parse_catalog(REAL, root=root).resolve(word).shortcut == shortcut


def test_resolve_unknown_word_lists_names_and_the_closest(root: Path) -> None:
    cat = parse_catalog(REAL, root=root)
    with pytest.raises(ToolkitError) as err:
        cat.resolve("bootstarp")
    assert "unknown job 'bootstarp': did you mean 'bootstrap'?" in str(err.value)
    assert "migrate, bootstrap, org-sync-all, quota-reset" in str(err.value)
    with pytest.raises(ToolkitError) as err:
        cat.resolve("zzz")
    assert "did you mean" not in str(err.value)


def test_environments_and_their_facts() -> None:
    # test and stage are one environment (one project, one set of jobs): test is another word for stage.
    assert inventory.environments(ROOT) == ["local", "prod", "stage"]
    assert inventory.aliases(ROOT) == {"test": "stage"}
    assert inventory.check_environment("test", ROOT) == "stage"
    assert inventory.alias_note("test", ROOT) == "test is stage (cloudact-testing-1)"
    assert inventory.alias_note("stage", ROOT) == ""
    assert inventory.load_environment("test", ROOT) == inventory.load_environment("stage", ROOT)
    prod = inventory.load_environment("prod", ROOT)
    assert prod["cloudact_gcp_project"] == "cloudact-prod"
    assert prod["cloudact_confirm_required"] is True
    assert prod["cloudact_secrets"]["ca_root_api_key"]["secret"] == "ca-root-api-key-prod"
    assert prod["cloudact_service_account"] == "cloudact-jobs@cloudact-prod.iam.gserviceaccount.com"
    # No tag: the newest build, resolved to a digest before planning (module_utils/image.py).
    assert prod["cloudact_image"] == "us-central1-docker.pkg.dev/cloudact-prod/cloudact/cloudact-jobs-prod"
    assert prod["cloudact_build_bucket"] == "cloudact-prod_cloudbuild"
    stage = inventory.load_environment("stage", ROOT)
    assert stage["cloudact_gcp_project"] == "cloudact-testing-1"
    assert stage["cloudact_environment"] == "staging"
    assert stage["cloudact_api_url"] == ""
    assert stage["cloudact_secrets"]["supabase_access_token"]["secret"] == "supabase-access-token-stage"
    assert stage["cloudact_secrets"]["ca_root_api_key"]["secret"] == "ca-root-api-key-test"
    local = inventory.load_environment("local", ROOT)
    assert local["cloudact_supabase_project_ref"] == "local"
    assert local["cloudact_confirm_required"] is False


@pytest.mark.parametrize("word", ["dev", "production", ""])
def test_unknown_environment_names_the_valid_ones(word: str) -> None:
    with pytest.raises(
        ToolkitError, match=r"unknown environment .*: valid environments are local, prod, stage, test"
    ):
        inventory.load_environment(word, ROOT)


def test_the_defaults_are_the_catalogs_own_defined_once(root: Path) -> None:
    """No value is defaulted in code: without job_defaults' memory a job that names none is refused."""
    data = copy.deepcopy(REAL)
    del data["job_defaults"]["memory"]
    with pytest.raises(ToolkitError) as err:
        parse_catalog(data, root=root)
    assert "field 'memory': is required (in the entry, or in the catalog's job_defaults)" in str(err.value)
    parsed = parse_catalog(REAL, root=root)
    assert parsed.by_shortcut("alerts").memory == REAL["job_defaults"]["memory"]
