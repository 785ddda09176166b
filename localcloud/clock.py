"""The emulated clock: real UTC time plus an offset that tests set or advance (persisted)."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: object) -> float:
    """Seconds of "3600s" (proto Duration), "90m", "2h", "1d" or a plain number; ValueError if bad."""
    if isinstance(value, bool):
        raise ValueError(f'bad duration {value!r}: expected seconds such as 3600 or "3600s"')
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f'bad duration {value!r}: expected seconds such as 3600 or "3600s" (or m, h, d)')
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_time(value: str) -> datetime:
    """An RFC 3339 timestamp ("2026-11-27T00:00:00Z"); naive values are taken as UTC."""
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"bad time {value!r}: expected RFC 3339 such as 2026-11-27T00:00:00Z") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def rfc3339(dt: datetime) -> str:
    """Google's timestamp form: UTC, "Z", microseconds only when present."""
    dt = dt.astimezone(UTC)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        text += f".{dt.microsecond:06d}"
    return text + "Z"


class Clock:
    def __init__(self, state_file: Path):
        self._file = state_file
        self._lock = threading.Lock()
        self._offset = 0.0
        if state_file.exists():
            self._offset = float(json.loads(state_file.read_text()).get("offset_seconds", 0.0))

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._offset)

    @property
    def offset(self) -> float:
        return self._offset

    def set(self, when: datetime) -> datetime:
        with self._lock:
            self._offset = (when - datetime.now(UTC)).total_seconds()
            self._save()
        return self.now()

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError(f"cannot advance the clock by {seconds}s: time only moves forward (use set)")
        with self._lock:
            self._offset += seconds
            self._save()
        return self.now()

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0
            self._save()

    def _save(self) -> None:
        self._file.parent.mkdir(parents=True, exist_ok=True)
        self._file.write_text(json.dumps({"offset_seconds": self._offset}))

    def describe(self) -> dict:
        return {
            "now": rfc3339(self.now()),
            "offset_seconds": self._offset,
            "real": rfc3339(datetime.now(UTC)),
        }
