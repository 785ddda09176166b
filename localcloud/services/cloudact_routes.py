"""The CloudAct admin API's routes (docs/cloudact-api.md): bootstrap (status, create, sync), org-sync-all,
the quota resets and stale-counter cleanup, and alert processing, on the emulated BigQuery."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from localcloud.service import Service
from localcloud.services.cloudact_data import (
    ALERT_TYPES,
    COUNTER_RESET,
    META_DATASET,
    META_TABLES,
    ORG_TABLES,
    QUOTA_EXISTING,
    QUOTA_TABLE,
    STALE_AFTER,
    metric,
)

MAX_NOTIFICATIONS = 1000


class ApiError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


class CloudActRoutes(Service):
    """The handlers CloudActApiService routes to, each called under `_lock` inside one BigQuery batch
    with the JSON body; they change `_state` and persist it with `_save` (the service's)."""

    _lock: threading.RLock
    _state: dict[str, Any]
    project: str  # the environment's project (its BigQuery datasets)
    dataset_suffix: str  # org datasets are <org>_<suffix>

    def _not_suspended(self) -> list[str]:
        return sorted(s for s, o in self._state["orgs"].items() if o["status"] != "SUSPENDED")

    def _bq(self):
        return self.cloud.service("bigquery")

    @staticmethod
    def _bool(body: dict[str, Any], key: str, default: bool) -> bool:
        value = body.get(key, default)
        if not isinstance(value, bool):
            raise ApiError(422, f"{key} must be true or false, got {value!r}")
        return value

    # --- bootstrap ----------------------------------------------------------------------------------

    def _status(self) -> dict[str, Any]:
        bq, project = self._bq(), self.project
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
        bq, project = self._bq(), self.project
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
        bq, project = self._bq(), self.project
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
        if self._bq().table_schema(self.project, META_DATASET, QUOTA_TABLE) is None:
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
        bq, project = self._bq(), self.project
        failed: list[dict[str, str]] = []
        synced = 0
        syncable = [
            s for s in targets if s in orgs and orgs[s]["status"] == "ACTIVE" and not orgs[s].get("fail_sync")
        ]
        datasets = [f"{slug}_{self.dataset_suffix}" for slug in syncable]
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
                dataset = f"{slug}_{self.dataset_suffix}"
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
        bq, project, now = self._bq(), self.project, self.cloud.now()
        active = [s for s in self._not_suspended() if self._state["orgs"][s]["status"] == "ACTIVE"]
        # Idempotent per day (docs/cloudact-api.md: a retry must not double-count): the service lock and the
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
        bq, project = self._bq(), self.project
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
                    and metric(org, rule["alert_type"]) >= rule["threshold"]
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
