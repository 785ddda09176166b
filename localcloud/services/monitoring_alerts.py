"""Cloud Monitoring's alerting on localcloud's clock: the evaluator, its incidents, and `projects.alerts`.

Every 60 s of the emulated clock (at each minute boundary; after the clock jumps, each missed boundary of
the last 25 hours in turn), every enabled policy of every project is evaluated at that instant `t`, over
the points readable at `t` (each metric's ingest delay has passed):
- a threshold condition aligns each series matching its filter with its first aggregation over
  `(t - alignmentPeriod, t]` (without an aligner: the newest point of the last 5 minutes), reduces across
  series if asked, and compares the value with `thresholdValue` (COMPARISON_GT: above, COMPARISON_LT:
  below). A series that violates at every evaluation for `duration` (0: once) fails. A series with no
  value at `t` that was seen before is missing data: EVALUATION_MISSING_DATA_INACTIVE counts it as not
  violating, _ACTIVE as violating, _NO_OP and unspecified leave it as it was (an open incident stays open
  until autoClose).
- an absence condition fails for a series seen in the last 25 hours whose newest readable point ended at
  least `duration` before `t`.
- the condition is met when at least `trigger.count` series (or `trigger.percent` of them) fail; with the
  AND combiners every condition must be met (each condition's series then open their own incidents).
Each failing series (when there is no cross-series reducer: each resource and metric labels) opens its
own incident, and it closes when the series stops failing, or when it has had no data for
`alertStrategy.autoClose` (default 7 days). Changing or deleting a condition, deleting or disabling its
policy closes its open incidents (observed value: Google's "Incident cancelled because the alert policy
condition was deleted or modified while incident was active."). Openings and closings are notified
(localcloud/services/monitoring_notify.py). Incidents are served as `projects.alerts` (get, list).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from localcloud.clock import rfc3339
from localcloud.services import monitoring_aggregate as agg_mod
from localcloud.services import monitoring_filter as flt
from localcloud.services.monitoring_base import MonitoringState, from_micros, incident_id, micros, page
from localcloud.services.monitoring_store import ingest_delay_us
from localcloud.services.run_errors import ApiError

EVAL_US = 60_000_000
CATCH_UP_US = 25 * 3600 * 1_000_000
RAW_WINDOW_US = 300_000_000
DEFAULT_AUTO_CLOSE_US = 7 * 86400 * 1_000_000
CANCELLED = (
    "Incident cancelled because the alert policy condition was deleted or modified while incident was active."
)
INCIDENTS_KEEP = 10_000
NO_DATA = (
    "No data"  # the observed value of an incident closed while its series has no data (localcloud's word)
)


def _series_key(series: dict[str, Any]) -> str:
    return json.dumps(
        [series["metric"]["type"], sorted(series["metric"].get("labels", {}).items()),
         series["resource"]["type"], sorted(series["resource"].get("labels", {}).items())]
    )  # fmt: skip


def _labels_text(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"


class Alerting(MonitoringState):
    # ---- the loop (called by the service's ticker) ---------------------------------------------------

    def _evaluate_until(self, now_us: int) -> None:
        target = now_us - now_us % EVAL_US
        with self._lock:
            cursor = self._state.get("cursor_us")
            if cursor is None or target < cursor - EVAL_US:  # first run, or the clock went back
                cursor = target - EVAL_US
        t = max(cursor + EVAL_US, target - CATCH_UP_US)
        while t <= target:  # each instant under the lock, so that requests interleave with a long catch-up
            with self._lock:
                self._sample_running(t)  # type: ignore[attr-defined]
                changed = self._evaluate_at(t)
                self._state["cursor_us"] = t
                if changed:
                    self._save()
            t += EVAL_US

    def _evaluate_at(self, t: int) -> bool:
        changed = False
        for policy in list(self._state["policies"].values()):
            if policy.get("enabled", True):
                changed |= self._evaluate_policy(policy, t)
        return changed

    def _evaluate_policy(self, policy: dict[str, Any], t: int) -> bool:
        project = policy["name"].split("/")[1]
        states = self._state["eval"].setdefault(policy["name"], {})
        verdicts = []
        for cond in policy["conditions"]:
            kind = (
                "conditionThreshold"
                if "conditionThreshold" in cond
                else "conditionAbsent"
                if "conditionAbsent" in cond
                else ""
            )
            if not kind:
                continue  # MQL, PromQL, SQL and log-match conditions are stored, not evaluated
            verdicts.append(
                (cond, self._condition_verdict(project, cond, kind, states.setdefault(cond["name"], {}), t))
            )
        if not verdicts:
            return False
        all_met = all(met for _, (met, _) in verdicts)
        combiner = policy.get("combiner", "OR")
        changed = False
        for cond, (met, failing) in verdicts:
            allowed = met and (all_met or combiner == "OR")
            changed |= self._apply(policy, cond, failing if allowed else {}, states[cond["name"]], t)
        return changed

    def _condition_verdict(self, project, cond, kind, state, t) -> tuple[bool, dict[str, dict[str, Any]]]:
        """(met, {series key: {"series", "value"}} of the failing series) of a condition at t."""
        spec = cond[kind]
        tree = flt.parse(spec["filter"])
        metric_type = flt.exact(tree, "metric.type") or ""
        descriptor = self.descriptor(project, metric_type)  # type: ignore[attr-defined]
        if descriptor is None:
            return False, {}
        aggs = spec.get("aggregations") or []
        agg = agg_mod.aggregation(aggs[0], "aggregation") if aggs else agg_mod.Aggregation()
        seen = state.setdefault("seen", {})
        if kind == "conditionAbsent":
            return self._absence(project, tree, metric_type, agg, spec, seen, t)
        window = agg.period_s * 1_000_000 if agg.aligner != "ALIGN_NONE" else RAW_WINDOW_US
        found = self.read_series(project, tree, metric_type, agg, t - window, t, t)  # type: ignore[attr-defined]
        duration_us = int(float(spec.get("duration", "0s").rstrip("s")) * 1_000_000)
        missing = spec.get("evaluationMissingData", "EVALUATION_MISSING_DATA_UNSPECIFIED")
        threshold = float(spec.get("thresholdValue", 0))
        greater = spec.get("comparison") == "COMPARISON_GT"
        current: dict[str, dict[str, Any]] = {}
        for series in found:
            if series["points"]:
                current[_series_key(series)] = series
        failing: dict[str, dict[str, Any]] = {}
        for key in set(seen) | set(current):
            info = seen.setdefault(key, {})
            series = current.get(key)
            if series is not None:
                value = float(series["points"][0][2])
                violating: bool | None = value > threshold if greater else value < threshold
                info.update(series=_identity(series), value=value, last_data_us=t)
            elif missing == "EVALUATION_MISSING_DATA_INACTIVE":
                violating = False
            elif missing == "EVALUATION_MISSING_DATA_ACTIVE":
                violating = True
            else:
                violating = None  # no data: nothing changes
            if violating is False:
                info.pop("since_us", None)
            elif violating:
                info.setdefault("since_us", t)
            if "since_us" in info and t - info["since_us"] >= duration_us:
                failing[key] = info
            if series is None and t - info.get("last_data_us", t) > CATCH_UP_US:
                seen.pop(key)  # not seen for a day: forgotten
        return self._trigger(spec, failing, len(seen)), failing

    def _absence(self, project, tree, metric_type, agg, spec, seen, t):
        duration_us = int(float(spec["duration"].rstrip("s")) * 1_000_000)
        found = self.read_series(project, tree, metric_type, agg_mod.Aggregation(), t - CATCH_UP_US, t, t)  # type: ignore[attr-defined]
        failing = {}
        for series in found:
            if not series["points"]:
                continue
            key = _series_key(series)
            last = series["points"][0][1]
            info = seen.setdefault(key, {})
            info.update(series=_identity(series), last_data_us=last, value=0.0)
            if t - last >= duration_us:
                failing[key] = info
        for key in list(seen):
            if key not in {_series_key(s) for s in found if s["points"]}:
                seen.pop(key)
        return self._trigger(spec, failing, len(found)), failing

    @staticmethod
    def _trigger(spec: dict[str, Any], failing: dict[str, Any], total: int) -> bool:
        trigger = spec.get("trigger") or {}
        if trigger.get("percent"):
            return bool(total) and 100.0 * len(failing) / total >= float(trigger["percent"])
        return len(failing) >= max(1, int(trigger.get("count", 1)))

    def _apply(self, policy, cond, failing, state, t) -> bool:
        """Open an incident per failing series without one; close those whose series no longer fails."""
        changed = False
        open_ = state.setdefault("open", {})  # series key -> incident id
        auto_close = (policy.get("alertStrategy") or {}).get("autoClose")
        auto_close_us = (
            int(float(auto_close.rstrip("s")) * 1_000_000) if auto_close else DEFAULT_AUTO_CLOSE_US
        )
        for key, incident_name in list(open_.items()):
            incident = self._state["incidents"].get(incident_name)
            info = state.get("seen", {}).get(key, {})
            stale = t - info.get("last_data_us", t) >= auto_close_us
            if incident is None or key not in failing or stale:
                del open_[key]
                if stale:  # not again until new data arrives
                    info["auto_closed_at"] = info.get("last_data_us")
                if incident is not None:
                    value = info.get("value", incident.get("observed", 0.0))
                    if "conditionThreshold" in cond and info.get("last_data_us") != t:  # no data now
                        incident["observed_text"] = NO_DATA
                    self._close(incident, policy, t, value, auto_closed=stale and key in failing)
                changed = True
        for key, info in failing.items():
            if "auto_closed_at" in info and info["auto_closed_at"] == info.get("last_data_us"):
                continue
            if key in open_:
                self._state["incidents"][open_[key]]["observed"] = info.get("value", 0.0)
                continue
            incident = self._open(policy, cond, info, t)
            open_[key] = incident["id"]
            changed = True
        return changed

    def _open(self, policy, cond, info, t) -> dict[str, Any]:
        project = policy["name"].split("/")[1]
        series = info["series"]
        descriptor = self.descriptor(project, series["metric"]["type"]) or {}  # type: ignore[attr-defined]
        incident = {
            "id": incident_id(),
            "project": project,
            "policy": policy["name"],
            "condition": cond["name"],
            "resource": copy.deepcopy(series["resource"]),
            "metric": copy.deepcopy(series["metric"]),
            "metric_display_name": descriptor.get("displayName", ""),
            "state": "OPEN",
            "open_us": t,
            "observed": info.get("value", 0.0),
            "policy_snapshot": _snapshot(policy),
        }
        incident["summaries"] = {"open": self._summary(incident, cond, "open"), "closed": ""}
        self._state["incidents"][incident["id"]] = incident
        self._notify(incident, policy, "open")  # type: ignore[attr-defined]
        incidents = self._state["incidents"]
        if len(incidents) > INCIDENTS_KEEP:
            closed = [k for k, v in incidents.items() if v["state"] == "CLOSED"]
            for key in closed[: len(incidents) - INCIDENTS_KEEP]:
                del incidents[key]
        return incident

    def _close(self, incident, policy, t, value, auto_closed=False, cancelled=False) -> None:
        if incident["state"] == "CLOSED":
            return
        incident.update(state="CLOSED", close_us=t, observed=value)
        cond = next((c for c in policy.get("conditions", []) if c["name"] == incident["condition"]), {})
        if cancelled:
            incident["observed_text"] = CANCELLED
        incident["summaries"]["closed"] = self._summary(incident, cond, "closed", auto_closed)
        self._notify(incident, policy, "closed")  # type: ignore[attr-defined]

    @staticmethod
    def _summary(incident, cond, state, auto_closed=False) -> str:
        metric = incident.get("metric_display_name") or incident["metric"]["type"]
        resource = incident["resource"]
        display = next((resource.get("labels", {}).get(k) for k in ("job_name", "task_id", "node_id", "job")
                        if resource.get("labels", {}).get(k)), "")  # fmt: skip
        labels = incident["metric"].get("labels", {})
        subject = f"{metric} for {incident['project']} {display}".rstrip()
        if labels:
            subject += f" with metric labels {_labels_text(labels)}"
        value = incident.get("observed_text") or f"{float(incident.get('observed', 0)):.3f}"
        if "conditionAbsent" in cond:
            duration = cond["conditionAbsent"].get("duration", "")
            return (
                f"{subject} is absent for {duration}."
                if state == "open"
                else f"{subject} is no longer absent."
            )
        spec = cond.get("conditionThreshold", {})
        if state == "closed":
            suffix = " (the incident was closed after autoClose without data)" if auto_closed else ""
            return f"{subject} returned to normal with a value of {value}.{suffix}"
        side = "above" if spec.get("comparison") == "COMPARISON_GT" else "below"
        limit = float(spec.get("thresholdValue", 0))
        return f"{subject} is {side} the threshold of {limit:.3f} with a value of {value}."

    def _cancel_incidents(self, policy_name: str, conditions: list[str] | None) -> None:
        """Close the open incidents of a policy's conditions (None: all), as Google cancels them."""
        policy = self._state["policies"].get(policy_name)
        if policy is None:
            return
        states = self._state["eval"].get(policy_name, {})
        t = micros(self.cloud.now())
        for cond_name in list(states):
            if conditions is not None and cond_name not in conditions:
                continue
            for incident_name in states[cond_name].get("open", {}).values():
                incident = self._state["incidents"].get(incident_name)
                if incident is not None:
                    self._close(incident, policy, t, incident.get("observed", 0.0), cancelled=True)
            del states[cond_name]
        if conditions is None:
            self._state["eval"].pop(policy_name, None)

    # ---- projects.alerts -------------------------------------------------------------------------------

    @staticmethod
    def _alert_json(incident: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": f"projects/{incident['project']}/alerts/{incident['id']}",
            "state": incident["state"],
            "openTime": rfc3339(from_micros(incident["open_us"])),
        }
        if incident.get("close_us"):
            out["closeTime"] = rfc3339(from_micros(incident["close_us"]))
        out["policy"] = copy.deepcopy(incident["policy_snapshot"])
        out["resource"] = copy.deepcopy(incident["resource"])
        metric = incident["metric"]
        out["metric"] = {
            "type": metric["type"],
            **({"labels": metric["labels"]} if metric.get("labels") else {}),
        }
        return out

    def _list_alerts(self, request, body, project):
        with self._lock:
            items = [
                self._alert_json(i) for i in self._state["incidents"].values() if i["project"] == project
            ]
        items = flt.select(items, request.args.get("filter", ""))
        items.sort(key=lambda a: a["openTime"], reverse=True)  # default: open_time desc
        if request.args.get("orderBy"):
            for spec in request.args["orderBy"].split(","):
                if spec.strip().split()[0] not in ("open_time", "close_time", "-open_time", "-close_time"):
                    raise flt.bad_filter(
                        request.args["orderBy"], "alerts sort by open_time and close_time", "order_by"
                    )
            items = flt.order(items, request.args["orderBy"])
        chunk, token = page(items, request.args, default=50, maximum=1000)
        out: dict[str, Any] = {"alerts": chunk} if chunk else {}
        if token:
            out["nextPageToken"] = token
        out["totalSize"] = len(items)
        return out

    def _get_alert(self, request, body, project, alert):
        with self._lock:
            incident = self._state["incidents"].get(alert)
            if incident is None or incident["project"] != project:
                raise ApiError(404, f"Alert projects/{project}/alerts/{alert} does not exist.", "NOT_FOUND")
            return self._alert_json(incident)

    def incidents(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    **self._alert_json(i),
                    "incident_id": i["id"],
                    "condition": i["condition"],
                    "observed": i.get("observed"),
                }
                for i in self._state["incidents"].values()
            ]


def _identity(series: dict[str, Any]) -> dict[str, Any]:
    return {"metric": copy.deepcopy(series["metric"]), "resource": copy.deepcopy(series["resource"])}


def _snapshot(policy: dict[str, Any]) -> dict[str, Any]:
    out = {"name": policy["name"], "displayName": policy.get("displayName", "")}
    if policy.get("userLabels"):
        out["userLabels"] = dict(policy["userLabels"])
    if policy.get("severity"):
        out["severity"] = policy["severity"]
    return out


__all__ = ["Alerting", "ingest_delay_us"]
