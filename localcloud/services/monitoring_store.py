"""Cloud Monitoring's time series on disk (SQLite, `<state>/monitoring/points.sqlite3`) and the metric and
monitored-resource descriptors localcloud knows.

A series is (project, metric type, metric labels, resource type, resource labels) with its kind and value
type; a point has a start and end time (microseconds), a value (JSON: int, float or bool) and the time
it becomes readable (`visible_us`: its arrival or end time, whichever is later, plus the metric's
`metadata.ingestDelay`). Cloud Run's job metrics come from the executions Cloud Run runs here
(`record_run`); custom metrics from timeSeries.create.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

# The metric Cloud Run writes for its jobs (https://cloud.google.com/monitoring/api/metrics_gcp_p_z#gcp-run):
# sampled every 60 s; after sampling the data is not visible for up to 180 s (the ingest delay).
RUN_METADATA = {"samplePeriod": "60s", "ingestDelay": "180s"}
CUSTOM_INGEST_S = 5  # custom metrics: readable 5 s after they arrive (localcloud's choice)
RESULT_LABEL = {"key": "result", "description": "Result of the execution, e.g. succeeded, failed."}
BUILTIN: dict[str, dict[str, Any]] = {
    "run.googleapis.com/job/completed_execution_count": {
        "labels": [RESULT_LABEL],
        "metricKind": "DELTA",
        "valueType": "INT64",
        "unit": "1",
        "description": "Number of completed job executions and their result.",
        "displayName": "Completed Executions",
    },
    "run.googleapis.com/job/completed_task_attempt_count": {
        "labels": [
            {"key": "result", "description": "Exit result of the task attempt, e.g. succeeded, failed."}
        ],
        "metricKind": "DELTA",
        "valueType": "INT64",
        "unit": "1",
        "description": "Number of completed task attempts and their corresponding exit result.",
        "displayName": "Completed Task Attempts",
    },
    "run.googleapis.com/job/running_executions": {
        "metricKind": "GAUGE",
        "valueType": "INT64",
        "unit": "1",
        "description": "Number of running job executions.",
        "displayName": "Running Executions",
    },
}
RESOURCES: dict[str, dict[str, Any]] = {
    "cloud_run_job": {
        "displayName": "Cloud Run Job",
        "description": "A Cloud Run job.",
        "labels": ("project_id", "location", "job_name"),
    },
    "generic_task": {
        "displayName": "Generic Task",
        "description": "A generic task identifies an application process for which no more specific "
        "resource is "
        "applicable, such as a process scheduled by a custom orchestration system.",
        "labels": ("project_id", "location", "namespace", "job", "task_id"),
    },
    "generic_node": {
        "displayName": "Generic Node",
        "description": "A generic node identifies a machine or other computational resource for which no "
        "more "
        "specific resource type is applicable.",
        "labels": ("project_id", "location", "namespace", "node_id"),
    },
    "global": {
        "displayName": "Global",
        "description": "A global resource identifies a resource that is not associated with a specific "
        "location.",
        "labels": ("project_id",),
    },
}
CUSTOM_RESOURCES = ("generic_task", "generic_node", "global")  # what custom metrics may be written against
CUSTOM_PREFIXES = ("custom.googleapis.com/", "external.googleapis.com/")


def builtin_descriptor(project: str, metric_type: str) -> dict[str, Any] | None:
    spec = BUILTIN.get(metric_type)
    if spec is None:
        return None
    return {
        "name": f"projects/{project}/metricDescriptors/{metric_type}",
        "type": metric_type,
        **spec,
        "launchStage": "BETA",
        "metadata": dict(RUN_METADATA),
        "monitoredResourceTypes": ["cloud_run_job"],
    }


def resource_descriptor(project: str, kind: str) -> dict[str, Any]:
    spec = RESOURCES[kind]
    return {
        "name": f"projects/{project}/monitoredResourceDescriptors/{kind}",
        "type": kind,
        "displayName": spec["displayName"],
        "description": spec["description"],
        "labels": [{"key": key, "description": f"The {key.replace('_', ' ')}."} for key in spec["labels"]],
        "launchStage": "GA",
    }


def ingest_delay_us(descriptor: dict[str, Any]) -> int:
    text = (descriptor.get("metadata") or {}).get("ingestDelay")
    if not text:
        return CUSTOM_INGEST_S * 1_000_000
    return int(float(text.rstrip("s")) * 1_000_000)


def series_key(metric_labels: dict[str, str], resource_type: str, resource_labels: dict[str, str]) -> str:
    return json.dumps([sorted(metric_labels.items()), resource_type, sorted(resource_labels.items())])


class Store:
    """The points (SQLite; every call under one lock)."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        with self._lock:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across a crash of localcloud
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS series(id INTEGER PRIMARY KEY, project TEXT, metric_type TEXT, "
                "key TEXT, resource_type TEXT, resource_labels TEXT, metric_labels TEXT, kind TEXT, "
                "value_type TEXT, UNIQUE(project, metric_type, key))"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS points(series INTEGER, start_us INTEGER, end_us INTEGER, "
                "value TEXT, visible_us INTEGER, PRIMARY KEY(series, end_us, start_us))"
            )

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def reset(self) -> None:
        with self._lock:
            assert self._db is not None
            self._db.execute("DELETE FROM points")
            self._db.execute("DELETE FROM series")

    def _series_id(
        self, project, metric_type, metric_labels, resource_type, resource_labels, kind, value_type
    ):
        assert self._db is not None
        key = series_key(metric_labels, resource_type, resource_labels)
        row = self._db.execute(
            "SELECT id FROM series WHERE project=? AND metric_type=? AND key=?", (project, metric_type, key)
        ).fetchone()
        if row:
            return row[0]
        cur = self._db.execute(
            "INSERT INTO series(project, metric_type, key, resource_type, resource_labels, metric_labels, "
            "kind, "
            "value_type) VALUES (?,?,?,?,?,?,?,?)",
            (
                project,
                metric_type,
                key,
                resource_type,
                json.dumps(resource_labels, sort_keys=True),
                json.dumps(metric_labels, sort_keys=True),
                kind,
                value_type,
            ),
        )
        return cur.lastrowid

    def last_point(self, project: str, metric_type: str, key: str) -> tuple[int, int] | None:
        """(start_us, end_us) of a series' newest point, if any."""
        with self._lock:
            assert self._db is not None
            row = self._db.execute(
                "SELECT p.start_us, p.end_us FROM points p JOIN series s ON s.id = p.series "
                "WHERE s.project=? AND s.metric_type=? AND s.key=? ORDER BY p.end_us DESC LIMIT 1",
                (project, metric_type, key),
            ).fetchone()
        return (row[0], row[1]) if row else None

    def write(
        self,
        project: str,
        metric_type: str,
        metric_labels: dict[str, str],
        resource_type: str,
        resource_labels: dict[str, str],
        kind: str,
        value_type: str,
        start_us: int,
        end_us: int,
        value: Any,
        visible_us: int,
        accumulate: bool = False,
    ) -> None:
        """One point; with `accumulate`, a point already at (start, end) gets `value` added (a sample of a
        DELTA counter that is still open)."""
        with self._lock:
            assert self._db is not None
            sid = self._series_id(
                project, metric_type, metric_labels, resource_type, resource_labels, kind, value_type
            )
            row = self._db.execute(
                "SELECT value FROM points WHERE series=? AND start_us=? AND end_us=?", (sid, start_us, end_us)
            ).fetchone()
            if row and accumulate:
                value = json.loads(row[0]) + value
            self._db.execute(
                "INSERT OR REPLACE INTO points(series, start_us, end_us, value, visible_us) VALUES "
                "(?,?,?,?,?)",
                (sid, start_us, end_us, json.dumps(value), visible_us),
            )

    def series(self, project: str, metric_type: str) -> list[dict[str, Any]]:
        """Every series of a metric in a project: {"id", "metric", "resource", "metricKind", "valueType"}."""
        with self._lock:
            assert self._db is not None
            rows = self._db.execute(
                "SELECT id, resource_type, resource_labels, metric_labels, kind, value_type FROM series "
                "WHERE project=? AND metric_type=? ORDER BY id",
                (project, metric_type),
            ).fetchall()
        return [
            {
                "id": sid,
                "metric": {"type": metric_type, "labels": json.loads(metric_labels)},
                "resource": {"type": rtype, "labels": json.loads(resource_labels)},
                "metricKind": kind,
                "valueType": value_type,
            }
            for sid, rtype, resource_labels, metric_labels, kind, value_type in rows
        ]

    def points(
        self, sid: int, after_us: int, until_us: int, visible_at_us: int
    ) -> list[tuple[int, int, Any]]:
        """(start_us, end_us, value) of a series' readable points with after < end <= until, oldest first."""
        with self._lock:
            assert self._db is not None
            rows = self._db.execute(
                "SELECT start_us, end_us, value FROM points WHERE series=? AND end_us>? AND end_us<=? "
                "AND visible_us<=? ORDER BY end_us",
                (sid, after_us, until_us, visible_at_us),
            ).fetchall()
        return [(s, e, json.loads(v)) for s, e, v in rows]

    def latest_before(self, sid: int, at_us: int, visible_at_us: int) -> tuple[int, int, Any] | None:
        with self._lock:
            assert self._db is not None
            row = self._db.execute(
                "SELECT start_us, end_us, value FROM points WHERE series=? AND end_us<=? AND visible_us<=? "
                "ORDER BY end_us DESC LIMIT 1",
                (sid, at_us, visible_at_us),
            ).fetchone()
        return (row[0], row[1], json.loads(row[2])) if row else None

    def has_data(self, project: str, metric_type: str, since_us: int) -> bool:
        with self._lock:
            assert self._db is not None
            row = self._db.execute(
                "SELECT 1 FROM points p JOIN series s ON s.id = p.series WHERE s.project=? AND "
                "s.metric_type=? "
                "AND p.end_us>? LIMIT 1",
                (project, metric_type, since_us),
            ).fetchone()
        return row is not None

    def delete_metric(self, project: str, metric_type: str) -> None:
        with self._lock:
            assert self._db is not None
            ids = [
                r[0]
                for r in self._db.execute(
                    "SELECT id FROM series WHERE project=? AND metric_type=?", (project, metric_type)
                )
            ]
            for sid in ids:
                self._db.execute("DELETE FROM points WHERE series=?", (sid,))
            self._db.execute("DELETE FROM series WHERE project=? AND metric_type=?", (project, metric_type))

    def expire(self, before_us: int) -> None:
        """Forget points that ended before `before_us` (Cloud Monitoring keeps 6 weeks of points)."""
        with self._lock:
            assert self._db is not None
            self._db.execute("DELETE FROM points WHERE end_us<?", (before_us,))
