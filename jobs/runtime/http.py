"""One HTTP client for every JSON API a job calls: requests for the calls, api-core's retry loop.

When a failed call is sent again is not decided here: it is the one retry rule both HTTP clients
share, the table in the cloudact.gcp collection's module_utils/verbs.py (the image carries that
file at the same import path). A call is classified by its verb (`verbs.classify`: the method, the
URL's last segment, the body's insertIds or read_only; `idempotent=True` when the API's contract
makes a repeat harmless, as CloudAct's daily endpoints are for a day), then after each failure
`verbs.decide` says RETRY, LOOK or FINAL. RETRY goes through google.api_core's `retry_target`
(the shape the operator side follows): exponential backoff with full jitter
(`exponential_sleep_generator`), an overall deadline (HTTP_DEADLINE_SECONDS) and at most
HTTP_MAX_ATTEMPTS attempts; a `Retry-After` (seconds or an HTTP date, `verbs.retry_after`) replaces
the backoff for the next wait: the failed attempt tells the sleep generator, through `on_error`,
before it yields. A wait that would pass the deadline is not waited: the call fails at once, saying so.

Double-apply: a request that timed out while waiting for the answer, lost its connection after it
was sent, or was answered 500/502/504 may have been carried out. A job has nothing to look at
before sending such a call again (LOOK), so it fails saying the request may have been applied;
only a safe verb is repeated. Failures that prove nothing was done are retried for any call: a
connection never made (refused, DNS, proxy, TLS), 408, 429, 503.

No redirects are followed (`allow_redirects=False`): one would turn a POST into a GET and carry the
root key to whatever host a Location names; a 3xx is an error that names it. No cookies are kept
and no credentials are added beyond the caller's headers (no ~/.netrc). Proxies (HTTPS_PROXY,
HTTP_PROXY, NO_PROXY) and the CA bundle (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE) are requests' own;
SSL_CERT_FILE counts too when neither is set, as it does for the standard library.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from ansible_collections.cloudact.gcp.plugins.module_utils import verbs
from google.api_core.retry import RetryFailureReason, exponential_sleep_generator, retry_target
from requests import Response

from jobs.runtime.config import HttpSettings
from jobs.runtime.errors import HttpError, JobFailed, first_line
from jobs.runtime.logs import log

# The statuses the shared rule treats as transient (verbs.py), re-exported for the scripts' tests.
RETRY_STATUSES = verbs.TRANSIENT
NOT_APPLIED_STATUSES = verbs.NOT_APPLIED
MAY_HAVE_APPLIED = "not retried because the request may have been applied and this call is not idempotent"


def new_session() -> requests.Session:
    """A requests session as the jobs use it: environment proxies and CA bundle, no cookies, no netrc."""
    session = requests.Session()
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))  # accepts none
    session.auth = _no_auth  # a session auth stops requests from reading credentials from ~/.netrc
    bundle = os.environ.get("SSL_CERT_FILE", "").strip()
    if bundle:  # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, when set, still win (requests reads them per call)
        session.verify = bundle
    return session


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


class _Retryable(Exception):
    """An attempt that failed in a way worth trying again; the predicate decides whether it may."""

    def __init__(self, reason: str, status: int | None = None, detail: str = "", retry_after=None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.detail = detail
        self.retry_after: float | None = retry_after


class HttpClient:
    """JSON over one requests session, with the retry policy above.

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
        session: requests.Session | None = None,
        name: str = "API",
        user_agent: str = "cloudact-jobs",
        auth_hint: str = "",
        retry_after: Callable[[Response], float | None] | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.settings = settings or HttpSettings()
        self.session = session or new_session()
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
        """The decoded JSON body of a successful answer (2xx, or what `ok` accepts); else HttpError.

        `idempotent=True`: the API's contract makes a repeat of this call harmless (verbs.py's
        "POST idempotent by contract"); otherwise the verb alone decides.
        """
        call = _Call(
            self,
            method,
            path,
            body,
            bool(idempotent),
            ok or (lambda status: 200 <= status < 300),
            expect_json,
        )
        return call.run()


class _Call:
    """One call and its attempts: the target, predicate, sleep generator and callbacks of retry_target."""

    def __init__(self, client: HttpClient, method, path, body, idempotent: bool, ok, expect_json: bool):
        self.client = client
        self.s = client.settings
        self.method = method
        self.url = client.base_url + path
        self.what = f"{client.name} {method} {path}"
        self.rule = verbs.classify(method, self.url, body, idempotent=idempotent)
        self.ok = ok
        self.expect_json = expect_json
        self.headers = dict(client.headers)
        self.data = None
        if body is not None:
            self.data = json.dumps(body).encode()
            self.headers["Content-Type"] = "application/json"
        self.attempt = 0
        self.last: _Retryable | None = None
        self.wait = 0.0
        self.started = self.deadline = 0.0

    def run(self) -> Any:
        self.started = time.monotonic()
        self.deadline = self.started + self.s.deadline
        return retry_target(
            self.once,
            predicate=self.may_retry,
            sleep_generator=self.waits(),
            timeout=self.s.deadline,
            on_error=self.failed,
            exception_factory=self.final_error,
        )

    def once(self) -> Any:
        """One attempt: the answer, HttpError/JobFailed when final, _Retryable when worth another."""
        self.attempt = self.client.attempts = self.attempt + 1
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:  # a wait overshot the deadline by a hair
            raise HttpError(f"{self.what} failed: the {self.s.deadline:g}s deadline passed")
        timeout = (min(self.s.connect_timeout, remaining), min(self.s.read_timeout, remaining))
        try:
            response = self.client.session.request(
                self.method,
                self.url,
                data=self.data,
                headers=self.headers,
                timeout=timeout,
                allow_redirects=False,
            )
        except (requests.RequestException, OSError, ValueError) as exc:
            reason, applied, transient = no_answer(exc, self.url, timeout)
            failure = (verbs.TIMEOUT if applied else verbs.NOT_SENT) if transient else None
            verdict = verbs.decide(self.rule, failure=failure)
            if verdict == verbs.LOOK:
                raise HttpError(
                    f"{self.what} failed: {reason}; {MAY_HAVE_APPLIED}", may_have_applied=True
                ) from None
            if verdict == verbs.FINAL:
                raise HttpError(f"{self.what} failed: {reason}") from None
            raise _Retryable(reason) from None
        return self.answer(response)

    def answer(self, response: Response) -> Any:
        status = response.status_code
        if self.ok(status):
            return decode(response, self.what) if self.expect_json else response
        if 300 <= status < 400:
            where = response.headers.get("Location", "nowhere")
            raise HttpError(
                f"{self.what} answered {status}, a redirect to {where}: not followed; check the base URL",
                status,
            )
        detail = error_detail(response)
        reason = f"{status} {response.reason or ''}".rstrip() + (f": {detail}" if detail else "")
        if status in (401, 403) and self.client.auth_hint:
            reason = f"{reason} (the credentials were refused: {self.client.auth_hint})"
        verdict = verbs.decide(self.rule, status=status)
        if verdict == verbs.FINAL:
            raise HttpError(f"{self.what} failed: {reason}", status, detail)
        if verdict == verbs.LOOK:
            raise HttpError(
                f"{self.what} failed: {reason}; {MAY_HAVE_APPLIED}", status, detail, may_have_applied=True
            )
        wait = parse_retry_after(response.headers.get("Retry-After"))
        if wait is None and self.client.retry_after is not None:
            wait = self.client.retry_after(response)
        raise _Retryable(reason, status, detail, wait)

    def may_retry(self, exc: Exception) -> bool:
        return isinstance(exc, _Retryable) and self.attempt < self.s.max_attempts

    def failed(self, exc: Exception) -> None:
        """on_error: called for a retryable failure before the next wait is drawn from `waits`."""
        self.last = exc if isinstance(exc, _Retryable) else None

    def waits(self) -> Iterator[float]:
        """The sleep generator: full-jitter backoff, unless the failed answer said Retry-After."""
        for backoff in exponential_sleep_generator(self.s.backoff, self.s.backoff_max, multiplier=2.0):
            last = self.last
            asked = last is not None and last.retry_after is not None
            self.wait = last.retry_after if asked else backoff
            if time.monotonic() + self.wait <= self.deadline:  # else retry_target gives up: nothing to log
                log.warning(
                    "%s attempt %d/%d failed: %s; retrying in %.1fs%s",
                    self.what,
                    self.attempt,
                    self.s.max_attempts,
                    last.reason if last else "?",
                    self.wait,
                    " (Retry-After)" if asked else "",
                    extra={
                        "http_attempt": self.attempt,
                        "http_status": last.status if last else None,
                        "retry_in": round(self.wait, 3),
                    },
                )
            yield self.wait

    def final_error(self, errors: list[Exception], why: RetryFailureReason, timeout: float | None):
        """exception_factory: the error to raise when retry_target stops; (error, cause)."""
        last = errors[-1]
        if not isinstance(last, _Retryable):  # final by itself: HttpError, JobFailed, or a bug
            return last, None
        elapsed = time.monotonic() - self.started
        message = f"{self.what} failed after {self.attempt} attempts in {elapsed:.1f}s: {last.reason}"
        if why == RetryFailureReason.TIMEOUT:
            message += f"; the next try (in {self.wait:.1f}s) would pass the {self.s.deadline:g}s deadline"
        return HttpError(message, last.status, last.detail), None


def no_answer(exc: BaseException, url: str, timeout: tuple[float, float]) -> tuple[str, bool, bool]:
    """For a request that got no answer: (one-line reason, may the server have acted on it, transient)."""
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"connect timeout after {timeout[0]:.1f}s ({where})", False, True
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"no answer within the {timeout[1]:.1f}s read timeout", True, True
    if isinstance(exc, requests.exceptions.ProxyError):
        return f"cannot connect through the proxy to {where}: {_cause(exc)}", False, True
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS error with {parts.hostname}: {_cause(exc)}", False, True
    if isinstance(exc, requests.exceptions.ConnectionError):
        chain = list(_chain(exc))
        if any(isinstance(e, urllib3.exceptions.NewConnectionError) for e in chain):
            return f"cannot connect to {where}: {_cause(exc)}", False, True
        if any(isinstance(e, urllib3.exceptions.ReadTimeoutError) for e in chain):  # while reading the body
            return f"no answer within the {timeout[1]:.1f}s read timeout", True, True
        return f"connection error: {_cause(exc)}", True, True  # after the request went out
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return f"connection error: the answer broke off ({_cause(exc)})", True, True
    if isinstance(exc, OSError) and not isinstance(exc, requests.RequestException):
        # requests' own check of the CA bundle path, before anything is sent
        return f"{first_line(exc)} (check REQUESTS_CA_BUNDLE / SSL_CERT_FILE)", False, False
    return f"{type(exc).__name__}: {_cause(exc)}", False, False  # a bad URL, header or proxy setting


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it wraps: urllib3 keeps the cause in `.reason` or in args, Python in __cause__."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [getattr(current, "reason", None), *current.args, current.__cause__, current.__context__]
        todo.extend(e for e in inner if isinstance(e, BaseException))


def _cause(exc: BaseException) -> str:
    """The innermost readable reason: `Connection refused`, `name resolution failed: ...`, a proxy's."""
    for inner in _chain(exc):
        if isinstance(inner, socket.gaierror):
            return f"name resolution failed: {inner.strerror or inner}"
        if isinstance(inner, OSError) and not isinstance(inner, requests.RequestException) and inner.strerror:
            return inner.strerror
        if type(inner) is OSError and inner.args and isinstance(inner.args[0], str):
            return inner.args[0]  # e.g. http.client's "Tunnel connection failed: 502 unknown host"
        if isinstance(inner, ConnectionError) and not isinstance(inner, requests.RequestException):
            return first_line(inner) if str(inner) else type(inner).__name__  # e.g. RemoteDisconnected
    return first_line(exc)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date): the shared rule's parser."""
    from datetime import datetime

    return verbs.retry_after(value, now=None if now is None else datetime.fromtimestamp(now, UTC))


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


def decode(response: Response, what: str) -> Any:
    """The JSON body, or a clear error naming the call and showing the start of what came instead."""
    if not response.content:
        raise JobFailed(f"{what} returned {response.status_code} with an empty body where JSON was expected")
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("Content-Type", "no content type")
        text = " ".join(response.text.split())[:200]
        raise JobFailed(
            f"{what} returned {response.status_code} with a body that is not JSON ({kind}): {text!r}"
        ) from None
