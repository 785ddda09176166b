"""Google's OAuth 2.0 token endpoint (oauth2.googleapis.com): the JWT-bearer grant for issued keys."""

from __future__ import annotations

from werkzeug.wrappers import Request, Response

from localcloud.auth import InvalidGrant
from localcloud.service import Service, json_response

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class OAuth2(Service):
    name = "oauth2"
    hosts = ("oauth2.googleapis.com",)

    def handle(self, request: Request) -> Response:
        if request.path != "/token":
            return _error(404, "invalid_request", f"localcloud emulates only POST /token, not {request.path}")
        if request.method != "POST":
            return _error(405, "invalid_request", f"method {request.method} not allowed on /token: use POST")
        grant_type = request.form.get("grant_type", "")
        if grant_type != JWT_BEARER:
            return _error(
                400,
                "unsupported_grant_type",
                f"Invalid grant_type {grant_type!r}: localcloud supports {JWT_BEARER}",
            )
        assertion = request.form.get("assertion", "")
        if not assertion:
            return _error(400, "invalid_request", "Missing required parameter: assertion")
        try:
            token, expires_in = self.cloud.auth.grant_for_assertion(assertion)  # type: ignore[attr-defined]
        except InvalidGrant as e:
            return _error(400, e.error, e.description)
        return json_response(
            {"access_token": token, "expires_in": expires_in, "token_type": "Bearer"},
            headers=[("Cache-Control", "no-store"), ("Pragma", "no-cache")],
        )


def _error(status: int, error: str, description: str) -> Response:
    return json_response({"error": error, "error_description": description}, status=status)
