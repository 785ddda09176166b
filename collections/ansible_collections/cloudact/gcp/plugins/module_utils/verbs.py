# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a failed HTTP call may do next, and which calls write: one table, one row per verb.

Both HTTP clients decide by this file: the operator's (module_utils/client.py: the modules, the
action plugins, the toolkit CLIs) and the job image's (jobs/runtime/http.py). It imports only the
standard library, so the job image carries it as it is (the Dockerfile copies it to the same import
path); tests/unit/test_verbs.py checks that both clients call it and nothing else decides.

A call is classified by its verb (`classify`): the method, the URL's last segment (`:run`,
`:cancel`, ...) and what its body says (an etag, insertIds, read_only). Each row says whether a
repeat is harmless (`safe`) and why. After a failure (`decide`):

- The server said it did not act (408, 429, 503) or the request never left (refused, DNS, TLS, a
  connect timeout): resend, after the server's Retry-After or a jittered backoff, within a deadline.
- The server may have acted and its answer was lost (500, 502, 504, a read timeout, a connection
  dropped after the request went out): a safe verb is resent; any other verb is never resent
  blindly. The caller looks first (LOOK): it reads what the call would have made (the execution
  carrying this run's id, the job of that name) and adopts it, and resends only when nothing is
  there. Google's own run_v2 client never retries RunJob for this reason.
- Any other answer is final.

`is_write` is the read-only rule: `make status`, `history`, `logs`, `report`, `calendar`, `plan`
and `doctor` send no request it calls a write (tests/e2e/test_read_only.py proves it from
localcloud's request log).
"""

from __future__ import annotations

import re
from collections import namedtuple
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRY = "retry"  # send it again, after Retry-After or a jittered backoff
LOOK = "look"  # the server may have acted: look for what the call made before sending it again
FINAL = "final"  # the answer stands

NOT_APPLIED = frozenset({408, 429, 503})  # the server says it did not act on the request
AMBIGUOUS = frozenset({500, 502, 504})  # it may have acted before the answer was lost
TRANSIENT = NOT_APPLIED | AMBIGUOUS

# Failures that got no answer.
NOT_SENT = "not sent"  # refused, DNS, proxy, TLS, connect timeout: the request never left
TIMEOUT = "timeout"  # no answer within the read timeout: the server may have acted
DROPPED = "dropped"  # the connection broke after the request went out: it may have acted

Rule = namedtuple("Rule", "verb safe reason")

# One row per verb: whether a repeat after a lost answer is harmless, and why.
RULES = {
    rule.verb: rule
    for rule in (
        Rule("GET", True, "a read changes nothing (HEAD too)"),
        Rule(
            "read POST",
            True,
            "a POST that only reads: testIamPermissions, getIamPolicy, Logging entries:list, a "
            "BigQuery query of a SELECT, a Supabase query with read_only",
        ),
        Rule(
            "PATCH or PUT with an etag",
            True,
            "it carries the etag it read: a repeat after success meets 409 ABORTED or 412, never a "
            "second write; the caller then re-reads and compares",
        ),
        Rule(
            ":setIamPolicy with an etag",
            True,
            "it carries the etag it read: a replay after success gets 409 ABORTED; the caller "
            "re-reads the policy and compares",
        ),
        Rule(":cancel", True, "cancelling an execution again leaves it cancelled"),
        Rule(":pause or :resume", True, "Scheduler's pause and resume set a state: a repeat sets the same"),
        Rule("DELETE", True, "a repeat finds the resource gone (404), which the caller takes as done"),
        Rule(
            "PUT of an upload chunk",
            True,
            "a resumable upload's session keeps what it received: a repeated chunk is answered 308 "
            "with the bytes it has, never stored twice",
        ),
        Rule(
            "insertAll with insertIds",
            True,
            "BigQuery drops a row whose insertId it streamed in the last minute",
        ),
        Rule(
            "POST idempotent by contract",
            True,
            "the API's contract makes a repeat harmless (CloudAct's daily endpoints for a day; a "
            "migration statement guarded by its own SQL)",
        ),
        Rule(
            ":run",
            False,
            "Cloud Run's and Scheduler's :run start a run per request; a lost answer may follow a "
            "started execution (Google's run_v2 client never retries RunJob): look for this run's id",
        ),
        Rule(
            "create",
            False,
            "jobs.create, builds.create, an account, a bucket, a repository, a dataset or table: a "
            "lost answer may follow a created resource: look for it by name and adopt only our own",
        ),
        Rule("insertAll without insertIds", False, "each repeat would stream the rows again"),
        Rule(
            "PATCH or PUT without an etag",
            False,
            "nothing stops a repeat from overwriting a change made since: read and compare first",
        ),
        Rule("CloudAct admin POST", False, "an admin action (notifications, a sync) may run again"),
        Rule("POST", False, "any other POST is not known to be harmless twice"),
    )
}

READ_SUFFIXES = (":testIamPermissions", ":getIamPolicy")
TOKEN_HOSTS = ("oauth2.googleapis.com",)
_CREATE_PATH = re.compile(
    r"/(jobs|builds|serviceAccounts|repositories|datasets|tables|b|keys|secrets|services)$"
)
_SELECT = re.compile(r"^\s*(\(\s*)*(select|with)\b", re.IGNORECASE)


def _split(url):
    """(host, path) of an absolute URL or of a path."""
    rest = url.split("://", 1)[1] if "://" in url else url
    if "://" in url:
        host, _slash, path = rest.partition("/")
        return host.lower(), "/" + path.split("?", 1)[0]
    return "", rest.split("?", 1)[0]


def _query_text(body):
    if not isinstance(body, dict):
        return ""
    query = body.get("query")
    if isinstance(query, str):
        return query
    config = (body.get("configuration") or {}).get("query") or {}
    return config.get("query") or ""


def selects(sql):
    """Whether a SQL text only reads: it starts with SELECT or WITH (comments stripped)."""
    text = re.sub(r"--[^\n]*|/\*.*?\*/", " ", sql or "", flags=re.DOTALL)
    return bool(_SELECT.match(text)) and ";" not in text.strip().rstrip(";")


def reads(method, url, body=None):
    """Whether a call only reads (the read-only commands may send it)."""
    method = method.upper()
    host, path = _split(url)
    if method in ("GET", "HEAD", "OPTIONS"):
        return True
    if method != "POST":
        return False
    if host in TOKEN_HOSTS:
        return True
    if path.endswith(READ_SUFFIXES) or path.endswith("/entries:list"):
        return True
    if host.startswith("bigquery.") and (path.endswith("/queries") or path.endswith("/jobs")):
        return selects(_query_text(body))
    if host == "api.supabase.com" and path.endswith("/database/query"):
        return isinstance(body, dict) and body.get("read_only") is True
    return False


def is_write(method, url, body=None):
    """The read-only rule: any request but a read (`reads`) and the token endpoint is a write."""
    return not reads(method, url, body)


def classify(method, url, body=None, headers=None, idempotent=False):
    """The row of RULES for one call. `idempotent`: the caller's API contract says a repeat is harmless."""
    method = method.upper()
    path = _split(url)[1]
    body = body if isinstance(body, dict) else {}
    headers = {str(k).lower(): v for k, v in (headers or {}).items()}
    if method in ("GET", "HEAD", "OPTIONS"):
        return RULES["GET"]
    if method == "DELETE":
        return RULES["DELETE"]
    if method == "PUT" and headers.get("content-range"):
        return RULES["PUT of an upload chunk"]
    if method in ("PATCH", "PUT"):
        tagged = (
            body.get("etag") or headers.get("if-match") or (body.get("metadata") or {}).get("resourceVersion")
        )
        return RULES["PATCH or PUT with an etag" if tagged else "PATCH or PUT without an etag"]
    if path.endswith(":setIamPolicy"):
        tagged = (body.get("policy") or {}).get("etag")
        return RULES[":setIamPolicy with an etag" if tagged else "POST"]
    if path.endswith(":run"):
        return RULES[":run"]
    if path.endswith(":cancel"):
        return RULES[":cancel"]
    if path.endswith((":pause", ":resume")):
        return RULES[":pause or :resume"]
    if path.endswith("/insertAll"):
        rows = body.get("rows") or []
        named = bool(rows) and all(r.get("insertId") for r in rows)
        return RULES["insertAll with insertIds" if named else "insertAll without insertIds"]
    if reads(method, url, body):
        return RULES["read POST"]
    if idempotent:
        return RULES["POST idempotent by contract"]
    if path.startswith("/api/v1/admin/"):
        return RULES["CloudAct admin POST"]
    if _CREATE_PATH.search(path) or "/upload/" in path:
        return RULES["create"]
    return RULES["POST"]


def decide(rule, status=None, failure=None):
    """RETRY, LOOK or FINAL after an answer with `status`, or a `failure` without one."""
    if status is not None:
        if status in NOT_APPLIED:
            return RETRY
        if status in AMBIGUOUS:
            return RETRY if rule.safe else LOOK
        return FINAL
    if failure == NOT_SENT:
        return RETRY
    if failure in (TIMEOUT, DROPPED):
        return RETRY if rule.safe else LOOK
    return FINAL


def retry_after(value, now=None, cap=None):
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent or bad."""
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    if text.isdigit():
        wait = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        wait = (when - (now or datetime.now(UTC))).total_seconds()
    wait = max(0.0, wait)
    return wait if cap is None else min(wait, cap)
