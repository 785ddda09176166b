"""The Supabase Management API's `database/query` call, for the migrate job: errors made clear.

`POST /v1/projects/{ref}/database/query` runs a request's statements as one transaction and answers
the rows of the last statement that returned rows. Failures come back as `SqlError` (the database
refused the query: its SQLSTATE and message), `MaybeApplied` (the answer was lost after the request
was sent, so the query may have run) or `runtime.JobFailed` (a refused token, an unknown project,
the API unreachable). A 429 waits as long as X-RateLimit-Reset asks when there is no Retry-After.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

from jobs import runtime

RATE_LIMIT_WAIT_MAX = 65.0  # the window is a minute; never trust a reset further out than that


class SqlError(runtime.JobFailed):
    """The database refused a query (HTTP 400): SQLSTATE, message and the lines after it."""

    def __init__(self, sqlstate: str, message: str, extra: list[str]):
        super().__init__(f"{sqlstate}: {message}")
        self.sqlstate = sqlstate
        self.text = message
        self.extra = extra


class MaybeApplied(runtime.JobFailed):
    """The answer was lost (timeout, broken connection, 500/502/504): the query may have run."""


_SQL_ERROR = re.compile(r"ERROR:\s+(?:([0-9A-Z]{5}):\s*)?(.*)")


def parse_sql_error(detail: str) -> SqlError:
    """`Failed to run sql query: ERROR:  42P01: relation "x" does not exist\\nLINE 1: ...` -> SqlError."""
    lines = [line.rstrip() for line in detail.splitlines() if line.strip()]
    for n, line in enumerate(lines):
        m = _SQL_ERROR.search(line)
        if m:
            return SqlError(m.group(1) or "?????", m.group(2).strip(), lines[n + 1 :])
    return SqlError("?????", " ".join(lines)[:500] or "no message", [])


def _retry_after_from_rate_limit(response: runtime.Response) -> float | None:
    """Supabase says when a 429 ends in X-RateLimit-Reset (the shared client asks when no Retry-After)."""
    if response.status_code != 429:
        return None
    wait = rate_limit_wait(response.headers.get("X-RateLimit-Reset"))
    return None if wait is None else float(math.ceil(wait))


def rate_limit_wait(value: str | None, now: float | None = None) -> float | None:
    """Seconds until the rate limit resets: seconds remaining (documented), or an epoch in s or ms."""
    try:
        reset = float((value or "").strip())
    except ValueError:
        return None
    if reset != reset or reset < 0:
        return None
    now = time.time() if now is None else now
    if reset > 1e12:  # epoch milliseconds
        reset = reset / 1000 - now
    elif reset > 1e9:  # epoch seconds
        reset -= now
    return min(max(reset, 0.0), RATE_LIMIT_WAIT_MAX)


class ManagementApi:
    """`query(sql)` against one project, with the access token (registered as a secret by the caller)."""

    def __init__(self, api_url: str, token: str, project_ref: str, settings: runtime.HttpSettings):
        self.ref = project_ref
        self.path = f"/v1/projects/{project_ref}/database/query"
        self.http = runtime.HttpClient(
            api_url,
            headers={"Authorization": f"Bearer {token}"},
            settings=settings,
            retry_after=_retry_after_from_rate_limit,
            name="Supabase Management API",
            user_agent="cloudact-supabase-migrate",
        )

    def query(self, sql: str, *, read_only: bool = False, idempotent: bool = False) -> list[dict[str, Any]]:
        """The rows of the last statement that returned rows; SqlError, MaybeApplied or JobFailed."""
        body: dict[str, Any] = {"query": sql}
        if read_only:
            body["read_only"] = True
        try:
            data = self.http.post(self.path, body, idempotent=idempotent)
        except runtime.HttpError as exc:
            raise self._failure(exc) from None
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise runtime.JobFailed(f"Supabase answered a query with {str(data)[:200]!r}, not a list of rows")
        return data

    def _failure(self, exc: runtime.HttpError) -> runtime.JobFailed:
        status = exc.status
        if status == 400:
            return parse_sql_error(exc.detail)
        if status in (401, 403):
            what = "refused" if status == 401 else "not allowed to query this project"
            return runtime.JobFailed(
                f"Supabase answered {status}: the access token was {what}; check SUPABASE_ACCESS_TOKEN "
                f"(the secret supabase-access-token-<env>) and that it can reach project {self.ref!r}"
            )
        if status == 404:
            return runtime.JobFailed(
                f"Supabase answered 404 for project {self.ref!r}: check SUPABASE_PROJECT_REF ({exc.detail})"
            )
        if exc.may_have_applied:
            return MaybeApplied(str(exc))
        return runtime.JobFailed(str(exc))
