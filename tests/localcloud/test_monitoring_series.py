"""Cloud Monitoring's metrics on localcloud: metric and monitored-resource descriptors, timeSeries.create for
custom metrics (Google's write rules), timeSeries.list (filters, interval, alignment, reduction, views, the
ingest delay), and Cloud Run's job metrics written by the executions localcloud runs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.localcloud.monitoring_cloud import MON, PROJECT, owner, ts, unique

V3 = "https://monitoring.googleapis.com/v3"
RUN_METRICS = (
    "run.googleapis.com/job/completed_execution_count",
    "run.googleapis.com/job/completed_task_attempt_count",
    "run.googleapis.com/job/running_executions",
)
TASK_LABELS = {
    "project_id": PROJECT,
    "location": "us-central1",
    "namespace": "tests",
    "job": "mon",
    "task_id": "0",
}


@pytest.fixture(scope="module")
def mon(localcloud):
    yield from owner(localcloud)


def series(metric: str, value: dict, end, **extra) -> dict:
    resource = extra.pop("resource", {"type": "generic_task", "labels": TASK_LABELS})
    point = {"interval": {"endTime": ts(end)}, "value": value}
    return {"metric": {"type": metric, **extra}, "resource": resource, "points": [point]}


def listing(mon, metric: str, start, end, **params) -> list[dict]:
    params = {
        "filter": f'metric.type="{metric}"',
        "interval.startTime": ts(start),
        "interval.endTime": ts(end),
        **params,
    }
    return mon.ok("GET", f"{MON}/timeSeries", params=params).get("timeSeries", [])


def values(found: list[dict]) -> list[list]:
    out = []
    for item in found:
        out.append([next(iter(p["value"].values())) for p in item.get("points", [])])
    return out


# ---- descriptors --------------------------------------------------------------------------------------


def test_cloud_runs_job_metrics_are_described_with_their_ingest_delay(mon):
    for metric in RUN_METRICS:
        found = mon.ok("GET", f"{MON}/metricDescriptors/{metric}")
        assert found["name"] == f"projects/{PROJECT}/metricDescriptors/{metric}"
        assert found["metadata"] == {"samplePeriod": "60s", "ingestDelay": "180s"}
        assert found["monitoredResourceTypes"] == ["cloud_run_job"]
    kinds = {
        d["type"]: (d["metricKind"], d["valueType"], [label["key"] for label in d.get("labels", [])])
        for d in mon.ok(
            "GET", f"{MON}/metricDescriptors", params={"filter": 'metric.type=starts_with("run.")'}
        )["metricDescriptors"]
    }
    assert kinds == {
        RUN_METRICS[0]: ("DELTA", "INT64", ["result"]),
        RUN_METRICS[1]: ("DELTA", "INT64", ["result"]),
        RUN_METRICS[2]: ("GAUGE", "INT64", []),
    }
    job = mon.ok("GET", f"{MON}/monitoredResourceDescriptors/cloud_run_job")
    assert [label["key"] for label in job["labels"]] == ["project_id", "location", "job_name"]
    task = mon.ok("GET", f"{MON}/monitoredResourceDescriptors/generic_task")
    assert [label["key"] for label in task["labels"]] == [
        "project_id",
        "location",
        "namespace",
        "job",
        "task_id",
    ]
    missing = mon.refused("GET", f"{MON}/metricDescriptors/custom.googleapis.com/none", 404)
    assert missing == "Could not find descriptor for metric 'custom.googleapis.com/none'."


def test_custom_descriptors_are_created_updated_without_losing_labels_and_deleted(mon):
    metric = f"custom.googleapis.com/{unique('desc')}"
    body = {
        "type": metric,
        "metricKind": "GAUGE",
        "valueType": "DOUBLE",
        "labels": [{"key": "queue"}],
        "unit": "s",
    }
    created = mon.ok("POST", f"{MON}/metricDescriptors", json=body)
    assert created["name"] == f"projects/{PROJECT}/metricDescriptors/{metric}" and created["unit"] == "s"
    assert created["metadata"] == {"ingestDelay": "5s"}
    again = mon.ok("POST", f"{MON}/metricDescriptors", json={**body, "labels": [{"key": "shard"}]})
    assert sorted(label["key"] for label in again["labels"]) == ["queue", "shard"]  # labels are never removed
    assert "Cannot change the kind or value type" in mon.refused(
        "POST", f"{MON}/metricDescriptors", json={**body, "valueType": "INT64"}
    )
    delta = mon.refused("POST", f"{MON}/metricDescriptors", json={**body, "metricKind": "DELTA"})
    assert (
        delta
        == 'Field metric_descriptor.metric_kind had an invalid value of "DELTA": custom metrics are GAUGE or '
        "CUMULATIVE."
    )
    assert "a custom metric type starts with" in mon.refused(
        "POST", f"{MON}/metricDescriptors", json={**body, "type": "run.googleapis.com/x"}
    )
    listed = mon.ok("GET", f"{MON}/metricDescriptors", params={"filter": f'metric.type="{metric}"'})
    assert [d["type"] for d in listed["metricDescriptors"]] == [metric]
    mon.ok("DELETE", f"{V3}/projects/{PROJECT}/metricDescriptors/{metric}")
    mon.refused("GET", f"{MON}/metricDescriptors/{metric}", 404)
    builtin = mon.refused("DELETE", f"{MON}/metricDescriptors/{RUN_METRICS[2]}")
    assert builtin == f"Only user-created custom metrics can be deleted; {RUN_METRICS[2]} is not one."


# ---- writes ---------------------------------------------------------------------------------------------


def test_time_series_writes_follow_googles_rules(mon):
    metric = f"custom.googleapis.com/{unique('rules')}"
    now = mon.now()
    mon.ok(
        "POST",
        f"{MON}/timeSeries",
        json={"timeSeries": [series(metric, {"int64Value": "1"}, now, labels={"queue": "a"})]},
    )
    auto = mon.ok("GET", f"{MON}/metricDescriptors/{metric}")
    assert (auto["metricKind"], auto["valueType"], auto["labels"]) == ("GAUGE", "INT64", [{"key": "queue"}])

    def refused(*items) -> str:
        return mon.refused("POST", f"{MON}/timeSeries", json={"timeSeries": list(items)})

    later = now + timedelta(seconds=10)
    one = series(metric, {"int64Value": "2"}, later, labels={"queue": "a"})
    assert refused(*[one] * 201) == (
        "Field timeSeries had an invalid value: at most 200 TimeSeries can be written in one request; got "
        "201."
    )
    two_points = {**one, "points": one["points"] * 2}
    assert "Only one point can be written per TimeSeries per request (got 2)." in refused(two_points)
    duplicate = refused(one, one)
    assert duplicate.startswith(
        "One or more TimeSeries could not be written: Field timeSeries[1] had an invalid"
    )
    assert (
        "Duplicate TimeSeries encountered. Only one point can be written per TimeSeries per request."
        in duplicate
    )
    in_order = (
        "Points must be written in order. One or more of the points specified had an older start time than "
        "the most "
        "recent point."
    )
    assert in_order in refused(
        series(metric, {"int64Value": "3"}, later, labels={"queue": "a"})
    )  # `one` was written
    often = (
        "One or more points were written more frequently than the maximum sampling period configured for the "
        "metric."
    )
    assert often in refused(
        series(metric, {"int64Value": "3"}, later + timedelta(seconds=4), labels={"queue": "a"})
    )
    old = series(metric, {"int64Value": "3"}, now - timedelta(hours=26), labels={"queue": "b"})
    assert (
        "Data points cannot be written more than 25h in the past or more than 5m in the future."
        in refused(old)
    )
    assert "more than 5m in the future" in refused(
        series(metric, {"int64Value": "3"}, now + timedelta(minutes=6), labels={"queue": "b"})
    )
    assert f"Value type for metric {metric} must be INT64, but is DOUBLE." in refused(
        series(metric, {"doubleValue": 1.5}, later, labels={"queue": "c"})
    )
    assert "only custom metrics" in refused(series(RUN_METRICS[2], {"int64Value": "1"}, now))
    job = {
        "type": "cloud_run_job",
        "labels": {"project_id": PROJECT, "location": "us-central1", "job_name": "j"},
    }
    assert "custom metrics are written against generic_task, generic_node, global here" in refused(
        series(metric, {"int64Value": "1"}, now, resource=job)
    )
    partial = {"type": "generic_task", "labels": {**TASK_LABELS, "task_id": None}}
    partial["labels"].pop("task_id")
    assert "(missing: ['task_id'], unknown: none)" in refused(
        series(metric, {"int64Value": "1"}, now, resource=partial)
    )
    gauge = series(metric, {"int64Value": "1"}, later, labels={"queue": "d"})
    gauge["points"][0]["interval"]["startTime"] = ts(now)
    assert "The start time must be equal to the end time" in refused(gauge)

    good = series(metric, {"int64Value": "7"}, later, labels={"queue": "e"})
    bad = series(metric, {"doubleValue": 7.5}, later, labels={"queue": "f"})
    reply = mon.call("POST", f"{MON}/timeSeries", json={"timeSeries": [good, bad]})
    assert reply.status_code == 400
    summary = reply.json()["error"]["details"][0]
    assert summary["@type"] == "type.googleapis.com/google.monitoring.v3.CreateTimeSeriesSummary"
    assert (summary["totalPointCount"], summary["successPointCount"]) == (2, 1)
    mon.advance(20)  # readable 5 s after its end time (10 s ahead of the clock when written)
    found = listing(
        mon,
        metric,
        now - timedelta(minutes=1),
        mon.now(),
        filter=f'metric.type="{metric}" AND metric.labels.queue="e"',
    )
    assert values(found) == [["7"]]


# ---- reads ------------------------------------------------------------------------------------------------


def test_points_are_read_after_the_ingest_delay_filtered_aligned_and_reduced(mon):
    metric = f"custom.googleapis.com/{unique('read')}"
    now = mon.align(second=30)
    base = now - timedelta(minutes=4)
    for task, numbers in (("0", (1, 5, 2, 8)), ("1", (3, 3, 9, 1))):
        for i, number in enumerate(numbers):
            resource = {"type": "generic_task", "labels": {**TASK_LABELS, "task_id": task}}
            item = series(
                metric,
                {"int64Value": str(number)},
                base + timedelta(minutes=i),
                labels={"tier": f"t{task}"},
                resource=resource,
            )
            mon.ok("POST", f"{MON}/timeSeries", json={"timeSeries": [item]})
    start, end = base - timedelta(seconds=1), now
    assert listing(mon, metric, start, end) == []  # not readable yet: 5 s of ingest delay
    end = mon.advance(6)
    raw = listing(mon, metric, start, end)
    assert values(raw) == [["8", "2", "5", "1"], ["1", "9", "3", "3"]]  # newest first, each series
    assert (
        raw[0]["metricKind"] == "GAUGE"
        and raw[0]["valueType"] == "INT64"
        and raw[0]["resource"]["labels"]["task_id"] == "0"
    )
    interval = raw[0]["points"][0]["interval"]
    assert interval["startTime"] == interval["endTime"] == ts(base + timedelta(minutes=3))

    def agg(aligner: str, reducer: str = "", *group: str, period: str = "120s") -> list[list]:
        params = {"aggregation.alignmentPeriod": period, "aggregation.perSeriesAligner": aligner}
        if reducer:
            params["aggregation.crossSeriesReducer"] = reducer
        if group:
            params["aggregation.groupByFields"] = list(group)
        return values(listing(mon, metric, start, end, **params))

    # Windows end at the interval's end and every 120 s before it while after its start: with the end at
    # base + 4m06s they are (base+2m06, base+4m06] (minute 3), (base+0m06, base+2m06] (minutes 1, 2) and
    # the one of minute 0.
    assert agg("ALIGN_MAX") == [["8", "5", "1"], ["1", "9", "3"]]
    assert agg("ALIGN_SUM") == [["8", "7", "1"], ["1", "12", "3"]]
    assert agg("ALIGN_MEAN") == [[8.0, 3.5, 1.0], [1.0, 6.0, 3.0]]
    assert agg("ALIGN_COUNT") == [["1", "2", "1"], ["1", "2", "1"]]
    assert agg("ALIGN_MAX", "REDUCE_SUM") == [["9", "14", "4"]]
    reduced = {
        "aggregation.alignmentPeriod": "120s",
        "aggregation.perSeriesAligner": "ALIGN_MAX",
        "aggregation.crossSeriesReducer": "REDUCE_MAX",
        "aggregation.groupByFields": "metric.label.tier",
    }
    grouped = listing(mon, metric, start, end, **reduced)
    assert sorted((g["metric"]["labels"]["tier"], g["resource"]["labels"]) for g in grouped) == [
        ("t0", {}),
        ("t1", {}),
    ]
    one = listing(mon, metric, start, end, filter=f'metric.type="{metric}" AND resource.labels.task_id="1"')
    assert values(one) == [["1", "9", "3", "3"]]
    others = listing(
        mon, metric, start, end, filter=f'metric.type="{metric}" NOT metric.label.tier=one_of("t1", "t2")'
    )
    assert [s["metric"]["labels"] for s in others] == [{"tier": "t0"}]
    headers = listing(mon, metric, start, end, view="HEADERS")
    assert len(headers) == 2 and all("points" not in s for s in headers)
    paged = mon.ok(
        "GET",
        f"{MON}/timeSeries",
        params={
            "filter": f'metric.type="{metric}"',
            "interval.startTime": ts(start),
            "interval.endTime": ts(end),
            "pageSize": 4,
        },
    )
    assert len(paged["timeSeries"]) == 1 and paged["nextPageToken"]

    def refused(**params) -> str:
        return mon.refused("GET", f"{MON}/timeSeries", params=params)

    assert (
        refused(**{"interval.endTime": ts(end)})
        == "Field filter had an invalid value: a filter naming one metric type is required."
    )
    assert refused(filter='resource.type="global"', **{"interval.endTime": ts(end)}).endswith(
        "A single metric type must be specified."
    )
    assert (
        refused(filter=f'metric.type="{metric}"')
        == "Field interval.end_time had an invalid value: an end time is required."
    )
    backwards = refused(
        filter=f'metric.type="{metric}"', **{"interval.startTime": ts(end), "interval.endTime": ts(start)}
    )
    assert "The start time must be before the end time" in backwards
    delta = refused(
        filter=f'metric.type="{metric}"',
        **{
            "interval.endTime": ts(end),
            "aggregation.alignmentPeriod": "60s",
            "aggregation.perSeriesAligner": "ALIGN_DELTA",
        },
    )
    assert delta.endswith("The aligner cannot be applied to metrics with kind GAUGE and value type INT64.")
    assert refused(
        filter=f'metric.type="{metric}" AND metric.colour="x"', **{"interval.endTime": ts(end)}
    ).endswith("unknown field metric.colour")


# ---- Cloud Run's job metrics ----------------------------------------------------------------------------


def test_cloud_run_executions_write_their_job_metrics_readable_after_the_ingest_delay(mon):
    failing, flaky = mon.job("--exit", "1", retries=1), mon.job("--fail-attempts", "1", retries=1)
    start = mon.now() - timedelta(minutes=1)
    assert mon.run(failing)["failedCount"] == 1
    assert mon.run(flaky)["succeededCount"] == 1
    metric = RUN_METRICS[0]

    def counts(metric: str, job: str) -> dict[str, int]:
        found = listing(
            mon, metric, start, mon.now() + timedelta(minutes=2),
            filter=f'metric.type="{metric}" AND resource.labels.job_name="{job}"',
            **{"aggregation.alignmentPeriod": "3600s", "aggregation.perSeriesAligner": "ALIGN_SUM"},
        )  # fmt: skip
        return {
            s["metric"]["labels"].get("result", ""): int(s["points"][0]["value"]["int64Value"]) for s in found
        }

    assert counts(metric, failing) == {}  # sampled each minute, then 180 s before it is readable
    mon.advance(60 + 180 + 5)
    assert counts(metric, failing) == {"failed": 1}
    assert counts(metric, flaky) == {"succeeded": 1}
    assert counts(RUN_METRICS[1], failing) == {"failed": 2}  # two attempts, each failed
    assert counts(RUN_METRICS[1], flaky) == {"failed": 1, "succeeded": 1}
    raw = listing(
        mon,
        metric,
        start,
        mon.now(),
        filter=f'metric.type="{metric}" AND resource.labels.job_name="{failing}"',
    )
    (only,) = raw
    assert only["resource"] == {
        "type": "cloud_run_job",
        "labels": {"project_id": PROJECT, "location": "us-central1", "job_name": failing},
    }
    assert only["metricKind"] == "DELTA" and only["valueType"] == "INT64"
    interval = only["points"][0]["interval"]
    assert (
        interval["endTime"].endswith(":00Z") and interval["startTime"] < interval["endTime"]
    )  # a 60 s sample
    mon.advance(120)
    running = listing(
        mon,
        RUN_METRICS[2],
        start,
        mon.now(),
        filter=f'metric.type="{RUN_METRICS[2]}" AND resource.labels.job_name="{flaky}"',
    )
    assert [p["value"]["int64Value"] for p in running[0]["points"]][-1] == "1"  # the minute it ran
