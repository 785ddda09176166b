"""Cloud Monitoring's aggregation: per-series alignment, then cross-series reduction
(https://cloud.google.com/monitoring/api/v3/aggregation).

Alignment windows are counted back from the end of the requested interval: the windows end at `end`,
`end - P`, `end - 2P`, ... (each `(t - P, t]`) while they end after the interval's start; a point belongs to
the window its end time falls in. Each window with data gives one aligned point (no data, no point).
Reduction groups the aligned series by `resource.type` and the `groupByFields`, and combines the values
each group has at each aligned time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from localcloud.services.run_errors import ApiError

ALIGNERS = {
    # aligner: (metric kinds, value types it applies to, output kind ("" = the input's), output value type)
    "ALIGN_NONE": (("GAUGE", "DELTA", "CUMULATIVE"), ("INT64", "DOUBLE", "BOOL"), "", ""),
    "ALIGN_DELTA": (("DELTA", "CUMULATIVE"), ("INT64", "DOUBLE"), "DELTA", ""),
    "ALIGN_RATE": (("DELTA", "CUMULATIVE"), ("INT64", "DOUBLE"), "GAUGE", "DOUBLE"),
    "ALIGN_SUM": (("GAUGE", "DELTA"), ("INT64", "DOUBLE"), "", ""),
    "ALIGN_MIN": (("GAUGE", "DELTA"), ("INT64", "DOUBLE"), "GAUGE", ""),
    "ALIGN_MAX": (("GAUGE", "DELTA"), ("INT64", "DOUBLE"), "GAUGE", ""),
    "ALIGN_MEAN": (("GAUGE", "DELTA"), ("INT64", "DOUBLE"), "GAUGE", "DOUBLE"),
    "ALIGN_COUNT": (("GAUGE", "DELTA"), ("INT64", "DOUBLE", "BOOL"), "GAUGE", "INT64"),
    "ALIGN_NEXT_OLDER": (("GAUGE", "CUMULATIVE"), ("INT64", "DOUBLE", "BOOL"), "GAUGE", ""),
    "ALIGN_COUNT_TRUE": (("GAUGE",), ("BOOL",), "GAUGE", "INT64"),
    "ALIGN_COUNT_FALSE": (("GAUGE",), ("BOOL",), "GAUGE", "INT64"),
    "ALIGN_FRACTION_TRUE": (("GAUGE",), ("BOOL",), "GAUGE", "DOUBLE"),
}
REDUCERS = {
    # reducer: (value types, output value type ("" = the input's), keeps the input kind)
    "REDUCE_NONE": (("INT64", "DOUBLE", "BOOL"), "", True),
    "REDUCE_SUM": (("INT64", "DOUBLE"), "", True),
    "REDUCE_MIN": (("INT64", "DOUBLE"), "", True),
    "REDUCE_MAX": (("INT64", "DOUBLE"), "", True),
    "REDUCE_MEAN": (("INT64", "DOUBLE", "BOOL"), "DOUBLE", False),
    "REDUCE_COUNT": (("INT64", "DOUBLE", "BOOL"), "INT64", False),
    "REDUCE_COUNT_TRUE": (("BOOL",), "INT64", False),
    "REDUCE_COUNT_FALSE": (("BOOL",), "INT64", False),
    "REDUCE_FRACTION_TRUE": (("BOOL",), "DOUBLE", False),
}
UNSUPPORTED = (
    "ALIGN_INTERPOLATE ALIGN_STDDEV ALIGN_PERCENTILE_99 ALIGN_PERCENTILE_95 ALIGN_PERCENTILE_50 "
    "ALIGN_PERCENTILE_05 ALIGN_PERCENT_CHANGE REDUCE_STDDEV REDUCE_PERCENTILE_99 REDUCE_PERCENTILE_95 "
    "REDUCE_PERCENTILE_50 REDUCE_PERCENTILE_05"
).split()
MAX_PERIOD_S = 104 * 7 * 86400  # 104 weeks (charts and lists); alerting policies allow 90,000 s


@dataclass
class Aggregation:
    period_s: int = 0
    aligner: str = "ALIGN_NONE"
    reducer: str = "REDUCE_NONE"
    group_by: list[str] = field(default_factory=list)


def parse_seconds(value: Any, where: str) -> float:
    text = str(value).strip()
    try:
        if not text.endswith("s"):
            raise ValueError
        return float(text[:-1])
    except ValueError:
        raise ApiError(
            400, f'Field {where} had an invalid value of "{value}": expected a duration such as "60s".'
        ) from None


def aggregation(
    spec: dict[str, Any], where: str, kind: str | None = None, value_type: str | None = None
) -> Aggregation:
    """An Aggregation from its JSON (camelCase), checked as Google checks it (against the metric's kind and
    value type when known). `where` prefixes the field names of messages."""
    agg = Aggregation(
        aligner=spec.get("perSeriesAligner") or "ALIGN_NONE",
        reducer=spec.get("crossSeriesReducer") or "REDUCE_NONE",
        group_by=list(spec.get("groupByFields") or []),
    )
    for name, value, known in (
        ("per_series_aligner", agg.aligner, ALIGNERS),
        ("cross_series_reducer", agg.reducer, REDUCERS),
    ):
        if value in UNSUPPORTED:
            raise ApiError(
                400,
                f'Field {where}.{name} had an invalid value of "{value}": localcloud does not emulate it.',
            )
        if value not in known:
            raise ApiError(400, f"Invalid value at '{where}.{name}', \"{value}\"")
    period = spec.get("alignmentPeriod")
    if period not in (None, ""):
        seconds = parse_seconds(period, f"{where}.alignment_period")
        if seconds < 60:
            raise ApiError(
                400,
                f'Field {where}.alignment_period had an invalid value of "{period}": '
                "The alignment period must be at least 60 seconds.",
            )
        agg.period_s = int(seconds)
    if agg.aligner != "ALIGN_NONE" and not agg.period_s:
        raise ApiError(
            400,
            f"Field {where}.alignment_period had an invalid value: an alignment period is required "
            f"with the aligner {agg.aligner}.",
        )
    if agg.reducer != "REDUCE_NONE" and agg.aligner == "ALIGN_NONE":
        raise ApiError(
            400,
            f'Field {where}.per_series_aligner had an invalid value of "ALIGN_NONE": '
            f"The cross series reducer {agg.reducer} requires a per series aligner other than ALIGN_NONE.",
        )
    for path in agg.group_by:
        if not _group_path(path):
            raise ApiError(400, f'Field {where}.group_by_fields had an invalid value of "{path}".')
    if kind and value_type:
        kinds, types, _, _ = ALIGNERS[agg.aligner]
        if kind not in kinds or value_type not in types:
            raise ApiError(
                400,
                f'Field {where}.per_series_aligner had an invalid value of "{agg.aligner}": The aligner '
                f"cannot be applied to metrics with kind {kind} and value type {value_type}.",
            )
        out_type = ALIGNERS[agg.aligner][3] or value_type
        if agg.reducer != "REDUCE_NONE" and out_type not in REDUCERS[agg.reducer][0]:
            raise ApiError(
                400,
                f'Field {where}.cross_series_reducer had an invalid value of "{agg.reducer}": The reducer '
                f"cannot be applied to values of type {out_type}.",
            )
    return agg


def _group_path(path: str) -> tuple[str, str] | None:
    parts = path.split(".", 2)
    if path in ("resource.type", "metric.type"):
        return ("type", path)
    if len(parts) == 3 and parts[0] in ("metric", "resource") and parts[1] in ("label", "labels"):
        return (parts[0], parts[2])
    return None


# ---- alignment -----------------------------------------------------------------------------------------


def _num(value: Any) -> float:
    return float(value)


def _typed(value: float, value_type: str) -> Any:
    if value_type == "INT64":
        return round(value)
    if value_type == "BOOL":
        return bool(value)
    return float(value)


def align(
    points: list[tuple[int, int, Any]],
    before: tuple[int, int, Any] | None,
    agg: Aggregation,
    kind: str,
    value_type: str,
    start_us: int,
    end_us: int,
) -> list[tuple[int, int, Any]]:
    """(start_us, end_us, value) aligned points, newest first. `points` are the raw points (oldest first)
    with start_us - period < end <= end_us; `before` the newest one before them (for CUMULATIVE deltas)."""
    if agg.aligner == "ALIGN_NONE":
        return list(reversed(points))
    period = agg.period_s * 1_000_000
    out_kind = ALIGNERS[agg.aligner][2] or kind
    out_type = ALIGNERS[agg.aligner][3] or value_type
    out = []
    first_end = points[0][1] if points else end_us
    t = end_us
    while True:  # the window ending at the interval's end, then each earlier one that ends after its start
        window = [p for p in points if t - period < p[1] <= t]
        if window:
            value = _align_value(agg.aligner, window, points, before, kind, period, t)
            start = t - period if out_kind in ("DELTA", "CUMULATIVE") else t
            out.append((start, t, _typed(value, out_type)))
        t -= period
        if t <= start_us or t < first_end:
            return out


def _align_value(aligner, window, points, before, kind, period, t) -> float:
    values = [p[2] for p in window]
    if aligner in ("ALIGN_DELTA", "ALIGN_RATE"):
        if kind == "CUMULATIVE":
            last = window[-1]
            earlier = [p for p in points if p[1] <= t - period] or ([before] if before else [])
            base = earlier[-1][2] if earlier and earlier[-1][0] == last[0] else 0
            delta = _num(last[2]) - _num(base)
        else:
            delta = sum(_num(v) for v in values)
        return delta / (period / 1_000_000) if aligner == "ALIGN_RATE" else delta
    if aligner == "ALIGN_SUM":
        return sum(_num(v) for v in values)
    if aligner == "ALIGN_MIN":
        return min(_num(v) for v in values)
    if aligner == "ALIGN_MAX":
        return max(_num(v) for v in values)
    if aligner == "ALIGN_MEAN":
        return sum(_num(v) for v in values) / len(values)
    if aligner == "ALIGN_COUNT":
        return float(len(values))
    if aligner == "ALIGN_NEXT_OLDER":
        return _num(values[-1])
    trues = sum(1 for v in values if v)
    if aligner == "ALIGN_COUNT_TRUE":
        return float(trues)
    if aligner == "ALIGN_COUNT_FALSE":
        return float(len(values) - trues)
    return trues / len(values)  # ALIGN_FRACTION_TRUE


# ---- reduction -----------------------------------------------------------------------------------------


def _group_key(series: dict[str, Any], group_by: list[str]) -> tuple[dict, dict, str]:
    metric_labels: dict[str, str] = {}
    resource_labels: dict[str, str] = {}
    for path in group_by:
        found = _group_path(path)
        if found is None or found[0] == "type":
            continue
        where, key = found
        labels = series[where]["labels"]
        if key in labels:
            (metric_labels if where == "metric" else resource_labels)[key] = labels[key]
    return metric_labels, resource_labels, series["resource"]["type"]


def reduce(aligned: list[dict[str, Any]], agg: Aggregation) -> list[dict[str, Any]]:
    """Aligned series ({"metric", "resource", "metricKind", "valueType", "points": [(s, e, v)] newest first})
    combined per group; REDUCE_NONE returns them unchanged."""
    if agg.reducer == "REDUCE_NONE":
        return aligned
    groups: dict[str, dict[str, Any]] = {}
    for series in aligned:
        metric_labels, resource_labels, rtype = _group_key(series, agg.group_by)
        key = repr((sorted(metric_labels.items()), sorted(resource_labels.items()), rtype))
        group = groups.setdefault(
            key,
            {
                "metric": {"type": series["metric"]["type"], "labels": metric_labels},
                "resource": {"type": rtype, "labels": resource_labels},
                "in_kind": series["metricKind"],
                "in_type": series["valueType"],
                "at": {},
            },
        )
        for start, end, value in series["points"]:
            group["at"].setdefault(end, (start, []))[1].append(value)
    out = []
    _, out_type_rule, keeps_kind = REDUCERS[agg.reducer]
    for group in groups.values():
        out_type = out_type_rule or group["in_type"]
        out_kind = group["in_kind"] if keeps_kind else "GAUGE"
        points = []
        for end in sorted(group["at"], reverse=True):
            start, values = group["at"][end]
            points.append(
                (start if out_kind != "GAUGE" else end, end, _typed(_reduce(agg.reducer, values), out_type))
            )
        out.append(
            {
                "metric": group["metric"],
                "resource": group["resource"],
                "metricKind": out_kind,
                "valueType": out_type,
                "points": points,
            }
        )
    return out


def _reduce(reducer: str, values: list[Any]) -> float:
    if reducer == "REDUCE_SUM":
        return sum(_num(v) for v in values)
    if reducer == "REDUCE_MIN":
        return min(_num(v) for v in values)
    if reducer == "REDUCE_MAX":
        return max(_num(v) for v in values)
    if reducer == "REDUCE_MEAN":
        return sum(_num(v) for v in values) / len(values)
    if reducer == "REDUCE_COUNT":
        return float(len(values))
    trues = sum(1 for v in values if v)
    if reducer == "REDUCE_COUNT_TRUE":
        return float(trues)
    if reducer == "REDUCE_COUNT_FALSE":
        return float(len(values) - trues)
    return trues / len(values)


def output_types(agg: Aggregation, kind: str, value_type: str) -> tuple[str, str]:
    """The kind and value type of the series an aggregation yields (before reduction's)."""
    out_kind = ALIGNERS[agg.aligner][2] or kind
    out_type = ALIGNERS[agg.aligner][3] or value_type
    if agg.reducer != "REDUCE_NONE":
        _, rule, keeps = REDUCERS[agg.reducer]
        out_type = rule or out_type
        out_kind = out_kind if keeps else "GAUGE"
    return out_kind, out_type
