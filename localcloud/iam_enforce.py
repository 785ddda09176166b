"""IAM on every emulated Google call: the one hook the conformance judge calls once it has matched a
request to its discovery method (localcloud/conformance.py, `Conformance.handle`).

For a method `m` of a service: the caller is authenticated, the permission is the service's
`permissions[m.id]` (`""`: any authenticated caller, as `testIamPermissions`), the resource is the
request's resource name (the path after the API version, without a `:verb`; Cloud Run v1's
`namespaces/<p>/jobs/<j>` is the job `projects/<p>/locations/<region>/jobs/<j>`; a service may name it
itself with `iam_resource(request, method)`), and the caller must hold the permission on that resource
or an ancestor (localcloud/iam.py) or through the service's own bindings (`iam_bindings(resource)`,
BigQuery's dataset access). A refusal is 403 PERMISSION_DENIED in the API's own words (`DENIED`, or
the service's `iam_denied(permission, resource, principal)`).

Every `getIamPolicy`/`setIamPolicy`/`testIamPermissions` a service maps in `permissions` is served
here, for every resource type alike (a service may say a resource is missing with
`iam_missing(resource)`: Google's 404 message, or None).

As Cloud Run and Cloud Scheduler do, creating or updating a job that runs as (or mints tokens for) a
service account needs `iam.serviceAccounts.actAs` on it, and Cloud Run checks that a job's runtime
account may access each secret the job uses. Enforcement and those checks happen only when
`LOCALCLOUD_IAM=enforce`; the policy methods work in both modes.
"""

from __future__ import annotations

import contextvars
import json
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from localcloud import projects
from localcloud.iam import CONCURRENT, IamError
from localcloud.service import Unauthenticated, google_error, json_response

if TYPE_CHECKING:
    from localcloud.conformance import Method
    from localcloud.service import Service

POLICY_VERBS = ("getIamPolicy", "setIamPolicy", "testIamPermissions")
# The principal of the request this thread serves (services read it where the permission depends on
# the data: BigQuery's query reads each table it names). None outside a request.
CALLER: contextvars.ContextVar[str | None] = contextvars.ContextVar("localcloud_caller", default=None)

DENIED = {
    "run": "Permission '{permission}' denied on resource '{resource}' (or resource may not exist).",
    "secretmanager": "Permission '{permission}' denied for resource '{resource}' (or it may not exist).",
    "scheduler": (
        'The principal (user or service account) lacks IAM permission "{permission}" for the resource '
        '"{resource}" (or the resource may not exist).'
    ),
    "iam": "Permission '{permission}' denied on resource (or it may not exist).",
    "resourcemanager": "The caller does not have permission",
    "logging": "The caller does not have permission",
}
DEFAULT_DENIED = "Permission '{permission}' denied on resource '{resource}' (or it may not exist)."
ACT_AS = "Permission 'iam.serviceaccounts.actAs' denied on service account {account} (or it may not exist)."
RUNTIME_LACKS_ACCESS = (
    "{field}: Permission denied on secret: {secret} for Revision service account {account}. The service "
    "account used must be granted the 'Secret Manager Secret Accessor' role "
    "(roles/secretmanager.secretAccessor) at the secret, project or higher level."
)
_PREFIXES = ("/bigquery/v2/", "/apis/run.googleapis.com/v1/", "/v1/", "/v2/", "/v3/")


def intercept(cloud: Any, service: Service, request: Request, method: Method) -> Response | None:
    """None to let the service answer; else IAM's answer (a refusal, or a policy method's result)."""
    iam = getattr(cloud, "iam", None)
    permissions: dict[str, str] = getattr(service, "permissions", {})
    if iam is None:
        return None
    verb = method.id.rsplit(".", 1)[1]
    generic = (
        verb in POLICY_VERBS
        and method.id in permissions
        and not getattr(service, "own_policy_methods", False)
    )
    if not generic and not iam.enforcing:
        return None
    try:
        principal = cloud.authenticate(request)
    except Unauthenticated:
        if generic:
            raise
        return None  # the service answers 401 in its own words
    CALLER.set(principal)
    display, resource = resource_of(cloud, service, request, method)
    try:
        if iam.enforcing:
            permission = permissions.get(method.id)
            if permission is None:
                return google_error(
                    403,
                    f"localcloud: {service.name} maps no IAM permission for {method.id}",
                    "PERMISSION_DENIED",
                )
            # A request naming no project-scoped resource (Logging's entries:list without
            # resourceNames, or naming a folder) is the service's to refuse: Google validates the
            # request before IAM can know which policy applies (400, not 403).
            needed = [permission] if permission and resource.startswith("projects/") else []
            if method.id.endswith("jobs.run") and service.name == "run" and _has_overrides(request):
                needed.append("run.jobs.runWithOverrides")
            for perm in needed:
                if not allowed(cloud, service, principal, perm, resource):
                    return denied(service, perm, display, principal)
            refusal = _side_checks(cloud, service, request, method, principal)
            if refusal is not None:
                return refusal
        if generic:
            return _serve_policy(cloud, service, request, method, verb, resource, principal)
    except IamError as err:
        return _error(service, err)
    return None


def allowed(cloud: Any, service: Service | None, principal: str, permission: str, resource: str) -> bool:
    extra = []
    hook = getattr(service, "iam_bindings", None)
    if callable(hook):
        extra = hook(resource)
    return cloud.iam.holds(principal, permission, resource, extra)


def denied(service: Service, permission: str, resource: str, principal: str) -> Response:
    hook = getattr(service, "iam_denied", None)
    if callable(hook):
        return hook(permission, resource, principal)
    text = DENIED.get(service.name, DEFAULT_DENIED).format(permission=permission, resource=resource)
    return google_error(403, text, "PERMISSION_DENIED")


def _error(service: Service, err: IamError) -> Response:
    hook = getattr(service, "iam_error", None)
    if callable(hook):
        return hook(err)
    return google_error(err.code, err.message, err.status)


def resource_of(cloud: Any, service: Service, request: Request, method: Method) -> tuple[str, str]:
    """(the name a refusal shows, the resource name policies are looked up by)."""
    hook = getattr(service, "iam_resource", None)
    if callable(hook):
        named = hook(request, method)
        if named:
            return named, named
    path = request.path
    for prefix in _PREFIXES:
        if path.startswith(prefix):
            path = path[len(prefix) :]
            break
    display = path.split(":", 1)[0].strip("/")
    parts = display.split("/")
    if parts[0] == "namespaces" and len(parts) >= 2:  # Cloud Run v1 (Knative): the region is the host's
        host = (request.environ.get("localcloud.host") or request.host or "").split(":")[0]
        region = (
            host.removesuffix("-run.googleapis.com") if host.endswith("-run.googleapis.com") else cloud.region
        )
        rest = parts[2:]
        resource = (
            "/".join(["projects", parts[1], "locations", region, *rest]) if rest else f"projects/{parts[1]}"
        )
        return display, resource
    if parts[0] == "projects" and len(parts) >= 2:
        parts[1] = projects.project_id(parts[1])
        return display, "/".join(parts)
    named = _body_project(request)  # Logging's entries:list/write name their project in the body
    return (named, named) if named else (display, display)


def _body_project(request: Request) -> str:
    try:
        body = json.loads(request.get_data(cache=True) or b"{}")
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    names = [*(body.get("resourceNames") or []), *(f"projects/{p}" for p in body.get("projectIds") or [])]
    names += [body.get("logName") or "", *((e or {}).get("logName") or "" for e in body.get("entries") or [])]
    for name in names:
        parts = str(name).split("/")
        if len(parts) >= 2 and parts[0] == "projects":
            return f"projects/{projects.project_id(parts[1])}"
    return ""


def _has_overrides(request: Request) -> bool:
    try:
        body = json.loads(request.get_data(cache=True) or b"{}")
    except ValueError:
        return False
    return isinstance(body, dict) and bool(body.get("overrides"))


# ---- the policy methods, for every resource type ---------------------------------------------------


def _serve_policy(cloud, service, request, method, verb, resource, principal) -> Response:
    missing = getattr(service, "iam_missing", None)
    if callable(missing):
        message = missing(resource)
        if isinstance(message, IamError):
            return _error(service, message)
        if message:
            return _error(service, IamError(404, message, "NOT_FOUND"))
    try:
        body = json.loads(request.get_data(cache=True) or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return _error(service, IamError(400, "Invalid JSON payload received.", "INVALID_ARGUMENT"))
    if verb == "getIamPolicy":
        version = request.args.get("options.requestedPolicyVersion") or (body.get("options") or {}).get(
            "requestedPolicyVersion", 0
        )
        try:
            version = int(version)
        except (TypeError, ValueError):
            return _error(
                service, IamError(400, f"Invalid requested policy version {version!r}.", "INVALID_ARGUMENT")
            )
        return json_response(cloud.iam.get_policy(resource, version))
    if verb == "setIamPolicy":
        message = CONCURRENT
        if method.api == "cloudresourcemanager.v3":
            message += " The request's ETag '{given}' did not match the current policy's ETag '{current}'."
        return json_response(cloud.iam.set_policy(resource, body, message))
    granted = cloud.iam.test_permissions(principal, resource, body.get("permissions", []))
    return json_response({"permissions": granted} if granted else {})


# ---- what Cloud Run and Scheduler check at create/update -------------------------------------------


def _side_checks(cloud, service, request, method, principal) -> Response | None:
    mid = method.id
    if mid not in (
        "run.projects.locations.jobs.create",
        "run.projects.locations.jobs.patch",
        "run.namespaces.jobs.create",
        "run.namespaces.jobs.replaceJob",
        "cloudscheduler.projects.locations.jobs.create",
        "cloudscheduler.projects.locations.jobs.patch",
    ):
        return None
    try:
        body = json.loads(request.get_data(cache=True) or b"{}")
    except ValueError:
        return None  # the service words a body that is not JSON
    if not isinstance(body, dict):
        return None
    _, resource = resource_of(cloud, service, request, method)
    project = resource.split("/")[1]
    if mid.startswith("cloudscheduler."):
        target = body.get("httpTarget") or {}
        token = target.get("oauthToken") or target.get("oidcToken") or {}
        account = token.get("serviceAccountEmail") if isinstance(token, dict) else None
        if isinstance(account, str) and account and not _may_act_as(cloud, principal, account):
            text = DENIED["scheduler"].format(permission="iam.serviceAccounts.actAs", resource=account)
            return google_error(403, text, "PERMISSION_DENIED")
        return None
    account, secrets = _job_identity(body, mid.startswith("run.namespaces."))
    if not account and project in projects.BY_ID:
        account = projects.BY_ID[project].compute_account
    if not account:
        return None
    if not _may_act_as(cloud, principal, account):
        return google_error(403, ACT_AS.format(account=account), "PERMISSION_DENIED")
    problems = secret_problems(cloud, account, project, secrets)
    if problems:
        return google_error(403, "\n".join(problems), "PERMISSION_DENIED")
    return None


def _may_act_as(cloud: Any, principal: str, account: str) -> bool:
    if not cloud.iam.account_exists(account):
        return False
    sa_project = projects.project_of(account)
    return cloud.iam.holds(
        principal, "iam.serviceAccounts.actAs", f"projects/{sa_project}/serviceAccounts/{account}"
    )


def _job_identity(body: dict[str, Any], v1: bool) -> tuple[str, list[tuple[str, str, str]]]:
    """(the job's serviceAccount, [(field, secret, version)] of the secrets its containers use)."""
    found: list[tuple[str, str, str]] = []
    if v1:
        spec = (((body.get("spec") or {}).get("template") or {}).get("spec") or {}).get("template") or {}
        task = spec.get("spec") or {}
        account = task.get("serviceAccountName") or ""
        for i, c in enumerate(task.get("containers") or []):
            for j, env in enumerate(c.get("env") or []):
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    field = f"spec.template.spec.containers[{i}].env[{j}].value_from.secret_key_ref.name"
                    found.append((field, ref.get("name", ""), ref.get("key", "latest")))
        return account, found
    task = (body.get("template") or {}).get("template") or {}
    account = task.get("serviceAccount") or ""
    for i, c in enumerate(task.get("containers") or []):
        for j, env in enumerate(c.get("env") or []):
            ref = (env.get("valueSource") or {}).get("secretKeyRef")
            if ref:
                field = f"spec.template.spec.containers[{i}].env[{j}].value_from.secret_key_ref.name"
                found.append((field, ref.get("secret", ""), ref.get("version", "latest")))
    for k, volume in enumerate(task.get("volumes") or []):
        secret = (volume.get("secret") or {}).get("secret")
        if secret:
            found.append((f"spec.template.spec.volumes[{k}].secret.secret_name", secret, "latest"))
    return account, found


def secret_problems(cloud: Any, account: str, project: str, secrets: list[tuple[str, str, str]]) -> list[str]:
    """Cloud Run's message for each secret the runtime account may not access (none: [])."""
    out = []
    for field, secret, version in secrets:
        name = secret if secret.startswith("projects/") else f"projects/{project}/secrets/{secret}"
        secret_resource = "/".join(name.split("/")[:4])
        secretmanager = _service(cloud, "secretmanager")
        if not allowed(cloud, secretmanager, account, "secretmanager.versions.access", secret_resource):
            out.append(
                RUNTIME_LACKS_ACCESS.format(field=field, secret=f"{name}/versions/{version}", account=account)
            )
    return out


def runtime_account(cloud: Any, project: str, task: dict[str, Any]) -> str:
    """What an execution runs as: its template's serviceAccount, else Compute Engine's default account."""
    hosted = projects.BY_ID.get(project)
    return task.get("serviceAccount") or (hosted.compute_account if hosted else "")


def _service(cloud: Any, name: str) -> Any:
    try:
        return cloud.service(name)
    except KeyError:
        return None
