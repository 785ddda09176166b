# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The doctor's check of alerts as code: every catalog job has its failure policy, every policy names at
least one enabled channel that is not UNVERIFIED, and no policy is disabled. Two list calls (this
environment's policies and channels, by their owner labels); the fix is the converge."""

from __future__ import annotations

from ansible_collections.cloudact.gcp.plugins.module_utils import converge_plan, monitoring
from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError
from ansible_collections.cloudact.gcp.plugins.module_utils.doctor import FAIL, OK, WARN, Context, Row, lacks

NAME = "alert policies"


def check_alerts(ctx: Context) -> Row:
    api = ctx.cloud()
    env = ctx.facts["cloudact_env"]
    try:
        policies = {p.get("displayName"): p for p in monitoring.list_policies(api, ctx.project, env)}
        channels = {c["name"]: c for c in monitoring.list_channels(api, ctx.project, env)}
    except ApiError as exc:
        raise lacks("monitoring.alertPolicies.list", exc) or exc from None
    entries = converge_plan.policy_entries(ctx.facts, ctx.options["catalog"])
    missing = [e["shortcut"] for e in entries if e["name"] not in policies]
    usable = {
        n
        for n, c in channels.items()
        if c.get("enabled", True) is not False and c.get("verificationStatus") != "UNVERIFIED"
    }
    disabled = sorted(n for n, p in policies.items() if p.get("enabled", True) is False)
    silent = sorted(n for n, p in policies.items() if not usable & set(p.get("notificationChannels") or []))
    fix = ctx.make("create-jobs")
    problems = []
    if missing:
        problems.append("no failure policy for %s" % ", ".join(missing))
    if disabled:
        problems.append("disabled: %s" % ", ".join(disabled))
    if problems:
        return Row(NAME, FAIL, "; ".join(problems), fix)
    if silent:
        if not ctx.facts.get("cloudact_alert_channels"):
            return Row(
                NAME,
                WARN,
                "%d policies notify no one: inventories/%s lists no cloudact_alert_channels"
                % (len(silent), env),
                "set cloudact_alert_channels in inventories/%s, then %s" % (env, fix),
            )
        unusable = sorted(
            "%s %s"
            % (c.get("displayName", n), "disabled" if c.get("enabled", True) is False else "unverified")
            for n, c in channels.items()
            if n not in usable
        )
        why = "; channels: %s" % ", ".join(unusable) if unusable else ""
        return Row(
            NAME,
            FAIL,
            "%d policies name no enabled, verified channel (%s)%s"
            % (len(silent), ", ".join(silent[:3]), why),
            fix,
        )
    names = sorted(channels[n].get("displayName", n) for n in usable)
    found = "%d jobs, each with its failure policy notifying %s" % (len(entries), ", ".join(names))
    return Row(NAME, OK, found)
