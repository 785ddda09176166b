"""Injected faults (the next N matching requests fail) and the per-request counter for benchmarks.

A fault strikes before the service sees the request (the default), or with `applied` after the
service has done the work: its answer is then replaced (`status`), lost (`drop`) or late (`delay`),
as Google's front end can lose the answer to a `:run` that did start an execution.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatchcase
from typing import Any


@dataclass
class Fault:
    id: int
    host: str
    path: str
    method: str | None
    count: int
    status: int | None
    retry_after: int | None
    delay: float
    drop: bool
    fired: int = 0
    applied: bool = False
    answered: list[int] = field(default_factory=list)  # the service's status for each applied hit

    def matches(self, host: str, method: str, path: str) -> bool:
        return (
            fnmatchcase(host, self.host)
            and fnmatchcase(path, self.path)
            and (self.method is None or self.method == method.upper())
        )


def parse_fault(body: Any, next_id: int) -> Fault:
    """A Fault from the admin JSON; ValueError naming the bad field and what is valid."""
    if not isinstance(body, dict):
        raise ValueError(
            "a fault is a JSON object: "
            "{host, path, method?, count, status?, retry_after?, delay?, drop?, applied?}"
        )
    known = {"host", "path", "method", "count", "status", "retry_after", "delay", "drop", "applied"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise ValueError(f"unknown fault field(s) {unknown}: valid are {sorted(known)}")
    host = body.get("host")
    if not isinstance(host, str) or not host:
        raise ValueError(
            f"fault host {host!r}: expected a host name (glob allowed) such as run.googleapis.com"
        )
    path = body.get("path", "*")
    if not isinstance(path, str) or not path:
        raise ValueError(f"fault path {path!r}: expected a glob on the path without query, e.g. /v2/*")
    method = body.get("method")
    if method is not None and (not isinstance(method, str) or not method.isalpha()):
        raise ValueError(f"fault method {method!r}: expected an HTTP method such as GET or POST")
    count = body.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"fault count {count!r}: expected an integer >= 1")
    delay = body.get("delay", 0)
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= 600:
        raise ValueError(f"fault delay {delay!r}: expected seconds between 0 and 600")
    drop = body.get("drop", False)
    if not isinstance(drop, bool):
        raise ValueError(f"fault drop {drop!r}: expected true or false")
    applied = body.get("applied", False)
    if not isinstance(applied, bool):
        raise ValueError(
            f"fault applied {applied!r}: expected true or false "
            "(true: the service does the work first, then the answer is replaced, dropped or delayed)"
        )
    status = body.get("status")
    if status is None and not drop and not delay:
        status = 503
    if status is not None and (
        isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599
    ):
        raise ValueError(f"fault status {status!r}: expected an HTTP error status 400-599")
    retry_after = body.get("retry_after")
    if retry_after is not None and (
        isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0
    ):
        raise ValueError(f"fault retry_after {retry_after!r}: expected whole seconds >= 0")
    return Fault(
        next_id,
        host,
        path,
        method.upper() if method else None,
        count,
        status,
        retry_after,
        delay,
        drop,
        applied=applied,
    )


FIRED_KEPT = 200  # the newest hits GET /_localcloud/faults lists under "fired"


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._fired: deque[dict] = deque(maxlen=FIRED_KEPT)
        self._next_id = 1

    def add(self, body: Any) -> Fault:
        with self._lock:
            fault = parse_fault(body, self._next_id)
            self._next_id += 1
            self._faults.append(fault)
            return fault

    def take(self, host: str, method: str, path: str, seq: int | None = None) -> tuple[Fault, dict] | None:
        """The first armed fault matching this request, consuming one of its count, and the hit it
        records under "fired" (pass it to `answered` once the service has answered an applied one)."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(host, method, path):
                    fault.count -= 1
                    fault.fired += 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    hit = {
                        "id": fault.id,
                        "seq": seq,
                        "host": host,
                        "method": method.upper(),
                        "path": path,
                        "applied": fault.applied,
                        "status": fault.status,
                        "drop": fault.drop,
                        "delay": fault.delay,
                        "answered": None,
                    }
                    self._fired.append(hit)
                    return fault, hit
        return None

    def answered(self, fault: Fault, hit: dict, status: int) -> None:
        """What the service answered to an applied fault's request (before the fault strikes)."""
        with self._lock:
            fault.answered.append(status)
            hit["answered"] = status

    def list(self) -> list[dict]:
        with self._lock:
            return [asdict(f) for f in self._faults]

    def fired(self) -> list[dict]:
        """The newest hits, oldest first (kept after their fault is consumed)."""
        with self._lock:
            return [dict(hit) for hit in self._fired]

    def clear(self) -> int:
        """Disarm every fault and forget the fired history; how many were armed."""
        with self._lock:
            n = len(self._faults)
            self._faults.clear()
            self._fired.clear()
            return n


class RequestCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, str]] = Counter()

    def count(self, host: str, method: str, path: str) -> None:
        with self._lock:
            self._counts[(host, method, path)] += 1

    def summary(self) -> dict:
        with self._lock:
            items = sorted(self._counts.items())
        by_host: Counter[str] = Counter()
        by_host_method: Counter[str] = Counter()
        for (host, method, _), n in items:
            by_host[host] += n
            by_host_method[f"{method} {host}"] += n
        return {
            "total": sum(by_host.values()),
            "by_host": dict(by_host),
            "by_host_method": dict(by_host_method),
            "requests": [{"host": h, "method": m, "path": p, "count": n} for (h, m, p), n in items],
        }

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
