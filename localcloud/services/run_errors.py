"""What the Google API services (Run, Scheduler, Logging, Secret Manager) share: the error a handler
raises, which the service turns into an AIP-193 body, and the parsing of a JSON request body."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Request


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
