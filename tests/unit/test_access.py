"""Access as code: what the catalog implies, how a policy differs and is rewritten, and the plan lines."""

from __future__ import annotations

import pytest
from ansible_collections.cloudact.gcp.plugins.module_utils import access, iam_policy
from ansible_collections.cloudact.gcp.plugins.module_utils.catalog import load_catalog
from ansible_collections.cloudact.gcp.plugins.module_utils.environment import load_environment
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

from toolkit import ROOT

FACTS = load_environment("local", ROOT)
JOBS = [j.as_dict() for j in load_catalog(root=ROOT).jobs]
RUNTIME = FACTS["cloudact_service_account"]
TRIGGER = FACTS["cloudact_trigger_account"]
RUNTIME_M, TRIGGER_M = f"serviceAccount:{RUNTIME}", f"serviceAccount:{TRIGGER}"


def plan(**kw):
    return access.desired(JOBS, FACTS["cloudact_secrets"], RUNTIME, TRIGGER, "cloudact-local", **kw)


def by_kind(desired, kind):
    return {r["name"]: r for r in desired["resources"] + desired["jobs"] if r["kind"] == kind}


def pair(role, who):
    return {"role": role, "member": who}


def test_the_accounts_are_derived_per_project() -> None:
    assert RUNTIME == "cloudact-jobs@cloudact-local.iam.gserviceaccount.com"
    assert TRIGGER == "cloudact-scheduler@cloudact-local.iam.gserviceaccount.com"
    assert [a["email"] for a in plan()["accounts"]] == [RUNTIME, TRIGGER]


def test_every_secret_accessor_binding_is_exactly_what_the_catalog_implies() -> None:
    secrets = by_kind(plan(), "secret")
    # 8 jobs mount 2 secrets: the root key (7 jobs) and the Supabase token (migrate).
    assert sorted(secrets) == ["ca-root-api-key-local", "supabase-access-token-local"]
    for resource in secrets.values():
        assert resource["bindings"] == [pair(access.SECRET_ACCESSOR, RUNTIME_M)]
        assert resource in plan()["resources"]  # converged before the jobs (Cloud Run checks it then)


def test_the_trigger_account_may_run_the_scheduled_jobs_only() -> None:
    jobs = by_kind(plan(), "job")
    assert len(jobs) == 8
    scheduled = {j["name"] for j in JOBS if j["schedule"]}
    for name, resource in jobs.items():
        want = [pair(access.RUN_INVOKER, TRIGGER_M)] if name in scheduled else []
        assert resource["bindings"] == want, name
        assert resource["managed_members"] == [RUNTIME_M, TRIGGER_M]  # a stale invoker pair is removed
    assert [r["kind"] for r in plan()["jobs"]] == ["job"] * 8  # converged after the jobs, only they


def test_datasets_and_the_one_project_role() -> None:
    desired = plan(ledger_dataset="cloudact_ops")
    datasets = by_kind(desired, "dataset")
    assert datasets["organizations"]["bindings"] == [pair("WRITER", RUNTIME_M)]  # quota-cleanup deletes rows
    assert datasets["cloudact_ops"]["bindings"] == [pair("WRITER", RUNTIME_M)]
    (project,) = by_kind(desired, "project").values()
    assert project["bindings"] == [pair(access.JOB_USER, RUNTIME_M)]
    assert project["legacy"] == [pair(role, RUNTIME_M) for role in access.LEGACY_PROJECT_ROLES]


def test_deployers_get_service_account_user_on_each_account_only_when_listed() -> None:
    assert by_kind(plan(), "account") == {}
    accounts = by_kind(plan(deployers=["group:deploy@example.com"]), "account")
    assert sorted(accounts) == [RUNTIME, TRIGGER]
    assert accounts[TRIGGER]["bindings"] == [pair(access.ACCOUNT_USER, "group:deploy@example.com")]


def secret(desired=None):
    return by_kind(desired or plan(), "secret")["ca-root-api-key-local"]


def test_diff_adds_what_is_missing_and_leaves_other_members_alone() -> None:
    held = {(access.SECRET_ACCESSOR, "user:alice@example.com"), ("roles/secretmanager.viewer", RUNTIME_M)}
    change = access.diff(secret(), held)
    assert change == {"add": [(access.SECRET_ACCESSOR, RUNTIME_M)], "remove": [], "legacy": []}


def test_diff_removes_our_pairs_the_catalog_no_longer_implies() -> None:
    job = by_kind(plan(), "job")["cloudact-manual-bootstrap"]  # runs by hand: no invoker for the trigger
    held = {(access.RUN_INVOKER, TRIGGER_M), (access.RUN_INVOKER, "user:bob@example.com")}
    assert access.diff(job, held)["remove"] == [(access.RUN_INVOKER, TRIGGER_M)]


def test_legacy_project_grants_are_reported_and_removed_only_with_prune() -> None:
    (project,) = by_kind(plan(), "project").values()
    held = {
        ("roles/bigquery.admin", RUNTIME_M),
        (access.JOB_USER, RUNTIME_M),
        ("roles/owner", "user:o@x.com"),
    }
    kept = access.diff(project, held)
    assert kept["remove"] == [] and kept["legacy"] == [("roles/bigquery.admin", RUNTIME_M)]
    pruned = access.diff(project, held, prune=True)
    assert pruned["remove"] == [("roles/bigquery.admin", RUNTIME_M)]


def test_pairs_ignores_conditional_bindings() -> None:
    bindings = [
        {"role": access.SECRET_ACCESSOR, "members": [RUNTIME_M], "condition": {"expression": "true"}},
        {"role": "roles/viewer", "members": ["user:a@x.com"]},
    ]
    assert access.pairs(bindings) == {("roles/viewer", "user:a@x.com")}


def test_apply_keeps_conditions_and_other_members() -> None:
    conditional = {"role": access.SECRET_ACCESSOR, "members": [RUNTIME_M], "condition": {"title": "t"}}
    bindings = [
        conditional,
        {"role": access.RUN_INVOKER, "members": [TRIGGER_M, "user:b@x.com"]},
        {"role": "roles/viewer", "members": ["user:a@x.com"]},
    ]
    out = access.apply(
        bindings, add=[(access.SECRET_ACCESSOR, RUNTIME_M)], remove=[(access.RUN_INVOKER, TRIGGER_M)]
    )
    assert out[0] == conditional
    assert {"role": access.RUN_INVOKER, "members": ["user:b@x.com"]} in out
    assert {"role": access.SECRET_ACCESSOR, "members": [RUNTIME_M]} in out  # a new unconditional binding
    assert {"role": "roles/viewer", "members": ["user:a@x.com"]} in out
    # Removing the last member drops the binding.
    assert access.apply([{"role": "r", "members": ["m"]}], add=[], remove=[("r", "m")]) == []


def test_summary_counts_bindings_and_names_each() -> None:
    results = {
        "accounts": [{"email": RUNTIME, "operation": "create"}, {"email": TRIGGER, "operation": "none"}],
        "resources": [
            {"kind": "secret", "name": "s1", "add": [pair(access.SECRET_ACCESSOR, RUNTIME_M)], "remove": []},
            {"kind": "job", "name": "j1", "add": [], "remove": [pair(access.RUN_INVOKER, TRIGGER_M)]},
            {
                "kind": "project",
                "name": "p",
                "add": [],
                "remove": [],
                "legacy": [pair("roles/bigquery.admin", RUNTIME_M)],
            },
            {
                "kind": "dataset",
                "name": "organizations",
                "add": [],
                "remove": [],
                "deferred": "does not exist yet",
            },
        ],
    }
    out = access.summary(results, check=True)
    assert out["lines"] == [
        "access: 1 account(s) would be created, 1 binding(s) would be added, 1 would be removed, "
        "1 resource(s) unchanged",
        f"  + account {RUNTIME}",
        f"  ~ secret s1: + {access.SECRET_ACCESSOR} {RUNTIME_M}",
        f"  ~ job j1: - {access.RUN_INVOKER} {TRIGGER_M}",
        f"  ! project p: legacy roles/bigquery.admin {RUNTIME_M} (PRUNE=1 removes it)",
        "  ? dataset organizations: does not exist yet",
    ]


@pytest.mark.parametrize(
    ("permission", "role"),
    [
        ("run.jobs.setIamPolicy", "roles/run.admin"),
        ("run.jobs.create", "roles/run.developer"),
        ("run.jobs.runWithOverrides", "roles/run.jobsExecutorWithOverrides"),
        ("iam.serviceAccounts.actAs", "roles/iam.serviceAccountUser"),
        ("cloudscheduler.jobs.create", "roles/cloudscheduler.admin"),
        ("resourcemanager.projects.setIamPolicy", "roles/resourcemanager.projectIamAdmin"),
    ],
)
def test_each_lacking_permission_is_one_line_naming_the_role(permission, role) -> None:
    (line,) = access.lacking_lines("ops@example.com", "cloudact-testing-1", [permission])
    assert line == (
        f"you (ops@example.com) lack {permission} on cloudact-testing-1: ask for {role} "
        "or run with an account that has it"
    )


def test_run_needs_overrides_permission_not_only_run() -> None:
    assert "run.jobs.runWithOverrides" in access.NEEDS["run"]
    assert "iam.serviceAccounts.actAs" in access.NEEDS["converge"]


# ---- the actions' inputs, checked before any request ----------------------------------------------


def entry(kind="secret", name="s1", bindings=None, **kw):
    return {"kind": kind, "name": name, "bindings": bindings or [], "legacy": [], **kw}


def test_managed_members_default_to_the_members_of_the_bindings() -> None:
    (checked,) = access.check_resources([entry(bindings=[pair(access.SECRET_ACCESSOR, RUNTIME_M)])])
    assert checked["managed_members"] == [RUNTIME_M]
    (given,) = access.check_resources([entry(managed_members=[RUNTIME_M, TRIGGER_M])])
    assert given["managed_members"] == [RUNTIME_M, TRIGGER_M]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            [entry(bindings=[pair("roles/owner", RUNTIME_M)])],
            "resources[0] (secret s1): role 'roles/owner' is not one this converge manages on a secret; "
            "valid: roles/secretmanager.secretAccessor",
        ),
        (
            [entry(), entry(kind="job", name="j"), entry()],
            "resources[2] (secret s1): listed twice (also resources[0]); list each resource once",
        ),
        (
            [entry(bindings=[pair(access.SECRET_ACCESSOR, RUNTIME)])],
            f"resources[0] (secret s1): bindings member {RUNTIME!r} is not an IAM member; use TYPE:ID",
        ),
        (
            [entry("dataset", "d", [pair("READER", "group:g@example.com")])],
            "resources[0] (dataset d): bindings member 'group:g@example.com': a dataset's access names "
            "serviceAccount:EMAIL or user:EMAIL",
        ),
        ([entry(name="")], "resources[0]: name is empty; name the secret (what its API addresses)"),
    ],
)
def test_a_bad_resource_is_refused_naming_it_and_what_is_valid(entries, message) -> None:
    with pytest.raises(InputError) as caught:
        access.check_resources(entries)
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_datasets_predefined_role_is_its_basic_one() -> None:
    (checked,) = access.check_resources(
        [entry("dataset", "d", [pair("roles/bigquery.dataEditor", RUNTIME_M)])]
    )
    assert access.diff(checked, {("WRITER", RUNTIME_M)}) == {"add": [], "remove": [], "legacy": []}


def test_the_diff_view_shows_the_pairs_the_converge_looks_at() -> None:
    job = by_kind(plan(), "job")["cloudact-daily-alerts"]
    held = {(access.RUN_INVOKER, "user:bob@example.com"), ("roles/run.viewer", TRIGGER_M)}
    change = access.diff(job, held)
    before, after = access.view(job, held, change)
    assert before == []  # neither pair is ours in a managed role
    assert after == [f"{access.RUN_INVOKER} {TRIGGER_M}"]
    assert access.granted([{"kind": "job", "name": "j", "add": access.as_bindings(change["add"])}]) == [
        f"{access.RUN_INVOKER} {TRIGGER_M} on job j"
    ]


@pytest.mark.parametrize(
    ("email", "message"),
    [
        (
            "cloudact-jobs@other.iam.gserviceaccount.com",
            "accounts[0]: email 'cloudact-jobs@other.iam.gserviceaccount.com' is not an account of project "
            "cloudact-local; use NAME@cloudact-local.iam.gserviceaccount.com",
        ),
        ("ab@cloudact-local.iam.gserviceaccount.com", "accounts[0]: account ID 'ab': use 6 to 30 lowercase"),
        ("Jobs-1@cloudact-local.iam.gserviceaccount.com", "accounts[0]: account ID 'Jobs-1': use 6 to 30"),
    ],
)
def test_an_account_outside_the_project_or_with_a_bad_id_is_refused(email, message) -> None:
    with pytest.raises(InputError) as caught:
        iam_policy.check_accounts([{"email": email}], "cloudact-local")
    assert str(caught.value).startswith(message), str(caught.value)
    iam_policy.check_accounts(plan()["accounts"], "cloudact-local")  # the catalog's own are valid
