"""An alert policy checked as Cloud Monitoring checks it, and normalised as it echoes it back.

The rules (each a 400 INVALID_ARGUMENT naming the field, Google's `Field <path> had an invalid value`
form; the metric of a filter that does not exist is Google's 404): 1 to 6 conditions, each with a display
name and exactly one condition type; a Monitoring Query Language, PromQL, SQL or log-match condition alone
in its policy; a log-match policy needs `alertStrategy.notificationRateLimit`; a threshold or absence
filter names an existing metric type; aggregations as the Aggregation reference says for alerting (an
alignment period of at least 60 s, a multiple of 60 s, at most 90,000 s; the aligner fits the metric);
a threshold `comparison` of COMPARISON_GT or COMPARISON_LT; a threshold `duration` a multiple of 60 s; an
absence `duration` of 120 s to 23h30m, a multiple of 60 s; alignment period + duration at most 25 h;
`evaluationMissingData` only with a duration of at least 60 s; `autoClose` at least 30 minutes; a
`renotifyInterval` of 30 minutes to 24 hours; user labels as Google's label rules; documentation in
text/markdown of at most 8,192 characters; every notification channel one of the project's.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from localcloud.services import monitoring_aggregate as agg_mod
from localcloud.services import monitoring_filter as flt
from localcloud.services.monitoring_base import duration_seconds, duration_text
from localcloud.services.run_errors import ApiError

KINDS = (
    "conditionThreshold",
    "conditionAbsent",
    "conditionMatchedLog",
    "conditionMonitoringQueryLanguage",
    "conditionPrometheusQueryLanguage",
    "conditionSql",
)
ALONE = KINDS[2:]  # a policy with one of these has only that condition
SNAKE = {k: re.sub(r"([A-Z])", r"_\1", k).lower() for k in (*KINDS, "alertStrategy", "notificationRateLimit")}
COMBINERS = ("COMBINE_UNSPECIFIED", "AND", "OR", "AND_WITH_MATCHING_RESOURCE")
SEVERITIES = ("SEVERITY_UNSPECIFIED", "CRITICAL", "ERROR", "WARNING")
MISSING = (
    "EVALUATION_MISSING_DATA_UNSPECIFIED",
    "EVALUATION_MISSING_DATA_INACTIVE",
    "EVALUATION_MISSING_DATA_ACTIVE",
    "EVALUATION_MISSING_DATA_NO_OP",
)
MAX_ALERT_PERIOD_S = 90_000
MAX_WINDOW_S = 25 * 3600
MAX_ABSENT_S = 23 * 3600 + 1800
_LABEL = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


def bad(field: str, reason: str, value: Any = None) -> ApiError:
    shown = f' of "{value}"' if value is not None else ""
    return ApiError(400, f"Field {field} had an invalid value{shown}: {reason}", "INVALID_ARGUMENT")


def _enum(value: Any, allowed: tuple[str, ...], field: str, type_name: str) -> str:
    if value not in allowed:
        raise ApiError(
            400,
            f"Invalid value at '{field}' (type.googleapis.com/google.monitoring.v3.{type_name}), \"{value}\"",
        )
    return value


def user_labels(labels: Any, field: str) -> dict[str, str]:
    if not labels:
        return {}
    if len(labels) > 64:
        raise bad(field, "at most 64 user labels are allowed.")
    for key, value in labels.items():
        if not _LABEL.match(str(key)):
            raise bad(
                field,
                f"the key {key!r}: keys start with a lower-case letter and hold only lower-case letters, "
                "digits, "
                "underscores and dashes (at most 63 characters).",
            )
        if not isinstance(value, str) or not _LABEL_VALUE.match(value):
            raise bad(
                field,
                f"the value {value!r} of {key!r}: values hold only lower-case letters, digits, underscores "
                "and "
                "dashes (at most 63 characters).",
            )
    return dict(labels)


def _seconds(value: Any, field: str) -> float:
    return duration_seconds(value, field)


class PolicyChecker:
    """Checks one policy body of a project. `descriptor(project, type)` finds a metric's descriptor;
    `channels` are the names of the project's notification channels."""

    def __init__(self, project: str, descriptor, channels: set[str]):
        self.project = project
        self.descriptor = descriptor
        self.channels = channels

    def check(self, body: dict[str, Any]) -> dict[str, Any]:
        """The policy as Google stores it (without name, ids and records, which the caller sets)."""
        policy: dict[str, Any] = {}
        name = body.get("displayName")
        if not name:
            raise bad("alert_policy.display_name", "A display name is required.")
        if len(name) > 512:
            raise bad("alert_policy.display_name", "at most 512 characters.")
        policy["displayName"] = name
        if body.get("documentation"):
            policy["documentation"] = self._documentation(body["documentation"])
        labels = user_labels(body.get("userLabels"), "alert_policy.user_labels")
        if labels:
            policy["userLabels"] = labels
        conditions = body.get("conditions") or []
        if not conditions:
            raise bad("alert_policy.conditions", "A policy must have at least one condition.")
        if len(conditions) > 6:
            raise bad(
                "alert_policy.conditions",
                f"A policy can have at most 6 conditions; it has {len(conditions)}.",
            )
        policy["conditions"] = [
            self._condition(c, f"alert_policy.conditions[{i}]") for i, c in enumerate(conditions)
        ]
        kinds = [next(k for k in KINDS if k in c) for c in policy["conditions"]]
        for kind in kinds:
            if kind in ALONE and len(kinds) > 1:
                raise bad(
                    "alert_policy.conditions",
                    f"A policy with a {SNAKE[kind]} condition must have only that one condition.",
                )
        combiner = _enum(
            body.get("combiner") or "COMBINE_UNSPECIFIED",
            COMBINERS,
            "alert_policy.combiner",
            "AlertPolicy.ConditionCombinerType",
        )
        if len(kinds) > 1 and combiner == "COMBINE_UNSPECIFIED":
            raise bad(
                "alert_policy.combiner",
                "A combiner (AND, OR, AND_WITH_MATCHING_RESOURCE) is required for a policy with more than "
                "one condition.",
                combiner,
            )
        if combiner == "COMBINE_UNSPECIFIED" and kinds[0] not in ALONE:
            combiner = "OR"
        if combiner != "COMBINE_UNSPECIFIED":
            policy["combiner"] = combiner
        policy["enabled"] = body.get("enabled", True) is not False
        channels = list(body.get("notificationChannels") or [])
        for i, channel in enumerate(channels):
            if channel not in self.channels:
                raise bad(
                    f"alert_policy.notification_channels[{i}]",
                    f"The notification channel does not exist in projects/{self.project}.",
                    channel,
                )
        if channels:
            policy["notificationChannels"] = channels
        strategy = self._strategy(body.get("alertStrategy") or {}, channels)
        if "conditionMatchedLog" in kinds and "notificationRateLimit" not in strategy:
            raise bad(
                "alert_policy.alert_strategy.notification_rate_limit",
                "A notification rate limit is required for a policy with a log match condition.",
            )
        if strategy:
            policy["alertStrategy"] = strategy
        severity = _enum(
            body.get("severity") or "SEVERITY_UNSPECIFIED",
            SEVERITIES,
            "alert_policy.severity",
            "AlertPolicy.Severity",
        )
        if severity != "SEVERITY_UNSPECIFIED":
            policy["severity"] = severity
        return policy

    @staticmethod
    def _documentation(doc: dict[str, Any]) -> dict[str, Any]:
        out = {}
        content = doc.get("content") or ""
        if len(content) > 8192 or len(content.encode()) > 10240:
            raise bad(
                "alert_policy.documentation.content", "at most 8,192 characters (10,240 bytes in UTF-8)."
            )
        mime = doc.get("mimeType") or "text/markdown"
        if mime != "text/markdown":
            raise bad("alert_policy.documentation.mime_type", 'Only "text/markdown" is supported.', mime)
        if content:
            out["content"] = content
        out["mimeType"] = mime
        if doc.get("subject"):
            if len(doc["subject"].encode()) > 10240:
                raise bad("alert_policy.documentation.subject", "at most 10,240 bytes.")
            out["subject"] = doc["subject"]
        links = doc.get("links") or []
        if len(links) > 3:
            raise bad("alert_policy.documentation.links", "at most 3 links.")
        if links:
            out["links"] = links
        return out

    def _strategy(self, strategy: dict[str, Any], channels: list[str]) -> dict[str, Any]:
        out = copy.deepcopy(strategy)
        field = "alert_policy.alert_strategy"
        if "autoClose" in out:
            seconds = _seconds(out["autoClose"], f"{field}.auto_close")
            if seconds < 1800:
                raise bad(
                    f"{field}.auto_close",
                    "The auto-close duration must be at least 30 minutes.",
                    out["autoClose"],
                )
            out["autoClose"] = duration_text(seconds)
        limit = out.get("notificationRateLimit")
        if limit is not None:
            if "period" in limit:
                limit["period"] = duration_text(
                    _seconds(limit["period"], f"{field}.notification_rate_limit.period")
                )
        for i, item in enumerate(out.get("notificationChannelStrategy") or []):
            where = f"{field}.notification_channel_strategy[{i}]"
            if "renotifyInterval" in item:
                seconds = _seconds(item["renotifyInterval"], f"{where}.renotify_interval")
                if not 1800 <= seconds <= 86400:
                    raise bad(
                        f"{where}.renotify_interval",
                        "The value must be between 30 minutes and 24 hours.",
                        item["renotifyInterval"],
                    )
                item["renotifyInterval"] = duration_text(seconds)
            for name in item.get("notificationChannelNames") or []:
                if name not in channels:
                    raise bad(
                        f"{where}.notification_channel_names",
                        "The channel is not one of the policy's notification channels.",
                        name,
                    )
        return {k: v for k, v in out.items() if v not in (None, {}, [])}

    def _condition(self, cond: dict[str, Any], field: str) -> dict[str, Any]:
        present = [k for k in KINDS if cond.get(k) is not None]
        if len(present) != 1:
            raise bad(
                field, f"Exactly one condition type ({', '.join(SNAKE[k] for k in KINDS)}) must be set."
            )
        if not cond.get("displayName"):
            raise bad(f"{field}.display_name", "A display name is required.")
        kind = present[0]
        out: dict[str, Any] = {"displayName": cond["displayName"]}
        where = f"{field}.{SNAKE[kind]}"
        spec = copy.deepcopy(cond[kind])
        if kind in ("conditionThreshold", "conditionAbsent"):
            out[kind] = self._metric_condition(kind, spec, where)
        elif kind == "conditionMatchedLog":
            if not spec.get("filter"):
                raise bad(f"{where}.filter", "A logs filter is required.")
            out[kind] = spec
        else:
            if not spec.get("query"):
                raise bad(f"{where}.query", "A query is required.")
            for key in ("duration", "evaluationInterval"):
                if key in spec:
                    spec[key] = duration_text(_seconds(spec[key], f"{where}.{key}"))
            out[kind] = spec
        return out

    def _metric_condition(self, kind: str, spec: dict[str, Any], where: str) -> dict[str, Any]:
        text = spec.get("filter") or ""
        if not text:
            raise bad(f"{where}.filter", "A filter is required.")
        if len(text) > 2048:
            raise bad(f"{where}.filter", "The filter must not exceed 2048 characters.")
        tree = flt.parse(text, f"{where}.filter")
        flt.check_series_fields(tree, text)
        metric_type = flt.exact(tree, "metric.type")
        if not metric_type:
            raise bad(f"{where}.filter", "The filter must specify a metric type.", text)
        descriptor = self.descriptor(self.project, metric_type)
        if descriptor is None:
            raise ApiError(
                404,
                f'Cannot find metric(s) that match type = "{metric_type}". If a metric was created '
                "recently, it "
                "could take up to 10 minutes to become available. Please try again soon.",
                "NOT_FOUND",
            )
        period = 0
        for i, spec_agg in enumerate(spec.get("aggregations") or []):
            field = f"{where}.aggregations[{i}]"
            agg = agg_mod.aggregation(
                spec_agg,
                field,
                descriptor["metricKind"] if i == 0 else None,
                descriptor["valueType"] if i == 0 else None,
            )
            if agg.period_s:
                if agg.period_s % 60:
                    raise bad(
                        f"{field}.alignment_period",
                        "The alignment period must be a multiple of 60 seconds.",
                        spec_agg["alignmentPeriod"],
                    )
                if agg.period_s > MAX_ALERT_PERIOD_S:
                    raise bad(
                        f"{field}.alignment_period",
                        f"The alignment period of an alerting policy must be at most {MAX_ALERT_PERIOD_S} "
                        "seconds.",
                        spec_agg["alignmentPeriod"],
                    )
                spec_agg["alignmentPeriod"] = duration_text(agg.period_s)
                period = period or agg.period_s
        duration = _seconds(spec.get("duration") or "0s", f"{where}.duration")
        if duration % 60:
            raise bad(
                f"{where}.duration", "The duration must be a multiple of 60 seconds.", spec.get("duration")
            )
        if kind == "conditionAbsent":
            if duration < 120:
                raise bad(
                    f"{where}.duration",
                    "The duration of an absence condition must be at least 120 seconds.",
                    spec.get("duration", "0s"),
                )
            if duration > MAX_ABSENT_S:
                raise bad(
                    f"{where}.duration",
                    "The duration of an absence condition must be at most 23h30m (84600s).",
                    spec.get("duration"),
                )
        if period + duration > MAX_WINDOW_S:
            raise bad(where, "The alignment period plus the duration must be at most 25 hours.")
        spec["duration"] = duration_text(duration)
        if kind == "conditionThreshold":
            comparison = spec.get("comparison") or "COMPARISON_UNSPECIFIED"
            if comparison not in ("COMPARISON_GT", "COMPARISON_LT"):
                raise bad(
                    f"{where}.comparison", "Only COMPARISON_LT and COMPARISON_GT are supported.", comparison
                )
            missing = _enum(
                spec.get("evaluationMissingData") or "EVALUATION_MISSING_DATA_UNSPECIFIED",
                MISSING,
                f"{where}.evaluation_missing_data",
                "AlertPolicy.Condition.EvaluationMissingData",
            )
            if missing != "EVALUATION_MISSING_DATA_UNSPECIFIED" and duration < 60:
                raise bad(
                    f"{where}.evaluation_missing_data",
                    "evaluation_missing_data can only be set when the duration is at least 60 seconds.",
                    missing,
                )
            if spec.get("thresholdValue") in (0, 0.0):
                spec.pop("thresholdValue")
        trigger = spec.get("trigger") or {}
        if "count" in trigger and "percent" in trigger:
            raise bad(f"{where}.trigger", "Only one of count and percent may be set.")
        if trigger.get("count", 0) < 0 or not 0 <= trigger.get("percent", 0) <= 100:
            raise bad(f"{where}.trigger", "count must be positive and percent between 0 and 100.")
        if not trigger.get("count") and not trigger.get("percent"):
            spec["trigger"] = {"count": 1}
        return spec
