"""Cloud Monitoring's alertPolicies, notificationChannels and notificationChannelDescriptors
(create, get, list with filter/orderBy/pages, patch with updateMask, delete)."""

from __future__ import annotations

import copy
import re
from typing import Any

from localcloud.services import monitoring_filter as flt
from localcloud.services.monitoring_base import MonitoringState, numeric_id, page
from localcloud.services.monitoring_validate import PolicyChecker, bad, user_labels
from localcloud.services.run_errors import ApiError

CHANNEL_TYPES: dict[str, dict[str, Any]] = {
    "email": {
        "displayName": "Email",
        "description": "A channel that sends an email to one address.",
        "labels": [("email_address", "An address to send email.")],
    },
    "webhook_tokenauth": {
        "displayName": "Webhooks",
        "description": "A channel that posts the incident as JSON to a URL; a token, if any, is part of the "
        "URL.",
        "labels": [("url", "The public URL to which requests will be sent.")],
    },
    "webhook_basicauth": {
        "displayName": "Webhooks with basic authentication",
        "description": "A channel that posts the incident as JSON to a URL with HTTP basic authentication.",
        "labels": [
            ("url", "The public URL to which requests will be sent."),
            ("username", "The username for basic authentication."),
            ("password", "The password for basic authentication."),
        ],
    },
    "pubsub": {
        "displayName": "Pub/Sub",
        "description": "A channel that publishes the incident as JSON to a Pub/Sub topic.",
        "labels": [("topic", "The topic to publish to: projects/[PROJECT_ID]/topics/[TOPIC].")],
    },
    "slack": {
        "displayName": "Slack",
        "description": "A channel that posts to a Slack channel.",
        "labels": [
            ("channel_name", "The Slack channel, e.g. #alerts."),
            ("auth_token", "The Slack OAuth token."),
        ],
    },
}
# Labels read back obfuscated (Terraform's google_monitoring_notification_channel `sensitive_labels`):
# all but the last 4 characters are "*", as Google returns a Slack channel's auth_token.
SENSITIVE = {("slack", "auth_token"), ("webhook_basicauth", "password")}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL = re.compile(r"^https?://[^/\s?#]+(?:[/?#]\S*)?$")
_TOPIC = re.compile(r"^projects/[^/]+/topics/[A-Za-z][\w.~+%-]{2,254}$")
_MASKED = re.compile(r"^\*+[^*]{0,4}$")
POLICY_FIELDS = {
    "display_name": "displayName",
    "documentation": "documentation",
    "user_labels": "userLabels",
    "conditions": "conditions",
    "combiner": "combiner",
    "enabled": "enabled",
    "notification_channels": "notificationChannels",
    "alert_strategy": "alertStrategy",
    "severity": "severity",
}
CHANNEL_FIELDS = {"display_name": "displayName", "description": "description", "labels": "labels",
                  "user_labels": "userLabels", "enabled": "enabled"}  # fmt: skip


def obfuscate(value: str) -> str:
    return "*" * max(0, len(value) - 4) + value[-4:]


def _camel(path: str) -> list[str]:
    return [flt.snake_to_camel(part) if "_" in part else part for part in path.split(".")]


def _apply_mask(
    current: dict[str, Any], body: dict[str, Any], mask: list[str], fields: dict[str, str], what: str
):
    merged = copy.deepcopy(current)
    for path in mask:
        head, _, rest = path.partition(".")
        if head in ("user_label", "userLabel") and rest:  # user_label.<key>: one entry of user_labels
            value = (body.get("userLabels") or {}).get(rest)
            labels = merged.setdefault("userLabels", {})
            labels.pop(rest, None) if value is None else labels.__setitem__(rest, value)
            continue
        top = fields.get(head) or (head if head in fields.values() else None)
        if top is None:
            raise bad(
                "update_mask", f"{path!r} is not a field of the {what} that can be updated.", ",".join(mask)
            )
        parts = [top, *(_camel(rest) if rest else [])]
        source: Any = body
        for part in parts:
            source = source.get(part) if isinstance(source, dict) else None
        target = merged
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        if source is None:
            target.pop(parts[-1], None)
        else:
            target[parts[-1]] = copy.deepcopy(source)
    return merged


def _listed(items: list[dict], request, key: str) -> dict[str, Any]:
    """A list answer: `filter` and `orderBy` applied (by name first), a page of up to 1,000, totalSize."""
    items = flt.select(items, request.args.get("filter", ""))
    items = flt.order(sorted(items, key=lambda r: r["name"]), request.args.get("orderBy", ""))
    chunk, token = page(items, request.args, default=1000, maximum=1000)
    out: dict[str, Any] = {key: chunk} if chunk else {}
    if token:
        out["nextPageToken"] = token
    out["totalSize"] = len(items)
    return out


def _mask(request) -> list[str]:
    return [p.strip() for p in (request.args.get("updateMask") or "").split(",") if p.strip()]


class PoliciesApi(MonitoringState):
    # ---- alert policies -------------------------------------------------------------------------------

    def _checker(self, project: str) -> PolicyChecker:
        names = {name for name in self._state["channels"] if name.startswith(f"projects/{project}/")}
        return PolicyChecker(project, self.descriptor, names)  # type: ignore[attr-defined]

    def _policy(self, name: str) -> dict[str, Any]:
        found = self._state["policies"].get(name)
        if found is None:
            raise ApiError(404, f"Policy {name} does not exist.", "NOT_FOUND")
        return found

    def _name_conditions(
        self, name: str, policy: dict[str, Any], given: list[dict[str, Any]], old: dict[str, Any] | None
    ):
        known = {c["name"] for c in (old or {}).get("conditions", [])}
        for i, (cond, raw) in enumerate(zip(policy["conditions"], given, strict=True)):
            wanted = raw.get("name") if old is not None else None
            if wanted and wanted not in known:
                raise bad(f"alert_policy.conditions[{i}].name", f"not a condition of {name}.", wanted)
            cond_name = wanted or f"{name}/conditions/{numeric_id(20)}"
            policy["conditions"][i] = {"name": cond_name, **cond}

    def _create_policy(self, request, body, project, principal):
        with self._lock:
            policy = self._checker(project).check(body)
            name = f"projects/{project}/alertPolicies/{numeric_id(20)}"
            self._name_conditions(name, policy, body.get("conditions") or [], None)
            record = self._record(principal)
            stored = {"name": name, **policy, "creationRecord": record, "mutationRecord": record}
            self._state["policies"][name] = stored
            self._save()
            return copy.deepcopy(stored)

    def _get_policy(self, request, body, project, policy):
        with self._lock:
            return copy.deepcopy(self._policy(f"projects/{project}/alertPolicies/{policy}"))

    def _list_policies(self, request, body, project):
        with self._lock:
            items = [
                copy.deepcopy(p)
                for n, p in self._state["policies"].items()
                if n.startswith(f"projects/{project}/")
            ]
        return _listed(items, request, "alertPolicies")

    def _patch_policy(self, request, body, project, policy, principal):
        name = f"projects/{project}/alertPolicies/{policy}"
        if body.get("name") not in (None, "", name):
            raise bad("alert_policy.name", f"does not match the URL ({name}).", body["name"])
        mask = _mask(request)
        with self._lock:
            current = self._policy(name)
            if mask:
                merged = _apply_mask(current, body, mask, POLICY_FIELDS, "alert policy")
                given = merged.get("conditions") or []
                if not any(p.split(".")[0] == "conditions" for p in mask):
                    given = current.get("conditions", [])
            else:
                merged, given = body, body.get("conditions") or []
            checked = self._checker(project).check(merged)
            self._name_conditions(name, checked, given, current)
            updated = {
                "name": name,
                **checked,
                "creationRecord": current["creationRecord"],
                "mutationRecord": self._record(principal),
            }
            old = {c["name"]: c for c in current.get("conditions", [])}
            new = {c["name"]: c for c in updated["conditions"]}
            changed = [n for n, c in old.items() if new.get(n) != c]
            if changed or not updated["enabled"]:
                self._cancel_incidents(name, None if not updated["enabled"] else changed)  # type: ignore[attr-defined]
            self._state["policies"][name] = updated
            self._save()
            return copy.deepcopy(updated)

    def _delete_policy(self, request, body, project, policy):
        name = f"projects/{project}/alertPolicies/{policy}"
        with self._lock:
            self._policy(name)
            self._cancel_incidents(name, None)  # type: ignore[attr-defined]
            del self._state["policies"][name]
            self._save()
        return {}

    # ---- notification channels ------------------------------------------------------------------------

    def _channel(self, name: str) -> dict[str, Any]:
        found = self._state["channels"].get(name)
        if found is None:
            raise ApiError(404, f"Notification channel {name} does not exist.", "NOT_FOUND")
        return found

    @staticmethod
    def _channel_json(channel: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(channel)
        for key, value in out.get("labels", {}).items():
            if (out["type"], key) in SENSITIVE:
                out["labels"][key] = obfuscate(value)
        return out

    def _check_channel(self, body: dict[str, Any], project: str) -> dict[str, Any]:
        kind = body.get("type") or ""
        spec = CHANNEL_TYPES.get(kind)
        if spec is None:
            raise bad(
                "notification_channel.type",
                f"Unsupported notification channel type; localcloud serves {', '.join(CHANNEL_TYPES)}.",
                kind,
            )
        labels = {k: str(v) for k, v in (body.get("labels") or {}).items()}
        wanted = [key for key, _ in spec["labels"]]
        for key in labels:
            if key not in wanted:
                raise bad(
                    "notification_channel.labels",
                    f"{key!r} is not a label of {kind} channels ({', '.join(wanted)}).",
                )
        for key in wanted:
            if not labels.get(key):
                raise bad(
                    "notification_channel.labels", f"The label {key!r} is required for {kind} channels."
                )
            if (kind, key) in SENSITIVE and _MASKED.match(labels[key]):
                raise bad(
                    f"notification_channel.labels[{key}]",
                    "the obfuscated value a read returns cannot be written back; send the secret itself.",
                )
        checks = {"email_address": _EMAIL, "url": _URL, "topic": _TOPIC}
        for key, pattern in checks.items():
            if key in labels and not pattern.match(labels[key]):
                raise bad(
                    f"notification_channel.labels[{key}]",
                    f"not a valid {key.replace('_', ' ')}.",
                    labels[key],
                )
        out: dict[str, Any] = {"type": kind}
        for key, snake, limit in (("displayName", "display_name", 512), ("description", "description", 1024)):
            if body.get(key):
                if len(body[key]) > limit:
                    raise bad(f"notification_channel.{snake}", f"at most {limit} characters.")
                out[key] = body[key]
        out["labels"] = labels
        ulabels = user_labels(body.get("userLabels"), "notification_channel.user_labels")
        if ulabels:
            out["userLabels"] = ulabels
        out["enabled"] = body.get("enabled", True) is not False
        return out

    def _create_channel(self, request, body, project, principal):
        channel = self._check_channel(body, project)
        with self._lock:
            name = f"projects/{project}/notificationChannels/{numeric_id(19)}"
            record = self._record(principal)
            stored = {"name": name, **channel, "creationRecord": record, "mutationRecords": [record]}
            self._state["channels"][name] = stored
            self._save()
            return self._channel_json(stored)

    def _get_channel(self, request, body, project, channel):
        with self._lock:
            return self._channel_json(self._channel(f"projects/{project}/notificationChannels/{channel}"))

    def _list_channels(self, request, body, project):
        with self._lock:
            items = [
                self._channel_json(c)
                for n, c in self._state["channels"].items()
                if n.startswith(f"projects/{project}/")
            ]
        return _listed(items, request, "notificationChannels")

    def _patch_channel(self, request, body, project, channel, principal):
        name = f"projects/{project}/notificationChannels/{channel}"
        if body.get("name") not in (None, "", name):
            raise bad("notification_channel.name", f"does not match the URL ({name}).", body["name"])
        mask = _mask(request) or [k for k in CHANNEL_FIELDS if CHANNEL_FIELDS[k] in body]
        with self._lock:
            current = self._channel(name)
            if body.get("type") not in (None, "", current["type"]):
                raise bad("notification_channel.type", "The type of a channel cannot change.", body["type"])
            merged = _apply_mask(current, body, mask, CHANNEL_FIELDS, "notification channel")
            merged["type"] = current["type"]
            checked = self._check_channel(merged, project)
            records = [*current.get("mutationRecords", []), self._record(principal)]
            updated = {
                "name": name,
                **checked,
                "creationRecord": current["creationRecord"],
                "mutationRecords": records,
            }
            self._state["channels"][name] = updated
            self._save()
            return self._channel_json(updated)

    def _delete_channel(self, request, body, project, channel, principal):
        name = f"projects/{project}/notificationChannels/{channel}"
        force = request.args.get("force", "").lower() in ("true", "1")
        with self._lock:
            self._channel(name)
            users = [p for p in self._state["policies"].values() if name in p.get("notificationChannels", [])]
            if users and not force:
                raise ApiError(
                    400,
                    f"Notification channel {name} is used by the alerting policies "
                    f"{', '.join(sorted(p['name'] for p in users))}; delete it with force=true to remove it "
                    "from them.",
                    "FAILED_PRECONDITION",
                )
            for policy in users:
                policy["notificationChannels"].remove(name)
                if not policy["notificationChannels"]:
                    del policy["notificationChannels"]
                for item in (policy.get("alertStrategy") or {}).get("notificationChannelStrategy", []):
                    if name in item.get("notificationChannelNames", []):
                        item["notificationChannelNames"].remove(name)
                policy["mutationRecord"] = self._record(principal)
            del self._state["channels"][name]
            self._save()
        return {}

    # ---- notification channel descriptors ---------------------------------------------------------------

    @staticmethod
    def _channel_descriptor(project: str, kind: str) -> dict[str, Any]:
        spec = CHANNEL_TYPES[kind]
        return {
            "name": f"projects/{project}/notificationChannelDescriptors/{kind}",
            "type": kind,
            "displayName": spec["displayName"],
            "description": spec["description"],
            "labels": [{"key": key, "description": text} for key, text in spec["labels"]],
            "launchStage": "GA",
        }

    def _list_channel_descriptors(self, request, body, project):
        items = [self._channel_descriptor(project, kind) for kind in sorted(CHANNEL_TYPES)]
        chunk, token = page(items, request.args, default=100, maximum=1000)
        out: dict[str, Any] = {"channelDescriptors": chunk}
        if token:
            out["nextPageToken"] = token
        return out

    def _get_channel_descriptor(self, request, body, project, ctype):
        if ctype not in CHANNEL_TYPES:
            raise ApiError(404, f"Notification channel descriptor {ctype} does not exist.", "NOT_FOUND")
        return self._channel_descriptor(project, ctype)
