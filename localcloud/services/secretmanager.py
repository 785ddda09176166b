"""Secret Manager v1 (secretmanager.googleapis.com): secrets and versions, docs/gcp-rest.md, Secret Manager.

State: one JSON file (state/secretmanager/secrets.json, mode 0600), rewritten atomically on each change.
Names use the project ID (the real service may answer with the project number).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets as pysecrets
import threading
from typing import Any

import google_crc32c
from werkzeug.wrappers import Request, Response

from localcloud import iam_permissions
from localcloud.clock import rfc3339
from localcloud.projects import PROJECTS, access_error
from localcloud.service import Service, google_error, json_response
from localcloud.services.run_errors import ApiError, json_body

MAX_PAYLOAD = 64 * 1024
MAX_PAGE = 25000
SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
SECRET_FIELDS = {
    "name",
    "replication",
    "createTime",
    "labels",
    "topics",
    "expireTime",
    "ttl",
    "etag",
    "rotation",
    "versionAliases",
    "annotations",
    "versionDestroyTtl",
    "customerManagedEncryption",
    "tags",
}
OUTPUT_ONLY = {"name", "createTime", "etag"}
MUTABLE = SECRET_FIELDS - OUTPUT_ONLY - {"replication", "customerManagedEncryption"}
STATES = {0: "STATE_UNSPECIFIED", 1: "ENABLED", 2: "DISABLED", 3: "DESTROYED"}

_ROUTES = [
    (re.compile(r"^/v1/projects/(?P<p>[^/]+)/secrets$"), "secrets"),
    (re.compile(r"^/v1/projects/(?P<p>[^/]+)/secrets/(?P<s>[^/:]+)$"), "secret"),
    (re.compile(r"^/v1/projects/(?P<p>[^/]+)/secrets/(?P<s>[^/:]+):addVersion$"), "addVersion"),
    (re.compile(r"^/v1/projects/(?P<p>[^/]+)/secrets/(?P<s>[^/:]+)/versions$"), "versions"),
    (re.compile(r"^/v1/projects/(?P<p>[^/]+)/secrets/(?P<s>[^/:]+)/versions/(?P<v>[^/:]+)$"), "version"),
    (
        re.compile(
            r"^/v1/projects/(?P<p>[^/]+)/secrets/(?P<s>[^/:]+)/versions/(?P<v>[^/:]+)"
            r":(?P<verb>access|enable|disable|destroy)$"
        ),
        "versionVerb",
    ),
]
_PERMISSIONS = {
    ("secrets", "GET"): "secrets.list",
    ("secrets", "POST"): "secrets.create",
    ("secret", "GET"): "secrets.get",
    ("secret", "PATCH"): "secrets.update",
    ("secret", "DELETE"): "secrets.delete",
    ("addVersion", "POST"): "versions.add",
    ("versions", "GET"): "versions.list",
    ("version", "GET"): "versions.get",
}


def _bad(message: str) -> ApiError:
    return ApiError(400, message, "INVALID_ARGUMENT")


def _precondition(message: str) -> ApiError:
    return ApiError(400, message, "FAILED_PRECONDITION")


def _crc32c(data: bytes) -> int:
    return google_crc32c.value(data)


def _etag() -> str:
    return f'"{pysecrets.token_hex(7)}"'


class SecretManager(Service):
    name = "secretmanager"
    hosts = ("secretmanager.googleapis.com",)
    permissions = iam_permissions.SECRET_MANAGER

    def __init__(self, cloud):
        super().__init__(cloud)
        self._file = self.state_dir / "secrets.json"
        self._lock = threading.RLock()
        self._secrets: dict[str, dict[str, Any]] = {}
        self._seeded: list[str] = []  # projects whose secrets were seeded (a deleted one stays deleted)
        if self._file.exists():
            saved = json.loads(self._file.read_text())
            self._secrets = saved["secrets"]
            self._seeded = saved.get("seeded", [self.cloud.project])

    def start(self) -> None:
        # At start, not when constructed: the Supabase service (constructed after this one) issues the
        # token that the Supabase secret is seeded with.
        with self._lock:
            self._seed()

    # ---- state ---------------------------------------------------------------------------------------

    def _seed(self) -> None:
        """Each hosted project's first start: its environment's secrets (the root API key and the
        Supabase token under that environment's names), values nobody has seen: a random root key,
        and a Supabase access token that localcloud's Supabase issued for the project."""
        for hosted in PROJECTS:
            if hosted.project in self._seeded:
                continue
            for secret_id in (hosted.root_key_secret, hosted.supabase_secret):
                name = f"projects/{hosted.project}/secrets/{secret_id}"
                self._secrets[name] = self._new_secret(name, {"replication": {"automatic": {}}})
                value = (
                    self._issued_supabase_token(hosted.project)
                    if secret_id == hosted.supabase_secret
                    else pysecrets.token_urlsafe(32)
                )
                self._add_version(name, value.encode(), checksum_given=False)
            self._seeded.append(hosted.project)
        # The alert webhook's URL, added once per project (also to a state seeded before it existed):
        # localcloud's own receiver, its token in the query (the receiver logs it hashed).
        for hosted in PROJECTS:
            mark = f"{hosted.project}/alerts-webhook"
            if mark in self._seeded:
                continue
            name = f"projects/{hosted.project}/secrets/{hosted.alerts_webhook_secret}"
            if name not in self._secrets:
                self._secrets[name] = self._new_secret(name, {"replication": {"automatic": {}}})
                url = f"https://hooks.cloudact.local/cloudact-{hosted.secret_suffix}?token={pysecrets.token_urlsafe(24)}"
                self._add_version(name, url.encode(), checksum_given=False)
            self._seeded.append(mark)
        self._save()

    def _issued_supabase_token(self, project: str) -> str:
        """A token the Supabase service issues for the project, the only one valid from now on (a reset
        re-seeds: the earlier ones are revoked); a random value when this localcloud has no Supabase."""
        try:
            supabase: Any = self.cloud.service("supabase")
        except KeyError:
            return pysecrets.token_urlsafe(32)
        return supabase.issue_token(project, revoke_others=True, how="seeded")

    def _save(self) -> None:
        tmp = self._file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"secrets": self._secrets, "seeded": self._seeded}, f)
        tmp.replace(self._file)

    def reset(self) -> None:
        with self._lock:
            self._secrets = {}
            self._seeded = []
            self._seed()

    def _new_secret(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        secret = {"name": name, **{k: v for k, v in body.items() if k not in OUTPUT_ONLY}}
        secret["createTime"] = rfc3339(self.cloud.now())
        secret["etag"] = _etag()
        secret["_versions"] = []
        return secret

    def _add_version(self, name: str, data: bytes, checksum_given: bool) -> dict[str, Any]:
        secret = self._secrets[name]
        number = len(secret["_versions"]) + 1
        version = {
            "name": f"{name}/versions/{number}",
            "createTime": rfc3339(self.cloud.now()),
            "state": "ENABLED",
            "replicationStatus": _replication_status(secret.get("replication", {})),
            "etag": _etag(),
            "_data": base64.b64encode(data).decode(),
        }
        if checksum_given:
            version["clientSpecifiedPayloadChecksum"] = True
        secret["_versions"].append(version)
        return version

    # ---- in-process API ------------------------------------------------------------------------------

    def value(self, secret: str, version: str = "latest", project: str | None = None) -> bytes | None:
        """Cloud.secret_value: a version's payload, None when the secret/version is absent or not ENABLED."""
        name = (
            secret
            if secret.startswith("projects/")
            else f"projects/{project or self.cloud.project}/secrets/{secret}"
        )
        with self._lock:
            try:
                found = self._version(name, str(version))
            except ApiError:
                return None
            if found["state"] != "ENABLED":
                return None
            return base64.b64decode(found["_data"])

    # ---- HTTP ----------------------------------------------------------------------------------------

    def routes(self) -> list[tuple[str, str]]:
        """What `handle` answers (see _ROUTES and _route), for the conformance test."""
        secrets, secret = "/v1/projects/{p}/secrets", "/v1/projects/{p}/secrets/{s}"
        version = secret + "/versions/{v}"
        return [
            ("POST", secrets),
            ("GET", secrets),
            ("GET", secret),
            ("PATCH", secret),
            ("DELETE", secret),
            ("POST", secret + ":addVersion"),
            ("GET", secret + "/versions"),
            ("GET", version),
            ("GET", version + ":access"),
            *(("POST", f"{version}:{verb}") for verb in ("enable", "disable", "destroy")),
        ]

    def iam_missing(self, resource: str) -> str | None:
        """Google's 404 for the policy methods of a secret that does not exist (localcloud/iam_enforce.py)."""
        with self._lock:
            return None if resource in self._secrets else f"Secret [{resource}] not found."

    def handle(self, request: Request) -> Response:
        principal = self.cloud.authenticate(request)
        route = ""
        for pattern, candidate in _ROUTES:
            match = pattern.match(request.path)
            if match:
                route = candidate
                break
        else:
            return google_error(
                404,
                f"localcloud Secret Manager does not emulate {request.method} {request.path}",
                "NOT_FOUND",
            )
        params = match.groupdict()
        try:
            self._check_project(params["p"], route, request.method, params, match.group(0), principal)
            with self._lock:
                return self._route(route, request, params)
        except ApiError as e:
            return google_error(e.code, e.message, e.status)

    def _check_project(
        self, project: str, route: str, method: str, params: dict, path: str, principal: str
    ) -> None:
        if not access_error(project, principal):
            return
        permission = _PERMISSIONS.get((route, method), f"versions.{params.get('verb', 'access')}")
        resource = path.removeprefix("/v1/").split(":")[0]
        raise ApiError(
            403,
            f"Permission 'secretmanager.{permission}' denied for resource '{resource}' "
            "(or it may not exist).",
            "PERMISSION_DENIED",
        )

    def _route(self, route: str, request: Request, params: dict[str, str]) -> Response:
        method = request.method
        parent = f"projects/{params['p']}"
        name = f"{parent}/secrets/{params['s']}" if "s" in params else ""
        if route == "secrets" and method == "POST":
            return json_response(self._create(parent, request))
        if route == "secrets" and method == "GET":
            return json_response(self._list_secrets(parent, request))
        if route == "secret" and method == "GET":
            return json_response(_public(self._secret(name)))
        if route == "secret" and method == "PATCH":
            return json_response(self._patch(name, request))
        if route == "secret" and method == "DELETE":
            secret = self._secret(name)
            _check_etag(request.args.get("etag"), secret)
            del self._secrets[name]
            self._save()
            return json_response({})
        if route == "addVersion" and method == "POST":
            return json_response(self._add_version_request(name, request))
        if route == "versions" and method == "GET":
            return json_response(self._list_versions(name, request))
        if route == "version" and method == "GET":
            return json_response(_public(self._version(name, params["v"])))
        if route == "versionVerb" and method == "GET" and params["verb"] == "access":
            return json_response(self._access(name, params["v"]))
        if route == "versionVerb" and method == "POST" and params["verb"] != "access":
            return json_response(self._transition(name, params["v"], params["verb"], request))
        return google_error(405, f"Method {method} is not allowed on {request.path}", "INVALID_ARGUMENT")

    # ---- secrets -------------------------------------------------------------------------------------

    def _secret(self, name: str) -> dict[str, Any]:
        try:
            return self._secrets[name]
        except KeyError:
            raise ApiError(404, f"Secret [{name}] not found.", "NOT_FOUND") from None

    def _create(self, parent: str, request: Request) -> dict[str, Any]:
        secret_id = request.args.get("secretId", "")
        if not SECRET_ID.match(secret_id):
            raise _bad(
                f"Invalid secretId {secret_id!r}: a secret ID is 1 to 255 characters of letters, numbers, "
                "hyphens and underscores."
            )
        body = json_body(request)
        _check_fields(body, SECRET_FIELDS, "Secret")
        replication = body.get("replication")
        if not isinstance(replication, dict) or not (
            isinstance(replication.get("automatic"), dict) or isinstance(replication.get("userManaged"), dict)
        ):
            raise _bad(
                'Secret.replication is required: {"automatic": {}} or {"userManaged": {"replicas": [...]}}.'
            )
        _check_labels(body.get("labels"))
        name = f"{parent}/secrets/{secret_id}"
        if name in self._secrets:
            raise ApiError(409, f"Secret [{name}] already exists.", "ALREADY_EXISTS")
        self._secrets[name] = self._new_secret(name, body)
        self._save()
        return _public(self._secrets[name])

    def _patch(self, name: str, request: Request) -> dict[str, Any]:
        secret = self._secret(name)
        mask = [m.strip() for m in request.args.get("updateMask", "").split(",") if m.strip()]
        if not mask:
            raise _bad("updateMask is required: a comma-separated list of fields to update, e.g. labels")
        body = json_body(request)
        _check_fields(body, SECRET_FIELDS, "Secret")
        if body.get("etag"):
            _check_etag(body["etag"], secret)
        for path in mask:
            field = path.split(".")[0]
            if field not in MUTABLE:
                raise _bad(f"updateMask path {path!r} cannot be updated; updatable fields: {sorted(MUTABLE)}")
            if field == "labels":
                _check_labels(body.get("labels"))
            if field in body and body[field] not in (None, {}, []):
                secret[field] = body[field]
            else:
                secret.pop(field, None)
        secret["etag"] = _etag()
        self._save()
        return _public(secret)

    def _list_secrets(self, parent: str, request: Request) -> dict[str, Any]:
        names = sorted(n for n in self._secrets if n.startswith(parent + "/secrets/"))
        items = [self._secrets[n] for n in names]
        items = _filter_secrets(items, request.args.get("filter", ""))
        page, token = _page(items, request)
        out: dict[str, Any] = {"secrets": [_public(s) for s in page], "totalSize": len(items)}
        if token:
            out["nextPageToken"] = token
        return {k: v for k, v in out.items() if v}

    # ---- versions ------------------------------------------------------------------------------------

    def _version(self, name: str, version: str) -> dict[str, Any]:
        secret = self._secret(name)
        versions = secret["_versions"]
        if version == "latest":
            enabled = [v for v in versions if v["state"] == "ENABLED"]
            if not enabled:
                raise ApiError(404, f"Secret [{name}] not found or has no versions.", "NOT_FOUND")
            return enabled[-1]
        if version in secret.get("versionAliases", {}):
            version = str(secret["versionAliases"][version])
        if not version.isdigit() or int(version) < 1:
            raise _bad(
                f"Invalid version {version!r}: expected a version number (1, 2, ...), latest or an alias"
            )
        if int(version) > len(versions):
            raise ApiError(404, f"Secret Version [{name}/versions/{int(version)}] not found.", "NOT_FOUND")
        return versions[int(version) - 1]

    def _add_version_request(self, name: str, request: Request) -> dict[str, Any]:
        self._secret(name)
        body = json_body(request)
        payload = body.get("payload")
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), str):
            raise _bad('AddSecretVersionRequest.payload.data is required: {"payload": {"data": "<base64>"}}')
        try:
            data = base64.b64decode(payload["data"], validate=True)
        except (binascii.Error, ValueError):
            raise _bad("payload.data is not valid base64") from None
        if len(data) > MAX_PAYLOAD:
            raise _bad(f"Secret payload is {len(data)} bytes; the maximum is {MAX_PAYLOAD} bytes (64 KiB).")
        given = payload.get("dataCrc32c")
        if given is not None:
            try:
                expected = int(given)
            except (TypeError, ValueError):
                raise _bad(f"payload.dataCrc32c {given!r} is not an int64") from None
            if expected != _crc32c(data):
                raise _bad(
                    "Checksum mismatch: payload.dataCrc32c does not match the CRC32C of payload.data; "
                    "the payload may have been corrupted in transit."
                )
        version = self._add_version(name, data, checksum_given=given is not None)
        self._secrets[name]["etag"] = _etag()
        self._save()
        return _public(version)

    def _list_versions(self, name: str, request: Request) -> dict[str, Any]:
        secret = self._secret(name)
        items = list(reversed(secret["_versions"]))  # newest first, as the real service lists them
        query = request.args.get("filter", "").strip()
        if query:
            m = re.fullmatch(r"state\s*[:=]\s*(\w+)", query)
            if not m or m.group(1).upper() not in STATES.values():
                raise _bad(
                    f"Unsupported filter {query!r}: localcloud supports state:ENABLED|DISABLED|DESTROYED"
                )
            items = [v for v in items if v["state"] == m.group(1).upper()]
        page, token = _page(items, request)
        out: dict[str, Any] = {"versions": [_public(v) for v in page], "totalSize": len(items)}
        if token:
            out["nextPageToken"] = token
        return {k: v for k, v in out.items() if v}

    def _access(self, name: str, version_id: str) -> dict[str, Any]:
        version = self._version(name, version_id)
        if version["state"] != "ENABLED":
            raise _precondition(f"Secret Version [{version['name']}] is in {version['state']} state.")
        data = base64.b64decode(version["_data"])
        return {
            "name": version["name"],
            "payload": {"data": version["_data"], "dataCrc32c": str(_crc32c(data))},
        }

    def _transition(self, name: str, version_id: str, verb: str, request: Request) -> dict[str, Any]:
        version = self._version(name, version_id)
        body = json_body(request)
        if body.get("etag"):
            _check_etag(body["etag"], version)
        if version["state"] == "DESTROYED":
            raise _precondition(f"Secret Version [{version['name']}] is in DESTROYED state.")
        if verb == "destroy":
            version["state"] = "DESTROYED"
            version["destroyTime"] = rfc3339(self.cloud.now())
            version.pop("_data", None)
        else:
            version["state"] = "ENABLED" if verb == "enable" else "DISABLED"
        version["etag"] = _etag()
        self._save()
        return _public(version)


def _public(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if not k.startswith("_")}


def _replication_status(replication: dict[str, Any]) -> dict[str, Any]:
    if "userManaged" in replication:
        replicas = replication["userManaged"].get("replicas", [])
        return {"userManaged": {"replicas": [{"location": r.get("location", "")} for r in replicas]}}
    return {"automatic": {}}


def _check_fields(body: dict[str, Any], known: set[str], kind: str) -> None:
    for key in body:
        if key not in known:
            raise _bad(
                f"Invalid JSON payload received. Unknown name \"{key}\" at '{kind.lower()}': "
                "Cannot find field."
            )


def _check_labels(labels: Any) -> None:
    if labels is None:
        return
    if not isinstance(labels, dict):
        raise _bad("labels must be a map of string to string")
    for key, value in labels.items():
        if not LABEL_KEY.match(key) or not isinstance(value, str) or not LABEL_VALUE.match(value):
            raise _bad(
                f"Invalid label {key!r}={value!r}: keys start with a lowercase letter; keys and values use "
                "lowercase letters, digits, _ and -, at most 63 characters."
            )


def _check_etag(etag: str | None, resource: dict[str, Any]) -> None:
    if etag and etag != resource["etag"]:
        raise ApiError(
            409,
            f"The etag {etag} does not match the current etag {resource['etag']} of {resource['name']}.",
            "ABORTED",
        )


def _filter_secrets(items: list[dict[str, Any]], query: str) -> list[dict[str, Any]]:
    """The simple filters of secrets.list: name:<text>, labels.<key>=<value> or labels.<key>:*, ANDed."""
    query = query.strip()
    if not query:
        return items
    for term in re.split(r"\s+AND\s+|\s+", query):
        m = re.fullmatch(r"(name|labels\.[a-z0-9_-]+)\s*([:=])\s*\"?([^\"]*)\"?", term)
        if not m:
            raise _bad(
                f"Unsupported filter term {term!r}: localcloud supports name:<text> and labels.<key>=<value>"
            )
        field, op, value = m.groups()
        if field == "name":
            items = [s for s in items if value in s["name"].rsplit("/", 1)[1]]
        else:
            key = field.split(".", 1)[1]
            items = [
                s
                for s in items
                if key in s.get("labels", {}) and (value == "*" or op == ":" or s["labels"][key] == value)
            ]
    return items


def _page(items: list[Any], request: Request) -> tuple[list[Any], str]:
    raw_size = request.args.get("pageSize", "0") or "0"
    if not raw_size.lstrip("-").isdigit() or int(raw_size) < 0:
        raise _bad(f"Invalid pageSize {raw_size!r}: expected 0 (server default) to {MAX_PAGE}")
    size = min(int(raw_size), MAX_PAGE) or MAX_PAGE
    token = request.args.get("pageToken", "")
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("o:"))
        except (ValueError, binascii.Error):
            raise _bad(f"Invalid pageToken {token!r}") from None
    page = items[start : start + size]
    more = start + size < len(items)
    return page, base64.urlsafe_b64encode(f"o:{start + size}".encode()).decode() if more else ""
