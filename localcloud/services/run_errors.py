"""What the Google API services (Run, Scheduler, Logging, Secret Manager) share: the error a handler
raises, which the service turns into an AIP-193 body, the parsing of a JSON request body, and the
routing of a request to a handler."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wrappers import Request, Response

from localcloud.service import google_error

UNAUTHENTICATED = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
    "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)


class ApiError(Exception):
    def __init__(self, code: int, message: str, status: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object ({} for an empty body); a 400 ApiError as Google words it otherwise."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(400, "Invalid JSON payload received. The request body is not JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid JSON payload received. Expected a JSON object.")
    return body


Route = tuple[str, re.Pattern[str], Callable[..., Any]]


def match_route(
    routes: Iterable[Route], request: Request
) -> tuple[Callable[..., Any], dict[str, str]] | None:
    """The handler of the first (method, path pattern, handler) route the request matches, with the
    pattern's named groups; None when no route matches."""
    for method, pattern, fn in routes:
        match = pattern.match(request.path)
        if match and request.method == method:
            return fn, match.groupdict()
    return None


def url_not_found(request: Request) -> Response:
    return google_error(
        404, f"The requested URL {request.path} was not found on this server (method {request.method})."
    )
