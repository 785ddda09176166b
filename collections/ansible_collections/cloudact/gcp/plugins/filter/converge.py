# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the converge: a catalog job -> its Cloud Run spec, what to prune, the summary, word -> job.

Logic in Python rather than Jinja (README.md, Architecture); each filter is a pure function with unit tests
(tests/ansible/test_filters.py).
"""

from __future__ import annotations

from pathlib import Path

from ansible.errors import AnsibleFilterError
from ansible_collections.cloudact.gcp.plugins.filter.access import access_summary
from ansible_collections.cloudact.gcp.plugins.module_utils import catalog, converge_plan
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError as ToolkitError

DOCUMENTATION = ""


def _environment(model):
    """The run's environment (the fact cloudact_environment_model) as (facts, catalog)."""
    if not isinstance(model, dict) or "facts" not in model or "catalog" not in model:
        raise AnsibleFilterError(
            "expected the run's environment (cloudact_environment_model, set by the cloudact_env role), "
            "got %s" % type(model).__name__
        )
    return model["facts"], model["catalog"]


def job_entries(model, image, api_url):
    """The run's environment -> `jobs` of cloudact.gcp.cloud_run_job (module_utils/converge_plan.py)."""
    facts, data = _environment(model)
    try:
        return converge_plan.job_entries(facts, data, image, api_url)
    except ToolkitError as exc:
        raise AnsibleFilterError(str(exc)) from None


def trigger_entries(model):
    """The run's environment -> `jobs` of cloudact.gcp.cloud_scheduler_job (module_utils/converge_plan.py)."""
    facts, data = _environment(model)
    return converge_plan.trigger_entries(facts, data)


def policy_entries(model):
    """The run's environment -> `policies` of cloudact.gcp.alert_policies (module_utils/converge_plan.py)."""
    facts, data = _environment(model)
    try:
        return converge_plan.policy_entries(facts, data)
    except ToolkitError as exc:
        raise AnsibleFilterError(str(exc)) from None


def _alerts(channels, policies, pruned_channels):
    """{alert_channels, alert_policies}: the results of the alerts role's registered tasks. When the
    channels' prune task (after the policies) ran, its results of the unlisted channels (deleted, or
    kept with the reason) replace the first task's."""
    out = {}
    pruned = (pruned_channels or {}).get("channels")
    for label, registered, key in (
        ("alert_channels", channels, "channels"),
        ("alert_policies", policies, "policies"),
    ):
        results = (registered or {}).get(key)
        if results is None:
            continue
        if key == "channels" and pruned is not None:
            results = [r for r in results if not r.get("unlisted")] + [r for r in pruned if r.get("unlisted")]
        out[label] = results
    return out


def converge_summary(
    jobs=None,
    triggers=None,
    check=False,
    access_results=None,
    ledger=None,
    alert_channels=None,
    alert_policies=None,
    alert_channels_pruned=None,
):
    """The registered results of the batch job and trigger tasks -> {jobs, triggers, lines} per kind.

    `access_results`: the registered results of the iam_access tasks (a list), summed up first.
    `ledger`: the registered result of the bigquery_ledger task (the execution ledger), a line of its own.
    `alert_channels`, `alert_policies`, `alert_channels_pruned`: the registered results of the
    cloudact_alerts role (notification_channels, alert_policies, the channels' prune), counted last.
    """

    def kind(registered, results=None):
        out = {
            "created": [],
            "updated": {},
            "unchanged": [],
            "pruned": [],
            "paused": [],
            "resumed": [],
            "adopted": [],
        }
        for r in (registered or {}).get("jobs") or [] if results is None else results:
            op = r.get("operation")
            if r.get("adopted"):
                out["adopted"].append(r["name"])
            if op == "create":
                out["created"].append(r["name"])
            elif op == "update":
                out["updated"][r["name"]] = list(r.get("changed_fields") or [])
            elif op == "delete":
                out["pruned"].append(r["name"])
            elif op == "none" and r.get("spec") and not r.get("unlisted"):
                out["unchanged"].append(r["name"])
            if r.get("state_change") == "pause":
                out["paused"].append(r["name"])
            elif r.get("state_change") == "resume":
                out["resumed"].append(r["name"])
        return out

    summary = {"check_mode": bool(check), "jobs": kind(jobs), "triggers": kind(triggers)}
    alerts = _alerts(alert_channels, alert_policies, alert_channels_pruned)
    for label, results in alerts.items():
        summary[label] = kind(None, results)
    verb = "would be " if check else ""
    lines = []
    if any("resources" in (r or {}) for r in access_results or []):  # the access tasks ran
        summary["access"] = access_summary(access_results, check=check)
        lines += summary["access"]["lines"]
    if ledger and "operations" in ledger:
        summary["ledger"] = list(ledger["operations"])
        done = "; ".join(ledger["operations"])
        lines.append("ledger: %s" % (("would %s" % done if check else done) if done else "unchanged"))
    for label in ("jobs", "triggers", *alerts):
        k = summary[label]
        lines.append(
            "%s: %d %screated, %d %supdated, %d unchanged, %d %spruned"
            % (
                label.replace("_", " "),
                len(k["created"]),
                verb,
                len(k["updated"]),
                verb,
                len(k["unchanged"]),
                len(k["pruned"]),
                verb,
            )
        )
        lines += ["  + %s" % name for name in k["created"]]
        lines += ["  ~ %s: %s" % (name, ", ".join(fields)) for name, fields in k["updated"].items()]
        lines += ["  - %s" % name for name in k["pruned"]]
        lines += ["  paused: %s" % name for name in k["paused"]]
        lines += ["  resumed: %s" % name for name in k["resumed"]]
        for r in alerts.get(label) or []:
            if r.get("verification_status"):
                lines.append("  %s: verificationStatus %s" % (r["name"], r["verification_status"]))
            if r.get("kept"):
                lines.append("  kept %s: %s" % (r["name"], r["kept"]))
            if r.get("unlisted") and r.get("operation") == "none" and not r.get("kept"):
                lines.append("  unlisted %s: kept (PRUNE=1 removes it)" % r["name"])
        if k["adopted"]:
            lines.append(
                "  %sadopted (unlabelled, of the catalog's names; now marked as this environment's): %s"
                % (verb, ", ".join(k["adopted"]))
            )
    summary["lines"] = lines
    return summary


def resolve_job(word, root, catalog_file="catalog/jobs.yml", scheduled=False):
    """A user's word -> the catalog job (dict); one-line error naming the valid words."""
    try:
        parsed = catalog.load_catalog(Path(root) / catalog_file, root=Path(root))
        job = parsed.resolve(word)
    except ToolkitError as exc:
        raise AnsibleFilterError(str(exc)) from None
    if scheduled and not job.scheduled:
        names = ", ".join(j.shortcut for j in parsed.scheduled)
        raise AnsibleFilterError(
            f"job {job.shortcut!r} has no trigger (it runs by hand); jobs with triggers: {names}"
        )
    return job.as_dict()


class FilterModule:
    def filters(self):
        return {
            "job_entries": job_entries,
            "trigger_entries": trigger_entries,
            "policy_entries": policy_entries,
            "converge_summary": converge_summary,
            "resolve_job": resolve_job,
        }
