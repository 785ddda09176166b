"""Cloud Monitoring v3 (`monitoring.googleapis.com`, judged by googleapiclient's monitoring.v3.json).

Served: alertPolicies (create, get, list, patch, delete), notificationChannels (create, get, list, patch,
delete with force), notificationChannelDescriptors (get, list), metricDescriptors (create, get, list,
delete), monitoredResourceDescriptors (get, list), timeSeries (create, list) and alerts (get, list), each
in its mixin: monitoring_policies (policies, channels), monitoring_metrics (descriptors, writes),
monitoring_series (reads, Cloud Run's job metrics), monitoring_alerts (the evaluator, incidents, alerts),
monitoring_notify (deliveries).
IAM is project-level only, as Monitoring has no resource-level policies.

State: `<state>/monitoring/state.json` (policies, channels, custom descriptors, incidents, deliveries, the
evaluator's state), `points.sqlite3` (time series), `outbox.jsonl` (email, Pub/Sub and Slack messages).
The ticker (every 0.2 s, and at once when the clock is set or advanced) samples Cloud Run's running
executions, evaluates the policies at each minute boundary of the emulated clock, and sends the deliveries
whose time has come.

Admin (`/_localcloud/monitoring/...`): `GET outbox` (`{"messages"}`), `DELETE outbox`, `GET deliveries`
(`{"deliveries"}`), `GET incidents` (`{"incidents"}`: each alert with its incident_id), `POST tick` (run the
ticker once now and answer when it is done).
"""

from __future__ import annotations

import json
import os
import re
import threading
from typing import Any

from werkzeug.wrappers import Request, Response

from localcloud import iam_permissions, projects
from localcloud.service import Unauthenticated, google_error, json_response
from localcloud.services.monitoring_alerts import Alerting
from localcloud.services.monitoring_base import micros
from localcloud.services.monitoring_metrics import MetricsApi
from localcloud.services.monitoring_notify import Notifier
from localcloud.services.monitoring_policies import PoliciesApi
from localcloud.services.monitoring_series import RunMetrics, SeriesApi
from localcloud.services.monitoring_store import Store
from localcloud.services.run_errors import UNAUTHENTICATED, ApiError, json_body, match_route, url_not_found

P = r"/v3/projects/(?P<project>[^/]+)"
TICK_S = 0.2
RETAIN_US = 6 * 7 * 86400 * 1_000_000  # Cloud Monitoring keeps points for 6 weeks
DENIED = "Permission {permission} denied (or the resource may not exist)."


class MonitoringService(PoliciesApi, MetricsApi, SeriesApi, RunMetrics, Alerting, Notifier):
    name = "monitoring"
    hosts = ("monitoring.googleapis.com",)
    permissions = iam_permissions.MONITORING

    def __init__(self, cloud):
        super().__init__(cloud)
        self._lock = threading.RLock()
        self._send_lock = threading.Lock()
        self._tick_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._state_file = self.state_dir / "state.json"
        self._state = self._empty()
        self._running = {}
        self._outbox = []
        self.store = Store(self.state_dir / "points.sqlite3")
        routes = [
            ("POST", P + r"/alertPolicies", self._create_policy, True),
            ("GET", P + r"/alertPolicies", self._list_policies, False),
            ("GET", P + r"/alertPolicies/(?P<policy>[^/]+)", self._get_policy, False),
            ("PATCH", P + r"/alertPolicies/(?P<policy>[^/]+)", self._patch_policy, True),
            ("DELETE", P + r"/alertPolicies/(?P<policy>[^/]+)", self._delete_policy, False),
            ("POST", P + r"/notificationChannels", self._create_channel, True),
            ("GET", P + r"/notificationChannels", self._list_channels, False),
            ("GET", P + r"/notificationChannels/(?P<channel>[^/:]+)", self._get_channel, False),
            ("PATCH", P + r"/notificationChannels/(?P<channel>[^/:]+)", self._patch_channel, True),
            ("DELETE", P + r"/notificationChannels/(?P<channel>[^/:]+)", self._delete_channel, True),
            ("GET", P + r"/notificationChannelDescriptors", self._list_channel_descriptors, False),
            (
                "GET",
                P + r"/notificationChannelDescriptors/(?P<ctype>[^/]+)",
                self._get_channel_descriptor,
                False,
            ),
            ("GET", P + r"/metricDescriptors", self._list_descriptors, False),
            ("POST", P + r"/metricDescriptors", self._create_descriptor, False),
            ("GET", P + r"/metricDescriptors/(?P<metric>.+)", self._get_descriptor, False),
            ("DELETE", P + r"/metricDescriptors/(?P<metric>.+)", self._delete_descriptor, False),
            ("GET", P + r"/monitoredResourceDescriptors", self._list_resource_descriptors, False),
            (
                "GET",
                P + r"/monitoredResourceDescriptors/(?P<rtype>[^/]+)",
                self._get_resource_descriptor,
                False,
            ),
            ("POST", P + r"/timeSeries", self._create_series, False),
            ("GET", P + r"/timeSeries", self._list_series, False),
            ("GET", P + r"/alerts", self._list_alerts, False),
            ("GET", P + r"/alerts/(?P<alert>[^/]+)", self._get_alert, False),
        ]
        self._routes = [(method, re.compile(pattern + "$"), fn) for method, pattern, fn, _ in routes]
        self._wants_principal = {fn for _, _, fn, wants in routes if wants}

    @staticmethod
    def _empty() -> dict[str, Any]:
        return {
            "policies": {},
            "channels": {},
            "descriptors": {},
            "incidents": {},
            "deliveries": {},
            "eval": {},
        }

    # ---- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._state_file.exists():
                self._state = {**self._empty(), **json.loads(self._state_file.read_text())}
            outbox = self.state_dir / "outbox.jsonl"
            if outbox.exists():
                self._outbox = [json.loads(line) for line in outbox.read_text().splitlines()[-1000:] if line]
        self.store.open()
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick_loop, name="monitoring-ticker", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._ticker is not None:
            # A webhook in flight may wait on the proxy, which stops first: the ticker (a daemon) is not
            # waited for long; a delivery it had not recorded stays pending and is sent after the next start.
            self._ticker.join(3)
        with self._lock:
            self._save()
        if self._ticker is None or not self._ticker.is_alive():
            self.store.close()

    def reset(self) -> None:
        with self._lock:
            self._state = self._empty()
            self._running = {}
            self._outbox = []
            (self.state_dir / "outbox.jsonl").unlink(missing_ok=True)
            self.store.reset()
            self._save()

    def clock_changed(self) -> None:
        self._wake.set()

    def _save(self) -> None:
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state))
        os.replace(tmp, self._state_file)

    def _tick_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - the ticker must survive one bad policy
                print(f"localcloud monitoring: tick failed: {exc!r}", flush=True)
            self._wake.wait(TICK_S)
            self._wake.clear()

    def tick(self) -> None:
        """Evaluate every minute boundary up to now, then send what is due."""
        with self._tick_lock:
            now_us = micros(self.cloud.now())
            self._evaluate_until(now_us)
            self._deliver_due()
            if now_us % 3_600_000_000 < 1_000_000:
                self.store.expire(now_us - RETAIN_US)

    # ---- HTTP ------------------------------------------------------------------------------------------

    def iam_resource(self, request: Request, method) -> str:
        """Monitoring has no resource-level IAM: every call is judged on its project."""
        found = re.match(r"^/v3/projects/([^/]+)", request.path)
        return f"projects/{projects.project_id(found.group(1))}" if found else ""

    def iam_denied(self, permission: str, resource: str, principal: str) -> Response:
        return google_error(403, DENIED.format(permission=permission), "PERMISSION_DENIED")

    def handle(self, request: Request) -> Response:
        try:
            principal = self.cloud.authenticate(request)
        except Unauthenticated:
            return google_error(401, UNAUTHENTICATED, "UNAUTHENTICATED")
        route = match_route(self._routes, request)
        if route is None:
            return url_not_found(request)
        fn, params = route
        params["project"] = projects.project_id(params["project"])
        try:
            denied = projects.access_error(params["project"])
            if denied:
                raise ApiError(403, denied, "PERMISSION_DENIED")
            body = json_body(request)
            if fn in self._wants_principal:
                params["principal"] = principal
            result = fn(request, body, **params)
        except ApiError as err:
            extra = {"details": err.details} if getattr(err, "details", None) else {}
            return google_error(err.code, err.message, err.status, **extra)
        return json_response(result)

    def handle_admin(self, request: Request, subpath: str) -> Response:
        method, path = request.method, subpath.strip("/")
        if path == "outbox" and method == "GET":
            with self._lock:
                return json_response({"messages": list(self._outbox)})
        if path == "outbox" and method == "DELETE":
            with self._lock:
                cleared = len(self._outbox)
                self._outbox = []
                (self.state_dir / "outbox.jsonl").unlink(missing_ok=True)
            return json_response({"cleared": cleared})
        if path == "deliveries" and method == "GET":
            return json_response({"deliveries": self._deliveries_json()})
        if path == "incidents" and method == "GET":
            return json_response({"incidents": self.incidents()})
        if path == "tick" and method == "POST":
            self.tick()
            return json_response({"now": self._now_text()})
        return super().handle_admin(request, subpath)
