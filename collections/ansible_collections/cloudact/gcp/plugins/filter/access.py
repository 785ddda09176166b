# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the access converge: the catalog -> the accounts and bindings it implies, and what the
service_accounts and iam_bindings results tell later tasks."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.cloudact.gcp.plugins.module_utils import access

DOCUMENTATION = ""


def access_plan(
    jobs,
    secrets,
    runtime,
    trigger,
    project,
    ledger_dataset="",
    deployers=None,
    legacy_roles=None,
):
    """cloudact_catalog.jobs -> {accounts, resources, jobs}: cloudact.gcp.service_accounts' `accounts`,
    and cloudact.gcp.iam_bindings' `resources` before the jobs exist and after them."""
    for key in sorted({k for job in jobs for k in job.get("secrets") or []}):
        if key not in secrets:
            raise AnsibleFilterError("secret key %r of the catalog is not in cloudact_secrets" % key)
    return access.desired(
        jobs,
        secrets,
        runtime,
        trigger,
        project,
        ledger_dataset=ledger_dataset or "",
        deployers=deployers or (),
        legacy_roles=access.LEGACY_PROJECT_ROLES if legacy_roles is None else tuple(legacy_roles),
    )


def access_summary(results, check=False):
    """The registered results of the access tasks (a list: service_accounts, iam_bindings) ->
    {added, removed, ..., lines}."""
    merged = {"accounts": [], "resources": []}
    for registered in results or []:
        merged["accounts"] += (registered or {}).get("accounts") or []
        merged["resources"] += (registered or {}).get("resources") or []
    return access.summary(merged, check=check)


def recent_grants(results):
    """The `granted` lists of the iam_bindings tasks that ran -> one list (to name IAM propagation)."""
    return [g for registered in results or [] for g in (registered or {}).get("granted") or []]


def access_deferred(registered):
    """Whether an iam_bindings result left a resource for later (a dataset that did not exist yet)."""
    return any(r.get("deferred") for r in (registered or {}).get("resources") or [])


class FilterModule:
    def filters(self):
        return {
            "access_plan": access_plan,
            "recent_grants": recent_grants,
            "access_deferred": access_deferred,
        }
