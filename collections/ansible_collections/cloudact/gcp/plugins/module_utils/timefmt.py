# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Time, once: RFC 3339 and HTTP-date parsing, durations in and out, the finished states.

Every module, filter and CLI of the collection parses an API timestamp, a `600s`/`15m` duration
or a `Date` header through these functions, so they agree to the second.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

# Terminal states of a Cloud Run execution, as the collection names them.
FINISHED = ("SUCCEEDED", "FAILED", "CANCELLED")

_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_time(value):
    """An RFC 3339 timestamp (or a datetime) -> aware datetime in UTC; None for empty.

    Python 3.11 takes at most 6 fractional digits; the APIs may send 9.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).replace("Z", "+00:00")
    if "." in text:
        head, _dot, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        text = "%s.%s%s" % (head, (digits + "000000")[:6], rest[len(digits) :])
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def parse_http_date(value):
    """An HTTP `Date`/`Retry-After` date -> aware datetime; None when absent or not a date."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(str(value)).astimezone(UTC)
    except (TypeError, ValueError, IndexError):
        return None


def rfc3339(value):
    """An aware datetime -> '2026-12-01T09:00:00Z' (whole seconds)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration_seconds(value, field="timeout"):
    """600, "600", "600s", "10m", "1h", "1.5s" -> seconds (int when whole). ValueError names the value."""
    if isinstance(value, bool):
        raise ValueError("%s %r: expected seconds or a duration like 600s, 15m, 1h" % (field, value))
    if isinstance(value, (int, float)):
        seconds_ = float(value)
    else:
        text = str(value).strip()
        unit = text[-1:] if text[-1:] in _UNITS else "s"
        number = text[:-1] if text[-1:] in _UNITS else text
        try:
            seconds_ = float(number) * _UNITS[unit]
        except ValueError:
            raise ValueError(
                "%s %r: expected seconds or a duration like 600s, 15m, 1h" % (field, value)
            ) from None
    if seconds_ < 0:
        raise ValueError("%s %r: must not be negative" % (field, value))
    return int(seconds_) if seconds_ == int(seconds_) else seconds_


def duration(value, field="timeout"):
    """Any accepted duration -> the API's "Ns" form."""
    return "%ss" % duration_seconds(value, field)


def since_time(value, now=None):
    """RFC 3339 text for a `since`: a duration back from now (30m, 1h, 2d), or an RFC 3339 time as given."""
    text = (value or "").strip()
    if text[-1:] == "d" and text[:-1].isdigit():
        back = int(text[:-1]) * 86400
    elif text[-1:] in _UNITS and text[:-1].isdigit():
        back = duration_seconds(text)
    else:
        try:
            datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                "since %r: expected a duration like 30m, 1h, 2d or an RFC 3339 time" % value
            ) from None
        return text
    return rfc3339((now or datetime.now(UTC)) - timedelta(seconds=back))


def seconds(value):
    """12 -> '12s', 75 -> '1m15s', 3720 -> '1h02m'; None -> '-'."""
    if value is None:
        return "-"
    total = round(value)
    if total < 60:
        return "%ds" % total
    if total < 3600:
        return "%dm%02ds" % (total // 60, total % 60)
    if total < 86400:
        return "%dh%02dm" % (total // 3600, total % 3600 // 60)
    return "%dd%02dh" % (total // 86400, total % 86400 // 3600)


def when(value):
    """'2026-11-26 00:00' in UTC, or '-'."""
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"
