"""What the Cloud Run modules share: URL patterns, resource type URLs, paging, etags, and `RunState`,
the base of `RunService`'s per-resource mixins (the state, its lock and the live runs).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request

from localcloud.projects import access_error
from localcloud.service import Service
from localcloud.services import run_shapes as shapes
from localcloud.services.run_errors import ApiError

if TYPE_CHECKING:
    from localcloud.services.run_runner import ExecutionRun

P = r"/v2/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
JOB = P + r"/jobs/(?P<job>[^/:]+)"
EXEC = JOB + r"/executions/(?P<execution>[^/:]+)"
OP = P + r"/operations/(?P<op>[^/:]+)"
_REGION = re.compile(r"^[a-z]+-[a-z]+\d+$")
TYPE_JOB = "type.googleapis.com/google.cloud.run.v2.Job"
TYPE_EXECUTION = "type.googleapis.com/google.cloud.run.v2.Execution"
MAX_OPERATIONS = 2000
SAVE_INTERVAL = 0.2  # seconds: the state file trails the state by at most this much


def new_etag() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(12)).decode().rstrip("=")


def offset_page(items: list[Any], size: int, token: str, bad_token: str) -> tuple[list, str]:
    """(this page, the next page's token or ''): the token is the next offset, base64; `bad_token`
    is the 400's message for a token that is not one of ours ({token!r} is filled in)."""
    offset = 0
    if token:
        try:
            offset = int(base64.urlsafe_b64decode(token.encode() + b"==").decode())
        except ValueError:
            raise ApiError(400, bad_token.format(token=token)) from None
    more = offset + size < len(items)
    return items[offset : offset + size], (
        base64.urlsafe_b64encode(str(offset + size).encode()).decode() if more else ""
    )


def paginate(
    items: list[Any], request: Request, *, default: int = 100, maximum: int = 1000
) -> tuple[list, str]:
    """v2 paging: `pageSize` (none: `default`, at most `maximum`) and `pageToken`."""
    size = shapes.parse_int(request.args.get("pageSize") or "0", "pageSize", maximum=2**31 - 1) or default
    return offset_page(
        items,
        min(size, maximum),
        request.args.get("pageToken") or "",
        "Invalid page token {token!r}: use the nextPageToken of the previous page",
    )


def list_body(key: str, items: list[Any], request: Request) -> dict[str, Any]:
    """A v2 list answer: `{key: page, nextPageToken?}`, or {} for an empty page (as Google sends)."""
    page, token = paginate(items, request)
    return {key: page, **({"nextPageToken": token} if token else {})} if page else {}


def execution_id(name: str) -> str:
    return name.rsplit("/", 1)[1]


def flag(request: Request, key: str) -> bool:
    return request.args.get(key, "").lower() in ("true", "1")


class RunState(Service):
    """The state every mixin of RunService reads and changes, always under `_lock`; `_changed` is notified
    whenever an execution's state changes. The mixins call each other's methods through `self`."""

    _lock: threading.RLock
    _changed: threading.Condition
    _runs: dict[str, ExecutionRun]
    _stopping: bool
    _state_file: Path
    _state: dict[str, dict[str, Any]]

    def _save(self, now: bool = False) -> None:
        """Mark the state changed: the writer thread writes it within SAVE_INTERVAL (now=True: at once).

        Writing the whole state on every change made creating executions O(n^2) (five writes per
        execution); coalesced, a burst of changes costs one write. A clean stop writes at once, so
        only a crash of localcloud can lose the last SAVE_INTERVAL of changes.
        """
        operations = self._state["operations"]
        if len(operations) > MAX_OPERATIONS:  # like Cloud Run's, old finished operations expire, oldest first
            executions = self._state["executions"]
            finished = [
                name
                for name, op in operations.items()
                if "completionTime" in executions.get(op.get("execution", ""), {"completionTime": True})
            ]
            for name in finished[: len(operations) - MAX_OPERATIONS]:
                del operations[name]
        self._dirty = True
        if now:
            self._write_state()
        elif getattr(self, "_writer", None) is None:
            self._writer = threading.Thread(target=self._write_loop, name="run-state-writer", daemon=True)
            self._writer.start()

    def _write_state(self) -> None:
        with self._lock:  # one writer at a time, and a consistent state
            if not getattr(self, "_dirty", False):
                return
            tmp = self._state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._state))
            os.replace(tmp, self._state_file)
            self._dirty = False

    def _write_loop(self) -> None:
        while True:
            time.sleep(SAVE_INTERVAL)
            self._write_state()

    def _check_scope(self, project: str, location: str, principal: str | None = None) -> None:
        denied = access_error(project, principal)
        if denied:
            raise ApiError(403, denied)
        if not _REGION.match(location):
            raise ApiError(400, f"Location {location!r} is not a valid region; e.g. {self.cloud.region}")

    def _now(self) -> str:
        return self.cloud.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
