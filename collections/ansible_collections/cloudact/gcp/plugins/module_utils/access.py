# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Access as code: the accounts and the IAM bindings the catalog implies, and how a policy differs.

Two accounts per environment (inventory data, derived in module_utils/environment.py):
- the jobs' runtime account (`cloudact-jobs@<project>`), which every job runs as;
- the trigger account (`cloudact-scheduler@<project>`), which Cloud Scheduler mints the OAuth token
  for, so Cloud Run records it as the `creator` of every scheduled execution.

What the catalog implies, each on the narrowest resource (Google's docs, cited in the documentation of
cloudact.gcp.iam_bindings):
- per secret a job mounts: roles/secretmanager.secretAccessor for the runtime account;
- per scheduled job: roles/run.invoker (run.jobs.run) for the trigger account;
- per BigQuery dataset a job lists (`datasets:` in the catalog) and the ledger dataset: that access
  (READER / WRITER) for the runtime account, plus roles/bigquery.jobUser on the project (the one
  project-level grant: running a query job is a project permission);
- per account, roles/iam.serviceAccountUser for the inventory's deployers (who may deploy jobs
  that run as it, or triggers that mint tokens for it).

What we manage is exactly the (role, member) pairs of our accounts in the roles above; anything
else in a policy (other members, conditional bindings, other roles) is left as it is. The old
scripts' project-wide grants to the runtime account are `legacy`: shown, removed only with prune.

Pure functions over plain data; module_utils/iam_policy.py reads and writes the policies.
"""

from __future__ import annotations

from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"  # noqa: S105 - a role name
RUN_INVOKER = "roles/run.invoker"
JOB_USER = "roles/bigquery.jobUser"
ACCOUNT_USER = "roles/iam.serviceAccountUser"
# The project-wide roles the scripts this toolkit replaced granted to cloudact-jobs.
LEGACY_PROJECT_ROLES = ("roles/bigquery.admin", "roles/secretmanager.secretAccessor")

# Per kind: the roles whose pairs for our accounts the converge owns on such a resource.
MANAGED_ROLES = {
    "project": (JOB_USER,),
    "secret": (SECRET_ACCESSOR,),
    "job": (RUN_INVOKER,),
    "dataset": ("READER", "WRITER"),
    "account": (ACCOUNT_USER,),
}
# Dataset access roles as BigQuery returns them for the predefined roles (datasets.get).
DATASET_ROLE_ALIASES = {
    "roles/bigquery.dataViewer": "READER",
    "roles/bigquery.dataEditor": "WRITER",
    "roles/bigquery.dataOwner": "OWNER",
}
KINDS = tuple(MANAGED_ROLES)
# Members a dataset's access entries can name by email (userByEmail); other kinds take any IAM member.
DATASET_MEMBERS = ("serviceAccount", "user")


def member(email):
    return "serviceAccount:%s" % email


def account_id(email):
    return email.partition("@")[0]


def binding(role, who):
    """One (role, member) pair as the actions take and return it."""
    return {"role": role, "member": who}


def as_pairs(bindings):
    """[{role, member}] -> [(role, member)]."""
    return [(b["role"], b["member"]) for b in bindings or []]


def as_bindings(pairs):
    """[(role, member)] -> [{role, member}], sorted."""
    return [binding(role, who) for role, who in sorted(tuple(p) for p in pairs)]


def desired(
    jobs,
    secrets,
    runtime,
    trigger,
    project,
    ledger_dataset="",
    deployers=(),
    legacy_roles=LEGACY_PROJECT_ROLES,
):
    """The catalog's jobs (`Job.as_dict()`) -> {accounts, resources, jobs}.

    accounts: [{email, display_name, description}] (cloudact.gcp.service_accounts' `accounts`);
    resources: what is converged before the jobs exist (the project, the accounts, the secrets, the
    datasets: Cloud Run checks a job's secret access when it is created or updated); jobs: the jobs'
    own policies, converged after them (they must exist). Each resource, as cloudact.gcp.iam_bindings
    takes it: {kind, name, bindings: [{role, member}], managed_members, legacy: [{role, member}]};
    `name` is what the API addresses (project ID, account email, secret ID, dataset ID, job name).
    """
    runtime_m, trigger_m = member(runtime), member(trigger)
    ours = [runtime_m, trigger_m]
    deployer_pairs = [(ACCOUNT_USER, m) for m in sorted(set(deployers or ()))]
    accounts = [
        {
            "email": runtime,
            "display_name": "CloudAct jobs",
            "description": "Runtime account of the CloudAct Cloud Run jobs (managed by make create-jobs)",
        },
        {
            "email": trigger,
            "display_name": "CloudAct scheduler",
            "description": (
                "Cloud Scheduler's identity for the CloudAct triggers (managed by make create-jobs)"
            ),
        },
    ]
    datasets = {}
    for job in jobs:
        for dataset, level in (job.get("datasets") or {}).items():
            datasets[dataset] = "WRITER" if "WRITER" in (level, datasets.get(dataset)) else "READER"
    if ledger_dataset:
        datasets[ledger_dataset] = "WRITER"
    before = [
        _resource(
            "project",
            project,
            [(JOB_USER, runtime_m)] if datasets else [],
            [runtime_m],
            legacy=[(role, runtime_m) for role in legacy_roles],
        )
    ]
    if deployer_pairs:
        for email in (runtime, trigger):
            members = [member for _role, member in deployer_pairs]
            before.append(_resource("account", email, deployer_pairs, members))
    mounted = sorted({secrets[key]["secret"] for job in jobs for key in job.get("secrets") or []})
    before += [_resource("secret", secret, [(SECRET_ACCESSOR, runtime_m)], ours) for secret in mounted]
    before += [_resource("dataset", d, [(datasets[d], runtime_m)], ours) for d in sorted(datasets)]
    after = [
        _resource("job", job["name"], [(RUN_INVOKER, trigger_m)] if job.get("schedule") else [], ours)
        for job in jobs
    ]
    return {"accounts": accounts, "resources": before, "jobs": after}


def _resource(kind, name, pairs, managed_members, legacy=()):
    return {
        "kind": kind,
        "name": name,
        "bindings": as_bindings(pairs),
        "managed_members": list(managed_members),
        "legacy": as_bindings(legacy),
    }


def check_resources(resources):
    """The `resources` of cloudact.gcp.iam_bindings, checked before any request: InputError naming the
    entry, the bad value and what is valid. -> the entries, `managed_members` defaulted to the members
    of their bindings."""
    seen = {}
    out = []
    for index, entry in enumerate(resources or []):
        kind, name = entry["kind"], entry["name"]
        where = "resources[%d] (%s %s)" % (index, kind, name)
        if not name:
            raise InputError(
                "resources[%d]: name is empty; name the %s (what its API addresses)" % (index, kind)
            )
        if (kind, name) in seen:
            raise InputError(
                "%s: listed twice (also resources[%d]); list each resource once" % (where, seen[kind, name])
            )
        seen[kind, name] = index
        managed = MANAGED_ROLES[kind]
        for field in ("bindings", "legacy"):
            for pair in entry.get(field) or []:
                role, who = pair["role"], pair["member"]
                if kind == "dataset":
                    role = DATASET_ROLE_ALIASES.get(role, role)
                _check_member(where, field, who, kind)
                if field == "bindings" and role not in managed:
                    raise InputError(
                        "%s: role %r is not one this converge manages on a %s; valid: %s"
                        % (where, pair["role"], kind, ", ".join(managed))
                    )
        members = entry.get("managed_members")
        if members is None:
            members = sorted({b["member"] for b in entry.get("bindings") or []})
        for who in members:
            _check_member(where, "managed_members", who, kind)
        out.append(dict(entry, managed_members=list(members), legacy=list(entry.get("legacy") or [])))
    return out


def _check_member(where, field, who, kind):
    prefix, _colon, rest = str(who).partition(":")
    if not prefix or not rest:
        raise InputError(
            "%s: %s member %r is not an IAM member; use TYPE:ID, e.g. serviceAccount:NAME@PROJECT"
            ".iam.gserviceaccount.com, user:EMAIL, group:EMAIL" % (where, field, who)
        )
    if kind == "dataset" and prefix not in DATASET_MEMBERS:
        raise InputError(
            "%s: %s member %r: a dataset's access names serviceAccount:EMAIL or user:EMAIL"
            % (where, field, who)
        )


def pairs(bindings):
    """Policy bindings -> the set of (role, member) of its unconditional bindings."""
    out = set()
    for entry in bindings or []:
        if entry.get("condition"):
            continue  # conditional bindings are someone else's: never counted, never touched
        for m in entry.get("members") or []:
            out.add((entry["role"], m))
    return out


def diff(resource, current_pairs, prune=False):
    """What converging `resource` ({kind, bindings, managed_members, legacy}) changes, given the
    (role, member) pairs it holds now.

    -> {add, remove, legacy}, each sorted (role, member) pairs: pairs to add, pairs of ours to remove
    (managed roles the resource no longer lists; legacy ones only with prune), and legacy pairs present
    (reported either way).
    """
    want = set(as_pairs(resource["bindings"]))
    if resource["kind"] == "dataset":  # BigQuery answers the basic role of a predefined one
        want = {(DATASET_ROLE_ALIASES.get(r, r), m) for r, m in want}
    managed_roles = MANAGED_ROLES[resource["kind"]]
    members = set(resource["managed_members"])
    legacy = set(as_pairs(resource.get("legacy"))) & current_pairs
    ours = {(r, m) for r, m in current_pairs if r in managed_roles and m in members}
    remove = (ours - want) | (legacy - want if prune else set())
    return {
        "add": sorted(want - current_pairs),
        "remove": sorted(remove),
        "legacy": sorted(legacy - want),
    }


def view(resource, current_pairs, change):
    """Diff mode's before and after of one resource: the 'role member' lines of the pairs the converge
    looks at (its own, those it adds or removes, the legacy ones), sorted."""
    members = set(resource["managed_members"])
    managed_roles = MANAGED_ROLES[resource["kind"]]
    seen = {(r, m) for r, m in current_pairs if r in managed_roles and m in members}
    seen |= set(map(tuple, change["legacy"])) | set(map(tuple, change["remove"]))
    after = (seen - set(map(tuple, change["remove"]))) | set(map(tuple, change["add"]))
    return (
        ["%s %s" % pair for pair in sorted(seen)],
        ["%s %s" % pair for pair in sorted(after)],
    )


def apply(bindings, add, remove):
    """Policy bindings with `add` added and `remove` removed; others (and conditions) untouched."""
    out = []
    removing = set(map(tuple, remove))
    for entry in bindings or []:
        b = dict(entry)
        if not b.get("condition"):
            b["members"] = [m for m in b.get("members") or [] if (b["role"], m) not in removing]
        if b.get("members"):
            out.append(b)
    for role, m in add:
        target = next((b for b in out if b["role"] == role and not b.get("condition")), None)
        if target is None:
            out.append({"role": role, "members": [m]})
        elif m not in target["members"]:
            target["members"] = sorted([*target["members"], m])
    return out


def granted(resources):
    """'role member on kind name' of each binding the converge of `resources` added."""
    return [
        "%s %s on %s %s" % (b["role"], b["member"], r["kind"], r["name"])
        for r in resources
        for b in r.get("add") or []
    ]


def summary(results, check=False):
    """The access results of the converge ({accounts, resources}, each as the actions return them)
    -> {counts, lines} for the converge summary and plan."""
    verb = "would be " if check else ""
    created = [a["email"] for a in results.get("accounts") or [] if a.get("operation") == "create"]
    added = removed = unchanged = 0
    lines = ["  + account %s" % email for email in created]
    for r in results.get("resources") or []:
        add, remove = as_pairs(r.get("add")), as_pairs(r.get("remove"))
        added += len(add)
        removed += len(remove)
        label = "%s %s" % (r["kind"], r["name"])
        if r.get("deferred"):
            lines.append("  ? %s: %s" % (label, r["deferred"]))
            continue
        if not (add or remove):
            unchanged += 1
        lines += ["  ~ %s: + %s %s" % (label, role, m) for role, m in add]
        lines += ["  ~ %s: - %s %s" % (label, role, m) for role, m in remove]
        lines += [
            "  ! %s: legacy %s %s (PRUNE=1 removes it)" % (label, role, m)
            for role, m in as_pairs(r.get("legacy"))
            if (role, m) not in remove
        ]
    head = (
        "access: %d account(s) %screated, %d binding(s) %sadded, %d %sremoved, %d resource(s) unchanged"
        % (len(created), verb, added, verb, removed, verb, unchanged)
    )
    return {
        "accounts_created": created,
        "added": added,
        "removed": removed,
        "unchanged": unchanged,
        "lines": [head, *lines],
    }


# ---- the operator's side: what each command needs, and which role grants it (product data) ------

# Checked by preflight with testIamPermissions before anything changes.
NEEDS = {
    "converge": (
        "run.jobs.get",
        "run.jobs.list",
        "run.jobs.create",
        "run.jobs.update",
        "run.jobs.delete",
        "run.jobs.getIamPolicy",
        "run.jobs.setIamPolicy",
        "run.operations.get",
        "cloudscheduler.jobs.get",
        "cloudscheduler.jobs.list",
        "cloudscheduler.jobs.create",
        "cloudscheduler.jobs.update",
        "cloudscheduler.jobs.delete",
        "secretmanager.secrets.get",
        "secretmanager.secrets.getIamPolicy",
        "secretmanager.secrets.setIamPolicy",
        "iam.serviceAccounts.get",
        "iam.serviceAccounts.create",
        "iam.serviceAccounts.actAs",
        "resourcemanager.projects.getIamPolicy",
        "resourcemanager.projects.setIamPolicy",
        "bigquery.datasets.get",
        "bigquery.datasets.update",
        # the ledger (dataset, table, view: module_utils/ledger.py)
        "bigquery.datasets.create",
        "bigquery.tables.get",
        "bigquery.tables.create",
        "bigquery.tables.update",
        # alerts as code (module_utils/alerts.py): Monitoring has no resource-level IAM
        "monitoring.alertPolicies.list",
        "monitoring.alertPolicies.get",
        "monitoring.alertPolicies.create",
        "monitoring.alertPolicies.update",
        "monitoring.alertPolicies.delete",
        "monitoring.notificationChannels.list",
        "monitoring.notificationChannels.get",
        "monitoring.notificationChannels.create",
        "monitoring.notificationChannels.update",
        "monitoring.notificationChannels.delete",
        "monitoring.notificationChannelDescriptors.list",
    ),
    # `make run` sends overrides (args, env, the toolkit's mark): run.jobs.run is not enough.
    "run": ("run.jobs.get", "run.jobs.runWithOverrides", "run.executions.get", "run.executions.list"),
    "release": (
        "run.jobs.get",
        "run.jobs.list",
        "run.jobs.runWithOverrides",
        "run.executions.get",
        "run.executions.list",
        "secretmanager.secrets.get",
        # the ledger's reconciliation after the steps
        "bigquery.jobs.create",
        "bigquery.tables.getData",
        "bigquery.tables.updateData",
    ),
}

# The narrowest predefined role that grants each permission (Google's IAM roles reference).
ROLE_HINTS = {
    "run.jobs.getIamPolicy": "roles/run.admin",
    "run.jobs.setIamPolicy": "roles/run.admin",
    "run.jobs.runWithOverrides": "roles/run.jobsExecutorWithOverrides",
    "run.executions.get": "roles/run.viewer",
    "run.executions.list": "roles/run.viewer",
    "secretmanager.secrets.get": "roles/secretmanager.viewer",
    "secretmanager.secrets.getIamPolicy": "roles/secretmanager.admin",
    "secretmanager.secrets.setIamPolicy": "roles/secretmanager.admin",
    "iam.serviceAccounts.actAs": "roles/iam.serviceAccountUser",
    "resourcemanager.projects.getIamPolicy": "roles/resourcemanager.projectIamAdmin",
    "resourcemanager.projects.setIamPolicy": "roles/resourcemanager.projectIamAdmin",
    "bigquery.jobs.create": "roles/bigquery.jobUser",
    "bigquery.tables.getData": "roles/bigquery.dataEditor",
    "bigquery.tables.updateData": "roles/bigquery.dataEditor",
}
PREFIX_HINTS = (
    ("run.", "roles/run.developer"),
    ("cloudscheduler.", "roles/cloudscheduler.admin"),
    ("iam.serviceAccounts.", "roles/iam.serviceAccountAdmin"),
    ("bigquery.datasets.", "roles/bigquery.dataOwner"),
    ("bigquery.tables.", "roles/bigquery.dataOwner"),
    ("monitoring.alertPolicies.", "roles/monitoring.alertPolicyEditor"),
    ("monitoring.notificationChannel", "roles/monitoring.notificationChannelEditor"),
)


def role_hint(permission):
    if permission in ROLE_HINTS:
        return ROLE_HINTS[permission]
    return next((role for prefix, role in PREFIX_HINTS if permission.startswith(prefix)), "roles/owner")


def lacking_lines(who, project, missing):
    """One line per permission the operator lacks, naming the role to ask for."""
    return [
        "you (%s) lack %s on %s: ask for %s or run with an account that has it"
        % (who, permission, project, role_hint(permission))
        for permission in sorted(missing)
    ]
