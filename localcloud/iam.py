"""localcloud's IAM: service accounts and allow policies per hosted project, and the question
"may this principal use this permission on this resource?".

State: `<state>/iam/<project>.json` per hosted project, rewritten atomically on each change:
`{"serviceAccounts": {email: ServiceAccount}, "policies": {resource name: Policy}, "datasets":
{dataset: BigQuery access entries and etag}}`. A fresh project (the first start that lacks its file,
or `/_localcloud/reset`) has two accounts and two bindings, as a new Google project with the Compute
and Cloud Run APIs enabled has: the operator account localcloud issues a key for
(`cloudact-operator@<project>.iam.gserviceaccount.com`, roles/owner) and Compute Engine's default
account (`<project number>-compute@developer.gserviceaccount.com`, roles/editor), what a Cloud Run
job without a `serviceAccount` runs as.

Policies have Google's shape (`version`, `bindings[{role, members, condition?}]`, `etag`). A
principal holds a permission on a resource when a binding of the resource's policy, of any policy of
its ancestors (`projects/p/locations/l/jobs/j` inherits from `projects/p/locations/l` and `projects/p`)
or of the service's own (BigQuery's dataset access entries) grants a role holding it to a member
that is the principal. Conditional bindings are stored and returned as given but never grant
(localcloud does not evaluate CEL): least privilege errs closed.

Enforcement (localcloud/iam_enforce.py) is on unless `LOCALCLOUD_IAM=off` at server start (a
debugging aid); the APIs (service accounts, keys, policies, etags) work either way.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcloud import iam_roles, projects

MODE_ENV = "LOCALCLOUD_IAM"
MODES = ("enforce", "off")
DEFAULT_MODE = "enforce"  # as on Google; LOCALCLOUD_IAM=off only for a debugging session
EMPTY_ETAG = "ACAB"  # what Google answers for a policy that was never set
ACCOUNT_ID = re.compile(r"^[a-z](?:[-a-z0-9]{4,28}[a-z0-9])$")
CONCURRENT = (
    "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff."
)
MEMBER_KINDS = ("user", "serviceAccount", "group", "domain", "principal", "principalSet", "deleted")
SPECIAL_MEMBERS = ("allUsers", "allAuthenticatedUsers")
_BASIC_MEMBER = {
    "projectOwner": "roles/owner",
    "projectEditor": "roles/editor",
    "projectViewer": "roles/viewer",
}


class IamError(Exception):
    """A refusal in Google's words: HTTP code, message, google.rpc status."""

    def __init__(self, code: int, message: str, status: str):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class BadSetting(ValueError):
    """A localcloud setting (environment variable) with a value it does not accept."""


def mode_from_env() -> str:
    """LOCALCLOUD_IAM (enforce | off; unset is the default); a bad value stops the server at start."""
    value = os.environ.get(MODE_ENV, "").strip() or DEFAULT_MODE
    if value not in MODES:
        raise BadSetting(f"{MODE_ENV}={value!r} is not valid: use one of {', '.join(MODES)}")
    return value


def new_etag() -> str:
    return base64.b64encode(b"\x07\x05" + secrets.token_bytes(6)).decode()


@dataclass(frozen=True)
class Caller:
    """Who a check is about: an authenticated principal (a service account's email)."""

    email: str


class Iam:
    """The IAM state of every hosted project, and the permission checks over it."""

    def __init__(self, state_dir: Path, auth: Any, mode: str = DEFAULT_MODE):
        self.dir = Path(state_dir) / "iam"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.keys_dir = Path(state_dir) / "keys"
        self.auth = auth
        self.mode = mode
        self._lock = threading.RLock()
        self._data: dict[str, dict[str, Any]] = {}
        for hosted in projects.PROJECTS:
            path = self._file(hosted.project)
            self._data[hosted.project] = (
                json.loads(path.read_text()) if path.exists() else self._fresh(hosted)
            )
            self._save(hosted.project)
        # Keys of deleted accounts stop working, as on Google (enforced mode only: `off` changes nothing).
        if self.enforcing:
            auth.account_ok = self.account_exists

    @property
    def enforcing(self) -> bool:
        return self.mode == "enforce"

    # ---- state ---------------------------------------------------------------------------------------

    def _file(self, project: str) -> Path:
        return self.dir / f"{project}.json"

    def _save(self, project: str) -> None:
        path = self._file(project)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._data[project], indent=1))
        tmp.replace(path)

    def _fresh(self, hosted: projects.HostedProject) -> dict[str, Any]:
        data: dict[str, Any] = {"serviceAccounts": {}, "policies": {}, "datasets": {}}
        operator, compute = hosted.service_account, hosted.compute_account
        data["serviceAccounts"][operator] = self._account(hosted.project, operator, "localcloud operator")
        data["serviceAccounts"][compute] = self._account(
            hosted.project, compute, "Compute Engine default service account"
        )
        data["policies"][f"projects/{hosted.project}"] = {
            "version": 1,
            "bindings": [
                {"role": "roles/editor", "members": [f"serviceAccount:{compute}"]},
                {"role": "roles/owner", "members": [f"serviceAccount:{operator}"]},
            ],
            "etag": new_etag(),
        }
        return data

    @staticmethod
    def _account(project: str, email: str, display: str = "", description: str = "") -> dict[str, Any]:
        unique = str(secrets.randbelow(9 * 10**20) + 10**20)  # 21 digits, as Google's uniqueId
        account = {
            "name": f"projects/{project}/serviceAccounts/{email}",
            "projectId": project,
            "uniqueId": unique,
            "email": email,
            **({"displayName": display} if display else {}),
            **({"description": description} if description else {}),
            "etag": base64.b64encode(b"\x07\x05" + secrets.token_bytes(6)).decode(),
            "oauth2ClientId": unique,
        }
        return account

    def reset(self) -> None:
        with self._lock:
            for hosted in projects.PROJECTS:
                self._data[hosted.project] = self._fresh(hosted)
                self._save(hosted.project)

    def project_data(self, project: str) -> dict[str, Any]:
        data = self._data.get(projects.project_id(project))
        if data is None:
            raise IamError(
                403, projects.access_error(project) or f"Project {project} not found.", "PERMISSION_DENIED"
            )
        return data

    # ---- service accounts ----------------------------------------------------------------------------

    def create_account(self, project: str, account_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        project = projects.project_id(project)
        if not isinstance(account_id, str) or not ACCOUNT_ID.match(account_id):
            raise IamError(
                400,
                f"Invalid form of account ID {account_id}. "
                "Should be [Regex : [a-z](?:[-a-z0-9]{4,28}[a-z0-9]) ].",
                "INVALID_ARGUMENT",
            )
        email = f"{account_id}@{project}.iam.gserviceaccount.com"
        with self._lock:
            data = self.project_data(project)
            if email in data["serviceAccounts"]:
                raise IamError(
                    409,
                    f"Service account {account_id} already exists within project projects/{project}.",
                    "ALREADY_EXISTS",
                )
            account = self._account(
                project, email, str(fields.get("displayName") or ""), str(fields.get("description") or "")
            )
            data["serviceAccounts"][email] = account
            self._save(project)
            return copy.deepcopy(account)

    def find_account(self, project: str, ident: str) -> dict[str, Any]:
        """An account by email or uniqueId (`project` may be `-`: any hosted project); 404 when absent."""
        with self._lock:
            candidates = self._data.values() if project == "-" else [self.project_data(project)]
            for data in candidates:
                for email, account in data["serviceAccounts"].items():
                    if ident in (email, account["uniqueId"]):
                        return copy.deepcopy(account)
        raise IamError(404, "Unknown service account", "NOT_FOUND")

    def list_accounts(self, project: str) -> list[dict[str, Any]]:
        with self._lock:
            data = self.project_data(project)
            return [copy.deepcopy(a) for _, a in sorted(data["serviceAccounts"].items())]

    def delete_account(self, project: str, ident: str) -> None:
        account = self.find_account(project, ident)
        with self._lock:
            data = self._data[account["projectId"]]
            del data["serviceAccounts"][account["email"]]
            # Google keeps bindings of a deleted account as `deleted:serviceAccount:<email>?uid=<id>`.
            old = f"serviceAccount:{account['email']}"
            new = f"deleted:{old}?uid={account['uniqueId']}"
            for policy in data["policies"].values():
                for binding in policy.get("bindings", []):
                    binding["members"] = [new if m == old else m for m in binding["members"]]
            self.policies_changed(account["projectId"])

    def policies_changed(self, project: str) -> None:
        with self._lock:
            self._save(project)

    def account_exists(self, email: str) -> bool:
        project = projects.project_of(email)
        with self._lock:
            data = self._data.get(project)
            return data is not None and email in data["serviceAccounts"]

    def create_key(self, account: dict[str, Any]) -> dict[str, Any]:
        """A new user-managed key: the key file (what `privateKeyData` carries, base64) is localcloud's,
        so the token endpoint accepts it from now on."""
        path = self.keys_dir / f"sa-{secrets.token_hex(8)}.json"
        self.auth.issue_key(account["email"], path, project=account["projectId"])
        info = json.loads(path.read_text())
        return info

    def key_file_for(self, email: str) -> Path:
        """A key file of an account (issued once, kept under <state>/keys/): what an execution running
        as that account gets as its credentials (the metadata server's stand-in)."""
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", email)
        path = self.keys_dir / f"runtime-{safe}.json"
        with self._lock:
            if not path.exists():
                self.auth.issue_key(email, path, project=projects.project_of(email))
        return path

    # ---- policies ------------------------------------------------------------------------------------

    def _stored(self, resource: str) -> dict[str, Any] | None:
        project = projects.project_id(resource.split("/")[1]) if resource.startswith("projects/") else ""
        data = self._data.get(project)
        return None if data is None else data["policies"].get(_normal(resource))

    def get_policy(self, resource: str, requested_version: int = 0) -> dict[str, Any]:
        if requested_version not in (0, 1, 2, 3):
            raise IamError(
                400,
                f"Invalid requested policy version {requested_version}: use 1 or 3.",
                "INVALID_ARGUMENT",
            )
        with self._lock:
            policy = copy.deepcopy(
                self._stored(resource) or {"version": 1, "bindings": [], "etag": EMPTY_ETAG}
            )
        bindings = policy.get("bindings", [])
        conditional = any("condition" in b for b in bindings)
        if requested_version < 3 and conditional:
            # Google's answer to an old client: each conditional binding's role renamed, condition dropped.
            for b in bindings:
                if "condition" in b:
                    digest = hashlib.sha256(
                        json.dumps(b.pop("condition"), sort_keys=True).encode()
                    ).hexdigest()
                    b["role"] = f"{b['role']}_withcond_{digest[:20]}"
        out: dict[str, Any] = {"version": 3 if conditional and requested_version >= 3 else 1}
        if bindings:
            out["bindings"] = bindings
        out["etag"] = policy["etag"]
        return out

    def set_policy(self, resource: str, body: Any, concurrent_message: str = CONCURRENT) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("policy"), dict):
            raise IamError(400, "Invalid JSON payload: 'policy' is required.", "INVALID_ARGUMENT")
        policy = body["policy"]
        mask = [m.strip() for m in str(body.get("updateMask") or "bindings,etag").split(",") if m.strip()]
        unknown = [m for m in mask if m not in ("bindings", "etag", "version", "auditConfigs")]
        if unknown:
            raise IamError(
                400, f"Invalid updateMask path {unknown[0]!r}: use bindings, etag.", "INVALID_ARGUMENT"
            )
        resource = _normal(resource)
        project = projects.project_id(resource.split("/")[1])
        bindings = self._valid_bindings(policy.get("bindings", []), project)
        version = policy.get("version", 1)
        if not isinstance(version, int) or version not in (0, 1, 3):
            raise IamError(400, f"Invalid policy version {version!r}: use 1 or 3.", "INVALID_ARGUMENT")
        conditional = any("condition" in b for b in bindings)
        if conditional and version < 3:
            raise IamError(
                400,
                "Invalid policy: a policy with conditional role bindings must have version 3 "
                "(set policy.version to 3 and read it with requestedPolicyVersion 3).",
                "INVALID_ARGUMENT",
            )
        with self._lock:
            data = self.project_data(project)
            current = data["policies"].get(resource) or {"version": 1, "bindings": [], "etag": EMPTY_ETAG}
            given = policy.get("etag")
            if given and not same_etag(given, current["etag"]):
                raise IamError(
                    409, concurrent_message.format(given=given, current=current["etag"]), "ABORTED"
                )
            stored = {
                "version": 3 if conditional else 1,
                "bindings": bindings if "bindings" in mask else current.get("bindings", []),
                "etag": new_etag(),
            }
            data["policies"][resource] = stored
            self._save(project)
        return self.get_policy(resource, 3)

    def _valid_bindings(self, bindings: Any, project: str) -> list[dict[str, Any]]:
        if not isinstance(bindings, list):
            raise IamError(400, "Invalid JSON payload: 'policy.bindings' must be a list.", "INVALID_ARGUMENT")
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for b in bindings:
            role = b.get("role") if isinstance(b, dict) else None
            if not isinstance(role, str) or not role:
                raise IamError(400, "Invalid argument: each binding needs a role.", "INVALID_ARGUMENT")
            if "_withcond_" in role:
                raise IamError(
                    400,
                    f"Role {role} is a conditional binding read with policy version 1: read the policy with "
                    "requestedPolicyVersion 3 and set it with version 3.",
                    "INVALID_ARGUMENT",
                )
            if role not in iam_roles.ROLES:
                raise IamError(400, f"Role {role} is not supported for this resource.", "INVALID_ARGUMENT")
            members = b.get("members", [])
            for member in members:
                self._check_member(member)
            condition = b.get("condition")
            if condition is not None and (not isinstance(condition, dict) or not condition.get("expression")):
                raise IamError(
                    400, "Invalid argument: a binding's condition needs an expression.", "INVALID_ARGUMENT"
                )
            key = (role, json.dumps(condition, sort_keys=True) if condition else "")
            into = merged.setdefault(key, {"role": role, "members": []})
            if condition:
                into["condition"] = condition
            into["members"].extend(m for m in members if m not in into["members"])
        return [b for b in merged.values() if b["members"]]

    def _check_member(self, member: Any) -> None:
        if not isinstance(member, str):
            raise IamError(400, f"Invalid member {member!r}: a member is a string.", "INVALID_ARGUMENT")
        if member in SPECIAL_MEMBERS:
            return
        kind, _, value = member.partition(":")
        if (kind not in MEMBER_KINDS and kind not in _BASIC_MEMBER) or not value:
            raise IamError(
                400,
                f"Invalid member type for member '{member}': use user:, serviceAccount:, group:, domain:, "
                "principal:, principalSet:, allUsers or allAuthenticatedUsers.",
                "INVALID_ARGUMENT",
            )
        if kind == "serviceAccount" and projects.project_of(value) and not self.account_exists(value):
            raise IamError(400, f"Service account {value} does not exist.", "INVALID_ARGUMENT")

    # ---- checks --------------------------------------------------------------------------------------

    def bindings_for(self, resource: str) -> list[dict[str, Any]]:
        """The unconditional bindings that apply to a resource: its own and its ancestors'."""
        resource = _normal(resource)
        parts = resource.split("/")
        out: list[dict[str, Any]] = []
        with self._lock:
            for i in range(2, len(parts) + 1):
                policy = self._stored("/".join(parts[:i]))
                if policy:
                    out.extend(b for b in policy.get("bindings", []) if "condition" not in b)
        return out

    def holds(
        self, principal: str, permission: str, resource: str, extra: list[dict[str, Any]] | tuple = ()
    ) -> bool:
        """Whether `principal` holds `permission` on `resource` (through `extra` bindings as well)."""
        for binding in [*self.bindings_for(resource), *extra]:
            if permission in iam_roles.permissions_of(binding["role"]) and any(
                self._is(member, principal) for member in binding["members"]
            ):
                return True
        return False

    def _is(self, member: str, principal: str) -> bool:
        if member in SPECIAL_MEMBERS:
            return True
        kind, _, value = member.partition(":")
        if kind in ("serviceAccount", "user"):
            return value.lower() == principal.lower()
        if kind in _BASIC_MEMBER:  # BigQuery's projectOwners/Writers/Readers special groups
            role = _BASIC_MEMBER[kind]
            return any(
                b["role"] == role and f"serviceAccount:{principal}" in b["members"]
                for b in self.bindings_for(f"projects/{value}")
            )
        return False

    def test_permissions(self, principal: str, resource: str, permissions: Any) -> list[str]:
        if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
            raise IamError(
                400, "Invalid JSON payload: 'permissions' must be a list of strings.", "INVALID_ARGUMENT"
            )
        for p in permissions:
            if "*" in p or p.count(".") < 2:
                raise IamError(400, f"Permission {p} is not valid.", "INVALID_ARGUMENT")
        return [p for p in permissions if p in iam_roles.PERMISSIONS and self.holds(principal, p, resource)]


def same_etag(a: str, b: str) -> bool:
    """Etags are bytes in base64: clients may send them back in the URL-safe alphabet (gcloud does)."""

    def raw(text: str) -> bytes:
        try:
            return base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4))
        except ValueError:
            return text.encode()

    return raw(a) == raw(b)


def _normal(resource: str) -> str:
    """A resource name with its project as the project ID (Google accepts the number too)."""
    parts = resource.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "projects":
        parts[1] = projects.project_id(parts[1])
    return "/".join(parts)
