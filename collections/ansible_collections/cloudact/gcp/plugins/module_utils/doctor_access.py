# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The doctor's access checks, on the access model (module_utils/access.py, iam_policy.py):

- the operator's own permissions for converge and run: Resource Manager testIamPermissions (a
  read) of access.NEEDS, each missing one with the narrowest role that grants it;
- access as converged: the trigger account can run each scheduled job (roles/run.invoker on the
  job) and the runtime account can read each secret a job mounts (secretAccessor on the secret),
  from each resource's getIamPolicy, compared by access.diff with what the catalog implies.
"""

from __future__ import annotations

from ansible_collections.cloudact.gcp.plugins.module_utils import access, iam_policy
from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError
from ansible_collections.cloudact.gcp.plugins.module_utils.doctor import (
    FAIL,
    OK,
    Context,
    Row,
    Skip,
    first,
    lacks,
)
from ansible_collections.cloudact.gcp.plugins.module_utils.doctor_jobs import deployed

ROWS_OF_NEEDS = ("converge", "run")
POLICY_PERMISSIONS = {"job": "run.jobs.getIamPolicy", "secret": "secretmanager.secrets.getIamPolicy"}


def check_permissions(ctx: Context) -> Row:
    api = ctx.cloud()
    wanted = {p for need in ROWS_OF_NEEDS for p in access.NEEDS[need]}
    try:
        held = iam_policy.test_permissions(api, ctx.project, wanted)
    except ApiError as exc:
        if exc.status in (404, 501):
            raise Skip(
                "testIamPermissions of project %s is not served: %s" % (ctx.project, first(exc))
            ) from None
        raise
    who = ctx.cache.get("account") or "the application default credentials"
    missing = {need: sorted(set(access.NEEDS[need]) - held) for need in ROWS_OF_NEEDS}
    if not any(missing.values()):
        return Row(
            "permissions", OK, "%s holds what converge and run need (%d permissions)" % (who, len(wanted))
        )
    lacking = sorted({p for ps in missing.values() for p in ps})
    roles = sorted({access.role_hint(p) for p in lacking})
    found = "you (%s) lack %s" % (
        who,
        "; ".join("for %s: %s" % (need, ", ".join(ps)) for need, ps in missing.items() if ps),
    )
    member = "serviceAccount:%s" % who if "@" in who else "user:<you>"
    fix = "; ".join(
        "gcloud projects add-iam-policy-binding %s --member=%s --role=%s" % (ctx.project, member, role)
        for role in roles
    )
    return Row("permissions", FAIL, found, fix)


def check_access(ctx: Context) -> Row:
    """Each scheduled job runnable by the trigger account, each mounted secret readable by the runtime one."""
    api, facts = ctx.cloud(), ctx.facts
    runtime, trigger = facts["cloudact_service_account"], facts.get("cloudact_trigger_account") or ""
    if not trigger:
        raise Skip("no cloudact_trigger_account in inventories/%s (the access model is not there)" % ctx.env)
    wanted = access.desired(
        ctx.options["catalog"]["jobs"],
        facts["cloudact_secrets"],
        runtime,
        trigger,
        ctx.project,
        deployers=facts.get("cloudact_access_deployers") or (),
    )
    problems, checked = [], 0
    jobs = deployed(ctx)
    for resource in wanted["resources"] + wanted["jobs"]:
        kind, name = resource["kind"], resource["name"]
        if kind not in POLICY_PERMISSIONS or not resource["bindings"]:
            continue
        if kind == "job" and name not in jobs:
            continue  # not deployed: the plan's row says so
        try:
            policy = iam_policy.get_policy(api, kind, ctx.project, ctx.region, name)
        except ApiError as exc:
            if exc.status == 404:
                raise Skip("the IAM policy of %s %s: %s" % (kind, name, first(exc))) from None
            raise lacks(POLICY_PERMISSIONS[kind], exc) or exc from None
        checked += 1
        for role, who in access.diff(resource, access.pairs(policy.get("bindings")))["add"]:
            account = who.partition(":")[2].partition("@")[0]
            if kind == "job":
                problems.append("%s cannot run %s (no %s)" % (account, name, role))
            else:
                problems.append("%s cannot read secret %s (no %s)" % (account, name, role))
    if problems:
        fix = ctx.make("create-jobs")
        if not ctx.options.get("access_in_converge", True):  # access is converged on request only
            fix = "CLOUDACT_ACCESS=1 " + fix
        return Row("access", FAIL, "; ".join(problems), fix)
    return Row(
        "access",
        OK,
        "%s runs the scheduled jobs; %s reads the mounted secrets (%d policies)"
        % (trigger.partition("@")[0], runtime.partition("@")[0], checked),
    )
