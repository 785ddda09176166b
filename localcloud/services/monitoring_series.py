"""Cloud Monitoring's reads of time series (timeSeries.list: filter, interval, aggregation, view; and
`read_series`, which the evaluator uses too) and the points Cloud Run's executions write (its job metrics:
completed_execution_count and completed_task_attempt_count per 60 s sample with their `result`,
running_executions sampled at each minute boundary)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from localcloud.clock import rfc3339
from localcloud.services import monitoring_aggregate as agg_mod
from localcloud.services import monitoring_filter as flt
from localcloud.services.monitoring_base import MonitoringState, micros, parse_time
from localcloud.services.monitoring_metrics import typed_json
from localcloud.services.monitoring_store import builtin_descriptor, ingest_delay_us
from localcloud.services.run_errors import ApiError

RUN_COMPLETED = "run.googleapis.com/job/completed_execution_count"
RUN_ATTEMPTS = "run.googleapis.com/job/completed_task_attempt_count"
RUN_RUNNING = "run.googleapis.com/job/running_executions"
SAMPLE_US = 60_000_000


class SeriesApi(MonitoringState):
    # ---- timeSeries.list -----------------------------------------------------------------------------

    def _list_series(self, request, body, project):
        args = request.args
        text = args.get("filter", "")
        if not text:
            raise ApiError(
                400, "Field filter had an invalid value: a filter naming one metric type is required."
            )
        tree = flt.parse(text)
        flt.check_series_fields(tree, text)
        metric_type = flt.exact(tree, "metric.type")
        if metric_type is None:
            raise ApiError(
                400, f'Field filter had an invalid value of "{text}": A single metric type must be specified.'
            )
        if args.get("orderBy"):
            raise ApiError(
                400, 'Field order_by had an invalid value: Unsupported: "orderBy" must be left blank.'
            )
        if any(
            args.get(k)
            for k in args
            if k.startswith("secondaryAggregation.") and "NONE" not in args.get(k, "")
        ):
            raise ApiError(400, "localcloud does not emulate secondaryAggregation.")
        view = args.get("view") or "FULL"
        if view not in ("FULL", "HEADERS"):
            raise ApiError(
                400,
                "Invalid value at 'view' "
                f'(type.googleapis.com/google.monitoring.v3.ListTimeSeriesRequest.TimeSeriesView), "{view}"',
            )
        if not args.get("interval.endTime"):
            raise ApiError(400, "Field interval.end_time had an invalid value: an end time is required.")
        end = parse_time(args["interval.endTime"], "interval.end_time")
        start = (
            parse_time(args["interval.startTime"], "interval.start_time")
            if args.get("interval.startTime")
            else end
        )
        if start > end:
            raise ApiError(
                400,
                f'Field interval.start_time had an invalid value of "{args["interval.startTime"]}": The '
                "start time "
                f"must be before the end time ({args['interval.endTime']}).",
            )
        descriptor = self.descriptor(project, metric_type)
        if descriptor is None:
            raise ApiError(404, f"Could not find descriptor for metric '{metric_type}'.")
        spec = {
            "alignmentPeriod": args.get("aggregation.alignmentPeriod"),
            "perSeriesAligner": args.get("aggregation.perSeriesAligner"),
            "crossSeriesReducer": args.get("aggregation.crossSeriesReducer"),
            "groupByFields": args.getlist("aggregation.groupByFields"),
        }
        agg = agg_mod.aggregation(spec, "aggregation", descriptor["metricKind"], descriptor["valueType"])
        found = self.read_series(
            project, tree, metric_type, agg, micros(start), micros(end), micros(self.cloud.now())
        )
        out_series = [self._series_json(s, view) for s in found if s["points"]]
        size = int(args.get("pageSize") or 0)
        size = 100_000 if size <= 0 or size > 100_000 else size
        offset = _offset(args.get("pageToken"))
        chunk, used = [], 0
        for series in out_series[offset:]:
            cost = 1 if view == "HEADERS" else max(1, len(series.get("points", [])))
            if chunk and used + cost > size:
                break
            chunk.append(series)
            used += cost
        out: dict[str, Any] = {"timeSeries": chunk} if chunk else {}
        if descriptor.get("unit") and chunk:
            out["unit"] = descriptor["unit"]
        if offset + len(chunk) < len(out_series):
            out["nextPageToken"] = base64.urlsafe_b64encode(str(offset + len(chunk)).encode()).decode()
        return out

    def read_series(
        self, project, tree, metric_type, agg, start_us, end_us, visible_at_us
    ) -> list[dict[str, Any]]:
        """The series of a metric matching a filter, aligned and reduced over (start, end], as visible at
        `visible_at_us`: [{"metric", "resource", "metricKind", "valueType", "points": [(s, e, v)] newest
        first,
        "last_end": the newest raw point's end}]."""
        lookback = agg.period_s * 1_000_000 if agg.aligner != "ALIGN_NONE" else 0
        aligned = []
        for series in self.store.series(project, metric_type):
            try:
                if not flt.matches(tree, flt.series_resolver(series, project)):
                    continue
            except flt.FilterError as e:
                raise flt.bad_filter("", str(e)) from None
            after = start_us - lookback if lookback else start_us - 1
            raw = self.store.points(series["id"], after, end_us, visible_at_us)
            before = (
                self.store.latest_before(series["id"], after, visible_at_us)
                if series["metricKind"] == "CUMULATIVE"
                else None
            )
            points = agg_mod.align(
                raw, before, agg, series["metricKind"], series["valueType"], start_us, end_us
            )
            kind, value_type = agg_mod.output_types(
                agg_mod.Aggregation(agg.period_s, agg.aligner), series["metricKind"], series["valueType"]
            )
            aligned.append(
                {
                    "metric": series["metric"],
                    "resource": series["resource"],
                    "metricKind": kind,
                    "valueType": value_type,
                    "points": points,
                    "last_end": raw[-1][1] if raw else None,
                }
            )
        if agg.reducer == "REDUCE_NONE":
            return aligned
        return agg_mod.reduce([s for s in aligned if s["points"]], agg)

    @staticmethod
    def _series_json(series: dict[str, Any], view: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "metric": {
                "type": series["metric"]["type"],
                **({"labels": series["metric"]["labels"]} if series["metric"]["labels"] else {}),
            },
            "resource": {"type": series["resource"]["type"], "labels": series["resource"]["labels"]},
            "metricKind": series["metricKind"],
            "valueType": series["valueType"],
        }
        if view == "FULL":
            out["points"] = [
                {
                    "interval": {"startTime": _ts(start), "endTime": _ts(end)},
                    "value": typed_json(value, series["valueType"]),
                }
                for start, end, value in series["points"]
            ]
        return out


class RunMetrics(MonitoringState):
    # ---- Cloud Run's job metrics -----------------------------------------------------------------------

    def _run_resource(self, execution_name: str) -> tuple[str, dict[str, str]]:
        parts = execution_name.split("/")  # projects/p/locations/l/jobs/j/executions/e
        return parts[1], {"project_id": parts[1], "location": parts[3], "job_name": parts[5]}

    def _run_count(self, metric_type: str, execution_name: str, result: str) -> None:
        project, labels = self._run_resource(execution_name)
        now_us = micros(self.cloud.now())
        start = now_us - now_us % SAMPLE_US  # the 60 s sample the event falls in
        end = start + SAMPLE_US
        visible = end + ingest_delay_us(builtin_descriptor(project, metric_type) or {})
        self.store.write(
            project, metric_type, {"result": result}, "cloud_run_job", labels, "DELTA", "INT64",
            start, end, 1, visible, accumulate=True,
        )  # fmt: skip

    def run_started(self, execution_name: str) -> None:
        """Cloud Run started an execution: the job's running_executions gauge counts it."""
        project, labels = self._run_resource(execution_name)
        key = (project, labels["location"], labels["job_name"])
        with self._lock:
            count, peak = self._running.get(key, (0, 0))
            self._running[key] = (count + 1, max(peak, count + 1))

    def run_attempt(self, execution_name: str, result: str) -> None:
        """A task attempt ended (succeeded or failed): completed_task_attempt_count."""
        self._run_count(RUN_ATTEMPTS, execution_name, result)

    def run_completed(self, execution_name: str, result: str, started: bool) -> None:
        """An execution ended (succeeded, failed, cancelled): completed_execution_count; it stops running."""
        self._run_count(RUN_COMPLETED, execution_name, result)
        if not started:
            return
        project, labels = self._run_resource(execution_name)
        key = (project, labels["location"], labels["job_name"])
        with self._lock:
            if key in self._running:
                count, peak = self._running[key]
                self._running[key] = (max(0, count - 1), peak)

    def _sample_running(self, at_us: int) -> None:
        """The running_executions samples at a minute boundary: each job's peak since the last sample; a job
        whose count is back to 0 gets one last 0 sample and is forgotten."""
        with self._lock:
            for key, (count, peak) in list(self._running.items()):
                project, location, job = key
                labels = {"project_id": project, "location": location, "job_name": job}
                visible = at_us + ingest_delay_us(builtin_descriptor(project, RUN_RUNNING) or {})
                self.store.write(
                    project,
                    RUN_RUNNING,
                    {},
                    "cloud_run_job",
                    labels,
                    "GAUGE",
                    "INT64",
                    at_us,
                    at_us,
                    peak,
                    visible,
                )
                if count == 0:
                    del self._running[key]
                else:
                    self._running[key] = (count, count)


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token + "==").decode())
    except ValueError:
        raise ApiError(
            400, "Field page_token had an invalid value: not a token this list returned."
        ) from None


def _ts(us: int) -> str:
    return rfc3339(datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000))
