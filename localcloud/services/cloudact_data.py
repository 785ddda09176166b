"""The CloudAct API's fixed data: the BigQuery tables it manages (the meta dataset's and every org
dataset's), the orgs it seeds, the queries it runs on the quota table, and each org's deterministic
cost figures and alert metrics."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

ENV_SUFFIX = "local"
META_DATASET = "organizations"
QUOTA_TABLE = "org_usage_quotas"
STALE_AFTER = dt.timedelta(hours=1)
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


def digest(slug: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{slug}".encode()).digest()[:4], "big")


def metric(org: dict[str, Any], alert_type: str) -> float:
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
