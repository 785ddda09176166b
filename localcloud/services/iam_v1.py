"""IAM v1 (iam.googleapis.com): service accounts, their keys and their allow policies.

Covered: `projects.serviceAccounts.create` (accountId as Google checks it; displayName, description),
`get` (by email or uniqueId; project `-` finds any hosted project's), `list` (pageSize, pageToken),
`delete` (bindings to it become `deleted:serviceAccount:<email>?uid=<uniqueId>`), `keys.create` (a
real key: `privateKeyData` is the base64 of a key file that localcloud's token endpoint accepts), and
`getIamPolicy`/`setIamPolicy`/`testIamPermissions` on an account (served by localcloud/iam_enforce.py).
State is localcloud/iam.py's. Not covered: update/patch, disable/enable/undelete, keys list/get/
delete/upload, signBlob/signJwt, roles and permissions APIs, workload identity pools.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, ClassVar

from werkzeug.wrappers import Request, Response

from localcloud import projects
from localcloud.iam import IamError
from localcloud.service import Service, Unauthenticated, google_error, json_response
from localcloud.services.run_base import offset_page
from localcloud.services.run_errors import UNAUTHENTICATED, ApiError

_P = r"^/v1/projects/(?P<project>[^/]+)/serviceAccounts"
_SA = _P + r"/(?P<account>[^/:]+)"
_ROUTES = [
    ("POST", re.compile(_P + "$"), "create"),
    ("GET", re.compile(_P + "$"), "list"),
    ("GET", re.compile(_SA + "$"), "get"),
    ("DELETE", re.compile(_SA + "$"), "delete"),
    ("POST", re.compile(_SA + "/keys$"), "key"),
]


class IamService(Service):
    name = "iam"
    hosts = ("iam.googleapis.com",)
    permissions: ClassVar[dict[str, str]] = {
        "iam.projects.serviceAccounts.create": "iam.serviceAccounts.create",
        "iam.projects.serviceAccounts.get": "iam.serviceAccounts.get",
        "iam.projects.serviceAccounts.list": "iam.serviceAccounts.list",
        "iam.projects.serviceAccounts.delete": "iam.serviceAccounts.delete",
        "iam.projects.serviceAccounts.keys.create": "iam.serviceAccountKeys.create",
        "iam.projects.serviceAccounts.getIamPolicy": "iam.serviceAccounts.getIamPolicy",
        "iam.projects.serviceAccounts.setIamPolicy": "iam.serviceAccounts.setIamPolicy",
        "iam.projects.serviceAccounts.testIamPermissions": "",
    }

    def routes(self) -> list[tuple[str, str]]:
        p = "/v1/projects/{project}/serviceAccounts"
        return [
            ("POST", p),
            ("GET", p),
            ("GET", p + "/{account}"),
            ("DELETE", p + "/{account}"),
            ("POST", p + "/{account}/keys"),
        ]

    def reset(self) -> None:
        self.cloud.iam.reset()  # type: ignore[attr-defined]

    def handle_admin(self, request: Request, subpath: str) -> Response:
        """`GET /_localcloud/iam` -> {"mode"}; `POST /_localcloud/iam/key {"email"}` -> {"key_file"}: a key
        file (issued once, mode 0600) of an existing account, for a test that acts as it."""
        iam = self.cloud.iam  # type: ignore[attr-defined]
        if subpath == "" and request.method == "GET":
            return json_response({"mode": iam.mode, "projects": sorted(iam._data)})
        if subpath == "key" and request.method == "POST":
            body = request.get_json(silent=True) or {}
            email = body.get("email") if isinstance(body, dict) else None
            if not isinstance(email, str) or not iam.account_exists(email):
                return json_response(
                    {"error": f"no service account {email!r} in localcloud's IAM: create it first (IAM v1)"},
                    status=404,
                )
            return json_response({"key_file": str(iam.key_file_for(email))})
        return super().handle_admin(request, subpath)

    # ---- IAM hooks (localcloud/iam_enforce.py) -------------------------------------------------------

    def iam_resource(self, request: Request, method: Any) -> str:
        match = re.match(_SA, request.path.split(":", 1)[0])
        if not match:
            return ""
        try:
            account = self.cloud.iam.find_account(match["project"], match["account"])  # type: ignore[attr-defined]
        except IamError:
            # A missing account is judged on its project's policy (the email names it), so a caller
            # who may read accounts there learns it does not exist (404), as on Google.
            project = match["project"]
            if project == "-":
                project = projects.project_of(match["account"]) or project
            return f"projects/{project}/serviceAccounts/{match['account']}"
        return account["name"]

    def iam_missing(self, resource: str) -> str | None:
        parts = resource.split("/")
        try:
            self.cloud.iam.find_account(parts[1], parts[3])  # type: ignore[attr-defined]
        except (IamError, IndexError):
            return "Unknown service account"
        return None

    # ---- HTTP ----------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        try:
            self.cloud.authenticate(request)
        except Unauthenticated:
            return google_error(401, UNAUTHENTICATED, "UNAUTHENTICATED")
        for http_method, pattern, name in _ROUTES:
            match = pattern.match(request.path)
            if match and http_method == request.method:
                route = name
                break
        else:
            return google_error(404, f"localcloud IAM does not emulate {request.method} {request.path}")
        try:
            return json_response(
                self._route(route, request, match["project"], match.groupdict().get("account"))
            )
        except IamError as err:
            return google_error(err.code, err.message, err.status)
        except ApiError as err:
            return google_error(err.code, err.message, err.status)

    def _route(self, route: str, request: Request, project: str, account: str | None) -> Any:
        iam = self.cloud.iam  # type: ignore[attr-defined]
        if route == "create":
            body = _body(request)
            fields = body.get("serviceAccount") or {}
            if not isinstance(fields, dict):
                raise IamError(
                    400, "Invalid JSON payload: 'serviceAccount' must be an object.", "INVALID_ARGUMENT"
                )
            return iam.create_account(project, body.get("accountId", ""), fields)
        if route == "list":
            accounts = iam.list_accounts(project)
            size = int(request.args.get("pageSize") or 0) or 100
            page, token = offset_page(
                accounts,
                min(size, 100),
                request.args.get("pageToken") or "",
                "Invalid page token {token!r}: use the nextPageToken of the previous page",
            )
            return {**({"accounts": page} if page else {}), **({"nextPageToken": token} if token else {})}
        assert account is not None
        if route == "get":
            return iam.find_account(project, account)
        if route == "delete":
            iam.delete_account(project, account)
            return {}
        found = iam.find_account(project, account)
        body = _body(request)
        kind = body.get("privateKeyType") or "TYPE_GOOGLE_CREDENTIALS_FILE"
        if kind != "TYPE_GOOGLE_CREDENTIALS_FILE":
            raise IamError(
                400,
                f"localcloud issues only TYPE_GOOGLE_CREDENTIALS_FILE keys, not {kind}",
                "INVALID_ARGUMENT",
            )
        info = iam.create_key(found)
        now = self.cloud.now()
        return {
            "name": f"{found['name']}/keys/{info['private_key_id']}",
            "privateKeyType": kind,
            "privateKeyData": base64.b64encode(json.dumps(info, indent=2).encode()).decode(),
            "validAfterTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "validBeforeTime": "9999-12-31T23:59:59Z",
            "keyAlgorithm": body.get("keyAlgorithm") or "KEY_ALG_RSA_2048",
            "keyOrigin": "GOOGLE_PROVIDED",
            "keyType": "USER_MANAGED",
        }


def _body(request: Request) -> dict[str, Any]:
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise IamError(400, "Invalid JSON payload received.", "INVALID_ARGUMENT") from None
    if not isinstance(body, dict):
        raise IamError(400, "Invalid JSON payload received: expected an object.", "INVALID_ARGUMENT")
    return body
