# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The alerts converge: Cloud Monitoring notification channels and alert policies of one environment.

The REST calls are module_utils/monitoring.py's; this file decides what to change. The
notification_channels and alert_policies actions run `converge_channels` and `converge_policies`.

Ownership is the userLabels managed_by=cloudact-toolkit and cloudact_env=<env> (monitoring.OWNER):
every list is filtered by them, a resource is identified among this environment's by its display
name, and nothing without both labels is ever changed. Server-assigned IDs are never guessed.

Channels. A sensitive label (SENSITIVE: slack auth_token, webhook_basicauth password, webhook_tokenauth
url) is given as a Secret Manager secret ({secret, version}), read at converge and written into the
channel, never returned, printed or diffed: Google returns such values partly or not at all, so
every label of a channel is compared through the userLabel `cloudact_digest`, the first 32 hex
characters of HMAC-SHA256(key, message) where
  key     = "cloudact-toolkit/<project>/<env>/<channel display name>" (not a secret: it binds the
            digest to one channel, so one token on two channels gives two digests), and
  message = the JSON of {"type": type, "labels": {every label: its value}} with sorted keys.
A 128-bit digest of a high-entropy token tells nothing usable about it.

Policies. One per catalog job (converge_plan.policy_entries), its condition built here from the
entry's `kind` (`failed`: Cloud Run's completed_execution_count with result="failed"). A patch
carries an updateMask of the changed fields; a condition keeps its server-assigned `name`.

Writes are made one at a time, in order (Google asks it of a project's policies and channels).
"""

from __future__ import annotations

import hashlib
import hmac
import json

from ansible_collections.cloudact.gcp.plugins.module_utils import monitoring
from ansible_collections.cloudact.gcp.plugins.module_utils.batch import field_diff, plan
from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError
from ansible_collections.cloudact.gcp.plugins.module_utils.fields import changed_fields

DIGEST = "cloudact_digest"
SENSITIVE = {"slack": ("auth_token",), "webhook_basicauth": ("password",), "webhook_tokenauth": ("url",)}
SEVERITIES = ("CRITICAL", "ERROR", "WARNING")
KINDS = ("failed",)
FAILED_METRIC = "run.googleapis.com/job/completed_execution_count"
AUTO_CLOSE = "1800s"

CHANNEL_OPTIONS = dict(
    name=dict(type="str", required=True),
    type=dict(type="str", required=True),
    labels=dict(type="dict", default={}),
    enabled=dict(type="bool", default=True),
)
POLICY_OPTIONS = dict(
    name=dict(type="str", required=True),
    kind=dict(type="str", required=True, choices=list(KINDS)),
    job=dict(type="str", required=True),
    shortcut=dict(type="str", required=True),
    severity=dict(type="str", required=True, choices=list(SEVERITIES)),
    documentation=dict(type="str", required=True),
    notification_channels=dict(type="list", elements="str", default=[]),
    enabled=dict(type="bool", default=True),
)


def check_owner(owner, what):
    monitoring.check_owner(owner, what)


def unique(entries, kind):
    names = [e["name"] for e in entries]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError("%s: %s listed more than once; each name once" % (kind, ", ".join(twice)))


def by_name(items, kind, env):
    """{display name: resource} of this environment's resources; two of one name are refused."""
    found = {}
    for item in items:
        name = item.get("displayName") or ""
        if name in found:
            raise InputError(
                "refused: two %s of environment %s are named %r (%s, %s): delete one by hand; nothing was "
                "changed" % (kind, env, name, found[name]["name"], item["name"])
            )
        found[name] = item
    return found


# ---- notification channels -----------------------------------------------------------------------


def digest(project, env, name, kind, labels):
    """The first 32 hex characters of HMAC-SHA256 over the channel's type and labels (module doc)."""
    key = "cloudact-toolkit/%s/%s/%s" % (project, env, name)
    message = json.dumps({"type": kind, "labels": labels}, sort_keys=True, separators=(",", ":"))
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()[:32]


def check_channels(entries, schema):
    """Refuse, before any write, an unknown type or label, a sensitive label not named as a secret and
    a plain label given as one. `schema`: {type: [label keys]} (notificationChannelDescriptors)."""
    for entry in entries:
        kind = entry["type"]
        if kind not in schema:
            raise InputError(
                "channel %s: type %r is not a notification channel type of this project (valid: %s)"
                % (entry["name"], kind, ", ".join(sorted(schema)))
            )
        valid = schema[kind]
        for key, value in sorted((entry.get("labels") or {}).items()):
            if key not in valid:
                raise InputError(
                    "channel %s: label %r is not a label of type %s (valid: %s)"
                    % (entry["name"], key, kind, ", ".join(valid))
                )
            secret = key in SENSITIVE.get(kind, ())
            if secret and not (isinstance(value, dict) and value.get("secret")):
                raise InputError(
                    "channel %s: label %s of type %s is sensitive: name the Secret Manager secret that holds "
                    "it ({secret: <secret ID>}), never its value" % (entry["name"], key, kind)
                )
            if not secret and isinstance(value, dict):
                raise InputError(
                    "channel %s: label %s of type %s is not sensitive: give its value, not a secret "
                    "(sensitive labels: %s)"
                    % (
                        entry["name"],
                        key,
                        kind,
                        ", ".join("%s %s" % (t, "/".join(k)) for t, k in sorted(SENSITIVE.items())),
                    )
                )
        missing = [k for k in valid if k not in (entry.get("labels") or {})]
        if missing:
            raise InputError(
                "channel %s: type %s needs label%s %s"
                % (entry["name"], kind, "s" * (len(missing) > 1), ", ".join(missing))
            )


def secret_refs(entries, project):
    """[(channel, label, ref)] of every sensitive label."""
    out = []
    for entry in entries:
        for key, value in sorted((entry.get("labels") or {}).items()):
            if isinstance(value, dict):
                out.append((entry["name"], key, monitoring.secret_ref(value, project)))
    return out


def read_secrets(api, entries, project):
    """{(channel, label): value} of the sensitive labels, read before any write; InputError naming a
    secret that is missing or unreadable (one line, no value)."""
    values = {}
    for channel, key, ref in secret_refs(entries, project):
        try:
            values[(channel, key)] = monitoring.read_secret(api, ref)
        except ApiError as exc:
            if exc.status == 404:
                raise InputError(
                    "channel %s: label %s names secret %s (version %s), which does not exist in %s: create "
                    "it (gcloud secrets create %s) and add the value as its version; nothing was changed"
                    % (channel, key, ref["secret"], ref["version"], project, ref["secret"].rsplit("/", 1)[-1])
                ) from None
            if exc.status == 403:
                raise InputError(
                    "channel %s: label %s names secret %s, which you cannot read (%s): ask for "
                    "roles/secretmanager.secretAccessor on it; nothing was changed"
                    % (channel, key, ref["secret"], monitoring.ACCESS)
                ) from None
            raise
    return values


def shown_label(kind, key, value):
    """A label as a plan or diff may show it: a sensitive one never by value (its change shows only
    through the digest, as the server's copy cannot be compared)."""
    if key in SENSITIVE.get(kind, ()):
        return "(sensitive)"
    return value


def channel_view(channel):
    """The compared fields of a channel as the server holds it (sensitive labels never by value)."""
    kind = channel.get("type", "")
    labels = channel.get("labels") or {}
    return {
        "type": kind,
        "enabled": channel.get("enabled", True) is not False,
        "labels": {k: shown_label(kind, k, v) for k, v in sorted(labels.items())},
        DIGEST: (channel.get("userLabels") or {}).get(DIGEST, ""),
    }


def channel_want(entry, project, env, secrets):
    """(view, body) of a channel entry: its compared fields and the body written."""
    kind = entry["type"]
    given = entry.get("labels") or {}
    labels = {}
    for key, value in given.items():
        labels[key] = secrets[(entry["name"], key)] if isinstance(value, dict) else str(value)
    mark = digest(project, env, entry["name"], kind, labels)
    view = {
        "type": kind,
        "enabled": bool(entry["enabled"]),
        "labels": {k: shown_label(kind, k, v) for k, v in sorted(given.items())},
        DIGEST: mark,
    }
    body = {
        "type": kind,
        "displayName": entry["name"],
        "labels": labels,
        "userLabels": dict(monitoring.owner_labels(env), **{DIGEST: mark}),
        "enabled": bool(entry["enabled"]),
    }
    return view, body


def verification(channel):
    status = (channel or {}).get("verificationStatus") or ""
    return "" if status == "VERIFICATION_STATUS_UNSPECIFIED" else status


def converge_channels(api, entries, project, env, check, prune=False, only_prune=False):
    """Converge this environment's channels to `entries`; {changed, channels, diff}. With `prune`,
    also delete this environment's channels that are not listed (each with force, and only when no
    other environment's or foreign policy names it). `only_prune`: do nothing else (the role's second
    channel task, after the policies)."""
    check_owner(env, "notification channel")
    unique(entries, "channels")
    schema = monitoring.descriptors(api, project)
    check_channels(entries, schema)
    secrets = read_secrets(api, entries, project)
    existing = by_name(monitoring.list_channels(api, project, env), "notification channels", env)
    results, diffs = [], []
    for entry in entries:
        current = existing.get(entry["name"])
        after, body = channel_want(entry, project, env, secrets)
        if current and current.get("type") != entry["type"]:
            raise InputError(
                "channel %s is a %s channel; its type cannot change to %s: give the new one another name "
                "(PRUNE=1 then removes the old one); nothing was changed"
                % (entry["name"], current.get("type"), entry["type"])
            )
        before = channel_view(current) if current else {}
        if only_prune:
            continue
        result = plan(entry["name"], current, before, after)
        # The digest covers every label: when it differs, `labels` changed (whichever label it was).
        fields = result["changed_fields"]
        if current and DIGEST in fields and "labels" not in fields:
            fields.insert(0, "labels")
        result["type"] = entry["type"]
        result["verification_status"] = verification(current)
        if not check and result["operation"] == "create":
            found = create_channel(api, project, env, body)
            result["resource_name"] = found.get("name", "")
            result["verification_status"] = verification(found)
        elif not check and result["operation"] == "update":
            mask = [m for m, f in (("enabled", "enabled"), ("labels", "labels")) if f in fields]
            mask.append("user_labels")
            update_channel(api, current["name"], body, mask, after)
        if current:
            result["resource_name"] = current["name"]
        results.append(result)
        if result["changed"]:
            header = "notification_channel %s" % entry["name"]
            diffs.append(field_diff(header, result, current, before, after))
    listed = {e["name"] for e in entries}
    for name in sorted(set(existing) - listed):
        current = existing[name]
        before = channel_view(current)
        result = dict(
            name=name,
            type=current.get("type", ""),
            resource_name=current["name"],
            verification_status=verification(current),
            changed=False,
            operation="none",
            changed_fields=[],
            spec=before,
            unlisted=True,
        )
        if prune:
            users = [
                p
                for p in monitoring.policies_using(api, project, current["name"])
                if monitoring.owner_of(p) != env
            ]
            if users:
                result["kept"] = "named by %s, which %s not this environment's" % (
                    ", ".join(p.get("displayName") or p["name"] for p in users),
                    "is" if len(users) == 1 else "are",
                )
            else:
                result.update(changed=True, operation="delete", changed_fields=sorted(before), spec={})
                if not check:
                    monitoring.delete(
                        api, current["name"], "notification channel %s (delete)" % name, force=True
                    )
                diffs.append(field_diff("notification_channel %s" % name, result, current, before, None))
        results.append(result)
    return dict(changed=any(r["changed"] for r in results), channels=results, diff=diffs)


def create_channel(api, project, env, body):
    def look(_lost=None):
        for found in monitoring.list_channels(api, project, env):
            if (
                found.get("displayName") == body["displayName"]
                and (found.get("userLabels") or {}).get(DIGEST) == body["userLabels"][DIGEST]
            ):
                return found
        return None

    return monitoring.create(
        api,
        project,
        "notificationChannels",
        body,
        "notification channel %s (create)" % body["displayName"],
        look,
    )


def update_channel(api, name, body, mask, after):
    def look(_lost=None):
        found = api.request("GET", monitoring.resource_url(name), "notification channel", allow_missing=True)
        if (
            found
            and channel_view(found)[DIGEST] == after[DIGEST]
            and channel_view(found)["enabled"] == after["enabled"]
        ):
            return found
        return None

    return monitoring.patch(
        api, name, body, mask, "notification channel %s (update)" % body["displayName"], look
    )


# ---- alert policies ------------------------------------------------------------------------------


def failed_filter(job):
    return (
        'resource.type="cloud_run_job" AND resource.labels.job_name="%s" AND metric.type="%s" AND '
        'metric.labels.result="failed"' % (job, FAILED_METRIC)
    )


def condition(entry):
    """The condition of a policy entry's kind (the issue's `failed`: executions failed after retries)."""
    return {
        "displayName": "%s: executions failed" % entry["job"],
        "conditionThreshold": {
            "filter": failed_filter(entry["job"]),
            "comparison": "COMPARISON_GT",
            "thresholdValue": 0,
            "duration": "60s",
            "aggregations": [{"alignmentPeriod": "300s", "perSeriesAligner": "ALIGN_SUM"}],
            "trigger": {"count": 1},
            "evaluationMissingData": "EVALUATION_MISSING_DATA_INACTIVE",
        },
    }


def condition_view(cond):
    """A condition normalised as the server echoes it (thresholdValue 0 omitted, trigger {count: 1})."""
    threshold = cond.get("conditionThreshold")
    if threshold is None:
        return {"display_name": cond.get("displayName", ""), "other": sorted(k for k in cond if k != "name")}
    aggregations = [
        {
            "alignment_period": a.get("alignmentPeriod", ""),
            "per_series_aligner": a.get("perSeriesAligner", ""),
            "cross_series_reducer": a.get("crossSeriesReducer", "REDUCE_NONE"),
        }
        for a in threshold.get("aggregations") or []
    ]
    return {
        "display_name": cond.get("displayName", ""),
        "filter": threshold.get("filter", ""),
        "comparison": threshold.get("comparison", ""),
        "threshold_value": float(threshold.get("thresholdValue") or 0),
        "duration": threshold.get("duration", ""),
        "aggregations": aggregations,
        "trigger_count": int((threshold.get("trigger") or {}).get("count") or 1),
        "evaluation_missing_data": threshold.get("evaluationMissingData", ""),
    }


def policy_view(policy, channel_names):
    """The compared fields of a policy; its channels by display name (`channel_names`: resource name ->
    display name of this environment's channels; another's by its resource name)."""
    return {
        "display_name": policy.get("displayName", ""),
        "documentation": (policy.get("documentation") or {}).get("content", ""),
        "severity": policy.get("severity", "SEVERITY_UNSPECIFIED"),
        "enabled": policy.get("enabled", True) is not False,
        "combiner": policy.get("combiner", "OR"),
        "conditions": [condition_view(c) for c in policy.get("conditions") or []],
        "notification_channels": sorted(
            channel_names.get(n, n) for n in policy.get("notificationChannels") or []
        ),
        "auto_close": (policy.get("alertStrategy") or {}).get("autoClose", ""),
        "user_labels": dict(sorted((policy.get("userLabels") or {}).items())),
    }


def policy_labels(entry, env):
    return dict(monitoring.owner_labels(env), cloudact_job=entry["shortcut"], cloudact_alert=entry["kind"])


def policy_body(entry, env, channels):
    return {
        "displayName": entry["name"],
        "documentation": {"content": entry["documentation"], "mimeType": "text/markdown"},
        "userLabels": policy_labels(entry, env),
        "conditions": [condition(entry)],
        "combiner": "OR",
        "enabled": bool(entry["enabled"]),
        "notificationChannels": channels,
        "alertStrategy": {"autoClose": AUTO_CLOSE},
        "severity": entry["severity"],
    }


# compared field -> the updateMask path (Monitoring's snake_case field paths)
POLICY_MASK = {
    "display_name": "display_name",
    "documentation": "documentation",
    "severity": "severity",
    "enabled": "enabled",
    "combiner": "combiner",
    "conditions": "conditions",
    "notification_channels": "notification_channels",
    "auto_close": "alert_strategy",
    "user_labels": "user_labels",
}


def converge_policies(api, entries, project, env, check, prune=False):
    """Converge this environment's policies to `entries`; {changed, policies, diff}. With `prune`, delete
    this environment's policies that are not listed."""
    check_owner(env, "alert policy")
    unique(entries, "policies")
    channels = by_name(monitoring.list_channels(api, project, env), "notification channels", env)
    names = {c["name"]: n for n, c in channels.items()}
    wanted_channels = sorted({c for e in entries for c in e["notification_channels"]})
    unknown = [c for c in wanted_channels if c not in channels]
    if unknown and not check:
        raise InputError(
            "policies name notification channel%s %s, which environment %s does not have (its channels: %s): "
            "converge the channels first (cloudact.gcp.notification_channels); nothing was changed"
            % ("s" * (len(unknown) > 1), ", ".join(unknown), env, ", ".join(sorted(channels)) or "none")
        )
    existing = by_name(monitoring.list_policies(api, project, env), "alert policies", env)
    results, diffs = [], []
    for entry in entries:
        current = existing.get(entry["name"])
        resources = [channels[c]["name"] for c in entry["notification_channels"] if c in channels]
        body = policy_body(entry, env, resources)
        after = policy_view(body, names)
        after["notification_channels"] = sorted(entry["notification_channels"])
        before = policy_view(current, names) if current else {}
        result = plan(entry["name"], current, before, after)
        result.update(job=entry["job"], kind=entry["kind"])
        if current:
            result["resource_name"] = current["name"]
        fields = result["changed_fields"]
        if not check and result["operation"] == "create":
            found = create_policy(api, project, env, body, after, names)
            result["resource_name"] = found.get("name", "")
        elif not check and result["operation"] == "update":
            if "conditions" in fields:
                # Each condition keeps its server-assigned name (omitting it would replace the condition).
                held = current.get("conditions") or []
                for index, sent in enumerate(body["conditions"][: len(held)]):
                    sent["name"] = held[index]["name"]
            mask = []
            for f in fields:
                if POLICY_MASK.get(f) and POLICY_MASK[f] not in mask:
                    mask.append(POLICY_MASK[f])
            update_policy(api, current["name"], body, mask, after, names)
        results.append(result)
        if result["changed"]:
            diffs.append(field_diff("alert_policy %s" % entry["name"], result, current, before, after))
    listed = {e["name"] for e in entries}
    for name in sorted(set(existing) - listed):
        current = existing[name]
        before = policy_view(current, names)
        result = plan(name, current, before, None if prune else before)
        result.update(resource_name=current["name"], unlisted=True)
        if prune and not check:
            monitoring.delete(api, current["name"], "alert policy %s (delete)" % name)
        results.append(result)
        if result["changed"]:
            diffs.append(field_diff("alert_policy %s" % name, result, current, before, None))
    return dict(changed=any(r["changed"] for r in results), policies=results, diff=diffs)


def create_policy(api, project, env, body, after, names):
    def look(_lost=None):
        for found in monitoring.list_policies(api, project, env):
            if found.get("displayName") == body["displayName"] and not changed_fields(
                policy_view(found, names), after
            ):
                return found
        return None

    return monitoring.create(
        api, project, "alertPolicies", body, "alert policy %s (create)" % body["displayName"], look
    )


def update_policy(api, name, body, mask, after, names):
    def look(_lost=None):
        found = api.request("GET", monitoring.resource_url(name), "alert policy", allow_missing=True)
        if found and not changed_fields(policy_view(found, names), after):
            return found
        return None

    return monitoring.patch(api, name, body, mask, "alert policy %s (update)" % body["displayName"], look)


# ---- incidents (make incidents) ------------------------------------------------------------------


def incidents_filter(env):
    """The alerts of this environment's policies (projects.alerts.list's filter language)."""
    check_owner(env, "incident")
    return 'policy.user_labels.%s="%s" AND policy.user_labels.%s="%s"' % (
        monitoring.MANAGED_BY,
        monitoring.TOOLKIT,
        monitoring.ENV_LABEL,
        env,
    )


def incident_rows(alerts):
    """[{state, opened, closed, job, policy, incident}] of projects.alerts entries, open ones first."""
    rows = []
    for alert in alerts:
        policy = alert.get("policy") or {}
        labels = policy.get("userLabels") or {}
        resource = ((alert.get("resource") or {}).get("labels")) or {}
        rows.append(
            {
                "state": alert.get("state", ""),
                "opened": alert.get("openTime", ""),
                "closed": alert.get("closeTime", "") or "-",
                "job": labels.get("cloudact_job") or resource.get("job_name") or "-",
                "policy": policy.get("displayName", ""),
                "incident": (alert.get("name") or "").rsplit("/", 1)[-1],
            }
        )
    rows.sort(key=lambda r: r["state"] != "OPEN")  # stable: newest first within each
    return rows


def incidents_report(api, project, env, limit=20):
    """(heading, lines): the open and recent incidents of this environment's policies, newest first."""
    alerts = monitoring.list_alerts(api, project, incidents_filter(env))
    rows = incident_rows(alerts)[:limit]
    opened = sum(1 for r in rows if r["state"] == "OPEN")
    heading = "incidents of %s (%s): %d open, %d shown (newest first, open ones on top)" % (
        env,
        project,
        opened,
        len(rows),
    )
    if not rows:
        return heading, ["no incident: no alert policy of %s has fired" % env]
    columns = ("state", "opened", "closed", "job", "policy", "incident")
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns).rstrip() for r in rows]
    return heading, lines
