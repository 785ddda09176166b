# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operator side's one HTTP client: every module, action plugin and toolkit CLI calls through it.

- One authorised session (one token) per client; a plain session, under the same policy, for
  the CloudAct API, which takes its own key rather than an OAuth token.
- One retry rule, shared with the job image: the table of module_utils/verbs.py decides, per verb,
  whether a failed call is sent again (RETRY), looked for first (LOOK) or final. RETRY goes through
  google.api_core's `retry_target`: exponential backoff with full jitter (api-core's own sleep
  generator) and an overall deadline; `Retry-After`, in seconds or as an HTTP date, sets the next
  sleep through the `on_error` hook that api-core calls before it draws the next delay.
- Look before you leap: a call that may have been applied and lost its answer (a 500/502/504, a
  read timeout, a connection dropped after the request went out) is never resent blindly. With a
  `look` (what the call would have made: the execution carrying this run's id, the job of that
  name) the client looks for up to LOOK_SECONDS, adopts what it finds, and resends only when
  nothing is there; without one it fails saying the call may have been applied.
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


from ansible_collections.cloudact.gcp.plugins.module_utils import tokens, verbs
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import ApiError

INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
BACKOFF_MULTIPLIER = 2.0
MAX_RETRY_AFTER = 60.0
REQUEST_TIMEOUT = 60.0  # per attempt (connect + read), never past the deadline
DEFAULT_DEADLINE = 120.0  # all attempts of one call
LOOK_SECONDS = 10.0  # how long a lost answer's look goes on before it concludes nothing was made
TIMEOUT_VARIABLE = (
    "CLOUDACT_HTTP_TIMEOUT"  # seconds per attempt, e.g. behind a slow proxy (gcloud's http_timeout)
)
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


class Ambiguous(ApiError):
    """A call that may have been applied and whose answer was lost (verbs.LOOK).

    `server_date`: the Date of the failed answer (or of the last answer before it), from which a
    look pages back; `status`: the answer's status, None when there was none.
    """

    def __init__(self, message, status=None, server_date=None):
        super().__init__(message, status, "UNKNOWN")
        self.server_date = server_date


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
    return verbs.retry_after(value, now=now, cap=MAX_RETRY_AFTER)


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


def _failure_kind(exc):
    """verbs' kind of a failure without an answer: not sent, a read timeout, or a dropped connection."""
    if _not_sent(exc):
        return verbs.NOT_SENT
    if isinstance(exc, requests.ReadTimeout):
        return verbs.TIMEOUT
    return verbs.DROPPED


def _timeout_setting(environ=None):
    """Seconds per attempt: $CLOUDACT_HTTP_TIMEOUT (a positive number), else REQUEST_TIMEOUT."""
    text = (os.environ if environ is None else environ).get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return REQUEST_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise ApiError("%s=%r: expected a number of seconds > 0, e.g. 30" % (TIMEOUT_VARIABLE, text))
    return value


def found_line(found):
    """How a look's find is named in the lost-answer line."""
    name = found.get("name") if isinstance(found, dict) else None
    meta = (found.get("metadata") or {}) if isinstance(found, dict) else {}
    name = meta.get("name") or name or "it"
    return "found %s and adopted it; nothing was sent twice" % str(name).rsplit("/", 1)[-1]


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
    """google.auth credentials for the action plugins and CLIs (modules take GcpSession's).

    A service-account key's token is shared by every process of the run (module_utils/tokens.py).
    """
    if auth_kind == "serviceaccount":
        from google.oauth2 import service_account

        path = os.path.expanduser(service_account_file)
        creds = service_account.Credentials.from_service_account_file(path, scopes=list(scopes))
        return tokens.shared(creds, path, scopes, tokens.state_dir())
    if auth_kind == "application":
        import google.auth

        creds, _project = google.auth.default(scopes=list(scopes))
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
        self.lost = []  # one line per lost answer and what the look found: the caller reports them
        self.server_date = None  # the last reply's Date: "now" as the cloud sees it
        self.timeout = _timeout_setting()

    @property
    def session(self):
        if self._session is None:
            try:
                creds = self._credentials() if callable(self._credentials) else self._credentials
            except (GoogleAuthError, OSError, ValueError) as exc:  # no ADC, an unreadable key file
                raise ApiError(
                    "no usable credentials: %s" % first_line(exc), reason="UNAUTHENTICATED"
                ) from None
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

    def request(self, method, url, what, allow_missing=False, look=None, **call):
        """The decoded JSON body of a 2xx reply ({} when empty); None for a 404 when allow_missing.

        `what` names the resource for messages ("Cloud Run job cloudact-daily-alerts"); `call` holds
        `send`'s options. `look(lost)`, for a call that is not safe to repeat, reads what the call
        would have made and answers the body to adopt in its place, or None when there is nothing
        (`lost` is the Ambiguous failure: its server_date bounds the look). Raises ApiError when the
        call fails for good or the deadline passes.
        """
        started = time.monotonic()
        while True:
            try:
                response = self.send(method, url, what, **call)
                break
            except Ambiguous as lost:
                if look is None:
                    raise
                found = self.look_for(look, lost)
                if found is not None:
                    self.lost.append("%s; %s" % (lost, found_line(found)))
                    return found
                if time.monotonic() - started > float(call.get("deadline") or self.deadline):
                    raise
                self.lost.append("%s; nothing found in %.0fs: sent again" % (lost, LOOK_SECONDS))
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

    def look_for(self, look, lost, seconds=LOOK_SECONDS):
        """Call `look(lost)` until it finds something or `seconds` pass; what it found, else None."""
        give_up = time.monotonic() + seconds
        interval = 0.25
        while True:
            found = look(lost)
            if found is not None or time.monotonic() >= give_up:
                return found
            time.sleep(min(interval * random.uniform(0.8, 1.0), max(0.0, give_up - time.monotonic())))  # noqa: S311
            interval = min(interval * 1.5, 2.0)

    def send(
        self,
        method,
        url,
        what,
        *,
        json=None,
        data=None,
        params=None,
        idempotent=False,
        headers=None,
        authorized=True,
        timeout=None,
        deadline=None,
        once=False,
    ):
        """The final `requests.Response` (any status but a retried one), under the retry rule.

        The rule (verbs.classify, verbs.decide) takes the verb from the method, URL and body;
        `idempotent=True` says the API's contract makes a repeat harmless. A lost answer of a call
        that is not safe to repeat raises Ambiguous. `once`: one attempt whatever the answer (a
        probe that must not run twice). `authorized=False` sends no token (the CloudAct API);
        `timeout` bounds one attempt, `deadline` all of them (default: the client's); `data` is a
        raw body (bytes, an upload) sent instead of `json`.
        """
        rule = verbs.classify(method, url, json, headers, idempotent=idempotent)
        url = self.endpoint(url)
        deadline = float(deadline or self.deadline)
        started = time.monotonic()
        attempts = []

        def attempt():
            attempts.append(1)
            session = self.session if authorized else self.plain
            left = max(1.0, deadline - (time.monotonic() - started))
            per_try = min(timeout or self.timeout, left)
            sent_after = self.server_date
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
            except TransportError as exc:  # no token: the call itself was never sent
                raise _Transient("token endpoint: %s" % first_line(exc)) from None
            except GoogleAuthError as exc:  # refused credentials (invalid_grant, a bad key): not transient
                raise ApiError(
                    "%s: cannot get an access token: %s" % (what, first_line(exc)), reason="UNAUTHENTICATED"
                ) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure = "%s (%s)" % (type(exc).__name__, first_line(exc))
                kind = _failure_kind(exc)
                verdict = verbs.decide(rule, failure=kind)
                if verdict == verbs.RETRY and not once:
                    raise _Transient(failure) from None
                if kind == verbs.NOT_SENT:  # `once`, and it never left: nothing may have been applied
                    raise ApiError(
                        "%s: %s %s was not sent: %s" % (what, method, url.split("?")[0], failure)
                    ) from None
                raise Ambiguous(
                    "%s: %s %s failed after it was sent and may have been applied (%s: %s); check "
                    "before repeating it" % (what, method, url.split("?")[0], rule.verb, failure),
                    server_date=sent_after,
                ) from None
            self.server_date = response.headers.get("Date") or self.server_date
            if response.status_code < 400:
                return response
            verdict = verbs.decide(rule, status=response.status_code)
            if verdict == verbs.RETRY and not once:
                raise _Transient(error_message(response)[0], retry_after(response.headers.get("Retry-After")))
            if verdict == verbs.LOOK:
                raise Ambiguous(
                    "%s: %s %s answered %s and may have been applied (%s)"
                    % (what, method, url.split("?")[0], error_message(response)[0], rule.verb),
                    status=response.status_code,
                    server_date=response.headers.get("Date") or sent_after,
                )
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
        host, _slash, rest = url[len("https://") :].partition("/")
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
