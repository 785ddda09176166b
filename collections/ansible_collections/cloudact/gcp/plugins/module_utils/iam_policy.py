# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IAM over REST: service accounts, policies of projects, secrets, Cloud Run jobs and service accounts,
BigQuery dataset access, and testIamPermissions, through the one client.

Every policy change is a read-modify-write with the policy's etag and requestedPolicyVersion 3 (so
conditional bindings others made are read whole and written back unchanged). A concurrent change
(409 ABORTED on a setIamPolicy, 412 on a dataset patch with a stale etag) is retried from a fresh
read under api-core's retry (the one retry policy's library), as Google asks.
"""

from __future__ import annotations

import re

try:
    from google.api_core.retry import exponential_sleep_generator, retry_target
except ImportError:  # reported by the module's own library check
    pass

from ansible_collections.cloudact.gcp.plugins.module_utils import access
from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

IAM = "https://iam.googleapis.com/v1"
CRM = "https://cloudresourcemanager.googleapis.com/v1"
SECRETS = "https://secretmanager.googleapis.com/v1"
RUN = "https://run.googleapis.com/v2"
BIGQUERY = "https://bigquery.googleapis.com/bigquery/v2"
POLICY_VERSION = 3
CONFLICT_DEADLINE = 60.0  # seconds of retrying a read-modify-write that keeps meeting concurrent changes
_ABORTED = (409, 412)
# IAM v1 serviceAccounts.create: accountId [a-z]([-a-z0-9]*[a-z0-9]), 6 to 30 characters.
ACCOUNT_ID = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")


def account_url(project, email):
    return "%s/projects/%s/serviceAccounts/%s" % (IAM, project, email)


def get_account(api, project, email):
    return api.request("GET", account_url(project, email), "service account %s" % email, allow_missing=True)


def create_account(api, project, account):
    """Create the service account (its id is the email's local part). After a lost answer, or a 409,
    the account of that email is read instead: the toolkit's accounts are named per project."""
    try:
        return api.request(
            "POST",
            "%s/projects/%s/serviceAccounts" % (IAM, project),
            "service account %s (create)" % account["email"],
            json={
                "accountId": access.account_id(account["email"]),
                "serviceAccount": {
                    "displayName": account["display_name"],
                    "description": account["description"],
                },
            },
            look=lambda _lost: get_account(api, project, account["email"]),
        )
    except ApiError as exc:
        if exc.status != 409:
            raise
        return get_account(api, project, account["email"])


def _resource_url(kind, project, region, name):
    if kind == "project":
        return "%s/projects/%s" % (CRM, name)
    if kind == "secret":
        return "%s/projects/%s/secrets/%s" % (SECRETS, project, name)
    if kind == "job":
        return "%s/projects/%s/locations/%s/jobs/%s" % (RUN, project, region, name)
    if kind == "account":
        return account_url(project, name)
    raise ValueError("no IAM policy for kind %r" % kind)


def get_policy(api, kind, project, region, name, allow_missing=False):
    """The resource's policy ({} when it has none); None for a missing resource when allow_missing."""
    url = _resource_url(kind, project, region, name) + ":getIamPolicy"
    what = "IAM policy of %s %s" % (kind, name)
    if kind == "project":  # Resource Manager v1 takes the options in a POST body
        return api.request(
            "POST",
            url,
            what,
            json={"options": {"requestedPolicyVersion": POLICY_VERSION}},
            allow_missing=allow_missing,
        )
    method = "POST" if kind == "account" else "GET"  # IAM v1 serviceAccounts.getIamPolicy is a POST
    return api.request(
        method,
        url,
        what,
        params={"options.requestedPolicyVersion": POLICY_VERSION},
        allow_missing=allow_missing,
    )


def set_policy(api, kind, project, region, name, policy):
    url = _resource_url(kind, project, region, name) + ":setIamPolicy"
    body = dict(policy, version=POLICY_VERSION)
    return api.request("POST", url, "IAM policy of %s %s (set)" % (kind, name), json={"policy": body})


def dataset_url(project, dataset):
    return "%s/projects/%s/datasets/%s" % (BIGQUERY, project, dataset)


def dataset_pairs(entries):
    """Dataset access entries -> (role, member) pairs of the ones naming an account or user."""
    out = set()
    for entry in entries or []:
        role = access.DATASET_ROLE_ALIASES.get(entry.get("role"), entry.get("role"))
        email = entry.get("userByEmail")
        if role and email:
            kind = "serviceAccount" if email.endswith(".gserviceaccount.com") else "user"
            out.add((role, "%s:%s" % (kind, email)))
    return out


def dataset_apply(entries, add, remove):
    removing = {(r, m.partition(":")[2]) for r, m in remove}
    out = [
        e
        for e in entries or []
        if (access.DATASET_ROLE_ALIASES.get(e.get("role"), e.get("role")), e.get("userByEmail"))
        not in removing
    ]
    out += [{"role": role, "userByEmail": m.partition(":")[2]} for role, m in add]
    return out


def converge_resource(api, resource, project, region, check, prune=False):
    """Read the resource's policy, work out its change and (not in check mode) write it.

    -> ({kind, name, add, remove, legacy, changed, deferred}, (before, after)): the pairs as
    [{role, member}], `deferred` saying why a dataset that does not exist yet was left for later; and
    diff mode's lines of the pairs the converge looks at. A stale etag or a concurrent change is
    retried from a fresh read.
    """
    kind, name = resource["kind"], resource["name"]

    def attempt():
        out = {"kind": kind, "name": name, "add": [], "remove": [], "legacy": [], "changed": False}
        if kind == "dataset":
            current = api.request(
                "GET", dataset_url(project, name), "BigQuery dataset %s" % name, allow_missing=True
            )
            if current is None:
                out["deferred"] = (
                    "dataset %s does not exist yet; its access is converged once it exists "
                    "(bootstrap creates the organizations dataset; make create-jobs after it)" % name
                )
                return out, ([], [])
            held = dataset_pairs(current.get("access"))
        else:
            current = get_policy(api, kind, project, region, name, allow_missing=check)
            held = access.pairs((current or {}).get("bindings"))
        change = access.diff(resource, held, prune=prune)
        out.update(
            add=access.as_bindings(change["add"]),
            remove=access.as_bindings(change["remove"]),
            legacy=access.as_bindings(change["legacy"]),
            changed=bool(change["add"] or change["remove"]),
            deferred="",
        )
        lines = access.view(resource, held, change)
        if check or not out["changed"] or current is None:
            return out, lines
        if kind == "dataset":
            api.request(
                "PATCH",
                dataset_url(project, name),
                "BigQuery dataset %s (access)" % name,
                json={"access": dataset_apply(current.get("access"), change["add"], change["remove"])},
                headers={"If-Match": current.get("etag", "")},
            )
        else:
            policy = dict(
                current, bindings=access.apply(current.get("bindings"), change["add"], change["remove"])
            )
            set_policy(api, kind, project, region, name, policy)
        return out, lines

    return retry_target(
        attempt,
        predicate=lambda exc: isinstance(exc, ApiError) and exc.status in _ABORTED,
        sleep_generator=exponential_sleep_generator(0.2, 4.0),
        timeout=CONFLICT_DEADLINE,
    )


def converge_bindings(api, resources, project, region, check, diff_mode, prune=False):
    """cloudact.gcp.iam_bindings: converge each resource of the checked `resources`, in order.

    -> {changed, resources, granted, diff?}: `granted` names each pair this run added (none in check
    mode), so a later PERMISSION_DENIED can be named as IAM propagation.
    """
    results, diffs = [], []
    for resource in resources:
        out, (before, after) = converge_resource(api, resource, project, region, check, prune=prune)
        results.append(out)
        if out["changed"]:
            header = "%s %s" % (resource["kind"], resource["name"])
            diffs.append({"before": before, "after": after, "before_header": header, "after_header": header})
    result = {
        "changed": any(r["changed"] for r in results),
        "resources": results,
        "granted": [] if check else access.granted(results),
    }
    if diff_mode:
        result["diff"] = diffs
    return result


def check_accounts(accounts, project):
    """cloudact.gcp.service_accounts' `accounts`, checked before any request: each email an account of
    `project` with a valid ID, listed once; InputError naming the bad one and what is valid."""
    seen = set()
    for index, account in enumerate(accounts or []):
        email = account["email"]
        local, _at, domain = email.partition("@")
        where = "accounts[%d]" % index
        if domain != "%s.iam.gserviceaccount.com" % project:
            raise InputError(
                "%s: email %r is not an account of project %s; use NAME@%s.iam.gserviceaccount.com"
                % (where, email, project, project)
            )
        if not ACCOUNT_ID.match(local):
            raise InputError(
                "%s: account ID %r: use 6 to 30 lowercase letters, digits and hyphens, starting with a "
                "letter and not ending with a hyphen" % (where, local)
            )
        if email in seen:
            raise InputError("%s: %s is listed twice; list each account once" % (where, email))
        seen.add(email)


def ensure_accounts(api, project, accounts, check, diff_mode):
    """Create each account that does not exist (never deleting one). -> {changed, accounts, diff?}, each
    account {email, operation: create|none}."""
    results, diffs = [], []
    for account in accounts:
        email = account["email"]
        operation = "none" if get_account(api, project, email) else "create"
        if operation == "create":
            if not check:
                create_account(api, project, account)
            diffs.append(
                {
                    "before": {},
                    "after": {k: account[k] for k in ("email", "display_name", "description")},
                    "before_header": "service account %s" % email,
                    "after_header": "service account %s" % email,
                }
            )
        results.append({"email": email, "operation": operation})
    result = {"changed": any(a["operation"] == "create" for a in results), "accounts": results}
    if diff_mode:
        result["diff"] = diffs
    return result


def test_permissions(api, project, permissions):
    """The subset of `permissions` the caller holds on the project (Resource Manager testIamPermissions)."""
    got = api.request(
        "POST",
        "%s/projects/%s:testIamPermissions" % (CRM, project),
        "permissions on project %s" % project,
        json={"permissions": sorted(permissions)},
    )
    return set((got or {}).get("permissions") or [])
