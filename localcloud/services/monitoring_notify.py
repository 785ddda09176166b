"""Notifications of Cloud Monitoring's incidents: each opening and closing goes to every enabled channel
of its policy.

- webhook_tokenauth / webhook_basicauth: an HTTPS POST of Google's incident payload (schema version 1.2)
  through localcloud's own proxy and CA, so only a host localcloud serves can receive it (e.g. its
  receiver, `https://hooks.cloudact.local/<name>`); a URL of any other host, or plain `http://`, is never
  tried: the delivery fails at once, recorded with the reason. basicauth sends `Authorization: Basic`.
- email, pubsub and slack: the outbox (`GET /_localcloud/monitoring/outbox`, and one JSON line per message
  in `<state>/monitoring/outbox.jsonl`), pubsub and slack until those services are emulated.

A webhook that fails (no answer, 408, 429 or 5xx) is tried again on the emulated clock, 30 s after the first
attempt, then 60 s, 120 s and 240 s later (5 attempts), then given up; another 4xx is final. Every
delivery and its attempts are kept (`GET /_localcloud/monitoring/deliveries`).
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from typing import Any
from urllib.parse import urlsplit

import requests

from localcloud import projects
from localcloud.services.monitoring_base import MonitoringState, from_micros, micros
from localcloud.services.monitoring_store import RESOURCES

RETRY_AFTER_S = (30, 60, 120, 240)
RETRIABLE = {408, 429}
OUTBOX_KEEP = 1000
DELIVERIES_KEEP = 2000


def _number(value: Any) -> str:
    return f"{float(value):.3f}"


def _resource_display(resource: dict[str, Any]) -> str:
    labels = resource.get("labels", {})
    for key in ("job_name", "task_id", "node_id", "job"):
        if labels.get(key):
            return labels[key]
    return ""


def incident_payload(incident: dict[str, Any], policy: dict[str, Any], state: str) -> dict[str, Any]:
    """Google's webhook (and Pub/Sub) notification, schema version 1.2."""
    project = incident["project"]
    condition = next((c for c in policy.get("conditions", []) if c["name"] == incident["condition"]), {})
    severity = policy.get("severity", "")
    severity_word = severity.title() if severity else "No severity"
    resource = incident["resource"]
    display = _resource_display(resource)
    metric = {
        "type": incident["metric"]["type"],
        "displayName": incident.get("metric_display_name", ""),
        "labels": incident["metric"].get("labels", {}),
    }
    documentation = policy.get("documentation", {})
    base = documentation.get("subject") or policy.get("displayName", "")
    subject = (
        documentation.get("subject")
        or f"[{'ALERT' if state == 'open' else 'RESOLVED'} - {severity_word}] {base}"
    )
    threshold = (condition.get("conditionThreshold") or {}).get("thresholdValue", 0)
    hosted = projects.BY_ID.get(project)
    body: dict[str, Any] = {
        "incident_id": incident["id"],
        "scoping_project_id": project,
        "scoping_project_number": int(hosted.number) if hosted else 0,
        "url": f"https://console.cloud.google.com/monitoring/alerting/alerts/{incident['id']}?project={project}",
        "severity": severity_word,
        "started_at": incident["open_us"] // 1_000_000,
        "ended_at": incident["close_us"] // 1_000_000 if incident.get("close_us") else None,
        "state": state,
        "summary": incident["summaries"][state],
        "observed_value": incident.get("observed_text") or _number(incident.get("observed", 0)),
        "resource": {"type": resource["type"], "labels": resource.get("labels", {})},
        "resource_type_display_name": RESOURCES.get(resource["type"], {}).get(
            "displayName", resource["type"]
        ),
        "resource_id": "",
        "resource_display_name": display,
        "resource_name": f"{project} {display}".strip(),
        "metric": metric,
        "metadata": {"system_labels": {}, "user_labels": {}},
        "policy_name": policy.get("displayName", ""),
        "policy_user_labels": policy.get("userLabels", {}),
        "documentation": {
            "content": documentation.get("content", ""),
            "mime_type": documentation.get("mimeType", ""),
            "subject": subject,
        },
        "condition": copy.deepcopy(condition),
        "condition_name": condition.get("displayName", ""),
        "threshold_value": f"{threshold:g}" if "conditionThreshold" in condition else "",
    }
    return {"incident": body, "version": "1.2"}


class Notifier(MonitoringState):
    _outbox: list[dict[str, Any]]
    _send_lock: threading.Lock

    def _notify(self, incident: dict[str, Any], policy: dict[str, Any], state: str) -> None:
        """Queue the notifications of an opening or a closing (under `_lock`)."""
        prompts = (policy.get("alertStrategy") or {}).get("notificationPrompts") or ["OPENED", "CLOSED"]
        if ("OPENED" if state == "open" else "CLOSED") not in prompts:
            return
        payload = incident_payload(incident, policy, state)
        now_us = micros(self.cloud.now())
        for channel_name in policy.get("notificationChannels", []):
            channel = self._state["channels"].get(channel_name)
            if channel is None or not channel.get("enabled", True):
                continue
            delivery = {
                "id": f"{incident['id']}/{state}/{channel_name.rsplit('/', 1)[1]}",
                "incident_id": incident["id"],
                "state": state,
                "policy": policy["name"],
                "channel": channel_name,
                "type": channel["type"],
                "status": "pending",
                "attempts": [],
                "next_us": now_us,
                "payload": payload,
            }
            self._state["deliveries"][delivery["id"]] = delivery
        deliveries = self._state["deliveries"]
        if len(deliveries) > DELIVERIES_KEEP:
            done = [k for k, d in deliveries.items() if d["status"] != "pending"]
            for key in done[: len(deliveries) - DELIVERIES_KEEP]:
                del deliveries[key]

    def _deliver_due(self) -> None:
        """Send each pending delivery whose time has come (outside `_lock`: webhooks go through the proxy)."""
        with self._send_lock:
            now_us = micros(self.cloud.now())
            with self._lock:
                due = [
                    (d["id"], copy.deepcopy(d), copy.deepcopy(self._state["channels"].get(d["channel"])))
                    for d in self._state["deliveries"].values()
                    if d["status"] == "pending" and d["next_us"] <= now_us
                ]
            for delivery_id, delivery, channel in due:
                if self._stop.is_set():  # type: ignore[attr-defined]
                    return
                outcome = self._send(delivery, channel)
                with self._lock:
                    stored = self._state["deliveries"].get(delivery_id)
                    if stored is None:
                        continue
                    at = micros(self.cloud.now())
                    stored["attempts"].append({"time": _text(at), **outcome})
                    if outcome.get("ok"):
                        stored["status"] = "delivered"
                    elif outcome.get("final") or len(stored["attempts"]) > len(RETRY_AFTER_S):
                        stored["status"] = "failed"
                    else:
                        stored["next_us"] = at + RETRY_AFTER_S[len(stored["attempts"]) - 1] * 1_000_000
                    self._save()

    def _send(self, delivery: dict[str, Any], channel: dict[str, Any] | None) -> dict[str, Any]:
        if channel is None:
            return {"ok": False, "final": True, "error": "the channel was deleted"}
        labels = channel.get("labels", {})
        kind = channel["type"]
        if kind in ("email", "pubsub", "slack"):
            self._to_outbox(delivery, channel)
            return {"ok": True, "outbox": True}
        url = labels.get("url", "")
        parts = urlsplit(url)
        if parts.scheme != "https":
            return {
                "ok": False,
                "final": True,
                "error": f"localcloud delivers webhooks over HTTPS only, not to {url}",
            }
        served = getattr(self.cloud, "service_for_host", lambda host: None)(parts.hostname or "")
        if served is None:
            return {
                "ok": False,
                "final": True,
                "error": f"the host {parts.hostname} is not served by localcloud: nothing leaves this "
                "machine",
            }
        headers = {"Content-Type": "application/json"}
        if kind == "webhook_basicauth":
            token = base64.b64encode(
                f"{labels.get('username', '')}:{labels.get('password', '')}".encode()
            ).decode()
            headers["Authorization"] = f"Basic {token}"
        session = requests.Session()
        session.trust_env = False
        session.proxies = {"https": self.cloud.proxy_url}
        try:
            with session:
                response = session.post(
                    url,
                    data=json.dumps(delivery["payload"]),
                    headers=headers,
                    verify=str(self.cloud.ca_file),
                    timeout=(3, 10),
                )
        except requests.RequestException as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        code = response.status_code
        if 200 <= code < 300:
            return {"ok": True, "status": code}
        return {"ok": False, "status": code, "final": code < 500 and code not in RETRIABLE}

    def _to_outbox(self, delivery: dict[str, Any], channel: dict[str, Any]) -> None:
        labels = channel.get("labels", {})
        incident = delivery["payload"]["incident"]
        message: dict[str, Any] = {
            "time": _text(micros(self.cloud.now())),
            "type": channel["type"],
            "channel": channel["name"],
            "incident_id": incident["incident_id"],
            "state": incident["state"],
        }
        if channel["type"] == "email":
            content = incident["documentation"]["content"]
            message.update(
                to=labels.get("email_address", ""),
                subject=incident["documentation"]["subject"],
                text=incident["summary"] + (f"\n\n{content}" if content else ""),
                incident=incident,
            )
        elif channel["type"] == "pubsub":
            data = json.dumps(delivery["payload"])
            message.update(
                topic=labels.get("topic", ""),
                data=base64.b64encode(data.encode()).decode(),
                json=delivery["payload"],
            )
        else:
            message.update(channel_name=labels.get("channel_name", ""), text=incident["summary"])
        with self._lock:
            self._outbox.append(message)
            del self._outbox[:-OUTBOX_KEEP]
            with (self.state_dir / "outbox.jsonl").open("a") as f:
                f.write(json.dumps(message) + "\n")

    def _deliveries_json(self) -> list[dict[str, Any]]:
        with self._lock:
            out = []
            for d in self._state["deliveries"].values():
                item = {k: v for k, v in d.items() if k not in ("payload", "next_us")}
                if d["status"] == "pending":
                    item["next_attempt"] = _text(d["next_us"])
                out.append(item)
            return out


def _text(us: int) -> str:
    from localcloud.clock import rfc3339

    return rfc3339(from_micros(us))
