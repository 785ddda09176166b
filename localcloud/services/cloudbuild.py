"""Cloud Build v1 (cloudbuild.googleapis.com): builds create (an Operation whose metadata carries the
Build), get, list and cancel, under projects/<p>/locations/<l>/builds and the location-less
projects/<p>/builds (location "global"), and operations.get. A build runs in a background thread
(localcloud/services/cloudbuild_runner.py) with the emulator's equivalent of each builder (README).

State: state/cloudbuild/builds.json (every build, rewritten atomically on each change); a build's
workspace lives under state/cloudbuild/work/<id>/ while it runs. A build that was running when
localcloud stopped ends as INTERNAL_ERROR at the next start.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

from werkzeug.wrappers import Request, Response

from localcloud.clock import rfc3339
from localcloud.projects import access_error
from localcloud.service import Service, google_error, json_response
from localcloud.services import cloudbuild_config as cfg
from localcloud.services.cloudbuild_runner import BuildRun
from localcloud.services.run_errors import ApiError, json_body, match_route, url_not_found
from localcloud.services.storage import project_number
from localcloud.services.storage_media import StorageError

TYPE = "type.googleapis.com/google.devtools.cloudbuild.v1."
DONE = {"SUCCESS", "FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED"}
OP_ERRORS = {
    "FAILURE": (2, "Build failed; check build logs for details"),
    "INTERNAL_ERROR": (13, "Build failed with an internal error; check build logs for details"),
    "TIMEOUT": (4, "Build timed out"),
    "CANCELLED": (1, "Build was cancelled"),
    "EXPIRED": (4, "Build expired in the queue"),
}
INPUT_FIELDS = {
    "steps", "timeout", "images", "queueTtl", "artifacts", "logsBucket", "options", "substitutions",
    "tags", "secrets", "availableSecrets", "serviceAccount", "source", "gitConfig", "dependencies",
}  # fmt: skip
MAX_PAGE = 1000
_P = r"^/v1/projects/(?P<project>[^/]+)"
_L = _P + r"/locations/(?P<location>[^/]+)"


class CloudBuildService(Service):
    name = "cloudbuild"
    hosts = ("cloudbuild.googleapis.com",)
    permissions: ClassVar[dict[str, str]] = {
        **{
            f"cloudbuild.projects{where}.builds.{verb}": f"cloudbuild.builds.{permission}"
            for where in ("", ".locations")
            for verb, permission in (
                ("create", "create"),
                ("get", "get"),
                ("list", "list"),
                ("cancel", "update"),
            )
        },
        "cloudbuild.projects.locations.operations.get": "cloudbuild.builds.get",
    }

    def __init__(self, cloud):
        super().__init__(cloud)
        self._file = self.state_dir / "builds.json"
        self._lock = threading.RLock()
        self._builds: dict[str, dict[str, Any]] = {}  # name -> Build
        self._runs: dict[str, BuildRun] = {}
        if self._file.exists():
            self._builds = json.loads(self._file.read_text())
        self._routes = []
        for base, loc in ((_L, True), (_P, False)):
            self._routes += [
                ("POST", re.compile(base + r"/builds$"), self._create),
                ("GET", re.compile(base + r"/builds$"), self._list),
                ("GET", re.compile(base + r"/builds/(?P<build>[^/:]+)$"), self._get),
                ("POST", re.compile(base + r"/builds/(?P<build>[^/:]+):cancel$"), self._cancel),
            ]
            if loc:
                self._routes.append(
                    ("GET", re.compile(base + r"/operations/(?P<op>[^/:]+)$"), self._get_operation)
                )

    def start(self) -> None:
        with self._lock:
            for build in self._builds.values():
                if build["status"] not in DONE:
                    build.update(
                        status="INTERNAL_ERROR",
                        statusDetail="localcloud stopped while the build was running",
                        finishTime=rfc3339(self.cloud.now()),
                    )
            self._save()

    def stop(self) -> None:
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.kill()

    def reset(self) -> None:
        self.stop()
        with self._lock:
            self._builds = {}
            self._save()

    def _save(self) -> None:
        tmp = self._file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._builds))
        tmp.replace(self._file)

    # ---- what the runner calls -----------------------------------------------------------------------

    def build_copy(self, name: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._builds[name])

    def mutate(self, name: str, change: Callable[[dict[str, Any]], None]) -> None:
        with self._lock:
            change(self._builds[name])
            self._save()

    def update(self, name: str, **fields: Any) -> None:
        self.mutate(name, lambda build: build.update(fields))

    def set_step(self, name: str, index: int, **fields: Any) -> None:
        self.mutate(name, lambda build: build["steps"][index].update(fields))

    def finished(self, name: str) -> None:
        with self._lock:
            self._runs.pop(name, None)

    def wait(self, name: str, timeout: float) -> dict[str, Any]:
        """Tests and benchmarks: wait for a build's thread, then the Build."""
        with self._lock:
            run = self._runs.get(name)
        if run is not None:
            run.join(timeout)
        return self.build_copy(name)

    # ---- HTTP ----------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        principal = self.cloud.authenticate(request)
        found = match_route(self._routes, request)
        if found is None:
            return url_not_found(request)
        fn, params = found
        params.setdefault("location", "global")
        try:
            problem = access_error(params["project"], principal)
            if problem:
                raise ApiError(403, problem, "PERMISSION_DENIED")
            return json_response(fn(request, principal=principal, **params))
        except ApiError as e:
            return google_error(e.code, e.message, e.status)

    def _name(self, project: str, location: str, build: str) -> str:
        return f"projects/{project}/locations/{location}/builds/{build}"

    def _find(self, project: str, location: str, build_id: str) -> dict[str, Any]:
        found = self._builds.get(self._name(project, location, build_id))
        if found is None:
            raise ApiError(404, f'Build "{build_id}" not found.', "NOT_FOUND")
        return found

    def _create(self, request, principal, project, location):
        body = cfg.enum_names("cloudbuild.v1", "Build", json_body(request))
        unknown = sorted(set(body) - INPUT_FIELDS - {"id", "projectId", "status", "name", "createTime"})
        if unknown:
            raise cfg.invalid(f"invalid build: unsupported field {unknown[0]}")
        build_id = str(uuid.uuid4())
        number = project_number(project)
        account = (
            body.get("serviceAccount")
            or f"projects/{project}/serviceAccounts/{number}-compute@developer.gserviceaccount.com"
        )
        build: dict[str, Any] = {k: copy.deepcopy(v) for k, v in body.items() if k in INPUT_FIELDS}
        build.update(id=build_id, projectId=project, serviceAccount=account)
        cfg.check(build)
        values = cfg.resolve(build, cfg.builtins(build, number, location, account))
        source = (build.get("source") or {}).get("storageSource")
        region = "" if location == "global" else f";region={location}"
        build.update(
            name=self._name(project, location, build_id),
            status="QUEUED",
            createTime=rfc3339(self.cloud.now()),
            timeout=build.get("timeout") or cfg.DEFAULT_TIMEOUT,
            queueTtl=build.get("queueTtl") or "3600s",
            logUrl=f"https://console.cloud.google.com/cloud-build/builds{region}/{build_id}?project={number}",
        )
        if source:
            with self._lock:
                try:
                    meta, _ = self.cloud.service("storage").read_object(
                        source["bucket"], source["object"], source.get("generation")
                    )  # type: ignore[attr-defined]
                    resolved = {**source, "generation": meta["generation"]}
                    build["sourceProvenance"] = {"resolvedStorageSource": resolved}
                except StorageError:  # a missing source fails the build at FETCHSOURCE
                    build.pop("sourceProvenance", None)
        for step in build["steps"]:
            step.pop("status", None)
        with self._lock:
            self._builds[build["name"]] = build
            self._save()
            run = BuildRun(self, build["name"], values)
            self._runs[build["name"]] = run
        op = self._operation(build)
        run.start()
        return op

    def _operation(self, build: dict[str, Any]) -> dict[str, Any]:
        op_id = base64.urlsafe_b64encode(f"build/{build['id']}".encode()).decode().rstrip("=")
        project, location = build["projectId"], build["name"].split("/")[3]
        op: dict[str, Any] = {
            "name": f"projects/{project}/locations/{location}/operations/{op_id}",
            "metadata": {"@type": TYPE + "BuildOperationMetadata", "build": copy.deepcopy(build)},
        }
        if build["status"] in DONE:
            op["done"] = True
            if build["status"] == "SUCCESS":
                op["response"] = {"@type": TYPE + "Build", **copy.deepcopy(build)}
            else:
                code, message = OP_ERRORS[build["status"]]
                op["error"] = {"code": code, "message": message}
        return op

    def _get_operation(self, request, principal, project, location, op):
        try:
            decoded = base64.urlsafe_b64decode(op + "=" * (-len(op) % 4)).decode()
        except ValueError:
            decoded = ""
        build_id = decoded.removeprefix("build/") if decoded.startswith("build/") else ""
        with self._lock:
            build = self._builds.get(self._name(project, location, build_id))
            if build is None:
                raise ApiError(
                    404,
                    f'Operation "projects/{project}/locations/{location}/operations/{op}" not found.',
                    "NOT_FOUND",
                )
            return self._operation(build)

    def _get(self, request, principal, project, location, build):
        with self._lock:
            return copy.deepcopy(self._find(project, location, build))

    def _list(self, request, principal, project, location):
        prefix = f"projects/{project}/locations/{location}/builds/"
        with self._lock:
            builds = [copy.deepcopy(b) for n, b in self._builds.items() if n.startswith(prefix)]
        builds.sort(key=lambda b: b["createTime"], reverse=True)
        builds = _filter(builds, request.args.get("filter", ""))
        raw = request.args.get("pageSize", "") or "0"
        if not raw.isdigit():
            raise cfg.invalid(f"Invalid pageSize {raw!r}")
        size = min(int(raw) or MAX_PAGE, MAX_PAGE)
        token = request.args.get("pageToken", "")
        start = int(token) if token.isdigit() else 0
        out: dict[str, Any] = {}
        if builds[start : start + size]:
            out["builds"] = builds[start : start + size]
        if start + size < len(builds):
            out["nextPageToken"] = str(start + size)
        return out

    def _cancel(self, request, principal, project, location, build):
        json_body(request)
        with self._lock:
            found = self._find(project, location, build)
            run = self._runs.get(found["name"])
            if found["status"] in DONE:
                return copy.deepcopy(found)
        if run is not None:
            run.cancel()
            run.join(30)
        with self._lock:
            found = self._find(project, location, build)
            if found["status"] not in DONE:
                found.update(status="CANCELLED", finishTime=rfc3339(self.cloud.now()))
                self._save()
            return copy.deepcopy(found)


def _filter(builds: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """The `field="value"` terms (joined by AND) of builds.list's filter: id, status, tags, images,
    trigger_id, substitutions.<KEY>."""
    text = text.strip()
    if not text:
        return builds
    for term in re.split(r"\s+AND\s+", text):
        m = re.fullmatch(r'\s*([\w.]+)\s*=\s*"([^"]*)"\s*', term)
        if not m:
            raise cfg.invalid(
                f'invalid filter {term!r}: localcloud supports field="value" terms joined by AND'
            )
        field, value = m.groups()
        if field in ("tags", "images"):
            builds = [b for b in builds if value in b.get(field, [])]
        elif field.startswith("substitutions."):
            key = field.split(".", 1)[1]
            builds = [b for b in builds if b.get("substitutions", {}).get(key) == value]
        elif field in ("id", "status", "trigger_id", "build_id"):
            key = {"trigger_id": "buildTriggerId", "build_id": "id"}.get(field, field)
            builds = [b for b in builds if b.get(key, "") == value]
        else:
            raise cfg.invalid(
                f"invalid filter field {field!r}: localcloud supports id, status, tags, images, "
                "substitutions.KEY"
            )
    return builds
