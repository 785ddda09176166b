"""Cloud Run's v1 (Knative-style) API for jobs, as the gcloud CLI speaks it, over the v2 state.

Served on the regional host `<region>-run.googleapis.com` (and on `run.googleapis.com`, where a list
covers every region and a single resource is looked up in localcloud's region) under
`/apis/run.googleapis.com/v1/namespaces/<project>/`:
  jobs: list (labelSelector, limit/continue), get, create (dryRun), replace (PUT; metadata.resourceVersion
    is the v2 etag and must match when given), delete (dryRun), `:run` (overrides: containerOverrides,
    taskCount, timeoutSeconds);
  executions: list (labelSelector such as `run.googleapis.com/job = NAME`, limit/continue; newest
    first), get, delete, `:cancel`;
  tasks: list (labelSelector `run.googleapis.com/execution = NAME`, `run.googleapis.com/runningState in
    (...)`), get.
A job created through v1 is the v2 job and the other way round: the handlers are the v2 ones
(run_jobs, run_executions) and run_v1_shapes converts the objects.
Not covered: watch, fieldSelector, resourceVersion on lists, includeUninitialized, propagationPolicy
(deleting a job always deletes its executions), project numbers as namespaces.
"""

from __future__ import annotations

import re
from typing import Any

from localcloud.services import run_shapes as shapes
from localcloud.services import run_v1_shapes as v1
from localcloud.services.run_base import RunState, execution_id, offset_page
from localcloud.services.run_errors import ApiError
from localcloud.services.run_v1_select import parse_selector, selector_matches

V1 = r"/apis/run\.googleapis\.com/v1/namespaces/(?P<project>[^/]+)"
V1_JOB = V1 + r"/jobs/(?P<job>[^/:]+)"
V1_RUN = V1_JOB + r":run"
V1_EXEC = V1 + r"/executions/(?P<execution>[^/:]+)"
_TASK_ID = re.compile(r"^(?P<execution>.+)-task(?P<index>\d+)$")
MAX_LIMIT = 1000


def _page(items: list[Any], request) -> tuple[list[Any], str]:
    """Kubernetes-style paging: `limit` (none: everything, at most 1000) and the `continue` token."""
    limit = shapes.parse_int(request.args.get("limit") or "0", "limit", maximum=2**31 - 1) or MAX_LIMIT
    return offset_page(
        items,
        min(limit, MAX_LIMIT),
        request.args.get("continue") or "",
        "Invalid continue token {token!r}: use metadata.continue of the last page",
    )


def _list(kind: str, items: list[Any], request) -> dict[str, Any]:
    page, token = _page(items, request)
    return {
        "apiVersion": v1.API_VERSION,
        "kind": kind,
        "metadata": {**({"continue": token} if token else {})},
        "items": page,
    }


def _dry_run(request) -> bool:
    return bool(request.args.get("dryRun"))


class RunV1(RunState):
    """The v1 (Knative) routes, answered by the v2 handlers."""

    def _v1_routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", V1 + r"/jobs", self._v1_list_jobs),
            ("POST", V1 + r"/jobs", self._v1_create_job),
            ("GET", V1_JOB, self._v1_get_job),
            ("PUT", V1_JOB, self._v1_replace_job),
            ("DELETE", V1_JOB, self._v1_delete_job),
            ("POST", V1_RUN, self._run_job_v1),
            ("GET", V1 + r"/executions", self._v1_list_executions),
            ("GET", V1_EXEC, self._v1_get_execution),
            ("DELETE", V1_EXEC, self._v1_delete_execution),
            ("POST", V1_EXEC + r":cancel", self._v1_cancel_execution),
            ("GET", V1 + r"/tasks", self._v1_list_tasks),
            ("GET", V1 + r"/tasks/(?P<task>[^/:]+)", self._v1_get_task),
        ]

    # --- where --------------------------------------------------------------------------------------

    def _v1_region(self, request) -> str | None:
        """The region of a regional host; None on the global `run.googleapis.com`."""
        host = (request.host or "").split(":")[0]
        return host.removesuffix("-run.googleapis.com") if host.endswith("-run.googleapis.com") else None

    def _v1_location(self, request, project: str) -> str:
        location = self._v1_region(request) or self.cloud.region
        self._check_scope(project, location)
        return location

    def _v1_prefix(self, request, project: str) -> str:
        region = self._v1_region(request)
        if region:
            self._check_scope(project, region)
            return f"projects/{project}/locations/{region}/"
        return f"projects/{project}/locations/"

    def _job_uid(self, execution_name: str) -> str | None:
        return self._state["jobs"].get(execution_name.split("/executions/")[0], {}).get("uid")

    # --- jobs ---------------------------------------------------------------------------------------

    def _v1_list_jobs(self, request, body, principal, project):
        prefix = self._v1_prefix(request, project)
        selector = parse_selector(request.args.get("labelSelector"))
        with self._lock:
            items = [
                v1.job_v1(job) for name, job in sorted(self._state["jobs"].items()) if name.startswith(prefix)
            ]
            items = [item for item in items if selector_matches(selector, item["metadata"]["labels"])]
            return _list("JobsList", items, request)

    def _v1_get_job(self, request, body, principal, project, job):
        location = self._v1_location(request, project)
        with self._lock:
            return v1.job_v1(self._require_job(self._job_name(project, location, job)))

    def _v1_create_job(self, request, body, principal, project):
        location = self._v1_location(request, project)
        job_id, v2 = v1.job_v2(body, project)
        if not job_id:
            raise shapes.bad("job.metadata.name", "a job name is required")
        job_id = shapes.validate_job_id(job_id)
        spec = shapes.normalize_job(v2)
        name = self._job_name(project, location, job_id)
        with self._lock:
            keep = not _dry_run(request)
            job = self._insert_job(name, job_id, spec, principal, keep)
            if keep:
                self._save()
            return v1.job_v1(job)

    def _v1_replace_job(self, request, body, principal, project, job):
        location = self._v1_location(request, project)
        job_id, v2 = v1.job_v2(body, project)
        if job_id and job_id != job:
            raise shapes.bad("job.metadata.name", f"{job_id!r} does not match the URL's job {job!r}")
        name = self._job_name(project, location, job)
        if _dry_run(request):
            shapes.normalize_job(v2)
            with self._lock:
                return v1.job_v1(self._require_job(name))
        self._patch_job(request, v2, principal, project, location, job)
        with self._lock:
            return v1.job_v1(self._require_job(name))

    def _v1_delete_job(self, request, body, principal, project, job):
        location = self._v1_location(request, project)
        with self._lock:
            current = self._require_job(self._job_name(project, location, job))
            if _dry_run(request):
                return v1.status_v1("jobs", job, current["uid"])
        self._delete_job(request, {}, principal, project, location, job)
        return v1.status_v1("jobs", job, current["uid"])

    def _run_job_v1(self, request, body, principal, project, job):
        location = self._v1_location(request, project)
        unknown = set(body) - {"overrides"}
        if unknown:
            raise ApiError(
                400, f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}": Cannot find field.'
            )
        overrides = body.get("overrides") or {}
        v2 = {}
        if overrides:
            v2_over: dict[str, Any] = {}
            containers = overrides.get("containerOverrides") or []
            if containers:
                v2_over["containerOverrides"] = [
                    {k: v for k, v in c.items() if k in ("name", "args", "clearArgs")}
                    | ({"env": v1._container_v2({"env": c["env"]})["env"]} if c.get("env") else {})
                    for c in containers
                ]
            if overrides.get("taskCount"):
                v2_over["taskCount"] = overrides["taskCount"]
            if overrides.get("timeoutSeconds"):
                v2_over["timeout"] = (
                    f"{shapes.parse_int(overrides['timeoutSeconds'], 'overrides.timeoutSeconds')}s"
                )
            v2["overrides"] = v2_over
        op = self._run_job(request, v2, principal, project, location, job)
        execution = {k: v for k, v in op["metadata"].items() if k != "@type"}
        with self._lock:
            return v1.execution_v1(execution, self._job_uid(execution["name"]))

    # --- executions ---------------------------------------------------------------------------------

    def _v1_execution_name(self, request, project: str, exec_id: str) -> str:
        prefix = self._v1_prefix(request, project)
        suffix = f"/executions/{exec_id}"
        for name in self._state["executions"]:
            if name.startswith(prefix) and name.endswith(suffix):
                return name
        region = self._v1_region(request) or self.cloud.region
        raise ApiError(
            404,
            f"Resource '{exec_id}' of kind 'EXECUTION' in region '{region}' in project '{project}' "
            "does not exist.",
        )

    def _v1_list_executions(self, request, body, principal, project):
        prefix = self._v1_prefix(request, project)
        selector = parse_selector(request.args.get("labelSelector"))
        with self._lock:
            found = [e for name, e in self._state["executions"].items() if name.startswith(prefix)]
            found.sort(key=lambda e: (e["createTime"], e["name"]), reverse=True)
            items = [v1.execution_v1(e, self._job_uid(e["name"])) for e in found]
            items = [item for item in items if selector_matches(selector, item["metadata"]["labels"])]
            return _list("ExecutionsList", items, request)

    def _v1_get_execution(self, request, body, principal, project, execution):
        with self._lock:
            name = self._v1_execution_name(request, project, execution)
            return v1.execution_v1(self._state["executions"][name], self._job_uid(name))

    def _v1_cancel_execution(self, request, body, principal, project, execution):
        with self._lock:
            name = self._v1_execution_name(request, project, execution)
        _, _, _, location, _, job, *_ = name.split("/")
        self._cancel_execution(request, {}, principal, project, location, job, execution)
        with self._lock:
            return v1.execution_v1(self._require_execution(name), self._job_uid(name))

    def _v1_delete_execution(self, request, body, principal, project, execution):
        with self._lock:
            name = self._v1_execution_name(request, project, execution)
            uid = self._state["executions"][name]["uid"]
        _, _, _, location, _, job, *_ = name.split("/")
        if not _dry_run(request):
            self._delete_execution(request, {}, principal, project, location, job, execution)
        return v1.status_v1("executions", execution, uid)

    # --- tasks --------------------------------------------------------------------------------------

    def _v1_tasks_of(self, name: str) -> list[dict[str, Any]]:
        execution = self._state["executions"][name]
        uid = self._job_uid(name)
        return [
            v1.task_v1(self._task_json(execution, task), task["state"], uid)
            for task in self._state["tasks"].get(name, [])
        ]

    def _v1_list_tasks(self, request, body, principal, project):
        prefix = self._v1_prefix(request, project)
        selector = parse_selector(request.args.get("labelSelector"))
        wanted = {
            next(iter(values)) for key, op, values in selector if key == v1.EXECUTION_LABEL and op == "="
        }
        with self._lock:
            names = sorted(
                name
                for name in self._state["executions"]
                if name.startswith(prefix) and (not wanted or execution_id(name) in wanted)
            )
            items = [task for name in names for task in self._v1_tasks_of(name)]
            items = [item for item in items if selector_matches(selector, item["metadata"]["labels"])]
            return _list("TasksList", items, request)

    def _v1_get_task(self, request, body, principal, project, task):
        match = _TASK_ID.match(task)
        region = self._v1_region(request) or self.cloud.region
        missing = ApiError(
            404,
            f"Resource '{task}' of kind 'TASK' in region '{region}' in project '{project}' does not exist.",
        )
        if not match:
            raise missing
        with self._lock:
            try:
                name = self._v1_execution_name(request, project, match["execution"])
            except ApiError:
                raise missing from None
            for item in self._v1_tasks_of(name):
                if item["metadata"]["name"] == task:
                    return item
        raise missing
