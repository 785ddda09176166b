"""The CloudAct admin API (docs/cloudact-api.md) with real state, for ENV=local and the tests.

Served at `https://api.cloudact.local` (the local inventory's API URL) and at the `uri` of the emulated
Cloud Run service `cloudact-api-service-local`. Every admin call needs `X-CA-Root-Key` equal to the
emulated secret `ca-root-api-key-local` (missing 401, wrong 403, secret absent 503); `/health` needs none.

Each other hosted project (localcloud/projects.py) has its environment's API, with the same routes over
state of its own: served at its API service's `*.run.app` host (and `api.cloudact.ai` for prod), keyed
by `ca-root-api-key-<suffix>` of its project, its datasets in that project (org datasets
`<org>_<suffix>`), its state under `<state>/cloudact/<project>/`, its admin calls under
`/_localcloud/cloudact/<project>/...`. The local one is this service itself, unchanged.

State:
- `<state>/cloudact/state.json`: orgs (slug, status, limits, concurrent counter, alert rules,
  costs, test flags), notifications sent. Seeded at first start: three ACTIVE orgs (two of them with
  stale concurrent counters) and one SUSPENDED.
- the emulated BigQuery: the meta dataset `organizations` with its tables (bootstrap), org datasets
  `<org>_local` (org-sync-all), and the daily/monthly rows of `organizations.org_usage_quotas`.

Deterministic failure injection for the jobs' failure paths: an org with status `BROKEN` or the flag
`fail_sync` fails org-sync-all ("Dataset sync failed for org ..."); `fail_alerts` makes alert
processing report an error for that org.

Admin (plain-HTTP listener, `/_localcloud/cloudact/...`):
- `POST orgs` `{"count": N, "status": "ACTIVE", "prefix": "org", "fail_sync": false, "fail_alerts": false,
  "stale_counter": false}` adds N orgs named `<prefix>_00001`...; or `{"slugs": [...], ...}` adds or
  updates those orgs. Answers `{"slugs": [...]}`.
- `GET state`: a summary (bootstrapped, counts by status, orgs, stale counters, notifications).
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import os
import re
import threading
from typing import Any

from werkzeug.wrappers import Request, Response

from localcloud.bq_sql import QueryError
from localcloud.config import PROJECT
from localcloud.projects import BY_ID, PROJECTS, HostedProject
from localcloud.service import json_response
from localcloud.services.cloudact_data import META_DATASET, SEED_ORGS, STALE_AFTER, digest
from localcloud.services.cloudact_routes import ApiError, CloudActRoutes

LOCAL = BY_ID[PROJECT]

ROOT_KEY_SECRET = LOCAL.root_key_secret  # the local API's key, ca-root-api-key-local
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_]{2,49}$")
STATUSES = ("ACTIVE", "SUSPENDED", "BROKEN")


class CloudActApiService(CloudActRoutes):
    """State, seeding, the admin endpoints and the HTTP entry; the routes' handlers are in
    cloudact_routes, the tables and seed data in cloudact_data."""

    name = "cloudact"
    hosts = tuple(host for hosted in PROJECTS for host in hosted.hosts)

    def __init__(self, cloud, hosted: HostedProject = LOCAL):
        super().__init__(cloud)
        self.hosted = hosted
        self.project = hosted.project
        self.dataset_suffix = hosted.secret_suffix
        self._lock = threading.RLock()
        self._state: dict[str, Any] = {}
        # The other environments' APIs: not registered services, this one hands them their hosts' requests.
        self._by_host: dict[str, CloudActApiService] = {}
        if hosted is LOCAL:
            self._by_host = {host: self for host in LOCAL.hosts}
            for other in PROJECTS:
                if other is not LOCAL:
                    api = CloudActApiService(cloud, other)
                    api.state_dir = self.state_dir / other.project
                    api.state_dir.mkdir(parents=True, exist_ok=True)
                    self._by_host.update({host: api for host in other.hosts})

    def _apis(self) -> list[CloudActApiService]:
        return list(dict.fromkeys(self._by_host.values()))

    # --- state --------------------------------------------------------------------------------------

    @property
    def state_file(self):
        return self.state_dir / "state.json"

    def start(self) -> None:
        for api in self._apis():
            with api._lock:
                if api.state_file.exists():
                    api._state = json.loads(api.state_file.read_text())
                else:
                    api._seed()

    def stop(self) -> None:
        for api in self._apis():
            with api._lock:
                if api._state:
                    api._save()

    def reset(self) -> None:
        for api in self._apis():
            with api._lock:
                api.state_file.unlink(missing_ok=True)
                api._seed()

    def _seed(self) -> None:
        now = self.cloud.now()
        self._state = {"orgs": {}, "notifications": [], "next_org": 1}
        for slug, seed in SEED_ORGS.items():
            self._add_org(slug, seed["status"], now, running=seed["stale"], stale=bool(seed["stale"]))
        self._save()

    def _save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state, separators=(",", ":")))
        os.replace(tmp, self.state_file)

    def _add_org(
        self, slug: str, status: str, now: dt.datetime, running: int = 0, stale: bool = False, **flags
    ):
        updated = now - 3 * STALE_AFTER if stale else now
        cost = 50 + digest(slug, "cost") % 450  # deterministic per org: 50..499
        org = self._state["orgs"].get(slug) or {
            "org_name": slug.replace("_", " ").title(),
            "created_at": now.isoformat(),
            "daily_limit": 100,
            "monthly_limit": 3000,
            "concurrent_limit": 5,
            "fail_sync": False,
            "fail_alerts": False,
            "budget": 400.0,
            "current_cost": float(cost),
            "previous_cost": float(50 + digest(slug, "previous") % 300),
            "alert_rules": [
                {
                    "rule_id": f"{slug}-cost",
                    "alert_type": "cost_threshold",
                    "threshold": 250.0,
                    "enabled": True,
                },
                {
                    "rule_id": f"{slug}-budget",
                    "alert_type": "budget_percent",
                    "threshold": 80.0,
                    "enabled": True,
                },
                {
                    "rule_id": f"{slug}-anomaly",
                    "alert_type": "anomaly_percent_change",
                    "threshold": 50.0,
                    "enabled": True,
                },
            ],
        }
        org.update(status=status, concurrent_running=running, counter_updated_at=updated.isoformat())
        org.update({k: bool(v) for k, v in flags.items()})
        self._state["orgs"][slug] = org

    def handle_admin(self, request: Request, subpath: str) -> Response:
        project, _, rest = subpath.partition("/")
        others = {api.project: api for api in self._apis() if api is not self}
        if project in others and self.hosted is LOCAL:
            return others[project].handle_admin(request, rest)
        try:
            if subpath == "orgs" and request.method == "POST":
                return json_response(self._admin_orgs(request.get_json(silent=True) or {}))
            if subpath == "state" and request.method == "GET":
                return json_response(self._summary())
        except ApiError as err:
            return json_response({"error": err.detail}, status=err.status)
        return super().handle_admin(request, subpath)

    def _admin_orgs(self, body: dict[str, Any]) -> dict[str, Any]:
        status = body.get("status", "ACTIVE")
        if status not in STATUSES:
            raise ApiError(400, f"bad status {status!r}: one of {', '.join(STATUSES)}")
        slugs = body.get("slugs")
        count = body.get("count")
        prefix = body.get("prefix", "org")
        if slugs is not None:
            if not isinstance(slugs, list) or not all(isinstance(s, str) and SLUG_RE.match(s) for s in slugs):
                raise ApiError(400, f"bad slugs {slugs!r}: a list of [a-z0-9_]{{3,50}} names")
        elif not isinstance(count, int) or not 1 <= count <= 100_000:
            raise ApiError(400, f"bad count {count!r}: an integer 1..100000 (or give 'slugs')")
        elif not isinstance(prefix, str) or not SLUG_RE.match(f"{prefix}_00001"):
            raise ApiError(400, f"bad prefix {prefix!r}: lowercase letters, digits and _")
        flags = {k: body.get(k, False) for k in ("fail_sync", "fail_alerts")}
        stale = bool(body.get("stale_counter", False))
        now = self.cloud.now()
        with self._lock:
            if slugs is None:
                start = self._state.get("next_org", 1)
                slugs = [f"{prefix}_{n:05d}" for n in range(start, start + count)]
                self._state["next_org"] = start + count
            for slug in slugs:
                self._add_org(slug, status, now, running=1 if stale else 0, stale=stale, **flags)
            self._save()
        return {"slugs": slugs}

    def _summary(self) -> dict[str, Any]:
        now = self.cloud.now()
        with self._lock:
            orgs = self._state["orgs"]
            counts: dict[str, int] = {}
            for org in orgs.values():
                counts[org["status"]] = counts.get(org["status"], 0) + 1
            return {
                "bootstrapped": self._bq().dataset_exists(self.project, META_DATASET),
                "org_counts": counts,
                "orgs": {
                    slug: {
                        k: org.get(k)
                        for k in (
                            "status",
                            "fail_sync",
                            "fail_alerts",
                            "concurrent_running",
                            "counter_updated_at",
                        )
                    }
                    for slug, org in orgs.items()
                },
                "stale_counters": sorted(s for s, o in orgs.items() if self._is_stale(o, now)),
                "notifications_sent": len(self._state["notifications"]),
                "notifications": self._state["notifications"][-50:],
            }

    # --- HTTP ---------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        host = (request.environ.get("localcloud.host") or request.host or "").split(":")[0].lower()
        api = self._by_host.get(host, self)
        return api._handle(request)

    def _handle(self, request: Request) -> Response:
        routes = {
            ("GET", "/health"): None,
            ("GET", "/api/v1/admin/bootstrap/status"): self._bootstrap_status,
            ("POST", "/api/v1/admin/bootstrap"): self._bootstrap,
            ("POST", "/api/v1/admin/bootstrap/sync"): self._bootstrap_sync,
            ("POST", "/api/v1/admin/org-sync-all"): self._org_sync_all,
            ("POST", "/api/v1/admin/quota/reset-daily"): self._reset_daily,
            ("POST", "/api/v1/admin/quota/cleanup-stale"): self._cleanup_stale,
            ("POST", "/api/v1/admin/quota/reset-monthly"): self._reset_monthly,
            ("POST", "/api/v1/admin/alerts/process-all"): self._process_alerts,
        }
        path = request.path.rstrip("/") or "/"
        key = (request.method, path)
        if key not in routes:
            if any(p == path for _, p in routes):
                return json_response({"detail": "Method Not Allowed"}, status=405)
            return json_response({"detail": "Not Found"}, status=404)
        handler = routes[key]
        if handler is None:
            return json_response(
                {
                    "status": "healthy",
                    "service": "api-service",
                    "version": "local",
                    "release": "localcloud",
                    "environment": self.hosted.environment,
                }
            )
        try:
            self._check_key(request)
            body = request.get_json(silent=True) if request.data else {}
            if not isinstance(body, dict):
                raise ApiError(422, "request body must be a JSON object")
            with self._lock, self._bq().batch():
                return json_response(handler(body))
        except ApiError as err:
            return json_response({"detail": err.detail}, status=err.status)
        except QueryError as err:
            return json_response({"detail": f"BigQuery error: {err.message}"}, status=500)

    def _check_key(self, request: Request) -> None:
        expected = self.cloud.secret_value(self.hosted.root_key_secret, project=self.project)
        if expected is None:
            raise ApiError(503, "Root API key is not configured on the server")
        given = request.headers.get("X-CA-Root-Key", "")
        if not given:
            raise ApiError(401, "Missing X-CA-Root-Key header")
        if not hmac.compare_digest(given.encode(), expected.strip()):
            raise ApiError(403, "Invalid root API key")
