# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operator side's one HTTP client: every module, action plugin and toolkit CLI calls through it.

- One authorised session (one token) per client; a plain session, under the same policy, for
  the CloudAct API, which takes its own key rather than an OAuth token.
- One retry policy, google.api_core's `retry_target`: a predicate (408, 429, 5xx, connection
  errors), exponential backoff with full jitter (api-core's own sleep generator), an overall
  deadline. `Retry-After`, in seconds or as an HTTP date, sets the next sleep through the
  `on_error` hook that api-core calls before it draws the next delay.
- A call that may have reached the server (a read timeout or reset after the request was sent) is
  retried only when it is idempotent; otherwise it fails saying it may have been applied.
- One error-body parser (`error_message`: AIP-193 `{"error": {...}}`, OAuth's
  `{"error": "...", "error_description": ...}`, else the status and the body's first line).
- One pager (`list_all`) and one long-running-operation waiter (`wait_operation`).
- Proxies and CA bundles come from the environment, as requests reads them (HTTPS_PROXY,
  NO_PROXY, REQUESTS_CA_BUNDLE): a module gets the play's `environment:`, an action plugin
  applies it for its run (`applied_environment`), a CLI sets it before it builds the client.
- Endpoint overrides, like gcloud's `api_endpoint_overrides`: $CLOUDACT_API_ENDPOINTS is a JSON
  object from a Google API host to the base URL to use instead (a Private Service Connect or
  regional endpoint), e.g. {"run.googleapis.com": "https://run-corp.p.googleapis.com"}.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import os
import random
import time
from datetime import UTC, datetime

try:
    import requests
    from google.api_core.retry import exponential_sleep_generator, retry_target
    from google.auth.exceptions import GoogleAuthError, TransportError
    from google.auth.transport.requests import AuthorizedSession

    HAS_LIBS = True
except ImportError:  # a module reports the missing library through GcpSession's own check
    HAS_LIBS = False

    class GoogleAuthError(Exception):
        pass

    class TransportError(GoogleAuthError):
        pass


from ansible_collections.cloudact.gcp.plugins.module_utils.timefmt import parse_http_date

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"})
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
BACKOFF_MULTIPLIER = 2.0
MAX_RETRY_AFTER = 60.0
REQUEST_TIMEOUT = 60.0  # per attempt (connect + read), never past the deadline
DEFAULT_DEADLINE = 120.0  # all attempts of one call
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
ENDPOINTS_VARIABLE = "CLOUDACT_API_ENDPOINTS"


def endpoint_overrides(environ=None):
    """{host: base URL} from $CLOUDACT_API_ENDPOINTS; ApiError naming the variable when it is not JSON."""
    text = (os.environ if environ is None else environ).get(ENDPOINTS_VARIABLE, "").strip()
    if not text:
        return {}
    try:
        value = jsonlib.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ApiError(
            "%s=%r: expected a JSON object from an API host to a base URL, e.g. "
            '{"run.googleapis.com": "https://run-corp.p.googleapis.com"}' % (ENDPOINTS_VARIABLE, text[:80])
        )
    return {str(k).lower(): v.rstrip("/") for k, v in value.items()}


class ApiError(Exception):
    """A call that failed for good: `str()` names the resource and carries the API's message."""

    def __init__(self, message, status=None, reason=None):
        super().__init__(message)
        self.status = status
        self.reason = reason


class _Transient(Exception):
    """One failed attempt worth another: the failure text and the server's Retry-After, if any."""

    def __init__(self, failure, retry_after=None):
        super().__init__(failure)
        self.retry_after = retry_after


def first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def error_message(response):
    """('403 PERMISSION_DENIED: <message>', 'PERMISSION_DENIED') from an error reply's body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        status = error.get("status") or ""
        return "%s %s: %s" % (response.status_code, status, error.get("message") or ""), status
    if isinstance(error, str):  # OAuth: {"error": "invalid_grant", "error_description": ...}
        return "%s %s: %s" % (response.status_code, error, body.get("error_description", "")), error
    if isinstance(body, dict) and isinstance(body.get("detail"), str):  # the CloudAct API (FastAPI)
        return "%s %s" % (response.status_code, body["detail"]), None
    text = (response.text or "").strip().splitlines()
    return "%s %s" % (response.status_code, text[0][:200] if text else response.reason), None


def retry_after(value, now=None):
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), capped; None if absent."""
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    try:
        wait = float(text)
    except ValueError:
        when = parse_http_date(text)
        if when is None:
            return None
        wait = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, min(wait, MAX_RETRY_AFTER))


_NOT_SENT = frozenset({"NewConnectionError", "NameResolutionError", "ConnectionRefusedError"})


def _not_sent(exc):
    """Whether a connection error happened before the request could reach the server."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    stack, seen = [exc], set()
    while stack:
        err = stack.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if type(err).__name__ in _NOT_SENT:
            return True
        stack += [getattr(err, "reason", None), err.__cause__, err.__context__]
        stack += [a for a in getattr(err, "args", ()) if isinstance(a, BaseException)]
    return False


class _Backoff:
    """api-core's full-jitter exponential delays, overridden once by a Retry-After the server sent."""

    def __init__(self, log):
        self._delays = exponential_sleep_generator(INITIAL_BACKOFF, MAX_BACKOFF, BACKOFF_MULTIPLIER)
        self._hint = None
        self._failure = None
        self._log = log

    def saw(self, exc):  # api-core's on_error: called before the next delay is drawn
        self._hint = getattr(exc, "retry_after", None)
        self._failure = str(exc)

    def __iter__(self):
        return self

    def __next__(self):
        delay = next(self._delays)
        hint, self._hint = self._hint, None
        delay = delay if hint is None else hint
        self._log.append((self._failure, delay))
        return delay


def credentials(auth_kind="application", service_account_file=None, scopes=SCOPES):
    """google.auth credentials for the action plugins and CLIs (modules take GcpSession's)."""
    if auth_kind == "serviceaccount":
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_file(
            os.path.expanduser(service_account_file), scopes=list(scopes)
        )
    if auth_kind == "application":
        import google.auth

        creds, _ = google.auth.default(scopes=list(scopes))
        return creds
    raise ApiError("auth_kind %r: the controller-side calls take serviceaccount or application" % auth_kind)


class Client:
    """One authorised session with the retry policy, the pager and the LRO waiter.

    `credentials` may be a callable that returns them (made on the first Google call only).
    `headers` are added to every Google call (google.cloud's user agent, for one).
    """

    def __init__(self, credentials=None, deadline=DEFAULT_DEADLINE, headers=None):
        self._credentials = credentials
        self._session = None
        self._plain = None
        self._headers = dict(headers or {})
        self.deadline = float(deadline or DEFAULT_DEADLINE)
        self.endpoints = endpoint_overrides()
        self.requests_sent = 0
        self.retries = []  # (failure, seconds slept) of each retried attempt, for -v output and tests
        self.server_date = None  # the last reply's Date: "now" as the cloud sees it

    @property
    def session(self):
        if self._session is None:
            creds = self._credentials() if callable(self._credentials) else self._credentials
            if creds is None:
                raise ApiError("no credentials: this client makes plain calls only")
            self._session = AuthorizedSession(creds)
            self._session.headers.update(self._headers)
        return self._session

    @property
    def plain(self):
        if self._plain is None:
            self._plain = requests.Session()
        return self._plain

    def request(self, method, url, what, allow_missing=False, **call):
        """The decoded JSON body of a 2xx reply ({} when empty); None for a 404 when allow_missing.

        `what` names the resource for messages ("Cloud Run job cloudact-daily-alerts"); `call` holds
        `send`'s options. Raises ApiError when the call fails for good or the deadline passes.
        """
        response = self.send(method, url, what, **call)
        if response.status_code < 300:
            if response.status_code == 204 or not response.content:
                return {}
            try:
                return response.json()
            except ValueError:
                raise ApiError("%s: %s %s returned a non-JSON body" % (what, method, url)) from None
        if response.status_code == 404 and allow_missing:
            return None
        message, reason = error_message(response)
        raise ApiError("%s: %s" % (what, message), response.status_code, reason)

    def send(
        self,
        method,
        url,
        what,
        *,
        json=None,
        data=None,
        params=None,
        idempotent=None,
        headers=None,
        authorized=True,
        timeout=None,
        deadline=None,
    ):
        """The final `requests.Response` (any status but a retried one), under the retry policy.

        `idempotent` defaults from the method (POST is not); `authorized=False` sends no token (the
        CloudAct API); `timeout` bounds one attempt, `deadline` all of them (default: the client's);
        `data` is a raw body (bytes, an upload) sent instead of `json`.
        """
        if idempotent is None:
            idempotent = method.upper() in IDEMPOTENT_METHODS
        url = self.endpoint(url)
        deadline = float(deadline or self.deadline)
        started = time.monotonic()
        attempts = []

        def attempt():
            attempts.append(1)
            session = self.session if authorized else self.plain
            per_try = min(timeout or REQUEST_TIMEOUT, max(1.0, deadline - (time.monotonic() - started)))
            self.requests_sent += 1
            try:
                response = session.request(
                    method,
                    url,
                    json=json,
                    data=data,
                    params=params,
                    headers=headers,
                    timeout=per_try,
                    allow_redirects=False,
                )
            except (
                TransportError
            ) as exc:  # the token endpoint unreachable: transient like any connection error
                raise _Transient("token endpoint: %s" % first_line(exc)) from None
            except GoogleAuthError as exc:  # refused credentials (invalid_grant, a bad key): not transient
                raise ApiError(
                    "%s: cannot get an access token: %s" % (what, first_line(exc)), reason="UNAUTHENTICATED"
                ) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure = "%s (%s)" % (type(exc).__name__, first_line(exc))
                if idempotent or _not_sent(exc):
                    raise _Transient(failure) from None
                raise ApiError(
                    "%s: %s %s failed after it was sent and may have been applied; check before "
                    "repeating it: %s" % (what, method, url.split("?")[0], failure),
                    reason="UNKNOWN",
                ) from None
            self.server_date = response.headers.get("Date") or self.server_date
            if response.status_code in RETRY_STATUSES:
                raise _Transient(error_message(response)[0], retry_after(response.headers.get("Retry-After")))
            return response

        def give_up(errors, reason, _timeout):
            last = errors[-1]
            if not isinstance(last, _Transient):
                return last, None
            return (
                ApiError(
                    "%s: gave up after %d attempt(s) in %.0fs: %s" % (what, len(attempts), deadline, last),
                    reason="DEADLINE_EXCEEDED",
                ),
                None,
            )

        self.retries = []
        backoff = _Backoff(self.retries)
        return retry_target(
            attempt,
            predicate=lambda exc: isinstance(exc, _Transient),
            sleep_generator=backoff,
            timeout=deadline,
            on_error=backoff.saw,
            exception_factory=give_up,
        )

    def endpoint(self, url):
        """`url` on its overridden base, when $CLOUDACT_API_ENDPOINTS names its host."""
        if not self.endpoints or not url.startswith("https://"):
            return url
        host, _, rest = url[len("https://") :].partition("/")
        base = self.endpoints.get(host.lower())
        return "%s/%s" % (base, rest) if base else url

    def list_all(self, url, key, what, params=None):
        """Every item of a paged list call (`nextPageToken`)."""
        items = []
        params = dict(params or {})
        while True:
            page = self.request("GET", url, what, params=params) or {}
            items.extend(page.get(key) or [])
            token = page.get("nextPageToken")
            if not token:
                return items
            params["pageToken"] = token

    def wait_operation(self, operation, base_url, what, timeout=600.0, interval=0.5, on_poll=None):
        """Poll a long-running operation until done; its `response`, or ApiError with its error.

        `on_poll(op)`, when given, sees the operation after each read (progress from its metadata).
        """
        give_up = time.monotonic() + timeout
        op = operation
        while not op.get("done"):
            if on_poll is not None:
                on_poll(op)
            if time.monotonic() > give_up:
                raise ApiError("%s: operation %s not done after %.0fs" % (what, op.get("name"), timeout))
            time.sleep(interval * random.uniform(0.8, 1.0))  # noqa: S311 - jitter, not crypto
            interval = min(interval * 1.5, 5.0)
            op = self.request("GET", "%s/%s" % (base_url, op["name"]), what)
        if on_poll is not None:
            on_poll(op)
        if op.get("error"):
            err = op["error"]
            raise ApiError("%s: operation failed: %s (code %s)" % (what, err.get("message"), err.get("code")))
        return op.get("response") or {}


@contextlib.contextmanager
def applied_environment(env):
    """Set `env` in os.environ for a controller-side call, as the play's `environment:` is for a module."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update({k: str(v) for k, v in env.items()})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
