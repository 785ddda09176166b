"""Cloud Scheduler v1 job shapes: input validation and the stored defaults (`normalize`), update-mask
paths, timestamps and durations as the API writes them, and the cron arithmetic the ticker uses.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from localcloud.services.run_errors import ApiError

_DURATION = re.compile(r"^(\d+)(?:\.(\d{1,9}))?s$")
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
HTTP_METHODS = {
    0: "HTTP_METHOD_UNSPECIFIED",
    1: "POST",
    2: "GET",
    3: "HEAD",
    4: "PUT",
    5: "DELETE",
    6: "PATCH",
    7: "OPTIONS",
}
RETRY_DEFAULTS = {
    "maxRetryDuration": "0s",
    "minBackoffDuration": "5s",
    "maxBackoffDuration": "3600s",
    "maxDoublings": 5,
}
USER_FIELDS = (
    "description",
    "schedule",
    "timeZone",
    "retryConfig",
    "attemptDeadline",
    "pubsubTarget",
    "appEngineHttpTarget",
    "httpTarget",
)
OUTPUT_FIELDS = ("name", "userUpdateTime", "state", "status", "scheduleTime", "lastAttemptTime")


def format_ts(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def parse_seconds(value: Any, field: str) -> float:
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise ApiError(400, f"Invalid value at '{field}': {value!r} is not a duration; valid: e.g. \"180s\"")
    return int(match.group(1)) + (int(match.group(2).ljust(9, "0")) / 1e9 if match.group(2) else 0.0)


def _duration(seconds: float) -> str:
    return f"{int(seconds)}s" if seconds == int(seconds) else f"{seconds:.9f}".rstrip("0") + "s"


def validate_schedule(schedule: Any, time_zone: str) -> ZoneInfo:
    """The job's ZoneInfo, or 400 naming a bad cron expression or time zone."""
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ApiError(
            400,
            f"Invalid time zone {time_zone!r}: use an IANA tz database name, e.g. Etc/UTC or Europe/Berlin",
        ) from None
    if not isinstance(schedule, str) or not schedule.strip():
        raise ApiError(
            400, "Invalid value at 'job.schedule': a unix-cron schedule is required, e.g. \"0 0 * * *\""
        )
    try:
        CronSim(schedule, datetime.now(zone))
    except CronSimError as exc:
        raise ApiError(
            400, f'Invalid schedule {schedule!r}: {exc}; expected unix-cron with 5 fields, e.g. "0 0 * * *"'
        ) from None
    return zone


def next_run(schedule: str, time_zone: str, after: datetime) -> datetime:
    return next(CronSim(schedule, after.astimezone(ZoneInfo(time_zone)))).astimezone(UTC)


def last_due(schedule: str, time_zone: str, now: datetime) -> datetime:
    """The most recent due time at or before `now`."""
    return next(CronSim(schedule, now.astimezone(ZoneInfo(time_zone)), reverse=True)).astimezone(UTC)


def _http_target(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ApiError(400, "Invalid value at 'job.http_target': expected an object")
    allowed = {"uri", "httpMethod", "headers", "body", "oauthToken", "oidcToken"}
    unknown = set(raw) - allowed
    if unknown:
        raise ApiError(
            400,
            f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}" at '
            "'job.http_target': Cannot find field.",
        )
    uri = raw.get("uri")
    parts = urlsplit(uri) if isinstance(uri, str) else None
    if not parts or parts.scheme not in ("http", "https") or not parts.netloc or len(uri) > 2083:
        raise ApiError(
            400, f"Invalid value at 'job.http_target.uri': {uri!r}; an absolute http(s) URL is required"
        )
    method = raw.get("httpMethod", 0)
    if isinstance(method, int) and not isinstance(method, bool) and method in HTTP_METHODS:
        method = HTTP_METHODS[method]
    if method not in HTTP_METHODS.values():
        raise ApiError(
            400,
            f"Invalid value at 'job.http_target.http_method': {method!r}; valid: "
            f"{', '.join(list(HTTP_METHODS.values())[1:])}",
        )
    if method == "HTTP_METHOD_UNSPECIFIED":
        method = "POST"
    out: dict[str, Any] = {"uri": uri, "httpMethod": method}
    headers = raw.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ApiError(400, "Invalid value at 'job.http_target.headers': expected a map of strings")
    headers = {k: v for k, v in headers.items() if k.lower() != "user-agent"}
    headers["User-Agent"] = "Google-Cloud-Scheduler"
    body = raw.get("body")
    if body:
        if method not in ("POST", "PUT", "PATCH"):
            raise ApiError(
                400,
                f"Invalid value at 'job.http_target.body': a body is allowed only with POST, PUT or "
                f"PATCH, not {method}",
            )
        try:
            base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise ApiError(400, "Invalid value at 'job.http_target.body': not base64") from None
        out["body"] = body
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/octet-stream"
    out["headers"] = headers
    if raw.get("oauthToken") and raw.get("oidcToken"):
        raise ApiError(400, "Invalid value at 'job.http_target': set oauthToken or oidcToken, not both")
    for key, extra, default in (("oauthToken", "scope", SCOPE), ("oidcToken", "audience", uri)):
        token = raw.get(key)
        if token:
            email = token.get("serviceAccountEmail") if isinstance(token, dict) else None
            if not isinstance(email, str) or "@" not in email:
                raise ApiError(
                    400,
                    f"Invalid value at 'job.http_target.{key}.service_account_email': "
                    f"{email!r}; a service account email is required",
                )
            out[key] = {"serviceAccountEmail": email, extra: token.get(extra) or default}
    return out


def _retry_config(raw: Any) -> dict[str, Any]:
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ApiError(400, "Invalid value at 'job.retry_config': expected an object")
    out: dict[str, Any] = {}
    count = raw.get("retryCount", 0)
    try:
        count = int(count)
    except (TypeError, ValueError):
        count = -1
    if not 0 <= count <= 5:
        raise ApiError(
            400, f"Invalid value at 'job.retry_config.retry_count': {raw.get('retryCount')!r}; valid: 0..5"
        )
    if count:
        out["retryCount"] = count
    for key in ("maxRetryDuration", "minBackoffDuration", "maxBackoffDuration"):
        out[key] = _duration(parse_seconds(raw.get(key) or RETRY_DEFAULTS[key], f"job.retry_config.{key}"))
    doublings = raw.get("maxDoublings", RETRY_DEFAULTS["maxDoublings"])
    if isinstance(doublings, bool) or not isinstance(doublings, int) or doublings < 0:
        raise ApiError(400, f"Invalid value at 'job.retry_config.max_doublings': {doublings!r}")
    out["maxDoublings"] = doublings
    return out


def normalize(body: dict[str, Any]) -> dict[str, Any]:
    """The user fields of a Scheduler job, validated, with the stored defaults."""
    unknown = set(body) - set(USER_FIELDS) - set(OUTPUT_FIELDS)
    if unknown:
        raise ApiError(
            400,
            f"Invalid JSON payload received. Unknown name \"{sorted(unknown)[0]}\" at 'job': "
            "Cannot find field.",
        )
    targets = [key for key in ("pubsubTarget", "appEngineHttpTarget", "httpTarget") if body.get(key)]
    if len(targets) != 1:
        raise ApiError(
            400,
            "Invalid job: exactly one target is required (httpTarget, pubsubTarget or "
            f"appEngineHttpTarget), got {targets or 'none'}",
        )
    if targets[0] != "httpTarget":
        raise ApiError(501, f"localcloud dispatches only httpTarget jobs, not {targets[0]}", "UNIMPLEMENTED")
    out: dict[str, Any] = {}
    description = body.get("description") or ""
    if not isinstance(description, str) or len(description) > 500:
        raise ApiError(400, "Invalid value at 'job.description': a string of up to 500 characters")
    if description:
        out["description"] = description
    time_zone = body.get("timeZone") or "Etc/UTC"
    validate_schedule(body.get("schedule"), time_zone)
    out["schedule"] = body["schedule"]
    out["timeZone"] = time_zone
    out["httpTarget"] = _http_target(body["httpTarget"])
    out["retryConfig"] = _retry_config(body.get("retryConfig"))
    deadline = parse_seconds(body.get("attemptDeadline") or "180s", "job.attempt_deadline")
    if not 15 <= deadline <= 1800:
        raise ApiError(
            400,
            f"Invalid value at 'job.attempt_deadline': {body.get('attemptDeadline')}; valid for "
            "HTTP targets: 15s to 1800s",
        )
    out["attemptDeadline"] = _duration(deadline)
    return out


def set_path(target: dict[str, Any], path: list[str], source: dict[str, Any]) -> None:
    """Copy the field at `path` from source into target (removing it when source lacks it)."""
    head, rest = path[0], path[1:]
    if not rest:
        if head in source:
            target[head] = copy.deepcopy(source[head])
        else:
            target.pop(head, None)
        return
    sub_source = source.get(head) if isinstance(source.get(head), dict) else {}
    sub_target = target.setdefault(head, {})
    if not isinstance(sub_target, dict):
        sub_target = target[head] = {}
    set_path(sub_target, rest, sub_source)


def camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
