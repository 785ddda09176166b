"""The shared runtime of the job scripts: configuration, logging, one HTTP client, exit codes.

A script is a few lines on top of it::

    def run(args, ctx: runtime.Context) -> str:
        data = ctx.api().post(ctx.endpoint, idempotent=True)
        return f"Done for {runtime.integer(data, 'orgs_processed')} orgs"

    def main(argv=None) -> int:
        return runtime.main(parser(), run, argv, endpoint=ENDPOINT)

A job that does not call the CloudAct API (quota cleanup, migrate) uses `runtime.run_job` with its
own configuration instead; the same exit codes, logging and redaction apply.

Exit codes: 0 success; 1 the job failed (Cloud Run retries the task); 2 bad configuration or
usage, reported in one line that names the variable or flag. Configuration is read in `main`,
never at import. Imports stay light (the standard library's http.client, through jobs.transport):
google.auth is loaded only when the root key comes from Secret Manager, and nothing here loads
requests, BigQuery or grpc.

Environment:
  GCP_PROJECT_ID              required
  ENVIRONMENT                 local | development | staging | production
  API_SERVICE_URL             CloudAct API base URL; defaults to https://api.cloudact.ai when
                              ENVIRONMENT=production, required otherwise
  API_ENDPOINT_PATH           the endpoint path (the catalog's `endpoint`), else the script's default
  CA_ROOT_API_KEY             the root key, or, when unset:
  CA_ROOT_API_KEY_SECRET      a Secret Manager secret id (in GCP_PROJECT_ID) or full resource name
                              (projects/P/secrets/S[/versions/V]); read with application default
                              credentials
  HTTP_CONNECT_TIMEOUT_SECONDS, HTTP_TIMEOUT_SECONDS (read), HTTP_MAX_ATTEMPTS,
  HTTP_DEADLINE_SECONDS (all attempts and waits), HTTP_BACKOFF_SECONDS, HTTP_BACKOFF_MAX_SECONDS
  LOG_LEVEL                   DEBUG | INFO | WARNING | ERROR (default INFO)
  CLOUD_RUN_JOB, CLOUD_RUN_EXECUTION, CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_ATTEMPT
                              set by Cloud Run: switch the logs to JSON lines for Cloud Logging
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

from jobs.transport import Response, Transport, TransportError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2

PRODUCTION_API_URL = "https://api.cloudact.ai"
ENVIRONMENTS = ("local", "development", "staging", "production")
SECRET_MANAGER_URL = "https://secretmanager.googleapis.com/v1"  # noqa: S105 - a URL, not a password
ROOT_KEY_HINT = "check CA_ROOT_API_KEY, or the secret CA_ROOT_API_KEY_SECRET names, for this environment"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"

# Variables holding secrets: their values are redacted from every line from the start.
SECRET_ENV = ("CA_ROOT_API_KEY", "SUPABASE_ACCESS_TOKEN")

# Transient by nature: retried with backoff. Any other 4xx is final.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Statuses that say the server did not act on the request, so even a call that is not
# idempotent may be repeated. A 500/502/504 may come after the work was done.
NOT_APPLIED_STATUSES = frozenset({408, 429, 503})

log = logging.getLogger("cloudact.jobs")


class ConfigError(Exception):
    """Bad configuration or usage: exit 2, one line naming the variable or flag."""


class JobFailed(Exception):
    """The job did not do its work: exit 1 so Cloud Run retries the task."""


class HttpError(JobFailed):
    """A final HTTP failure (a non-retryable status, or retries exhausted)."""

    def __init__(self, message: str, status: int | None = None, detail: str = ""):
        super().__init__(message)
        self.status = status
        self.detail = detail


# --------------------------------------------------------------------------- redaction


class Redactor:
    """Removes registered secrets and any bearer token from text that is about to be written.

    A secret is also matched in the forms an error body may echo it in: JSON-escaped and
    percent-encoded.
    """

    MASK = "[REDACTED]"
    _BEARER = re.compile(r"(?i)\b(bearer)(\s+|%20)[A-Za-z0-9._~+/=-]+")
    _GOOGLE_TOKEN = re.compile(r"\bya29\.[A-Za-z0-9._-]+")

    def __init__(self) -> None:
        self._secrets: list[str] = []

    def add(self, secret: str | None) -> None:
        if not secret:
            return
        forms = {secret, json.dumps(secret)[1:-1], quote(secret, safe="")}
        self._secrets = sorted(set(self._secrets) | {f for f in forms if f}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, self.MASK)
        text = self._BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{self.MASK}", text)
        return self._GOOGLE_TOKEN.sub(self.MASK, text)


redact = Redactor()


def add_secret(value: str | None) -> None:
    """Never print `value` (a key or token the job holds), in any log line or error."""
    redact.add(value)


# --------------------------------------------------------------------------- logging

_SEVERITY = {"WARNING": "WARNING", "CRITICAL": "CRITICAL", "ERROR": "ERROR", "INFO": "INFO", "DEBUG": "DEBUG"}


class PlainFormatter(logging.Formatter):
    """Readable lines for a terminal: `2026-01-01T00:00:00Z INFO message`."""

    converter = time.gmtime

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%SZ")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class CloudRunFormatter(logging.Formatter):
    """One JSON object a line, the shape Cloud Logging parses (python-logging's structured log).

    The stack trace goes into `message` so that Error Reporting picks it up.
    """

    def __init__(self, environ: Mapping[str, str]):
        super().__init__()
        self.fields: dict[str, Any] = {
            "job": environ.get("CLOUD_RUN_JOB", ""),
            "execution": environ.get("CLOUD_RUN_EXECUTION", ""),
            "task_index": _int_or_none(environ.get("CLOUD_RUN_TASK_INDEX")),
            "attempt": _int_or_none(environ.get("CLOUD_RUN_TASK_ATTEMPT")),
        }

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{''.join(traceback.format_exception(*record.exc_info))}".rstrip()
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelname, "DEFAULT"),
            "message": redact(message),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "logger": record.name,
            **self.fields,
            "logging.googleapis.com/sourceLocation": {
                "file": record.pathname,
                "line": record.lineno,
                "function": record.funcName,
            },
        }
        for key in ("http_attempt", "http_status", "retry_in"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        return json.dumps(entry, ensure_ascii=False)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def setup_logging(environ: Mapping[str, str] | None = None) -> None:
    """JSON lines on stdout in Cloud Run (CLOUD_RUN_JOB set), plain lines on stderr otherwise."""
    environ = os.environ if environ is None else environ
    if environ.get("CLOUD_RUN_JOB"):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(CloudRunFormatter(environ))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(PlainFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    logging.captureWarnings(True)  # library warnings go through the formatter (and its redaction) too
    level = environ.get("LOG_LEVEL", "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        root.setLevel(logging.INFO)
        raise ConfigError(f"LOG_LEVEL={level!r} is not valid; use DEBUG, INFO, WARNING or ERROR")
    root.setLevel(level)


# --------------------------------------------------------------------------- configuration


def env_str(name: str, environ: Mapping[str, str] | None = None) -> str:
    """A variable's value with surrounding whitespace removed ("" when unset)."""
    return (os.environ if environ is None else environ).get(name, "").strip()


def require_env(name: str, environ: Mapping[str, str] | None = None, hint: str = "") -> str:
    value = env_str(name, environ)
    if not value:
        raise ConfigError(f"{name} is not set{': ' + hint if hint else ''}")
    return value


def env_number(
    name: str,
    default: float,
    environ: Mapping[str, str] | None = None,
    *,
    integer: bool = False,
    minimum: float = 0.0,
) -> float:
    """A positive number from the environment; a bad value names the variable and what is valid."""
    raw = env_str(name, environ)
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = None
    if value is None or value != value or value <= minimum or value == float("inf"):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name}={raw!r} is not valid; use {kind} greater than {minimum:g}")
    return value


def api_url(environ: Mapping[str, str] | None = None) -> str:
    """API_SERVICE_URL validated (https, or http only to a loopback host), without a trailing slash."""
    environment = environment_name(environ)
    raw = env_str("API_SERVICE_URL", environ)
    if not raw:
        if environment == "production":
            return PRODUCTION_API_URL
        raise ConfigError(
            f"API_SERVICE_URL is not set; it is required when ENVIRONMENT is {environment or 'unset'!r} "
            f"(only production defaults to {PRODUCTION_API_URL})"
        )
    return validate_url("API_SERVICE_URL", raw)


def validate_url(name: str, raw: str) -> str:
    """An absolute http(s) base URL; plain http only to loopback so a key never crosses a network in clear."""
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name}={raw!r} is not a valid URL; expected https://host[:port][/base-path]")
    if parts.query or parts.fragment or parts.username or parts.password or " " in raw:
        raise ConfigError(f"{name}={raw!r} is not valid; a base URL has no credentials, query or fragment")
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise ConfigError(f"{name}={raw!r} is not valid: plain http is allowed only to localhost; use https")
    return raw.rstrip("/")


def environment_name(environ: Mapping[str, str] | None = None) -> str:
    value = env_str("ENVIRONMENT", environ)
    if value and value not in ENVIRONMENTS:
        raise ConfigError(f"ENVIRONMENT={value!r} is not valid; use one of {', '.join(ENVIRONMENTS)}")
    return value


def endpoint_path(default: str, environ: Mapping[str, str] | None = None) -> str:
    """API_ENDPOINT_PATH (set per job from the catalog) or the script's default."""
    value = env_str("API_ENDPOINT_PATH", environ) or default
    if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", value):
        raise ConfigError(f"API_ENDPOINT_PATH={value!r} is not valid; expected a path like {default}")
    return value


_SECRET_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
_SECRET_NAME = re.compile(r"projects/([^/]+)/secrets/([A-Za-z0-9_-]{1,255})(?:/versions/([A-Za-z0-9_-]+))?")


def secret_version_name(ref: str, project: str, variable: str = "CA_ROOT_API_KEY_SECRET") -> str:
    """`projects/P/secrets/S/versions/V` from a secret id (in `project`) or a full resource name."""
    if _SECRET_ID.fullmatch(ref):
        return f"projects/{project}/secrets/{ref}/versions/latest"
    match = _SECRET_NAME.fullmatch(ref)
    if not match:
        raise ConfigError(
            f"{variable}={ref!r} is not valid; use a secret id (letters, digits, - and _) "
            "or projects/PROJECT/secrets/SECRET[/versions/VERSION]"
        )
    return f"projects/{match[1]}/secrets/{match[2]}/versions/{match[3] or 'latest'}"


def access_secret(name: str, http: HttpSettings, variable: str = "CA_ROOT_API_KEY_SECRET") -> str:
    """The text of a Secret Manager secret version, read over REST with application default credentials."""
    # Imported here: google.auth is heavy and only this path needs it.
    import base64
    import binascii

    import google.auth
    import google.auth.exceptions
    from google.auth.transport.requests import Request

    try:
        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except google.auth.exceptions.DefaultCredentialsError as exc:
        raise ConfigError(
            f"{variable} is set but no Google credentials were found to read it: {_first_line(exc)}"
        ) from None
    try:
        credentials.refresh(Request())  # one token: the job reads one secret, once
    except google.auth.exceptions.GoogleAuthError as exc:
        raise JobFailed(f"cannot get a Google access token to read {name}: {_first_line(exc)}") from None
    add_secret(credentials.token)
    client = HttpClient(
        SECRET_MANAGER_URL,
        headers={"Authorization": f"Bearer {credentials.token}"},
        settings=http,
        name="Secret Manager",
    )
    try:
        data = client.get(f"/{name}:access")
    except HttpError as exc:
        if exc.status in (400, 403, 404):
            raise ConfigError(f"{variable}: cannot read {name}: {exc.status} {exc.detail}".rstrip()) from None
        raise
    try:
        value = base64.b64decode(data["payload"]["data"], validate=True).decode("utf-8")
    except (KeyError, TypeError, ValueError, binascii.Error, UnicodeDecodeError):
        raise JobFailed(f"Secret Manager returned no readable payload for {name}") from None
    # Secrets are often created with `echo`, which leaves a newline that is not part of the key.
    value = value.strip()
    if not value:
        raise ConfigError(f"{variable}: {name} is empty")
    add_secret(value)
    return value


class HttpSettings(NamedTuple):
    """Timeouts and the retry budget; from HTTP_* variables over the script's defaults.

    (A NamedTuple, not a dataclass: dataclasses loads inspect, which costs start-up time.)
    """

    connect_timeout: float = 10.0
    read_timeout: float = 300.0
    max_attempts: int = 5
    deadline: float = 900.0
    backoff: float = 1.0
    backoff_max: float = 30.0

    @classmethod
    def from_env(cls, defaults: HttpSettings | None = None, environ: Mapping[str, str] | None = None):
        d = defaults or cls()
        return cls(
            connect_timeout=env_number("HTTP_CONNECT_TIMEOUT_SECONDS", d.connect_timeout, environ),
            read_timeout=env_number("HTTP_TIMEOUT_SECONDS", d.read_timeout, environ),
            max_attempts=int(env_number("HTTP_MAX_ATTEMPTS", d.max_attempts, environ, integer=True)),
            deadline=env_number("HTTP_DEADLINE_SECONDS", d.deadline, environ),
            backoff=env_number("HTTP_BACKOFF_SECONDS", d.backoff, environ),
            backoff_max=env_number("HTTP_BACKOFF_MAX_SECONDS", d.backoff_max, environ),
        )


class Context:
    """What a script's `run` gets: the validated configuration and the CloudAct API client."""

    def __init__(
        self,
        project_id: str,
        environment: str,
        api_url: str,
        endpoint: str,
        http: HttpSettings,
        environ: Mapping[str, str],
    ):
        self.project_id = project_id
        self.environment = environment
        self.api_url = api_url
        self.endpoint = endpoint
        self.http = http
        self.environ = environ
        self._root_key: str | None = None
        self._api: HttpClient | None = None

    def __repr__(self) -> str:  # never the key
        return (
            f"Context(project_id={self.project_id!r}, api_url={self.api_url!r}, endpoint={self.endpoint!r})"
        )

    def root_key(self) -> str:
        """CA_ROOT_API_KEY, else the secret CA_ROOT_API_KEY_SECRET names (read once)."""
        if self._root_key is None:
            key = env_str("CA_ROOT_API_KEY", self.environ)
            if key:
                add_secret(key)
                if any(c.isspace() or not c.isprintable() for c in key):
                    raise ConfigError(
                        "CA_ROOT_API_KEY holds whitespace or control characters; a key has none"
                    )
            else:
                ref = env_str("CA_ROOT_API_KEY_SECRET", self.environ)
                if not ref:
                    raise ConfigError(
                        "CA_ROOT_API_KEY is not set (nor CA_ROOT_API_KEY_SECRET to read it from)"
                    )
                key = access_secret(secret_version_name(ref, self.project_id), self.http)
            self._root_key = key
        return self._root_key

    def api(self) -> HttpClient:
        """The CloudAct API client, authenticated with the root key (X-CA-Root-Key)."""
        if self._api is None:
            self._api = HttpClient(
                self.api_url,
                # CONTRACTS.md: every admin call carries both, a body-less POST too.
                headers={"X-CA-Root-Key": self.root_key(), "Content-Type": "application/json"},
                settings=self.http,
                name="CloudAct API",
                auth_hint=ROOT_KEY_HINT,
            )
        return self._api


def load_context(
    endpoint: str, http_defaults: HttpSettings | None = None, environ: Mapping[str, str] | None = None
) -> Context:
    """Validate the configuration every API job needs; the key is read when first used."""
    environ = os.environ if environ is None else environ
    project = require_env("GCP_PROJECT_ID", environ, "the GCP project the job runs in")
    if not re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", project):
        raise ConfigError(f"GCP_PROJECT_ID={project!r} is not a valid project id (6-30 of a-z, 0-9, -)")
    return Context(
        project_id=project,
        environment=environment_name(environ),
        api_url=api_url(environ),
        endpoint=endpoint_path(endpoint, environ),
        http=HttpSettings.from_env(http_defaults, environ),
        environ=environ,
    )


# --------------------------------------------------------------------------- HTTP


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


def _first_line(exc: BaseException | str) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


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


# --------------------------------------------------------------------------- response checks


def obj(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise JobFailed(
            f"{what}: expected a JSON object, got {type(data).__name__}: {json.dumps(data)[:200]}"
        )
    return data


def integer(data: Mapping[str, Any], key: str, what: str = "response") -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise JobFailed(f"{what}: field {key!r} is missing or not an integer (got {value!r})")
    return value


def strings(data: Mapping[str, Any], key: str, what: str = "response") -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise JobFailed(f"{what}: field {key!r} is not a list of strings (got {value!r})")
    return value


def post_counted(ctx: Context, count: str, what: str, progress: str, *fields: str) -> int:
    """POST the job's endpoint (idempotent for a day by contract) and check the answer; its field `count`.

    Logs `progress` filled with the answer's `fields` ("?" when missing) and its message; JobFailed
    naming `what` unless the answer says `success: true`.
    """
    data = obj(ctx.api().post(ctx.endpoint, idempotent=True), f"POST {ctx.endpoint}")
    number = integer(data, count)
    log.info(progress + ": %s", *(data.get(f, "?") for f in fields), data.get("message", ""))
    if data.get("success") is not True:
        raise JobFailed(f"{what} reported failure: {data.get('message') or data}")
    return number


def org_errors(items: Iterable[Any]) -> list[str]:
    """`slug (error)` for each `{"org_slug": ..., "error": ...}` of a response."""
    named = []
    for item in items or []:
        if isinstance(item, dict):
            named.append(f"{item.get('org_slug', '?')} ({item.get('error') or 'no error given'})")
        else:
            named.append(str(item))
    return named


# --------------------------------------------------------------------------- entry point

_ORG_SLUG = re.compile(r"[a-z0-9][a-z0-9_]{1,99}")


def org_slug(value: str) -> str:
    """argparse type for `--org-slug`: lowercase letters, digits and underscores."""
    if not _ORG_SLUG.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an org slug; use 2-100 lowercase letters, digits and underscores"
        )
    return value


def parser(description: str, epilog: str = "") -> argparse.ArgumentParser:
    """An ArgumentParser whose help text names the exit codes and the environment."""
    epilog = (epilog + "\n\n" if epilog else "") + (
        "Environment: GCP_PROJECT_ID, ENVIRONMENT, API_SERVICE_URL, CA_ROOT_API_KEY (or\n"
        "CA_ROOT_API_KEY_SECRET), API_ENDPOINT_PATH, HTTP_TIMEOUT_SECONDS, HTTP_MAX_ATTEMPTS,\n"
        "HTTP_DEADLINE_SECONDS (see jobs/runtime.py).\n"
        "Exit codes: 0 done, 1 failed (Cloud Run retries), 2 bad configuration or usage."
    )
    return argparse.ArgumentParser(
        description=description, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def run_job(
    arg_parser: argparse.ArgumentParser,
    work: Callable[[argparse.Namespace], str | None],
    argv: list[str] | None = None,
    *,
    logger: logging.Logger = log,
    failed: str = "job failed",
) -> int:
    """Parse arguments, set up logging, run `work(args)`, log its summary; the exit code.

    The entry point of every script, also those that do not call the CloudAct API (`main` adds that
    configuration). `work` reads and validates its own configuration, raising ConfigError (exit 2) or
    JobFailed (exit 1); errors are logged on `logger`, a failure as `<failed>: <reason>`.
    """
    try:
        args = arg_parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return exc.code if isinstance(exc.code, int) else EXIT_CONFIG
    for name in SECRET_ENV:
        add_secret((os.environ.get(name) or "").strip())
    try:
        setup_logging()
        summary = work(args)
    except ConfigError as exc:
        logger.error("configuration error: %s", exc)
        return EXIT_CONFIG
    except JobFailed as exc:
        logger.error("%s: %s", failed, exc)
        return EXIT_FAILED
    except KeyboardInterrupt:
        logger.error("interrupted")
        return 130
    except Exception:
        logger.exception("%s with an unexpected error", failed)
        return EXIT_FAILED
    if summary:
        logger.info("%s", summary)
    return EXIT_OK


def main(
    arg_parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace, Context], str | None],
    argv: list[str] | None = None,
    *,
    endpoint: str,
    http: HttpSettings | None = None,
) -> int:
    """`run_job` for a CloudAct API job: `run(args, ctx)` with the validated API configuration."""
    return run_job(arg_parser, lambda args: run(args, load_context(endpoint, http)), argv)
