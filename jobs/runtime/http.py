"""One HTTP client for every JSON API a job calls: timeouts, retries, no redirects, clear errors."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any

from jobs.runtime.config import HttpSettings
from jobs.runtime.errors import HttpError, JobFailed
from jobs.runtime.logs import log
from jobs.transport import Response, Transport, TransportError

# Transient by nature: retried with backoff. Any other 4xx is final.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Statuses that say the server did not act on the request, so even a call that is not
# idempotent may be repeated. A 500/502/504 may come after the work was done.
NOT_APPLIED_STATUSES = frozenset({408, 429, 503})


class HttpClient:
    """JSON over one reused transport, timeouts, and retries bounded by attempts and a deadline.

    Retried: connection errors, timeouts, 408, 429, 500, 502, 503, 504, waiting with exponential
    backoff and full jitter, or what Retry-After asks. Never another 4xx.

    Double-apply: a request that timed out while waiting for the answer, or was answered 500/502/504,
    may have been carried out. It is repeated only when the caller says the call is idempotent
    (GET always; the CloudAct daily endpoints are idempotent for a day by contract). Otherwise only
    failures that prove nothing was done are retried: a connection that was never made, 408, 429, 503.

    Reusable for any JSON API: e.g. Supabase's Management API with
    `HttpClient("https://api.supabase.com", headers={"Authorization": f"Bearer {token}"}, ...)`
    after `add_secret(token)`. `retry_after(response)` may give the wait for a retried answer that
    has no Retry-After header (Supabase's 429 says it in X-RateLimit-Reset).
    """

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        *,
        settings: HttpSettings | None = None,
        transport: Transport | None = None,
        name: str = "API",
        user_agent: str = "cloudact-jobs",
        auth_hint: str = "",
        retry_after: Callable[[Response], float | None] | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.settings = settings or HttpSettings()
        self.transport = transport or Transport()
        self.headers = {"Accept": "application/json", "User-Agent": user_agent, **(headers or {})}
        self.retry_after = retry_after
        self.name = name
        self.auth_hint = auth_hint  # appended to 401/403 errors: which credential to check
        self.attempts = 0  # attempts made by the last request (for tests and summaries)

    def get(self, path: str, *, expect_json: bool = True) -> Any:
        return self.request("GET", path, expect_json=expect_json, idempotent=True)

    def post(self, path: str, body: Any = None, *, idempotent: bool = False, expect_json: bool = True) -> Any:
        return self.request("POST", path, body, expect_json=expect_json, idempotent=idempotent)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        idempotent: bool | None = None,
        expect_json: bool = True,
        ok: Callable[[int], bool] | None = None,
    ) -> Any:
        """The decoded JSON body of a successful answer (2xx, or what `ok` accepts); else HttpError."""
        s = self.settings
        idempotent = method in ("GET", "HEAD", "OPTIONS") if idempotent is None else idempotent
        ok = ok or (lambda status: 200 <= status < 300)
        what = f"{method} {path}"
        started = time.monotonic()
        deadline = started + s.deadline
        headers = self.headers
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers = {**headers, "Content-Type": "application/json"}
        for attempt in range(1, s.max_attempts + 1):
            self.attempts = attempt
            remaining = deadline - time.monotonic()
            if remaining <= 0:  # a wait overshot the deadline by a hair
                raise HttpError(f"{self.name} {what} failed: the {s.deadline:g}s deadline passed", None)
            timeout = (min(s.connect_timeout, remaining), min(s.read_timeout, remaining))
            retry_after: float | None = None
            try:
                # No redirects: one would turn a POST into a GET and carry the root key to whatever
                # host a Location names.
                response = self.transport.request(
                    method, self.base_url + path, headers=headers, body=data, timeout=timeout
                )
            except TransportError as exc:
                reason, applied = exc.reason, exc.may_have_applied
                if not exc.transient:
                    raise HttpError(f"{self.name} {what} failed: {reason}") from None
                if applied and not idempotent:
                    raise HttpError(
                        f"{self.name} {what} failed: {reason}; not retried because the request may have "
                        "been carried out and this call is not idempotent"
                    ) from None
                status = None
            else:
                status = response.status_code
                if ok(status):
                    return _decode(response, self.name, what) if expect_json else response
                if 300 <= status < 400:
                    where = response.headers.get("Location", "nowhere")
                    raise HttpError(
                        f"{self.name} {what} answered {status}, a redirect to {where}: not followed; "
                        "check the base URL",
                        status,
                    )
                detail = error_detail(response)
                reason = f"{status} {response.reason or ''}".rstrip() + (f": {detail}" if detail else "")
                if status in (401, 403) and self.auth_hint:
                    reason = f"{reason} (the credentials were refused: {self.auth_hint})"
                if status not in RETRY_STATUSES or (not idempotent and status not in NOT_APPLIED_STATUSES):
                    raise HttpError(f"{self.name} {what} failed: {reason}", status, detail)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if retry_after is None and self.retry_after is not None:
                    retry_after = self.retry_after(response)
            elapsed = time.monotonic() - started
            if attempt == s.max_attempts:
                raise HttpError(
                    f"{self.name} {what} failed after {attempt} attempts in {elapsed:.1f}s: {reason}",
                    status,
                    reason,
                )
            wait = retry_after if retry_after is not None else _backoff(attempt, s.backoff, s.backoff_max)
            if time.monotonic() + wait >= deadline:
                raise HttpError(
                    f"{self.name} {what} failed after {attempt} attempts in {elapsed:.1f}s: {reason}; "
                    f"the next try (in {wait:.1f}s) would pass the {s.deadline:g}s deadline",
                    status,
                    reason,
                )
            log.warning(
                "%s %s attempt %d/%d failed: %s; retrying in %.1fs%s",
                self.name,
                what,
                attempt,
                s.max_attempts,
                reason,
                wait,
                " (Retry-After)" if retry_after is not None else "",
                extra={"http_attempt": attempt, "http_status": status, "retry_in": round(wait, 3)},
            )
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover


def _backoff(attempt: int, base: float, cap: float) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))] (spreads retries of many clients)."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))  # noqa: S311 - jitter, not crypto


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime  # the rare form; not worth loading at start

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_detail(response: Response) -> str:
    """The error message of a failed answer: FastAPI `detail`, Supabase `message`, Google `error.message`."""
    try:
        body = response.json()
    except ValueError:
        text = " ".join(response.text.split())
        return text[:300] + ("..." if len(text) > 300 else "")
    if isinstance(body, dict):
        for candidate in (body.get("detail"), body.get("message"), body.get("error")):
            if isinstance(candidate, dict):
                candidate = candidate.get("message")
            if candidate:
                return candidate if isinstance(candidate, str) else json.dumps(candidate)[:300]
    return json.dumps(body)[:300]


def _decode(response: Response, name: str, what: str) -> Any:
    """The JSON body, or a clear error naming the call and showing the start of what came instead."""
    if not response.content:
        raise JobFailed(
            f"{name} {what} returned {response.status_code} with an empty body where JSON was expected"
        )
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("Content-Type", "no content type")
        text = " ".join(response.text.split())[:200]
        raise JobFailed(
            f"{name} {what} returned {response.status_code} with a body that is not JSON ({kind}): {text!r}"
        ) from None
