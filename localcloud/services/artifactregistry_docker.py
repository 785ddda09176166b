"""Artifact Registry's registry hosts `<location>-docker.pkg.dev`: the read side of the Docker Registry
HTTP API V2 (the OCI distribution spec), over the images Artifact Registry holds
(localcloud/services/artifactregistry.py; they arrive by Cloud Build's `docker push`).

- `GET /v2/`: `{}` for an authenticated caller (the version check every registry client makes first).
- `GET /v2/token`: the bearer token the `WWW-Authenticate` challenge points to (the caller's own access
  token: what Artifact Registry's registry accepts as a bearer token anyway).
- `GET|HEAD /v2/<project>/<repository>/<image>/manifests/<tag | sha256:hex>`: the stored manifest bytes,
  `Content-Type` its mediaType, `Docker-Content-Digest` their sha256 (the image's digest as the REST
  API reports it).
- `GET|HEAD /v2/<project>/<repository>/<image>/blobs/<digest>`: the config blob (`config.Labels` are the
  build's `LABEL`s and `--label`s) and the layer.
- `GET /v2/<project>/<repository>/<image>/tags/list` (`n`, `last`).

Credentials as Artifact Registry takes them: `Authorization: Bearer <access token>` (the tokens the
Google APIs here accept), or Basic with the user `oauth2accesstoken` (or the credential helper's
`_dcgcloud_token`) and the access token as the password. Reading needs
`artifactregistry.repositories.downloadArtifacts` on the repository (IAM, localcloud/iam_enforce.py).
Errors are the registry's: `{"errors": [{"code", "message"}]}`: 401 UNAUTHORIZED (with the
`WWW-Authenticate` challenge), 403 DENIED, 404 NAME_UNKNOWN / MANIFEST_UNKNOWN / BLOB_UNKNOWN, 405
UNSUPPORTED for the write side (pushes go through Cloud Build). No discovery document describes these
routes: the service is exempt from the conformance judge (localcloud/conformance.py, `EXEMPT`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
from typing import Any

from werkzeug.wrappers import Request, Response

from localcloud import iam_enforce, projects
from localcloud.service import Service, Unauthenticated
from localcloud.services.artifactregistry_images import MANIFEST_TYPE, stored_blob

log = logging.getLogger("localcloud.artifactregistry")

HOST_PATTERN = r"[a-z]+(?:-[a-z]+[0-9]+)?-docker\.pkg\.dev"  # us-docker.pkg.dev, us-central1-docker.pkg.dev
PERMISSION = "artifactregistry.repositories.downloadArtifacts"
BASIC_USERS = ("oauth2accesstoken", "_dcgcloud_token")  # the password is an OAuth2 access token
API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
_NAME = r"^/v2/(?P<project>[^/]+)/(?P<repo>[^/]+)/(?P<image>[a-z0-9][a-z0-9._/-]*?)"
MANIFEST = re.compile(_NAME + r"/manifests/(?P<reference>[^/]+)$")
BLOB = re.compile(_NAME + r"/blobs/(?P<digest>[^/]+)$")
TAGS = re.compile(_NAME + r"/tags/list$")
UPLOADS = re.compile(_NAME + r"/blobs/uploads(?:/.*)?$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class RegistryError(Exception):
    """An answer in the registry's error format."""

    def __init__(self, status: int, code: str, message: str, challenge: str = ""):
        super().__init__(message)
        self.status, self.code, self.message, self.challenge = status, code, message, challenge


class DockerRegistryService(Service):
    name = "docker-registry"
    host_pattern = HOST_PATTERN

    def __init__(self, cloud):
        self.cloud = cloud  # no state of its own: it reads Artifact Registry's
        self.hosts = (f"{cloud.region}-docker.pkg.dev",)

    def handle(self, request: Request) -> Response:
        host = (request.environ.get("localcloud.host") or request.host).split(":")[0].lower()
        try:
            return self._route(request, host)
        except RegistryError as e:
            return _error(e, host)

    # ---- routes --------------------------------------------------------------------------------------

    def _route(self, request: Request, host: str) -> Response:
        path, method = request.path, request.method
        reading = method in ("GET", "HEAD")
        if path in ("/v2/", "/v2"):
            self._principal(request, "")
            if not reading:
                raise _unsupported(method)
            return _json({})
        if path == "/v2/token":
            if not reading:
                raise _unsupported(method)
            return self._token(request)
        for pattern, handler in ((MANIFEST, self._manifest), (BLOB, self._blob), (TAGS, self._tags)):
            match = pattern.match(path)
            if match and not UPLOADS.match(path):
                parts = match.groupdict()
                location = host.removesuffix("-docker.pkg.dev")
                resource = f"projects/{projects.project_id(parts['project'])}/locations/{location}"
                resource += f"/repositories/{parts['repo']}"
                self._allowed(request, resource, f"{parts['project']}/{parts['repo']}/{parts['image']}")
                if not reading:
                    raise _unsupported(method)
                package = self.cloud.service("artifactregistry").docker_package(  # type: ignore[attr-defined]
                    parts["project"], location, parts["repo"], parts["image"]
                )
                if package is None:
                    raise RegistryError(404, "NAME_UNKNOWN", f'Repository "{parts["repo"]}" not found')
                return handler(request, package, parts)
        if UPLOADS.match(path) or path.startswith("/v2/"):
            raise RegistryError(
                404 if reading else 405,
                "UNSUPPORTED",
                f"localcloud's registry serves reads only (/v2/, manifests, blobs, tags/list), not "
                f"{method} {path}; images arrive by Cloud Build's docker push",
            )
        raise RegistryError(404, "UNSUPPORTED", f"{path} is not a registry path (/v2/...)")

    def _manifest(self, request: Request, package: dict[str, Any], parts: dict[str, str]) -> Response:
        reference = parts["reference"]
        digest = reference if DIGEST.match(reference) else package.get("tags", {}).get(reference)
        if digest is None or digest not in package.get("digests", ()):
            raise RegistryError(404, "MANIFEST_UNKNOWN", _failed_to_fetch(reference, request))
        data = (package["dirs"][digest] / "manifest.json").read_bytes()
        served = _digest(data)
        if served != digest:  # the digest is the manifest's sha256 by construction (artifactregistry_images)
            log.error("the stored manifest of %s hashes to %s", digest, served)
        return _content(data, json.loads(data).get("mediaType") or MANIFEST_TYPE)

    def _blob(self, request: Request, package: dict[str, Any], parts: dict[str, str]) -> Response:
        digest = parts["digest"]
        if DIGEST.match(digest):
            for image_dir in package.get("dirs", {}).values():
                data = stored_blob(image_dir, digest)
                if data is not None:
                    return _content(data, "application/octet-stream")
        raise RegistryError(404, "BLOB_UNKNOWN", _failed_to_fetch(digest, request))

    def _tags(self, request: Request, package: dict[str, Any], parts: dict[str, str]) -> Response:
        if not package:
            raise RegistryError(404, "NAME_UNKNOWN", f'Package "{parts["image"]}" not found')
        tags = sorted(package["tags"])
        last = request.args.get("last")
        if last:
            tags = [t for t in tags if t > last]
        n = request.args.get("n", "")
        if n.isdigit():
            tags = tags[: int(n)]
        return _json({"name": f"{parts['project']}/{parts['repo']}/{parts['image']}", "tags": tags})

    def _token(self, request: Request) -> Response:
        """The token endpoint of the challenge (`?service=<host>&scope=repository:<name>:pull`)."""
        scope = request.args.get("scope", "")
        name = scope.split(":")[1] if scope.count(":") >= 2 else ""
        project, _, rest = name.partition("/")
        repo = rest.partition("/")[0]
        host = (request.environ.get("localcloud.host") or request.host).split(":")[0].lower()
        resource = (
            f"projects/{project}/locations/{host.removesuffix('-docker.pkg.dev')}/repositories/{repo}"
            if project and repo
            else ""
        )
        if not request.headers.get("Authorization"):
            # Artifact Registry's token endpoint refuses an anonymous caller of a private repository.
            raise RegistryError(403, "DENIED", _unauthenticated(resource))
        self._principal(request, resource)
        token = _token_of(request.headers["Authorization"])
        return _json({"token": token, "access_token": token})

    # ---- auth ----------------------------------------------------------------------------------------

    def _principal(self, request: Request, resource: str, name: str = "") -> str:
        """The caller, from a Bearer or a Basic `oauth2accesstoken` header; a 401 otherwise."""
        header = request.headers.get("Authorization", "")
        challenge = f'scope="repository:{name}:pull"' if name else ""
        if not header.strip():
            raise RegistryError(401, "UNAUTHORIZED", _unauthenticated(resource), challenge)
        try:
            token = _token_of(header)
            bearer = Request({**request.environ, "HTTP_AUTHORIZATION": f"Bearer {token}"})
            return self.cloud.authenticate(bearer)
        except Unauthenticated as e:
            reason = re.search(r"\(localcloud: (.*)\)$", str(e))
            why = reason.group(1) if reason else str(e)
            message = f"{_unauthenticated(resource)} (localcloud: the credentials were refused: {why})"
            raise RegistryError(401, "UNAUTHORIZED", message, challenge) from None

    def _allowed(self, request: Request, resource: str, name: str) -> str:
        """The caller, when it may read the repository: its project's account holding PERMISSION
        (when IAM is enforced); else 401 or 403 DENIED."""
        principal = self._principal(request, resource, name)
        project = resource.split("/")[1]
        problem = projects.access_error(project, principal)
        denied = f'Permission "{PERMISSION}" denied on resource "{resource}" (or it may not exist)'
        if problem:
            raise RegistryError(403, "DENIED", f"{denied} (localcloud: {problem})")
        iam = getattr(self.cloud, "iam", None)
        if (
            iam is not None
            and iam.enforcing
            and not iam_enforce.allowed(self.cloud, self, principal, PERMISSION, resource)
        ):
            raise RegistryError(403, "DENIED", denied)
        return principal


def _token_of(header: str) -> str:
    """The access token of a Bearer or Basic (`oauth2accesstoken:<token>`) Authorization header."""
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic":
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("(localcloud: Basic credentials not base64 of user:password)") from None
        if not sep or user not in BASIC_USERS or not password:
            raise Unauthenticated(
                f"(localcloud: Basic auth takes the user oauth2accesstoken and an access token as the "
                f"password, not the user {user!r})"
            )
        return password
    raise Unauthenticated("(localcloud: expected 'Authorization: Bearer <token>' or Basic oauth2accesstoken)")


def _unauthenticated(resource: str) -> str:
    if not resource:
        return "Unauthenticated request."
    return (
        f'Unauthenticated request. Unauthenticated requests do not have permission "{PERMISSION}" '
        f'on resource "{resource}" (or it may not exist)'
    )


def _failed_to_fetch(reference: str, request: Request) -> str:
    return f'Failed to fetch "{reference}" from request "{request.path}".'


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(body), status=status, headers=[API_VERSION], content_type="application/json; charset=utf-8"
    )


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _content(data: bytes, media_type: str) -> Response:
    """Content-addressed bytes: `Docker-Content-Digest` is their sha256 (Content-Length the proxy's)."""
    headers = [API_VERSION, ("Docker-Content-Digest", _digest(data))]
    return Response(data, headers=headers, content_type=media_type)


def _unsupported(method: str) -> RegistryError:
    return RegistryError(
        405,
        "UNSUPPORTED",
        f"localcloud's registry serves reads only, not {method}; images arrive by Cloud Build's docker push",
    )


def _error(e: RegistryError, host: str) -> Response:
    resp = _json({"errors": [{"code": e.code, "message": e.message}]}, e.status)
    if e.status == 401:
        challenge = f'Bearer realm="https://{host}/v2/token",service="{host}"'
        resp.headers["WWW-Authenticate"] = f"{challenge},{e.challenge}" if e.challenge else challenge
    return resp
