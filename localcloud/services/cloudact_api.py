"""The CloudAct admin API (CONTRACTS.md) with real state, for ENV=local and the tests.

Served at `https://api.cloudact.local` (the local inventory's API URL) and at the `uri` of the emulated
Cloud Run service `cloudact-api-service-local`. Every admin call needs `X-CA-Root-Key` equal to the
emulated secret `ca-root-api-key-local` (missing 401, wrong 403, secret absent 503); `/health` needs none.

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
import hashlib
import hmac
import json
import os
import re
import threading
from typing import Any

from werkzeug.wrappers import Request, Response

from localcloud.bq_sql import QueryError
from localcloud.service import Service, json_response

ROOT_KEY_SECRET = "ca-root-api-key-local"  # noqa: S105 - the secret's name, not its value
ENV_SUFFIX = "local"
META_DATASET = "organizations"
QUOTA_TABLE = "org_usage_quotas"
STALE_AFTER = dt.timedelta(hours=1)
MAX_NOTIFICATIONS = 1000
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_]{2,49}$")
STATUSES = ("ACTIVE", "SUSPENDED", "BROKEN")
ALERT_TYPES = (
    "cost_threshold",
    "absolute_threshold",
    "budget_percent",
    "budget_forecast",
    "hierarchy_budget",
    "anomaly_percent_change",
    "anomaly_std_deviation",
)
SEED_ORGS = {
    "acme_corp": {"status": "ACTIVE", "stale": 2},
    "globex_inc": {"status": "ACTIVE", "stale": 1},
    "initech": {"status": "ACTIVE", "stale": 0},
    "umbrella_corp": {"status": "SUSPENDED", "stale": 0},
}


def _f(name: str, kind: str = "STRING", mode: str = "NULLABLE") -> dict[str, str]:
    return {"name": name, "type": kind, "mode": mode}


def _ts(name: str) -> dict[str, str]:
    return _f(name, "TIMESTAMP")


# The meta dataset's tables: what bootstrap creates and status/sync compare against.
META_TABLES: dict[str, list[dict[str, str]]] = {
    "org_profiles": [
        _f("org_slug", mode="REQUIRED"),
        _f("org_name"),
        _f("status"),
        _ts("created_at"),
        _ts("updated_at"),
    ],
    "org_api_keys": [
        _f("org_api_key_id", mode="REQUIRED"),
        _f("org_slug"),
        _f("key_hash"),
        _f("is_active", "BOOLEAN"),
        _ts("created_at"),
    ],
    "org_subscriptions": [
        _f("subscription_id", mode="REQUIRED"),
        _f("org_slug"),
        _f("plan_name"),
        _f("daily_limit", "INT64"),
        _f("monthly_limit", "INT64"),
        _f("concurrent_limit", "INT64"),
        _ts("created_at"),
    ],
    QUOTA_TABLE: [
        _f("usage_id", mode="REQUIRED"),
        _f("org_slug", mode="REQUIRED"),
        _f("usage_date", "DATE", "REQUIRED"),
        _f("period_type"),
        _f("pipelines_run_today", "INT64"),
        _f("pipelines_succeeded_today", "INT64"),
        _f("pipelines_failed_today", "INT64"),
        _f("pipelines_run_month", "INT64"),
        _f("concurrent_pipelines_running", "INT64"),
        _f("daily_limit", "INT64"),
        _f("monthly_limit", "INT64"),
        _f("concurrent_limit", "INT64"),
        _ts("created_at"),
        _ts("last_updated"),
    ],
    "org_integration_credentials": [
        _f("credential_id", mode="REQUIRED"),
        _f("org_slug"),
        _f("provider"),
        _ts("created_at"),
    ],
    "org_meta_pipeline_runs": [
        _f("pipeline_logging_id", mode="REQUIRED"),
        _f("org_slug"),
        _f("pipeline_id"),
        _f("status"),
        _ts("start_time"),
        _ts("end_time"),
    ],
    "org_audit_logs": [
        _f("audit_log_id", mode="REQUIRED"),
        _f("org_slug"),
        _f("action"),
        _f("resource_type"),
        _ts("created_at"),
    ],
    "org_notification_channels": [
        _f("channel_id", mode="REQUIRED"),
        _f("org_slug"),
        _f("channel_type"),
        _ts("created_at"),
    ],
    "org_alert_rules": [
        _f("rule_id", mode="REQUIRED"),
        _f("org_slug"),
        _f("alert_type"),
        _f("threshold", "FLOAT64"),
        _f("enabled", "BOOLEAN"),
        _ts("created_at"),
    ],
}

# Tables in every org dataset `<org>_local`.
ORG_TABLES: dict[str, list[dict[str, str]]] = {
    "cost_data_standard_1_3": [
        _f("org_slug", mode="REQUIRED"),
        _f("usage_date", "DATE"),
        _f("provider"),
        _f("service_name"),
        _f("billed_cost", "FLOAT64"),
        _ts("ingested_at"),
    ],
    "pipeline_runs": [
        _f("run_id", mode="REQUIRED"),
        _f("pipeline_id"),
        _f("status"),
        _ts("started_at"),
        _ts("finished_at"),
    ],
}

# `project` is formatted in (the emulated project); every value is a bound query parameter.
QUOTA_EXISTING = (
    "SELECT DISTINCT org_slug FROM `{project}.organizations.org_usage_quotas` "
    "WHERE usage_date = @usage_date AND period_type = @period"
)
COUNTER_RESET = (
    "UPDATE `{project}.organizations.org_usage_quotas` SET concurrent_pipelines_running = 0, "
    "last_updated = @now WHERE org_slug = @org_slug AND usage_date = @usage_date"
)


class ApiError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _digest(slug: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{slug}".encode()).digest()[:4], "big")


class CloudActApiService(Service):
    name = "cloudact"
    hosts = ("api.cloudact.local", "cloudact-api-service-local-uc.a.run.app")

    def __init__(self, cloud):
        super().__init__(cloud)
        self._lock = threading.RLock()
        self._state: dict[str, Any] = {}

    # --- state --------------------------------------------------------------------------------------

    @property
    def state_file(self):
        return self.state_dir / "state.json"

    def start(self) -> None:
        with self._lock:
            if self.state_file.exists():
                self._state = json.loads(self.state_file.read_text())
            else:
                self._seed()

    def stop(self) -> None:
        with self._lock:
            if self._state:
                self._save()

    def reset(self) -> None:
        with self._lock:
            self.state_file.unlink(missing_ok=True)
            self._seed()

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
        cost = 50 + _digest(slug, "cost") % 450  # deterministic per org: 50..499
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
            "previous_cost": float(50 + _digest(slug, "previous") % 300),
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

    def _not_suspended(self) -> list[str]:
        return sorted(s for s, o in self._state["orgs"].items() if o["status"] != "SUSPENDED")

    def _bq(self):
        return self.cloud.service("bigquery")

    # --- admin --------------------------------------------------------------------------------------

    def handle_admin(self, request: Request, subpath: str) -> Response:
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
                "bootstrapped": self._bq().dataset_exists(self.cloud.project, META_DATASET),
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
                    "environment": "local",
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
        expected = self.cloud.secret_value(ROOT_KEY_SECRET)
        if expected is None:
            raise ApiError(503, "Root API key is not configured on the server")
        given = request.headers.get("X-CA-Root-Key", "")
        if not given:
            raise ApiError(401, "Missing X-CA-Root-Key header")
        if not hmac.compare_digest(given.encode(), expected.strip()):
            raise ApiError(403, "Invalid root API key")

    @staticmethod
    def _bool(body: dict[str, Any], key: str, default: bool) -> bool:
        value = body.get(key, default)
        if not isinstance(value, bool):
            raise ApiError(422, f"{key} must be true or false, got {value!r}")
        return value

    # --- bootstrap ----------------------------------------------------------------------------------

    def _status(self) -> dict[str, Any]:
        bq, project = self._bq(), self.cloud.project
        exists = bq.dataset_exists(project, META_DATASET)
        existing = bq.list_tables(project, META_DATASET) if exists else []
        missing = [t for t in META_TABLES if t not in existing]
        extra = [t for t in existing if t not in META_TABLES]
        diffs: dict[str, Any] = {}
        for table in existing:
            if table in META_TABLES:
                have = {f["name"] for f in bq.table_schema(project, META_DATASET, table) or []}
                lacking = [f["name"] for f in META_TABLES[table] if f["name"] not in have]
                if lacking:
                    diffs[table] = {"missing_columns": lacking}
        if not exists or not existing:
            status, message = "NOT_BOOTSTRAPPED", f"Dataset {META_DATASET} has no tables: run bootstrap"
        elif missing or diffs:
            status = "OUT_OF_SYNC"
            message = f"{len(missing)} tables missing, {len(diffs)} tables with missing columns: run sync"
        else:
            status, message = "SYNCED", f"All {len(META_TABLES)} tables exist with the expected columns"
        return {
            "status": status,
            "dataset_exists": exists,
            "tables_expected": len(META_TABLES),
            "tables_existing": existing,
            "tables_missing": missing,
            "tables_extra": extra,
            "schema_diffs": diffs,
            "message": message,
        }

    def _bootstrap_status(self, _body: dict[str, Any]) -> dict[str, Any]:
        return self._status()

    def _bootstrap(self, body: dict[str, Any]) -> dict[str, Any]:
        force_dataset = self._bool(body, "force_recreate_dataset", False)
        force_tables = self._bool(body, "force_recreate_tables", False)
        bq, project = self._bq(), self.cloud.project
        status = self._status()
        if status["status"] != "NOT_BOOTSTRAPPED" and not (force_dataset or force_tables):
            raise ApiError(
                409,
                f"Already bootstrapped: {len(status['tables_existing'])} tables exist in dataset "
                f"{META_DATASET}; use POST /api/v1/admin/bootstrap/sync to add missing tables or columns",
            )
        if force_dataset and status["dataset_exists"]:
            bq.delete_dataset(project, META_DATASET, delete_contents=True)
        created = bq.ensure_dataset(project, META_DATASET)
        tables_created, tables_existed = [], []
        for table, fields in META_TABLES.items():
            if force_tables and bq.table_schema(project, META_DATASET, table) is not None:
                bq.drop_table(project, META_DATASET, table)
            (
                tables_created if bq.create_table(project, META_DATASET, table, fields) else tables_existed
            ).append(table)
        return {
            "status": "SUCCESS",
            "dataset_created": created,
            "tables_created": tables_created,
            "tables_existed": tables_existed,
            "total_tables": len(META_TABLES),
            "message": f"Bootstrap completed: {len(tables_created)} tables created, "
            f"{len(tables_existed)} existed",
            "schema_validation": {"valid": True, "errors": [], "warnings": []},
        }

    def _bootstrap_sync(self, body: dict[str, Any]) -> dict[str, Any]:
        sync_tables = self._bool(body, "sync_missing_tables", True)
        sync_columns = self._bool(body, "sync_missing_columns", True)
        bq, project = self._bq(), self.cloud.project
        status = self._status()
        tables_created: list[str] = []
        columns_added: dict[str, list[str]] = {}
        if sync_tables:
            bq.ensure_dataset(project, META_DATASET)
            for table in status["tables_missing"]:
                if bq.create_table(project, META_DATASET, table, META_TABLES[table]):
                    tables_created.append(table)
        if sync_columns:
            for table, diff in status["schema_diffs"].items():
                for column in diff["missing_columns"]:
                    field = next(f for f in META_TABLES[table] if f["name"] == column)
                    bq.add_column(project, META_DATASET, table, field)
                    columns_added.setdefault(table, []).append(column)
        added = len(tables_created) + sum(len(c) for c in columns_added.values())
        return {
            "status": "SUCCESS",
            "tables_created": tables_created,
            "columns_added": columns_added,
            "errors": [],
            "message": (
                f"Sync complete: {len(tables_created)} tables created, "
                f"{sum(len(c) for c in columns_added.values())} columns added"
                if added
                else "Already in sync: nothing to add"
            ),
        }

    def _require_bootstrap(self) -> None:
        if self._bq().table_schema(self.cloud.project, META_DATASET, QUOTA_TABLE) is None:
            raise ApiError(
                409,
                f"Not bootstrapped: {META_DATASET}.{QUOTA_TABLE} does not exist; "
                "run POST /api/v1/admin/bootstrap first",
            )

    # --- orgs ---------------------------------------------------------------------------------------

    def _org_sync_all(self, body: dict[str, Any]) -> dict[str, Any]:
        wanted = body.get("org_slugs")
        if wanted is not None and (
            not isinstance(wanted, list) or not all(isinstance(s, str) for s in wanted)
        ):
            raise ApiError(422, f"org_slugs must be a list of org slugs, got {wanted!r}")
        self._require_bootstrap()
        orgs = self._state["orgs"]
        targets = wanted if wanted is not None else self._not_suspended()
        bq, project = self._bq(), self.cloud.project
        failed: list[dict[str, str]] = []
        synced = 0
        syncable = [
            s for s in targets if s in orgs and orgs[s]["status"] == "ACTIVE" and not orgs[s].get("fail_sync")
        ]
        datasets = [f"{slug}_{ENV_SUFFIX}" for slug in syncable]
        bq.ensure_datasets(project, datasets)
        columns = bq.column_names(project, datasets)  # one catalog read for every org table
        for slug in targets:
            org = orgs.get(slug)
            if org is None:
                failed.append({"org_slug": slug, "error": f"Organization {slug!r} not found"})
            elif org["status"] == "SUSPENDED":
                failed.append({"org_slug": slug, "error": f"Organization {slug!r} is SUSPENDED"})
            elif org["status"] == "BROKEN" or org.get("fail_sync"):
                why = "org status is BROKEN" if org["status"] == "BROKEN" else "injected failure (fail_sync)"
                failed.append({"org_slug": slug, "error": f"Dataset sync failed for org {slug}: {why}"})
            else:
                dataset = f"{slug}_{ENV_SUFFIX}"
                for table, fields in ORG_TABLES.items():
                    have = columns.get((dataset, table))
                    if have is None:
                        bq.create_table(project, dataset, table, fields)
                        continue
                    for field in fields:
                        if field["name"] not in have:
                            bq.add_column(project, dataset, table, field)
                synced += 1
        names = ", ".join(f["org_slug"] for f in failed)
        return {
            "success": not failed,
            "orgs_processed": len(targets),
            "orgs_synced": synced,
            "orgs_failed": len(failed),
            "failed_orgs": failed,
            "message": f"Synced {synced} org datasets"
            + (f"; {len(failed)} failed: {names}" if failed else ""),
        }

    # --- quotas -------------------------------------------------------------------------------------

    def _write_quota_rows(self, period: str, usage_date: dt.date) -> dict[str, Any]:
        self._require_bootstrap()
        bq, project, now = self._bq(), self.cloud.project, self.cloud.now()
        active = [s for s in self._not_suspended() if self._state["orgs"][s]["status"] == "ACTIVE"]
        # Idempotent per day (CONTRACTS.md: a retry must not double-count): the service lock and the
        # BigQuery batch make "read what exists, add the rest" atomic.
        existing = bq.run_query(
            QUOTA_EXISTING.format(project=project), {"usage_date": usage_date, "period": period}, project
        )
        done = {row[0] for row in existing.rows}
        rows = [
            {
                "usage_id": f"{slug}-{period.lower()}-{usage_date.isoformat()}",
                "org_slug": slug,
                "usage_date": usage_date,
                "period_type": period,
                "pipelines_run_today": 0,
                "pipelines_succeeded_today": 0,
                "pipelines_failed_today": 0,
                "pipelines_run_month": 0,
                "concurrent_pipelines_running": int(org["concurrent_running"]),
                "daily_limit": org["daily_limit"],
                "monthly_limit": org["monthly_limit"],
                "concurrent_limit": org["concurrent_limit"],
                "created_at": now,
                "last_updated": now,
            }
            for slug in active
            if slug not in done
            for org in [self._state["orgs"][slug]]
        ]
        created = bq.insert_rows(project, META_DATASET, QUOTA_TABLE, rows)
        skipped = len(active) - created
        label = "Daily" if period == "DAILY" else "Monthly"
        return {
            "success": True,
            "orgs_processed": len(active),
            "orgs_created": created,
            "orgs_skipped": skipped,
            "message": f"{label} quota reset complete for {len(active)} orgs "
            f"({created} created, {skipped} already reset for {usage_date.isoformat()})",
        }

    def _reset_daily(self, _body: dict[str, Any]) -> dict[str, Any]:
        return self._write_quota_rows("DAILY", self.cloud.now().date())

    def _reset_monthly(self, _body: dict[str, Any]) -> dict[str, Any]:
        return self._write_quota_rows("MONTHLY", self.cloud.now().date().replace(day=1))

    @staticmethod
    def _is_stale(org: dict[str, Any], now: dt.datetime) -> bool:
        updated = dt.datetime.fromisoformat(org["counter_updated_at"])
        return org["concurrent_running"] > 0 and now - updated > STALE_AFTER

    def _cleanup_stale(self, _body: dict[str, Any]) -> dict[str, Any]:
        now = self.cloud.now()
        bq, project = self._bq(), self.cloud.project
        has_table = bq.table_schema(project, META_DATASET, QUOTA_TABLE) is not None
        active = self._not_suspended()
        fixed = 0
        for slug in active:
            org = self._state["orgs"][slug]
            if self._is_stale(org, now):
                org.update(concurrent_running=0, counter_updated_at=now.isoformat())
                if has_table:
                    bq.run_query(
                        COUNTER_RESET.format(project=project),
                        {"org_slug": slug, "usage_date": now.date(), "now": now},
                        project,
                    )
                fixed += 1
        self._save()
        return {
            "success": True,
            "orgs_processed": len(active),
            "orgs_created": fixed,
            "orgs_skipped": len(active) - fixed,
            "message": f"Cleaned up {fixed} stale concurrent counters",
        }

    # --- alerts -------------------------------------------------------------------------------------

    def _process_alerts(self, body: dict[str, Any]) -> dict[str, Any]:
        slug = body.get("org_slug")
        types = body.get("alert_types") or list(ALERT_TYPES)
        if not isinstance(types, list) or any(t not in ALERT_TYPES for t in types):
            raise ApiError(422, f"bad alert_types {types!r}: each one of {', '.join(ALERT_TYPES)}")
        send = self._bool(body, "send_notifications", True)
        dry_run = self._bool(body, "dry_run", False)
        orgs = self._state["orgs"]
        if slug is not None:
            if not isinstance(slug, str) or slug not in orgs:
                raise ApiError(404, f"Organization {slug!r} not found")
            targets = [slug] if orgs[slug]["status"] != "SUSPENDED" else []
        else:
            targets = self._not_suspended()
        triggered = sent = 0
        org_errors: list[dict[str, str]] = []
        now = self.cloud.now().isoformat()
        for name in targets:
            org = orgs[name]
            if org.get("fail_alerts"):
                org_errors.append({"org_slug": name, "error": f"Alert evaluation failed for org {name}"})
                continue
            for rule in org["alert_rules"]:
                if (
                    rule["enabled"]
                    and rule["alert_type"] in types
                    and _metric(org, rule["alert_type"]) >= rule["threshold"]
                ):
                    triggered += 1
                    if send and not dry_run:
                        sent += 1
                        self._state["notifications"].append(
                            {
                                "org_slug": name,
                                "rule_id": rule["rule_id"],
                                "alert_type": rule["alert_type"],
                                "sent_at": now,
                            }
                        )
        if sent:
            self._state["notifications"] = self._state["notifications"][-MAX_NOTIFICATIONS:]
            self._save()
        return {
            "success": not org_errors,
            "orgs_processed": len(targets),
            "alerts_triggered": triggered,
            "notifications_sent": sent,
            "errors": len(org_errors),
            "org_errors": org_errors,
            "message": f"Processed alerts for {len(targets)} orgs: {triggered} triggered, "
            f"{sent} notifications sent" + (" (dry run)" if dry_run else ""),
        }


def _metric(org: dict[str, Any], alert_type: str) -> float:
    cost, previous, budget = org["current_cost"], org["previous_cost"], org["budget"]
    change = abs(cost - previous)
    return {
        "cost_threshold": cost,
        "absolute_threshold": cost,
        "budget_percent": cost / budget * 100,
        "hierarchy_budget": cost / budget * 100,
        "budget_forecast": cost * 1.5 / budget * 100,
        "anomaly_percent_change": change / previous * 100 if previous else 0.0,
        "anomaly_std_deviation": change / max(previous * 0.1, 1.0),
    }[alert_type]
