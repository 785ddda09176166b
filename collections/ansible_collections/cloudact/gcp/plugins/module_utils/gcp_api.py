# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared code of the cloudact.gcp modules: one authorised session, retries, LROs, compare.

Auth comes from google.cloud's GcpSession/GcpModule (same auth kinds, key files and
GCP_* env fallbacks), but where GcpSession builds a new AuthorizedSession (and so fetches
a token) for every request, `GcpApi` keeps one for the whole module run.

Retries follow api-core's shape (google/api_core/retry/retry_base.py): a predicate
(429, 5xx, connection errors), exponential backoff with full jitter, and an overall
deadline rather than a bare count. `Retry-After` is honoured.
"""

from __future__ import annotations

import random
import time

try:
    import requests
    from google.auth.exceptions import GoogleAuthError, TransportError
    from google.auth.transport.requests import AuthorizedSession

    HAS_LIBS = True
except ImportError:  # reported by GcpSession._validate
    HAS_LIBS = False

    class GoogleAuthError(Exception):
        pass

    class TransportError(GoogleAuthError):
        pass


from ansible_collections.google.cloud.plugins.module_utils.gcp_utils import GcpModule, GcpSession

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
BACKOFF_MULTIPLIER = 2.0
REQUEST_TIMEOUT = 60.0  # per attempt (connect + read)
DEFAULT_DEADLINE = 120.0  # all attempts of one call
DEFAULT_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]

# Options every cloudact.gcp module adds to google.cloud's auth options.
COMMON_ARGS = dict(
    request_deadline=dict(type="float", default=DEFAULT_DEADLINE),
)


class ApiError(Exception):
    """An API call that failed for good: `str()` names the resource and carries the API's message."""

    def __init__(self, message, status=None, reason=None):
        super().__init__(message)
        self.status = status
        self.reason = reason


def gcp_module(argument_spec, **kwargs):
    """A GcpModule with the common options; project is required for every call we make."""
    spec = dict(COMMON_ARGS)
    spec.update(argument_spec)
    mod = GcpModule(argument_spec=spec, **kwargs)
    if not mod.params.get("scopes"):
        mod.params["scopes"] = list(DEFAULT_SCOPES)
    if not mod.params.get("project"):
        mod.fail_json(msg="project is required (set it, module_defaults or GCP_PROJECT)")
    return mod


def error_message(response):
    """'403 PERMISSION_DENIED: <message>' from an AIP-193 body, else the status and a short text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        status = error.get("status") or ""
        message = error.get("message") or ""
        return "%s %s: %s" % (response.status_code, status, message), status
    if isinstance(error, str):  # OAuth-style {"error": "invalid_grant", "error_description": ...}
        return "%s %s: %s" % (response.status_code, error, body.get("error_description", "")), error
    text = (response.text or "").strip().splitlines()
    return "%s %s" % (response.status_code, text[0][:200] if text else response.reason), None


class GcpApi:
    """One authorised requests session for a module run, with retries and LRO polling."""

    def __init__(self, mod, product, sleep=time.sleep, clock=time.monotonic):
        self.module = mod
        gcp = GcpSession(mod, product)  # validates the auth options the way google.cloud does
        self.session = AuthorizedSession(gcp._credentials())
        self.session.headers.update(gcp._headers())
        self.deadline = float(mod.params.get("request_deadline") or DEFAULT_DEADLINE)
        self._sleep = sleep
        self._clock = clock
        self.requests_sent = 0

    def request(self, method, url, what, json=None, params=None, allow_missing=False):
        """The decoded JSON body of a 2xx reply; None for a 404 when allow_missing.

        `what` names the resource for messages ("Cloud Run job cloudact-daily-alerts").
        Raises ApiError when the call fails for good or the deadline passes.
        """
        give_up = self._clock() + self.deadline
        backoff = INITIAL_BACKOFF
        attempt = 0
        while True:
            attempt += 1
            failure = None
            wait = None
            try:
                self.requests_sent += 1
                response = self.session.request(
                    method, url, json=json, params=params, timeout=min(REQUEST_TIMEOUT, self.deadline)
                )
            except (
                TransportError
            ) as exc:  # the token endpoint unreachable: transient like any connection error
                failure = "token endpoint: %s" % _first_line(exc)
            except GoogleAuthError as exc:  # refused credentials (invalid_grant, bad key): not transient
                raise ApiError(
                    "%s: cannot get an access token: %s" % (what, _first_line(exc)), reason="UNAUTHENTICATED"
                ) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure = "%s (%s)" % (type(exc).__name__, _first_line(exc))
            else:
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
                if response.status_code not in RETRY_STATUSES:
                    raise ApiError("%s: %s" % (what, message), response.status_code, reason)
                failure = message
                wait = _retry_after(response)
            now = self._clock()
            delay = wait if wait is not None else random.uniform(0, backoff)  # noqa: S311 - jitter, not crypto
            if now + delay > give_up:
                raise ApiError(
                    "%s: gave up after %d attempt(s) in %.0fs: %s" % (what, attempt, self.deadline, failure),
                    reason="DEADLINE_EXCEEDED",
                )
            self._sleep(delay)
            backoff = min(backoff * BACKOFF_MULTIPLIER, MAX_BACKOFF)

    def wait_operation(self, operation, base_url, what, timeout=600.0, interval=0.5):
        """Poll a long-running operation until done; its `response`, or ApiError with its error."""
        give_up = self._clock() + timeout
        op = operation
        while not op.get("done"):
            if self._clock() > give_up:
                raise ApiError("%s: operation %s not done after %.0fs" % (what, op.get("name"), timeout))
            self._sleep(interval)
            interval = min(interval * 1.5, 5.0)
            op = self.request("GET", "%s/%s" % (base_url, op["name"]), what)
        if op.get("error"):
            err = op["error"]
            raise ApiError("%s: operation failed: %s (code %s)" % (what, err.get("message"), err.get("code")))
        return op.get("response") or {}

    def list_all(self, url, key, what, params=None):
        """Every item of a paged list call."""
        items = []
        params = dict(params or {})
        while True:
            page = self.request("GET", url, what, params=params) or {}
            items.extend(page.get(key) or [])
            token = page.get("nextPageToken")
            if not token:
                return items
            params["pageToken"] = token


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _retry_after(response):
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, min(float(value), 60.0))
    except ValueError:
        return None


# ---- normalise + compare ------------------------------------------------------------------------------

_UNITS = {"s": 1, "m": 60, "h": 3600}


def duration_seconds(value, field="timeout"):
    """600, "600", "600s", "10m", "1h", "1.5s" -> seconds (int when whole). ValueError names the value."""
    if isinstance(value, bool):
        raise ValueError("%s %r: expected seconds or a duration like 600s, 15m, 1h" % (field, value))
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        unit = text[-1:] if text[-1:] in _UNITS else "s"
        number = text[:-1] if text[-1:] in _UNITS else text
        try:
            seconds = float(number) * _UNITS[unit]
        except ValueError:
            raise ValueError(
                "%s %r: expected seconds or a duration like 600s, 15m, 1h" % (field, value)
            ) from None
    if seconds < 0:
        raise ValueError("%s %r: must not be negative" % (field, value))
    return int(seconds) if seconds == int(seconds) else seconds


def duration(value, field="timeout"):
    """Any accepted duration -> the API's "Ns" form."""
    return "%ss" % duration_seconds(value, field)


def cpu(value):
    """ "1", 1, "1000m" -> "1"; "500m" stays."""
    text = str(value).strip()
    if text.endswith("m") and text[:-1].isdigit():
        milli = int(text[:-1])
        return str(milli // 1000) if milli % 1000 == 0 else text
    return text


def memory(value):
    """ "2048Mi" -> "2Gi"; "512Mi" stays; "2G" stays (a different unit, compared as given)."""
    text = str(value).strip()
    if text.endswith("Mi") and text[:-2].isdigit() and int(text[:-2]) % 1024 == 0:
        return "%dGi" % (int(text[:-2]) // 1024)
    return text


def changed_fields(before, after):
    """Keys whose values differ between two flat dicts of owned fields, in after's order."""
    keys = list(after) + [k for k in before if k not in after]
    return [k for k in keys if before.get(k) != after.get(k)]


def short_name(name):
    return (name or "").rsplit("/", 1)[-1]


def validate_entries(spec, entries, kind):
    """Validate each entry of a batch option against the single-resource spec.

    Returns the validated entries; raises ValueError naming the entry and its problems.
    """
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    validator = ArgumentSpecValidator(spec)
    out = []
    for index, entry in enumerate(entries or []):
        if not isinstance(entry, dict):
            raise ValueError("%s[%d]: expected a mapping of options, got %r" % (kind, index, entry))
        result = validator.validate(entry)
        if result.error_messages:
            raise ValueError(
                "%s[%d] (%s): %s" % (kind, index, entry.get("name", "?"), "; ".join(result.error_messages))
            )
        out.append(result.validated_parameters)
    names = [e["name"] for e in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError("%s: %s listed more than once" % (kind, ", ".join(dupes)))
    return out
