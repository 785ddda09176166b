"""BigQuery's own access control in localcloud: dataset `access` entries and the checks a query makes.

A dataset's access entries (`datasets.get` shows them, `datasets.patch`/`update` change them, with
the dataset's `etag`; a stale `If-Match` is 412 "Precondition check failed." as on BigQuery) are kept
in localcloud/iam.py's state (`datasets`). A new dataset gets BigQuery's defaults: WRITER for
`projectWriters`, OWNER for `projectOwners` and its creator, READER for `projectReaders`. For the
permission checks an entry is a binding on the dataset: READER = roles/bigquery.dataViewer, WRITER =
roles/bigquery.dataEditor, OWNER = roles/bigquery.dataOwner (or the `role` itself when it is a
`roles/...`), its member `userByEmail` (serviceAccount: for a service account), `groupByEmail`,
`domain`, `iamMember`, or a `specialGroup` (`projectOwners`/`projectWriters`/`projectReaders`: the
holders of roles/owner, editor, viewer on the project; `allAuthenticatedUsers`). Project-level
bigquery.* roles apply to every dataset, as on Google.

A query job needs bigquery.jobs.create on the project (its method's permission) and, with
enforcement on, bigquery.tables.getData on each table it reads and bigquery.tables.updateData on the
table a DML statement changes: "Access Denied: Table p:d.t: User does not have permission to query
table p:d.t, or perhaps it does not exist."
"""

from __future__ import annotations

import base64
import copy
import secrets
from typing import Any

from werkzeug.wrappers import Request, Response

from localcloud import bq_sql, projects
from localcloud.bq_sql import QueryError
from localcloud.iam import IamError
from localcloud.iam_enforce import CALLER, allowed
from localcloud.service import google_error

ROLE_OF = {
    "READER": "roles/bigquery.dataViewer",
    "WRITER": "roles/bigquery.dataEditor",
    "OWNER": "roles/bigquery.dataOwner",
}
SPECIAL = {
    "projectOwners": "projectOwner",
    "projectWriters": "projectEditor",
    "projectReaders": "projectViewer",
}
MEMBER_FIELDS = (
    "userByEmail",
    "groupByEmail",
    "domain",
    "specialGroup",
    "iamMember",
    "view",
    "routine",
    "dataset",
)
KEPT = ("access", "description", "friendlyName", "labels", "defaultTableExpirationMs")


def _error(code: int, reason: str, message: str) -> Response:
    return google_error(code, message, errors=[{"message": message, "domain": "global", "reason": reason}])


def denied(service: Any, permission: str, resource: str, principal: str) -> Response:
    """BigQuery's words for a refusal (localcloud/iam_enforce.py calls it)."""
    parts = resource.split("/")
    project = parts[1] if len(parts) > 1 else ""
    if len(parts) >= 6 and parts[2] == "datasets" and parts[4] == "tables":
        table = f"{project}:{parts[3]}.{parts[5]}"
        text = f"Access Denied: Table {table}: Permission {permission} denied on table {table} "
        text += "(or it may not exist)."
    elif len(parts) >= 4 and parts[2] == "datasets":
        ds = f"{project}:{parts[3]}"
        text = f"Access Denied: Dataset {ds}: Permission {permission} denied on dataset {ds} "
        text += "(or it may not exist)."
    else:
        text = f"Access Denied: Project {project}: User does not have {permission} permission in project "
        text += f"{project}."
    return _error(403, "accessDenied", text)


def iam_error(service: Any, err: IamError) -> Response:
    return _error(
        err.code,
        {400: "invalid", 404: "notFound", 409: "duplicate"}.get(err.code, "accessDenied"),
        err.message,
    )


# ---- access entries --------------------------------------------------------------------------------


def _default_access(creator: str | None) -> list[dict[str, Any]]:
    access = [
        {"role": "WRITER", "specialGroup": "projectWriters"},
        {"role": "OWNER", "specialGroup": "projectOwners"},
        {"role": "READER", "specialGroup": "projectReaders"},
    ]
    if creator:
        access.insert(2, {"role": "OWNER", "userByEmail": creator})
    return access


def _etag() -> str:
    return base64.b64encode(secrets.token_bytes(12)).decode()


def _extras(service: Any, project: str, ds: str) -> dict[str, Any]:
    iam = service.cloud.iam
    with iam._lock:
        data = iam.project_data(project)
        found = data["datasets"].get(ds)
        if found is None:
            found = data["datasets"][ds] = {"access": _default_access(None), "etag": _etag()}
            iam.policies_changed(project)
        return copy.deepcopy(found)


def created(service: Any, project: str, ds: str) -> None:
    """A new dataset: BigQuery's default entries, its creator an OWNER."""
    iam = service.cloud.iam
    with iam._lock:
        data = iam.project_data(project)
        data["datasets"][ds] = {"access": _default_access(CALLER.get()), "etag": _etag()}
        iam.policies_changed(project)


def forget(service: Any, project: str, ds: str) -> None:
    iam = service.cloud.iam
    with iam._lock:
        if project in iam._data and iam._data[project]["datasets"].pop(ds, None) is not None:
            iam.policies_changed(project)


def decorate(service: Any, project: str, ds: str, resource: dict[str, Any]) -> dict[str, Any]:
    """datasets.get's answer with the dataset's access entries, etag and the fields patch keeps."""
    if project not in projects.BY_ID:
        return resource
    extras = _extras(service, project, ds)
    out = {**resource, "etag": extras["etag"]}
    for key in KEPT:
        if key in extras:
            out[key] = extras[key]
    return out


def update(
    service: Any, project: str, ds: str, body: dict[str, Any], request: Request, replace: bool
) -> dict:
    """datasets.patch (replace=False) and datasets.update: access entries and descriptive fields."""
    current = service._dataset_resource(project, ds)  # 404 when the dataset does not exist
    expected = request.headers.get("If-Match")
    if expected and expected != current["etag"]:
        raise QueryError("conditionNotMet", "Precondition check failed.")
    ref = body.get("datasetReference") or {}
    if ref and (ref.get("datasetId", ds) != ds or ref.get("projectId", project) != project):
        raise QueryError("invalid", f"Invalid datasetReference {ref!r}: it must name {project}:{ds}")
    access = body.get("access")
    if access is not None:
        _check_access(access)
    iam = service.cloud.iam
    with iam._lock:
        data = iam.project_data(project)
        extras = data["datasets"].setdefault(ds, {"access": _default_access(None), "etag": _etag()})
        for key in KEPT:
            if key in body:
                extras[key] = copy.deepcopy(body[key])
            elif replace and key != "access":
                extras.pop(key, None)
        extras["etag"] = _etag()
        iam.policies_changed(project)
    return service._dataset_resource(project, ds)


def _check_access(access: Any) -> None:
    if not isinstance(access, list):
        raise QueryError("invalid", "Invalid value for access: expected a list of access entries")
    for i, entry in enumerate(access):
        if not isinstance(entry, dict):
            raise QueryError("invalid", f"Invalid access entry {i}: expected an object")
        members = [k for k in MEMBER_FIELDS if k in entry]
        if len(members) != 1:
            raise QueryError(
                "invalid",
                f"Invalid access entry {entry!r}: exactly one of {', '.join(MEMBER_FIELDS)} is required",
            )
        role = entry.get("role")
        if (
            members[0] not in ("view", "routine", "dataset")
            and role not in ROLE_OF
            and not str(role).startswith("roles/")
        ):
            raise QueryError(
                "invalid", f"Invalid role {role!r} in access entry {i}: use READER, WRITER or OWNER"
            )


def dataset_bindings(service: Any, resource: str) -> list[dict[str, Any]]:
    """The dataset's access entries as bindings, for any resource within a dataset."""
    parts = resource.split("/")
    if len(parts) < 4 or parts[0] != "projects" or parts[2] != "datasets" or parts[1] not in projects.BY_ID:
        return []
    project = parts[1]
    iam = service.cloud.iam
    with iam._lock:
        extras = iam._data[project]["datasets"].get(parts[3])
        access = extras["access"] if extras else _default_access(None)
    out = []
    for entry in access:
        role = ROLE_OF.get(entry.get("role", ""), entry.get("role", ""))
        member = _member(entry, project)
        if member and role:
            out.append({"role": role, "members": [member]})
    return out


def _member(entry: dict[str, Any], project: str) -> str:
    if "userByEmail" in entry:
        email = entry["userByEmail"]
        return f"serviceAccount:{email}" if email.endswith("gserviceaccount.com") else f"user:{email}"
    if "groupByEmail" in entry:
        return f"group:{entry['groupByEmail']}"
    if "domain" in entry:
        return f"domain:{entry['domain']}"
    if "iamMember" in entry:
        return entry["iamMember"]
    group = entry.get("specialGroup", "")
    if group in SPECIAL:
        return f"{SPECIAL[group]}:{project}"
    return "allAuthenticatedUsers" if group == "allAuthenticatedUsers" else ""


# ---- queries ---------------------------------------------------------------------------------------


def check_query(service: Any, sql: str, project: str) -> None:
    """With enforcement on, inside a request: the caller may read each table the query reads and
    change the one it changes; raises QueryError accessDenied otherwise."""
    iam = getattr(service.cloud, "iam", None)
    principal = CALLER.get()
    if iam is None or not iam.enforcing or principal is None:
        return
    project = project or service.cloud.project
    with service._lock:
        statements = bq_sql.translate(sql, project, service.cloud.now(), service._lookup)
    for stmt in statements:
        for ref in dict.fromkeys(stmt.tables):
            permission = "bigquery.tables.updateData" if ref == stmt.target else "bigquery.tables.getData"
            p, d, t = ref
            if not allowed(
                service.cloud, service, principal, permission, f"projects/{p}/datasets/{d}/tables/{t}"
            ):
                table = f"{p}:{d}.{t}"
                raise QueryError(
                    "accessDenied",
                    f"Access Denied: Table {table}: User does not have permission to query table {table}, "
                    "or perhaps it does not exist.",
                )
