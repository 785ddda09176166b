"""The contract between localcloud's core (proxy, auth, clock, Secret Manager) and its services.

A service emulates one API. It names the host(s) it answers for and handles werkzeug
requests; the proxy terminates TLS for those hosts and hands each request over.
The core checks nothing on the service's behalf: a Google API calls
`self.cloud.authenticate(request)` itself (the CloudAct and Supabase APIs use their own keys).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from collections.abc import Iterable

# google.rpc.Code names by HTTP status, for AIP-193 error bodies.
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class Cloud(Protocol):
    """What a service may use of the running localcloud."""

    state_dir: Path  # persistent state; each service keeps its files under state_dir/<service name>/
    project: str  # "cloudact-local"
    region: str  # "us-central1"
    key_file: Path  # the issued service-account key
    ca_file: Path  # the CA certificate clients trust
    proxy_url: str  # "http://127.0.0.1:<port>"

    def now(self) -> datetime:
        """The emulated clock (UTC, aware): real time unless a test set or advanced it."""

    def authenticate(self, request: Request) -> str:
        """The principal (service-account email) of a valid bearer token; raises Unauthenticated."""

    def secret_value(self, secret: str, version: str = "latest", project: str | None = None) -> bytes | None:
        """A secret version's payload from the emulated Secret Manager; None when absent or not enabled."""

    def service(self, name: str) -> Service:
        """Another running service by name (e.g. "bigquery" for the CloudAct API's datasets)."""

    def mint_token(self, principal: str) -> str:
        """An OAuth access token for a service account (what Scheduler's oauthToken carries)."""

    def client_env(self, project: str | None = None) -> dict[str, str]:
        """HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE, SSL_CERT_FILE, GOOGLE_APPLICATION_CREDENTIALS...;
        the key is that of `project` (a hosted project, localcloud/projects.py), else cloudact-local's."""


class Unauthenticated(Exception):
    """A missing, unknown, expired or badly signed bearer token."""


class Service:
    """Base of every emulated API. Subclasses set `name` and `hosts` and implement `handle`."""

    name: str = ""
    hosts: tuple[str, ...] = ()
    # More hosts, by a regular expression a whole (lower-case) host name must match: for a host per
    # location, as Artifact Registry's `<location>-docker.pkg.dev`. `hosts` names the ones health lists.
    host_pattern: str = ""

    def __init__(self, cloud: Cloud):
        self.cloud = cloud
        self.state_dir = cloud.state_dir / self.name
        self.state_dir.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        """Called once after every service is constructed (open databases, start threads)."""

    def stop(self) -> None:
        """Called at shutdown: flush state, stop threads and child processes by their pid."""

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def handle_admin(self, request: Request, subpath: str) -> Response:
        """Admin calls: /_localcloud/<name>/<subpath> on the plain-HTTP listener (tests, benchmarks)."""
        return json_response({"error": f"no admin endpoint {subpath!r} for {self.name}"}, status=404)

    def reset(self) -> None:
        """Forget all state (make local-reset removes the state directory as well)."""

    def clock_changed(self) -> None:
        """Called after the emulated clock was set or advanced (admin API), e.g. to wake a ticker."""


def json_response(body: Any, status: int = 200, headers: Iterable[tuple[str, str]] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=list(headers or []), mimetype="application/json")


def google_error(code: int, message: str, status: str | None = None, **extra: Any) -> Response:
    """An AIP-193 error body: {"error": {"code", "message", "status"}}."""
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "status": status or STATUS_NAMES.get(code, "UNKNOWN"),
    }
    error.update(extra)
    return json_response({"error": error}, status=code)
