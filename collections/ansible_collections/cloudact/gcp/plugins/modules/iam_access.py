#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: iam_access
short_description: Converge the CloudAct accounts and their least-privilege IAM bindings
description:
  - Creates the service accounts when missing (IAM v1 C(projects.serviceAccounts.get/create));
    never deletes one.
  - >-
    Converges the (role, member) pairs of those accounts on each resource, in place: Secret Manager
    secrets, Cloud Run v2 jobs and service accounts (C(getIamPolicy/setIamPolicy)), the project
    (Resource Manager v1) and BigQuery datasets (access entries through C(datasets.get/patch) with
    the dataset's etag).
  - Read-modify-write with the policy's etag and C(requestedPolicyVersion=3), so conditional
    bindings and everything else others put in a policy survive; a concurrent change (409 ABORTED,
    or 412 on a dataset) is retried from a fresh read.
  - Only the pairs of the accounts this module is given, in the roles it manages per kind, are
    added or removed; legacy pairs (the old scripts' project-wide grants) are reported and
    removed only with O(prune).
  - >-
    Supports check mode (the plan: each binding to add or remove, per resource).
  - "Why these bindings, per Google's docs:
    a job's runtime account needs roles/secretmanager.secretAccessor on each secret it mounts
    (https://cloud.google.com/run/docs/configuring/jobs/secrets);
    a job run on a schedule needs roles/run.invoker on the job for the account Cloud Scheduler mints
    the OAuth token for, and whoever creates or updates the trigger needs iam.serviceAccounts.actAs
    on that account, which roles/iam.serviceAccountUser on the account grants
    (https://cloud.google.com/run/docs/execute/jobs-on-schedule,
    https://cloud.google.com/scheduler/docs/http-target-auth);
    deploying a job that runs as an account needs actAs on it too
    (https://cloud.google.com/run/docs/securing/service-identity);
    BigQuery data access is granted per dataset, and running a query job needs
    bigquery.jobs.create on the project, which roles/bigquery.jobUser grants
    (https://cloud.google.com/bigquery/docs/access-control)."
  - Google documents that IAM changes can take minutes to apply
    (https://cloud.google.com/iam/docs/access-change-propagation); the result lists what this run
    granted so a later PERMISSION_DENIED can be named as propagation.
version_added: 0.2.0
author: CloudAct platform team
options:
  access:
    description:
      - The desired accounts and resources, as the C(cloudact.gcp.access_plan) filter returns them
        (C({accounts, resources}); each resource C({kind, name, phase, bindings, managed_members, legacy})).
    type: dict
    required: true
  phase:
    description:
      - >-
        V(resources) creates the accounts and converges the project, accounts, secrets and datasets
        (before the jobs: Cloud Run checks a job's secret access when it is created or updated);
        V(jobs) converges the jobs' own policies (after the jobs exist, before the triggers).
    type: str
    choices: [resources, jobs]
    required: true
  location:
    description: Region of the Cloud Run jobs.
    type: str
    required: true
  prune:
    description: Also remove the legacy project-wide grants of the runtime account.
    type: bool
    default: false
extends_documentation_fragment:
  - google.cloud.gcp
  - cloudact.gcp.gcp
"""

EXAMPLES = r"""
- name: Accounts, then secret and dataset bindings
  cloudact.gcp.iam_access:
    access: "{{ cloudact_catalog.jobs | cloudact.gcp.access_plan(...) }}"
    phase: resources
    location: us-central1
"""

RETURN = r"""
accounts:
  description: Each account and what was done (C(create) or C(none)).
  type: list
  returned: always
resources:
  description: Each resource converged, with C(add), C(remove), C(legacy) pairs and C(deferred).
  type: list
  returned: always
granted:
  description: C(role member on kind name) of each pair this run added (not in check mode).
  type: list
  returned: always
"""

from ansible_collections.cloudact.gcp.plugins.module_utils import iam_policy
from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import ApiError, GcpApi, gcp_module

PRODUCT = "cloudact-iam"


def converge(api, params, check):
    project, region = params["project"], params["location"]
    phase, desired = params["phase"], params["access"]
    accounts = []
    if phase == "resources":
        for account in desired.get("accounts") or []:
            found = iam_policy.get_account(api, project, account["email"])
            operation = "none" if found else "create"
            if operation == "create" and not check:
                iam_policy.create_account(api, project, account)
            accounts.append({"email": account["email"], "operation": operation})
    resources = [
        iam_policy.converge_resource(api, r, project, region, check, prune=params["prune"])
        for r in desired.get("resources") or []
        if r.get("phase") == phase
    ]
    granted = [
        "%s %s on %s %s" % (role, member, r["kind"], r["name"])
        for r in resources
        if not check
        for role, member in r.get("add") or []
    ]
    changed = any(a["operation"] == "create" for a in accounts) or any(r["changed"] for r in resources)
    return dict(changed=changed, accounts=accounts, resources=resources, granted=granted)


def main():
    module = gcp_module(
        dict(
            access=dict(type="dict", required=True),
            phase=dict(type="str", required=True, choices=["resources", "jobs"]),
            location=dict(type="str", required=True),
            prune=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    try:
        result = converge(GcpApi(module, PRODUCT), module.params, module.check_mode)
    except ApiError as exc:
        module.fail_json(msg=str(exc), status=exc.status, reason=exc.reason)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
