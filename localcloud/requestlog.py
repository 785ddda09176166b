"""The log of proxied requests, in arrival order: what a test reads to prove a command wrote nothing.

No headers are kept (they carry bearer tokens and API keys). A body is kept only when it is JSON of
at most 64 KiB, with credentials replaced by "<redacted>" before it is stored: every `privateKeyData`
and `private_key` value, every `payload.data` (Secret Manager's addVersion), and nothing at all of the
OAuth token endpoint's bodies (a signed assertion). `access_token` and `key` values in a query are
redacted too. Admin calls (/_localcloud/...) are not proxied requests and are not logged.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from typing import Any

MAX_ENTRIES = 20000  # the newest entries kept
MAX_STORED_BODY = 32 * 1024 * 1024  # characters of stored bodies, summed: older entries go first
MAX_JSON_BODY = 64 * 1024  # a larger body is logged by its length only
REDACTED = "<redacted>"
NO_BODY_HOSTS = frozenset({"oauth2.googleapis.com"})  # the token endpoint: a signed assertion
SECRET_KEYS = frozenset({"privateKeyData", "private_key"})
_SECRET_QUERY = re.compile(r"(^|&)(access_token|key)=[^&]*")


def redact(value: Any) -> Any:
    """A copy of a decoded JSON body with credential values replaced by "<redacted>"."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in SECRET_KEYS:
                out[key] = REDACTED
            elif key == "payload" and isinstance(item, dict):
                payload = redact(item)
                if "data" in payload:
                    payload["data"] = REDACTED
                out[key] = payload
            else:
                out[key] = redact(item)
        return out
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def stored_body(host: str, body: bytes) -> str | None:
    """The body as compact redacted JSON text, or None (not JSON, too large, or the token endpoint)."""
    if not body or len(body) > MAX_JSON_BODY or host.lower() in NO_BODY_HOSTS:
        return None
    try:
        return json.dumps(redact(json.loads(body)), separators=(",", ":"))
    except (ValueError, RecursionError):  # not JSON (UnicodeDecodeError is a ValueError), or absurdly deep
        return None


def redact_query(query: str) -> str:
    return _SECRET_QUERY.sub(lambda m: f"{m.group(1)}{m.group(2)}={REDACTED}", query)


class RequestLog:
    """Bounded, thread-safe; seq numbers keep rising across resets, so a mark taken before stays valid."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_stored_body: int = MAX_STORED_BODY) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque()
        self._max_entries = max_entries
        self._max_stored_body = max_stored_body
        self._stored_body = 0
        self._last_seq = 0

    def add(
        self,
        *,
        time: str,
        host: str,
        method: str,
        path: str,
        query: str,
        body: bytes,
        content_type: str | None,
    ) -> dict[str, Any]:
        """Log a request as it arrives; its status is filled in by `sent` (None until then)."""
        text = stored_body(host, body)
        with self._lock:
            self._last_seq += 1
            entry: dict[str, Any] = {
                "seq": self._last_seq,
                "time": time,
                "host": host,
                "method": method,
                "path": path,
                "query": redact_query(query),
                "status": None,
                "fault": None,
                "body": text,  # stored as JSON text, decoded when read
                "body_bytes": len(body),
                "content_type": content_type,
            }
            self._entries.append(entry)
            self._stored_body += len(text or "")
            while len(self._entries) > self._max_entries or (
                self._stored_body > self._max_stored_body and len(self._entries) > 1
            ):
                self._stored_body -= len(self._entries.popleft()["body"] or "")
            return entry

    def update(self, entry: dict[str, Any], **fields: Any) -> None:
        with self._lock:
            entry.update(fields)

    def read(self, after: int = 0) -> dict[str, Any]:
        """{"requests": entries with seq > after, oldest first, bodies decoded; "last_seq": the
        newest seq given so far (0 before any request), a mark for the next `after`}."""
        with self._lock:
            picked = [dict(e) for e in self._entries if e["seq"] > after]
            last_seq = self._last_seq
        for entry in picked:
            if entry["body"] is not None:
                entry["body"] = json.loads(entry["body"])
        return {"requests": picked, "last_seq": last_seq}

    def reset(self) -> None:
        """Forget the entries (seq keeps counting)."""
        with self._lock:
            self._entries.clear()
            self._stored_body = 0
