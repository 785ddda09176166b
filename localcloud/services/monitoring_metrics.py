"""Cloud Monitoring's metric side: metricDescriptors (Cloud Run's job metrics and custom ones),
monitoredResourceDescriptors and timeSeries.create (custom metrics, Google's write rules). Reads are
monitoring_series.py's."""

from __future__ import annotations

import copy
import re
from typing import Any

from localcloud.services import monitoring_filter as flt
from localcloud.services.monitoring_base import MonitoringState, micros, page, parse_time
from localcloud.services.monitoring_store import (
    BUILTIN,
    CUSTOM_INGEST_S,
    CUSTOM_PREFIXES,
    CUSTOM_RESOURCES,
    RESOURCES,
    builtin_descriptor,
    ingest_delay_us,
    resource_descriptor,
    series_key,
)
from localcloud.services.run_errors import ApiError

MAX_SERIES_PER_WRITE = 200
MIN_SPACING_US = 5_000_000  # one point per series every 5 s at most
MAX_AGE_US = 25 * 3600 * 1_000_000  # points may be written up to 25 hours old
MAX_FUTURE_US = 5 * 60 * 1_000_000  # and up to 5 minutes in the future
_LABEL_KEY = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{0,99}$")


def _typed_value(value: dict[str, Any], where: str) -> tuple[str, Any]:
    present = [
        k
        for k in ("boolValue", "int64Value", "doubleValue", "stringValue", "distributionValue")
        if k in value
    ]
    if len(present) != 1:
        raise ApiError(400, f"Field {where}.value had an invalid value: exactly one typed value must be set.")
    key = present[0]
    if key == "boolValue":
        return "BOOL", bool(value[key])
    if key == "int64Value":
        try:
            return "INT64", int(value[key])
        except (TypeError, ValueError):
            raise ApiError(
                400, f"Invalid value at '{where}.value.int64_value' (TYPE_INT64), \"{value[key]}\""
            ) from None
    if key == "doubleValue":
        return "DOUBLE", float(value[key])
    raise ApiError(
        400, f"Field {where}.value had an invalid value: localcloud does not emulate {key} points."
    )


def typed_json(value: Any, value_type: str) -> dict[str, Any]:
    if value_type == "BOOL":
        return {"boolValue": bool(value)}
    if value_type == "INT64":
        return {"int64Value": str(int(value))}
    return {"doubleValue": float(value)}


class MetricsApi(MonitoringState):
    # ---- descriptors -------------------------------------------------------------------------------

    def descriptor(self, project: str, metric_type: str) -> dict[str, Any] | None:
        found = builtin_descriptor(project, metric_type)
        if found is not None:
            return found
        entry = self._state["descriptors"].get(f"{project}/{metric_type}")
        return copy.deepcopy(entry["descriptor"]) if entry else None

    def _descriptors(self, project: str) -> list[dict[str, Any]]:
        custom = [
            copy.deepcopy(e["descriptor"])
            for key, e in sorted(self._state["descriptors"].items())
            if key.startswith(f"{project}/")
        ]
        return [builtin_descriptor(project, t) for t in sorted(BUILTIN)] + custom  # type: ignore[misc]

    def _list_descriptors(self, request, body, project):
        items = self._descriptors(project)
        text = request.args.get("filter", "")
        if text:
            tree = flt.parse(text)
            flt.check_series_fields(tree, text)

            def resolver(desc):
                return lambda path: (
                    [desc["type"]]
                    if path == "metric.type"
                    else desc.get("monitoredResourceTypes", list(CUSTOM_RESOURCES))
                    if path == "resource.type"
                    else [project]
                    if path == "project"
                    else []
                )

            items = [d for d in items if flt.matches(tree, resolver(d))]
        if request.args.get("activeOnly") in ("true", "1"):
            since = micros(self.cloud.now()) - 25 * 3600 * 1_000_000
            items = [d for d in items if self.store.has_data(project, d["type"], since)]
        chunk, token = page(items, request.args, default=10000, maximum=10000)
        out: dict[str, Any] = {"metricDescriptors": chunk} if chunk else {}
        if token:
            out["nextPageToken"] = token
        return out

    def _get_descriptor(self, request, body, project, metric):
        found = self.descriptor(project, metric)
        if found is None:
            raise ApiError(404, f"Could not find descriptor for metric '{metric}'.")
        return found

    def _create_descriptor(self, request, body, project):
        metric_type = body.get("type") or ""
        if not metric_type.startswith(CUSTOM_PREFIXES) or len(metric_type) > 200:
            raise ApiError(
                400,
                f'Field metric_descriptor.type had an invalid value of "{metric_type}": a custom metric type '
                f"starts with {' or '.join(CUSTOM_PREFIXES)} (at most 200 characters).",
            )
        kind, value_type = body.get("metricKind"), body.get("valueType")
        if kind not in ("GAUGE", "CUMULATIVE"):
            raise ApiError(
                400,
                f'Field metric_descriptor.metric_kind had an invalid value of "{kind or ""}": custom metrics '
                "are GAUGE or CUMULATIVE.",
            )
        if value_type not in ("BOOL", "INT64", "DOUBLE"):
            raise ApiError(
                400,
                f'Field metric_descriptor.value_type had an invalid value of "{value_type or ""}": '
                "localcloud "
                "emulates BOOL, INT64 and DOUBLE custom metrics.",
            )
        labels = self._label_descriptors(body.get("labels") or [], "metric_descriptor.labels")
        with self._lock:
            existing = self._state["descriptors"].get(f"{project}/{metric_type}")
            if existing is not None:
                old = existing["descriptor"]
                if (old["metricKind"], old["valueType"]) != (kind, value_type):
                    raise ApiError(
                        400,
                        f"Cannot change the kind or value type of metric {metric_type} "
                        f"({old['metricKind']} {old['valueType']}); delete it first.",
                    )
                keys = {label["key"] for label in labels}
                labels += [
                    label for label in old.get("labels", []) if label["key"] not in keys
                ]  # never removed
            descriptor = {
                "name": f"projects/{project}/metricDescriptors/{metric_type}",
                "type": metric_type,
                **({"labels": labels} if labels else {}),
                "metricKind": kind,
                "valueType": value_type,
                **{k: body[k] for k in ("unit", "description", "displayName", "launchStage") if body.get(k)},
                "metadata": body.get("metadata") or {"ingestDelay": f"{CUSTOM_INGEST_S}s"},
            }
            self._state["descriptors"][f"{project}/{metric_type}"] = {"descriptor": descriptor, "auto": False}
            self._save()
        return copy.deepcopy(descriptor)

    @staticmethod
    def _label_descriptors(labels: list[Any], where: str) -> list[dict[str, Any]]:
        out = []
        for i, label in enumerate(labels):
            key = (label or {}).get("key", "")
            if not _LABEL_KEY.match(key):
                raise ApiError(400, f'Field {where}[{i}].key had an invalid value of "{key}".')
            if label.get("valueType", "STRING") not in ("STRING", "BOOL", "INT64"):
                raise ApiError(400, f"Invalid value at '{where}[{i}].value_type', \"{label['valueType']}\"")
            out.append({k: v for k, v in label.items() if k in ("key", "valueType", "description")})
        if len(out) > 30:
            raise ApiError(400, f"Field {where} had an invalid value: a metric has at most 30 labels.")
        return out

    def _delete_descriptor(self, request, body, project, metric):
        if metric in BUILTIN:
            raise ApiError(400, f"Only user-created custom metrics can be deleted; {metric} is not one.")
        with self._lock:
            if self._state["descriptors"].pop(f"{project}/{metric}", None) is None:
                raise ApiError(404, f"Could not find descriptor for metric '{metric}'.")
            self._save()
        self.store.delete_metric(project, metric)
        return {}

    def _list_resource_descriptors(self, request, body, project):
        items = [resource_descriptor(project, kind) for kind in sorted(RESOURCES)]
        text = request.args.get("filter", "")
        if text:
            tree = flt.parse(text)
            items = [
                d
                for d in items
                if flt.matches(tree, lambda p, d=d: [d["type"]] if p == "resource.type" else [])
            ]
        chunk, token = page(items, request.args, default=100, maximum=1000)
        out: dict[str, Any] = {"resourceDescriptors": chunk} if chunk else {}
        if token:
            out["nextPageToken"] = token
        return out

    def _get_resource_descriptor(self, request, body, project, rtype):
        if rtype not in RESOURCES:
            raise ApiError(404, f"The monitored resource descriptor {rtype} does not exist.")
        return resource_descriptor(project, rtype)

    # ---- timeSeries.create ---------------------------------------------------------------------------

    def _create_series(self, request, body, project):
        items = body.get("timeSeries") or []
        if not items:
            raise ApiError(400, "Field timeSeries had an invalid value: at least one TimeSeries is required.")
        if len(items) > MAX_SERIES_PER_WRITE:
            raise ApiError(
                400,
                f"Field timeSeries had an invalid value: at most {MAX_SERIES_PER_WRITE} TimeSeries can be "
                "written "
                f"in one request; got {len(items)}.",
            )
        now_us = micros(self.cloud.now())
        errors: list[tuple[int, str]] = []
        seen: set[tuple[str, str]] = set()
        written = 0
        with self._lock:
            for i, series in enumerate(items):
                try:
                    key = self._write_one(project, series, f"timeSeries[{i}]", now_us, seen)
                    seen.add(key)
                    written += 1
                except ApiError as err:
                    errors.append((i, err.message))
            self._save()
        if errors:
            summary = "; ".join(f"{message}: timeSeries[{i}]" for i, message in errors)
            raise _PartialWrite(
                f"One or more TimeSeries could not be written: {summary}", len(items), written, len(errors)
            )
        return {}

    def _write_one(self, project, series, where, now_us, seen) -> tuple[str, str]:
        metric = series.get("metric") or {}
        resource = series.get("resource") or {}
        metric_type = metric.get("type") or ""
        if not metric_type.startswith(CUSTOM_PREFIXES):
            raise ApiError(
                400,
                f'Field {where}.metric.type had an invalid value of "{metric_type}": only custom metrics '
                f"({', '.join(CUSTOM_PREFIXES)}) can be written.",
            )
        rtype, rlabels = resource.get("type") or "", dict(resource.get("labels") or {})
        if rtype not in CUSTOM_RESOURCES:
            raise ApiError(
                400,
                f'Field {where}.resource.type had an invalid value of "{rtype}": custom metrics are written '
                f"against {', '.join(CUSTOM_RESOURCES)} here.",
            )
        wanted = set(RESOURCES[rtype]["labels"])
        if set(rlabels) != wanted:
            missing, unknown = sorted(wanted - set(rlabels)), sorted(set(rlabels) - wanted)
            raise ApiError(
                400,
                f"Field {where}.resource.labels had an invalid value: the {rtype} resource takes the labels "
                f"{', '.join(sorted(wanted))} (missing: {missing or 'none'}, unknown: {unknown or 'none'}).",
            )
        points = series.get("points") or []
        if len(points) != 1:
            raise ApiError(
                400,
                f"Field {where}.points had an invalid value: Only one point can be written per TimeSeries "
                f"per request (got {len(points)}).",
            )
        mlabels = {k: str(v) for k, v in (metric.get("labels") or {}).items()}
        key = (metric_type, series_key(mlabels, rtype, rlabels))
        if key in seen:
            raise ApiError(
                400,
                f"Field {where} had an invalid value: Duplicate TimeSeries encountered. Only one point can "
                "be "
                "written per TimeSeries per request.",
            )
        value_type, value = _typed_value(points[0].get("value") or {}, f"{where}.points[0]")
        kind = series.get("metricKind") or ""
        if kind == "DELTA" or kind not in ("", "GAUGE", "CUMULATIVE"):
            raise ApiError(
                400,
                f'Field {where}.metric_kind had an invalid value of "{kind}": custom metrics are GAUGE or '
                "CUMULATIVE.",
            )
        if series.get("valueType") not in (None, "", value_type):
            raise ApiError(
                400,
                f"Field {where}.value_type had an invalid value: the point is {value_type}, not "
                f"{series['valueType']}.",
            )
        descriptor = self._descriptor_for_write(
            project, metric_type, kind, value_type, mlabels, series, where
        )
        kind = descriptor["metricKind"]
        interval = points[0].get("interval") or {}
        if not interval.get("endTime"):
            raise ApiError(
                400, f"Field {where}.points[0].interval.end_time had an invalid value: it is required."
            )
        end_us = micros(parse_time(interval["endTime"], f"{where}.points[0].interval.end_time"))
        start_us = (
            micros(parse_time(interval["startTime"], f"{where}.points[0].interval.start_time"))
            if interval.get("startTime")
            else end_us
        )
        if kind == "GAUGE" and start_us != end_us:
            raise ApiError(
                400,
                f"Field {where}.points[0].interval.start_time had an invalid value of "
                f'"{interval["startTime"]}": '
                f"The start time must be equal to the end time ({interval['endTime']}) for the gauge metric "
                f"'{metric_type}'.",
            )
        if kind == "CUMULATIVE" and not start_us < end_us:
            raise ApiError(
                400,
                f"Field {where}.points[0].interval.start_time had an invalid value: The start time must be "
                "before "
                f"the end time ({interval['endTime']}) for the non-gauge metric '{metric_type}'.",
            )
        if end_us < now_us - MAX_AGE_US or end_us > now_us + MAX_FUTURE_US:
            raise ApiError(
                400,
                f'Field {where}.points[0].interval.end_time had an invalid value of "{interval["endTime"]}": '
                "Data points cannot be written more than 25h in the past or more than 5m in the future.",
            )
        last = self.store.last_point(project, metric_type, key[1])
        if last is not None and end_us <= last[1]:
            raise ApiError(
                400,
                "Points must be written in order. One or more of the points specified had an older start "
                "time "
                "than the most recent point.",
            )
        if last is not None and end_us - last[1] < MIN_SPACING_US:
            raise ApiError(
                400,
                "One or more points were written more frequently than the maximum sampling period configured "
                "for the metric.",
            )
        visible = max(end_us, now_us) + ingest_delay_us(descriptor)
        self.store.write(
            project, metric_type, mlabels, rtype, rlabels, kind, value_type, start_us, end_us, value, visible
        )
        return key

    def _descriptor_for_write(self, project, metric_type, kind, value_type, mlabels, series, where):
        entry = self._state["descriptors"].get(f"{project}/{metric_type}")
        if entry is None:  # auto-created from the first point, as Google does
            descriptor = {
                "name": f"projects/{project}/metricDescriptors/{metric_type}",
                "type": metric_type,
                **({"labels": [{"key": k} for k in sorted(mlabels)]} if mlabels else {}),
                "metricKind": kind or "GAUGE",
                "valueType": value_type,
                **({"unit": series["unit"]} if series.get("unit") else {}),
                **({"description": series["description"]} if series.get("description") else {}),
                "metadata": {"ingestDelay": f"{CUSTOM_INGEST_S}s"},
            }
            for key in mlabels:
                if not _LABEL_KEY.match(key):
                    raise ApiError(
                        400, f'Field {where}.metric.labels had an invalid value: bad label key "{key}".'
                    )
            self._state["descriptors"][f"{project}/{metric_type}"] = {"descriptor": descriptor, "auto": True}
            return descriptor
        descriptor = entry["descriptor"]
        if descriptor["valueType"] != value_type:
            raise ApiError(
                400,
                f"Value type for metric {metric_type} must be {descriptor['valueType']}, but is "
                f"{value_type}.",
            )
        if kind and descriptor["metricKind"] != kind:
            raise ApiError(
                400,
                f"Metric kind for metric {metric_type} must be {descriptor['metricKind']}, but is {kind}.",
            )
        known = {label["key"] for label in descriptor.get("labels", [])}
        unknown = sorted(set(mlabels) - known)
        if unknown and not entry["auto"]:
            raise ApiError(
                400,
                f"Field {where}.metric.labels had an invalid value: unrecognized labels {unknown} for "
                f"{metric_type}.",
            )
        if unknown:
            descriptor.setdefault("labels", []).extend({"key": k} for k in unknown)
        return descriptor


class _PartialWrite(ApiError):
    def __init__(self, message: str, total: int, written: int, failed: int):
        super().__init__(400, message, "INVALID_ARGUMENT")
        self.details = [
            {
                "@type": "type.googleapis.com/google.monitoring.v3.CreateTimeSeriesSummary",
                "totalPointCount": total,
                "successPointCount": written,
                "errors": [{"status": {"code": 3}, "pointCount": failed}],
            }
        ]
