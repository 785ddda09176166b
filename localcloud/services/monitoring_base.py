"""What every part of localcloud's Cloud Monitoring shares: the state its mixins read and change (always
under `_lock`), and small helpers (times in microseconds, pages, ids, mutation records)."""

from __future__ import annotations

import base64
import secrets
import string
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from localcloud.clock import rfc3339
from localcloud.service import Service
from localcloud.services.run_errors import ApiError

if TYPE_CHECKING:
    from localcloud.services.monitoring_store import Store


class MonitoringState(Service):
    """The state of MonitoringService (localcloud/services/monitoring.py): `_state` holds the policies,
    channels, custom descriptors, incidents and deliveries (saved as JSON); `store` the points."""

    _lock: threading.RLock
    _state: dict[str, Any]
    _running: dict[tuple[str, str, str], tuple[int, int]]  # (project, location, job) -> (running, peak)
    store: Store

    def _save(self) -> None:
        raise NotImplementedError

    def _now_text(self) -> str:
        return rfc3339(self.cloud.now())

    def _record(self, principal: str) -> dict[str, str]:
        return {"mutateTime": self._now_text(), "mutatedBy": principal}


def micros(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond


def from_micros(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


def parse_time(text: str, where: str) -> datetime:
    try:
        dt = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            400, f"Invalid value at '{where}' (type.googleapis.com/google.protobuf.Timestamp), \"{text}\""
        ) from None
    if dt.tzinfo is None:
        raise ApiError(
            400, f"Invalid value at '{where}' (type.googleapis.com/google.protobuf.Timestamp), \"{text}\""
        )
    return dt.astimezone(UTC)


def duration_seconds(value: Any, where: str) -> float:
    text = str(value).strip()
    try:
        if not text.endswith("s"):
            raise ValueError
        seconds = float(text[:-1])
    except ValueError:
        raise ApiError(
            400, f"Invalid value at '{where}' (type.googleapis.com/google.protobuf.Duration), \"{value}\""
        ) from None
    if seconds < 0:
        raise ApiError(
            400, f'Field {where} had an invalid value of "{value}": a duration cannot be negative.'
        )
    return seconds


def duration_text(seconds: float) -> str:
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{seconds:.9f}".rstrip("0") + "s"


def page(
    items: list[Any], args: Any, default: int, maximum: int, coerce: bool = True
) -> tuple[list[Any], str]:
    """A page of `items` by `pageSize` (<= 0: `default`; above `maximum`: `maximum`) and `pageToken`."""
    try:
        size = int(args.get("pageSize") or 0)
    except ValueError:
        raise ApiError(
            400, f"Invalid value at 'page_size' (TYPE_INT32), \"{args.get('pageSize')}\""
        ) from None
    size = default if size <= 0 else min(size, maximum) if coerce else size
    token = args.get("pageToken") or ""
    try:
        offset = int(base64.urlsafe_b64decode(token + "==").decode()) if token else 0
    except ValueError:
        raise ApiError(
            400, "Field page_token had an invalid value: not a token this list returned."
        ) from None
    chunk = items[offset : offset + size]
    more = offset + size < len(items)
    return chunk, base64.urlsafe_b64encode(str(offset + size).encode()).decode() if more else ""


def numeric_id(digits: int = 19) -> str:
    """An id as Monitoring gives policies, conditions and channels: a long decimal number."""
    return str(secrets.randbelow(9 * 10 ** (digits - 1)) + 10 ** (digits - 1))


def incident_id() -> str:
    """An incident's id as Monitoring shows it: `0.` and 12 lower-case letters and digits."""
    alphabet = string.ascii_lowercase + string.digits
    return "0." + "".join(secrets.choice(alphabet) for _ in range(12))
