"""Checks of an API's answer: the shape a script relies on, or JobFailed naming what was wrong."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from jobs.runtime.errors import JobFailed
from jobs.runtime.logs import log

if TYPE_CHECKING:
    from jobs.runtime.context import Context


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
