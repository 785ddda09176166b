"""Cloud Run Admin API v2 (jobs, executions, tasks, operations, services) and the legacy v1 jobs:run URL.

Proto3 JSON as the real API speaks it (GCP_REST.md section 1). Jobs, executions, tasks and
operations persist in `<state_dir>/state.json`. Job operations finish at once; a run operation
stays not-done until its execution ends. Executions run as local processes (run_runner.py): the
first container's `command + args` (args alone replace the Dockerfile's CMD; neither means that
CMD), `python` being the checkout's interpreter, in the checkout (the Dockerfile's WORKDIR maps
to its root), with the image's PYTHONUNBUFFERED/PYTHONDONTWRITEBYTECODE, the host's PATH/HOME/
LANG, localcloud's client env (proxy, CA, key file), the container's env and secrets resolved
from the emulated Secret Manager, and Cloud Run's CLOUD_RUN_* variables.

Executions started with Scheduler's `X-CloudScheduler: true` header (v1 or v2 URL) carry the
annotations `localcloud/triggered-by: cloud-scheduler` and `localcloud/scheduler-job: <job name>`
(ours: no public Cloud Run label for this could be verified), so operators can tell them apart.

Covered: jobs create (jobId, validateOnly) / get / list (pageSize, pageToken) / patch (allowMissing,
validateOnly, job.etag) / delete (etag, validateOnly) / run (overrides: containerOverrides name,
args, env, clearArgs; taskCount; timeout; etag; validateOnly); executions get / list (newest first,
job `-`) / cancel / delete; tasks get / list; operations get / list / delete / wait; services get /
list (a registry seeded with cloudact-api-service-local; admin POST /_localcloud/run/services adds
one); v1 `namespaces/P/jobs/J:run` on the regional host (overrides with timeoutSeconds).
Not covered: IAM methods (getIamPolicy, ...), showDeleted, revisions, services create/update,
the v1 API beyond jobs:run, project numbers in names (only the project ID `cloudact-local`;
others get 403), more than the first container of a task (sidecars are kept but not run),
volumes (kept, not mounted), and `Retry`/`ContainerReady` conditions.
An execution killed because localcloud stopped is marked failed at the next start (the processes
die with localcloud; their pids are kept in the state so a localcloud that crashed kills them then).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import secrets
import signal
import string
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from werkzeug.wrappers import Request, Response

from localcloud.service import Service, Unauthenticated, google_error, json_response
from localcloud.services import run_shapes as shapes
from localcloud.services.run_errors import UNAUTHENTICATED, ApiError, json_body, match_route, url_not_found
from localcloud.services.run_runner import HOST_ENV, ExecutionRun

_P = r"/v2/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
_JOB = _P + r"/jobs/(?P<job>[^/:]+)"
_EXEC = _JOB + r"/executions/(?P<execution>[^/:]+)"
_OP = _P + r"/operations/(?P<op>[^/:]+)"
_V1_RUN = r"/apis/run\.googleapis\.com/v1/namespaces/(?P<project>[^/]+)/jobs/(?P<job>[^/:]+):run"
_REGION = re.compile(r"^[a-z]+-[a-z]+\d+$")
_ALPHANUM = string.ascii_lowercase + string.digits
_DONE_STATUSES = ("EXECUTION_SUCCEEDED", "EXECUTION_FAILED", "EXECUTION_CANCELLED")
TYPE_JOB = "type.googleapis.com/google.cloud.run.v2.Job"
TYPE_EXECUTION = "type.googleapis.com/google.cloud.run.v2.Execution"
MAX_WAIT_S = 60.0  # operations:wait caps a client's timeout at this
MAX_OPERATIONS = 2000


def _etag() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(12)).decode().rstrip("=")


def _page(items: list[Any], request: Request, *, default: int = 100, maximum: int = 1000) -> tuple[list, str]:
    size_raw = request.args.get("pageSize") or "0"
    size = shapes.parse_int(size_raw, "pageSize", maximum=2**31 - 1) or default
    size = min(size, maximum)
    token = request.args.get("pageToken") or ""
    offset = 0
    if token:
        try:
            offset = int(base64.urlsafe_b64decode(token.encode() + b"==").decode())
        except ValueError:
            raise ApiError(
                400, f"Invalid page token {token!r}: use the nextPageToken of the previous page"
            ) from None
    page = items[offset : offset + size]
    more = offset + size < len(items)
    return page, (base64.urlsafe_b64encode(str(offset + size).encode()).decode() if more else "")


class RunService(Service):
    name = "run"
    hosts = ("run.googleapis.com", "us-central1-run.googleapis.com")

    def __init__(self, cloud):
        super().__init__(cloud)
        regional = f"{cloud.region}-run.googleapis.com"
        if regional not in self.hosts:
            self.hosts = (*type(self).hosts, regional)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._runs: dict[str, ExecutionRun] = {}
        self._stopping = False
        self._state_file = self.state_dir / "state.json"
        self._state: dict[str, dict[str, Any]] = self._empty()
        self._routes = [
            ("POST", _P + r"/jobs", self._create_job),
            ("GET", _P + r"/jobs", self._list_jobs),
            ("GET", _JOB, self._get_job),
            ("PATCH", _JOB, self._patch_job),
            ("DELETE", _JOB, self._delete_job),
            ("POST", _JOB + r":run", self._run_job),
            ("GET", _JOB + r"/executions", self._list_executions),
            ("GET", _EXEC, self._get_execution),
            ("DELETE", _EXEC, self._delete_execution),
            ("POST", _EXEC + r":cancel", self._cancel_execution),
            ("GET", _EXEC + r"/tasks", self._list_tasks),
            ("GET", _EXEC + r"/tasks/(?P<task>[^/:]+)", self._get_task),
            ("GET", _P + r"/operations", self._list_operations),
            ("GET", _OP, self._get_operation),
            ("DELETE", _OP, self._delete_operation),
            ("POST", _OP + r":wait", self._wait_operation),
            ("GET", _P + r"/services", self._list_services),
            ("GET", _P + r"/services/(?P<service>[^/:]+)", self._get_service),
            ("POST", _V1_RUN, self._run_job_v1),
        ]
        self._routes = [(method, re.compile(pattern + "$"), fn) for method, pattern, fn in self._routes]

    @staticmethod
    def _empty() -> dict[str, dict[str, Any]]:
        return {"jobs": {}, "executions": {}, "tasks": {}, "operations": {}, "services": {}, "pids": {}}

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._state_file.exists():
                loaded = json.loads(self._state_file.read_text())
                self._state = {**self._empty(), **loaded}
            if not self._state["services"]:
                self._seed_services()
            self._fail_interrupted()
            self._save()

    def stop(self) -> None:
        # Stopping: the processes are killed, but their executions stay RUNNING in the state file, so
        # that the next start marks them failed with the reason (as a crash of localcloud would).
        with self._lock:
            self._stopping = True
            runs = list(self._runs.values())
        for run in runs:
            run.kill()
        with self._lock:
            self._runs.clear()
            self._save()

    def reset(self) -> None:
        with self._lock:
            runs = list(self._runs.values())
            self._stopping = True
        for run in runs:
            run.kill()
        with self._lock:
            self._runs.clear()
            self._state = self._empty()
            self._seed_services()
            self._stopping = False
            self._save()

    def _save(self) -> None:
        operations = self._state["operations"]
        if len(operations) > MAX_OPERATIONS:  # like Cloud Run's, old finished operations expire, oldest first
            executions = self._state["executions"]
            finished = [
                name
                for name, op in operations.items()
                if "completionTime" in executions.get(op.get("execution", ""), {"completionTime": True})
            ]
            for name in finished[: len(operations) - MAX_OPERATIONS]:
                del operations[name]
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state))
        os.replace(tmp, self._state_file)

    def _seed_services(self) -> None:
        project, region = self.cloud.project, self.cloud.region
        self._put_service(
            project, region, "cloudact-api-service-local", "https://cloudact-api-service-local-uc.a.run.app"
        )

    def _put_service(self, project: str, region: str, service_id: str, uri: str) -> dict[str, Any]:
        now = self._now()
        name = f"projects/{project}/locations/{region}/services/{service_id}"
        revision = f"{service_id}-00001-loc"
        service = {
            "name": name,
            "uid": str(uuid.uuid4()),
            "generation": "1",
            "createTime": now,
            "updateTime": now,
            "creator": "localcloud",
            "lastModifier": "localcloud",
            "launchStage": "GA",
            "ingress": "INGRESS_TRAFFIC_ALL",
            "template": {
                "containers": [
                    {
                        "image": f"localcloud/{service_id}",
                        "resources": {"limits": dict(shapes.DEFAULT_LIMITS)},
                    }
                ],
                "maxInstanceRequestConcurrency": 80,
                "timeout": "300s",
            },
            "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}],
            "observedGeneration": "1",
            "terminalCondition": {"type": "Ready", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": now},
            "latestReadyRevision": f"{name}/revisions/{revision}",
            "latestCreatedRevision": f"{name}/revisions/{revision}",
            "trafficStatuses": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}],
            "uri": uri,
            "urls": [uri],
            "etag": _etag(),
        }
        self._state["services"][name] = service
        return service

    def _fail_interrupted(self) -> None:
        """Executions that were running when localcloud last stopped (or died) end as failed, saying why."""
        for name, execution in self._state["executions"].items():
            if "completionTime" in execution:
                continue
            for pid in self._state["pids"].get(name, []):
                _kill_stale(pid, execution_id(name))
            for task in self._state["tasks"].get(name, []):
                if task["state"] in ("PENDING", "RUNNING"):
                    task["state"] = "FAILED"
            self._finish(
                name,
                "EXECUTION_FAILED",
                "localcloud stopped while this execution was running, which killed its tasks; "
                "it was marked failed when localcloud started again.",
                reason="JOB_STATUS_SERVICE_POLLING_ERROR",
            )
        self._state["pids"] = {}

    # --- HTTP ----------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        try:
            principal = self.cloud.authenticate(request)
        except Unauthenticated:
            return google_error(401, UNAUTHENTICATED, "UNAUTHENTICATED")
        route = match_route(self._routes, request)
        if route is None:
            return url_not_found(request)
        fn, params = route
        host = (request.host or "").split(":")[0]
        try:
            body = json_body(request)
            if fn is self._run_job_v1 and not host.endswith("-run.googleapis.com"):
                raise ApiError(
                    404,
                    f"jobs:run of the v1 API needs the regional endpoint, "
                    f"https://{self.cloud.region}-run.googleapis.com",
                )
            self._check_scope(params.get("project", ""), params.get("location", self.cloud.region))
            result = fn(request, body, principal, **params)
        except ApiError as err:
            return google_error(err.code, err.message, err.status)
        with self._lock:  # results may be live state: serialise them while nothing changes them
            return json_response(result)

    def _check_scope(self, project: str, location: str) -> None:
        if project != self.cloud.project:
            raise ApiError(
                403,
                f"Permission denied on resource project {project} (localcloud serves only "
                f"{self.cloud.project}).",
            )
        if not _REGION.match(location):
            raise ApiError(400, f"Location {location!r} is not a valid region; e.g. {self.cloud.region}")

    def _now(self) -> str:
        return self.cloud.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    # --- jobs ----------------------------------------------------------------------------------

    def _job_name(self, project: str, location: str, job: str) -> str:
        return f"projects/{project}/locations/{location}/jobs/{job}"

    def _require_job(self, name: str) -> dict[str, Any]:
        job = self._state["jobs"].get(name)
        if job is None:
            _, project, _, location, _, job_id = name.split("/")
            raise ApiError(
                404,
                f"Resource '{job_id}' of kind 'JOB' in region '{location}' in project '{project}' "
                "does not exist.",
            )
        return job

    def _job_op(self, project: str, location: str, job: dict[str, Any]) -> dict[str, Any]:
        op = {
            "name": f"projects/{project}/locations/{location}/operations/{uuid.uuid4()}",
            "metadata": {"@type": TYPE_JOB, **job},
            "done": True,
            "response": {"@type": TYPE_JOB, **job},
        }
        self._state["operations"][op["name"]] = op
        return op

    def _new_job(self, name: str, spec: dict[str, Any], principal: str) -> dict[str, Any]:
        now = self._now()
        return {
            "name": name,
            "uid": str(uuid.uuid4()),
            "generation": "1",
            **{k: v for k, v in spec.items() if k in ("labels", "annotations")},
            "createTime": now,
            "updateTime": now,
            "creator": principal,
            "lastModifier": principal,
            **{k: v for k, v in spec.items() if k not in ("labels", "annotations")},
            "observedGeneration": "1",
            "terminalCondition": {"type": "Ready", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": now},
            "etag": _etag(),
        }

    def _create_job(self, request, body, principal, project, location):
        job_id = shapes.validate_job_id(request.args.get("jobId"))
        spec = shapes.normalize_job(body)
        name = self._job_name(project, location, job_id)
        with self._lock:
            if name in self._state["jobs"]:
                raise ApiError(409, f"Resource '{job_id}' already exists.", "ALREADY_EXISTS")
            job = self._new_job(name, spec, principal)
            if _flag(request, "validateOnly"):
                return self._job_op_unsaved(project, location, job)
            self._state["jobs"][name] = job
            op = self._job_op(project, location, job)
            self._save()
            return op

    def _job_op_unsaved(self, project, location, job):
        op = self._job_op(project, location, job)
        self._save()  # the operation is kept (a client may poll it); the job is not
        return op

    def _list_jobs(self, request, body, principal, project, location):
        prefix = f"projects/{project}/locations/{location}/jobs/"
        with self._lock:
            jobs = [job for name, job in sorted(self._state["jobs"].items()) if name.startswith(prefix)]
            page, token = _page(jobs, request)
            return {"jobs": page, **({"nextPageToken": token} if token else {})} if page else {}

    def _get_job(self, request, body, principal, project, location, job):
        with self._lock:
            return self._require_job(self._job_name(project, location, job))

    def _patch_job(self, request, body, principal, project, location, job):
        name = self._job_name(project, location, job)
        if body.get("name") and body["name"] != name:
            raise ApiError(
                400, f"Invalid value at 'job.name': {body['name']!r} does not match the URL ({name})"
            )
        spec = shapes.normalize_job(body)
        with self._lock:
            current = self._state["jobs"].get(name)
            if current is None:
                if not _flag(request, "allowMissing"):
                    self._require_job(name)
                new = self._new_job(name, spec, principal)
            else:
                if body.get("etag") and body["etag"] != current["etag"]:
                    raise ApiError(
                        409, f"etag {body['etag']!r} does not match the job's current etag", "ABORTED"
                    )
                generation = str(int(current["generation"]) + 1)
                new = {
                    k: v
                    for k, v in current.items()
                    if k not in ("labels", "annotations", "client", "clientVersion", "binaryAuthorization")
                }
                new.update(spec)
                new.update(
                    generation=generation,
                    observedGeneration=generation,
                    updateTime=self._now(),
                    lastModifier=principal,
                    etag=_etag(),
                )
                new = _ordered_job(new)
            if _flag(request, "validateOnly"):
                return self._job_op_unsaved(project, location, new)
            self._state["jobs"][name] = new
            op = self._job_op(project, location, new)
            self._save()
            return op

    def _delete_job(self, request, body, principal, project, location, job):
        name = self._job_name(project, location, job)
        with self._lock:
            current = self._require_job(name)
            etag = request.args.get("etag")
            if etag and etag != current["etag"]:
                raise ApiError(409, f"etag {etag!r} does not match the job's current etag", "ABORTED")
            deleted = {**current, "deleteTime": self._now()}
            if _flag(request, "validateOnly"):
                return self._job_op_unsaved(project, location, deleted)
            del self._state["jobs"][name]
            doomed = [e for e in self._state["executions"] if e.startswith(name + "/executions/")]
            runs = [self._runs.pop(e) for e in doomed if e in self._runs]
            for execution in doomed:
                self._state["executions"].pop(execution, None)
                self._state["tasks"].pop(execution, None)
                self._state["pids"].pop(execution, None)
            op = self._job_op(project, location, deleted)
            self._save()
        for run in runs:
            threading.Thread(target=run.kill, daemon=True).start()
        return op

    # --- run -----------------------------------------------------------------------------------

    def _run_job(self, request, body, principal, project, location, job):
        unknown = set(body) - {"name", "validateOnly", "etag", "overrides"}
        if unknown:
            raise ApiError(
                400, f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}": Cannot find field.'
            )
        name = self._job_name(project, location, job)
        annotations = None
        if request.headers.get("X-CloudScheduler", "").lower() == "true":
            annotations = {"localcloud/triggered-by": "cloud-scheduler"}
            if request.headers.get("X-CloudScheduler-JobName"):
                annotations["localcloud/scheduler-job"] = request.headers["X-CloudScheduler-JobName"]
        with self._lock:
            current = self._require_job(name)
            if body.get("etag") and body["etag"] != current["etag"]:
                raise ApiError(409, f"etag {body['etag']!r} does not match the job's current etag", "ABORTED")
            template = shapes.apply_overrides(current["template"], body.get("overrides"))
            if body.get("validateOnly"):
                execution = self._new_execution(current, template, principal, annotations)
                return {
                    "name": f"projects/{project}/locations/{location}/operations/{uuid.uuid4()}",
                    "metadata": {"@type": TYPE_EXECUTION, **execution},
                    "done": True,
                    "response": {"@type": TYPE_EXECUTION, **execution},
                }
            execution = self._new_execution(current, template, principal, annotations)
            exec_name = execution["name"]
            self._state["executions"][exec_name] = execution
            self._state["tasks"][exec_name] = [
                self._new_task(execution, i) for i in range(execution["taskCount"])
            ]
            current["executionCount"] = current.get("executionCount", 0) + 1
            current["latestCreatedExecution"] = {
                "name": exec_name,
                "createTime": execution["createTime"],
                "completionStatus": "EXECUTION_PENDING",
            }
            op_name = f"projects/{project}/locations/{location}/operations/{uuid.uuid4()}"
            self._state["operations"][op_name] = {"name": op_name, "execution": exec_name}
            self._save()
            self._launch(execution, current)
            return self._render_op(self._state["operations"][op_name])

    def _run_job_v1(self, request, body, principal, project, job):
        location = (request.host or "").split(":")[0].removesuffix("-run.googleapis.com")
        overrides = body.get("overrides") or {}
        v2 = {}
        if overrides:
            v2_over: dict[str, Any] = {}
            containers = overrides.get("containerOverrides") or []
            if containers:
                v2_over["containerOverrides"] = [
                    {k: v for k, v in c.items() if k in ("name", "args", "env", "clearArgs")}
                    for c in containers
                ]
            if overrides.get("taskCount"):
                v2_over["taskCount"] = overrides["taskCount"]
            if overrides.get("timeoutSeconds"):
                v2_over["timeout"] = (
                    f"{shapes.parse_int(overrides['timeoutSeconds'], 'overrides.timeoutSeconds')}s"
                )
            v2["overrides"] = v2_over
        self._check_scope(project, location)
        op = self._run_job(request, v2, principal, project, location, job)
        return _knative_execution(op["metadata"], project)

    def _new_execution(self, job, template, principal, annotations) -> dict[str, Any]:
        job_id = job["name"].rsplit("/", 1)[1]
        while True:
            exec_id = f"{job_id}-{''.join(secrets.choice(_ALPHANUM) for _ in range(5))}"
            name = f"{job['name']}/executions/{exec_id}"
            if name not in self._state["executions"]:
                break
        _, project, _, location, _, _ = job["name"].split("/")
        now = self._now()
        labels = {**template.get("labels", {})}
        execution_annotations = {**template.get("annotations", {}), **(annotations or {})}
        log_filter = (
            f'resource.type="cloud_run_job"\nresource.labels.job_name="{job_id}"\n'
            f'resource.labels.location="{location}"\nlabels."run.googleapis.com/execution_name"="{exec_id}"'
        )
        execution = {
            "name": name,
            "uid": str(uuid.uuid4()),
            "creator": principal,
            "generation": "1",
            **({"labels": labels} if labels else {}),
            **({"annotations": execution_annotations} if execution_annotations else {}),
            "createTime": now,
            "updateTime": now,
            "launchStage": job.get("launchStage", "GA"),
            "job": job_id,
            **({"parallelism": template["parallelism"]} if template.get("parallelism") else {}),
            "taskCount": template["taskCount"],
            "template": template["template"],
            "reconciling": True,
            "conditions": [
                {"type": "Completed", "state": "CONDITION_PENDING", "lastTransitionTime": now},
                {"type": "ResourcesAvailable", "state": "CONDITION_PENDING", "lastTransitionTime": now},
                {"type": "Started", "state": "CONDITION_PENDING", "lastTransitionTime": now},
            ],
            "observedGeneration": "1",
            "logUri": f"https://console.cloud.google.com/logs/viewer?project={project}"
            f"&advancedFilter={quote(log_filter, safe='')}",
            "etag": _etag(),
        }
        return execution

    def _new_task(self, execution: dict[str, Any], index: int) -> dict[str, Any]:
        return {"index": index, "state": "PENDING", "retried": 0, "createTime": execution["createTime"]}

    def _launch(self, execution: dict[str, Any], job: dict[str, Any]) -> None:
        """Resolve the secrets (failing the execution without running it when one is missing), then run."""
        name = execution["name"]
        _, project, _, location, _, job_id, _, exec_id = name.split("/")
        task = execution["template"]
        container = task["containers"][0]
        env = {key: os.environ[key] for key in HOST_ENV if key in os.environ}
        env.update(self.cloud.client_env())
        for i, item in enumerate(container.get("env", [])):
            ref = item.get("valueSource", {}).get("secretKeyRef")
            if ref is None:
                env[item["name"]] = item.get("value", "")
                continue
            secret, version = ref["secret"], ref.get("version", "latest")
            secret_project = project
            if secret.startswith("projects/"):
                parts = secret.split("/")
                secret_project, secret = parts[1], parts[3]
            value = self.cloud.secret_value(secret, version, secret_project)
            if value is None:
                message = (
                    f"spec.template.spec.containers[0].env[{i}].value_from.secret_key_ref.name: Secret "
                    f"projects/{secret_project}/secrets/{secret}/versions/{version} was not found "
                    f"(environment variable {item['name']})."
                )
                self._resources_failed(name, message)
                return
            env[item["name"]] = value.decode("utf-8", errors="replace")
        now = self._now()
        _set_condition(
            execution,
            "ResourcesAvailable",
            "CONDITION_SUCCEEDED",
            now,
            message="Provisioned imported containers.",
        )
        run = ExecutionRun(
            self.cloud,
            project=project,
            location=location,
            job=job_id,
            execution=exec_id,
            container=container,
            env=env,
            task_count=execution["taskCount"],
            parallelism=execution.get("parallelism", 0),
            timeout_s=shapes.parse_duration(task["timeout"], "timeout"),
            max_retries=task.get("maxRetries", 0),
            on_event=lambda _exec_id, event, **kw: self._on_event(name, event, **kw),
        )
        self._runs[name] = run
        self._save()
        run.start()

    def _resources_failed(self, name: str, message: str) -> None:
        execution = self._state["executions"][name]
        now = self._now()
        _set_condition(
            execution, "ResourcesAvailable", "CONDITION_FAILED", now, message=message, severity="ERROR"
        )
        for task in self._state["tasks"][name]:
            task["state"] = "FAILED"
        self._finish(name, "EXECUTION_FAILED", message)
        self._save()

    # --- execution state (driven by the runner) ------------------------------------------------

    def _on_event(self, name: str, event: str, **kw: Any) -> None:
        with self._lock:
            if self._stopping or name not in self._state["executions"]:
                return
            execution = self._state["executions"][name]
            tasks = self._state["tasks"][name]
            now = self._now()
            index = kw.get("index")
            task = tasks[index] if index is not None else None
            if event == "attempt_started":
                if kw.get("pids"):  # kept so that a localcloud that died can kill them at its next start
                    self._state["pids"][name] = kw["pids"]
                task.update(state="RUNNING", attempt=kw["attempt"])
                task.setdefault("startTime", now)
                if "startTime" not in execution:
                    execution["startTime"] = now
                    _set_condition(
                        execution,
                        "Started",
                        "CONDITION_SUCCEEDED",
                        now,
                        message="Started deployed execution.",
                    )
                    self._set_latest_status(name, "EXECUTION_RUNNING")
            elif event == "attempt_failed":
                timed_out = kw["timed_out"]
                result = (
                    {
                        "status": {
                            "code": 4,
                            "message": f"The configured timeout of {execution['template']['timeout']} was "
                            "reached; the task was terminated.",
                        }
                    }
                    if timed_out
                    else {
                        "status": {
                            "code": 2,
                            "message": f"The container exited with an error (exit code {kw['exit_code']}).",
                        },
                        "exitCode": kw["exit_code"],
                    }
                )
                task_name = f"{execution_id(name)}-task{index}"
                if kw.get("error"):
                    result = {"status": {"code": 9, "message": kw["error"]}}
                task["lastAttemptResult"] = result
                task["lastMessage"] = (
                    f"Task {task_name} failed: {kw['error']}"
                    if kw.get("error")
                    else (
                        f"Task {execution_id(name)}-task{index} failed: the task exceeded its timeout of "
                        f"{execution['template']['timeout']} and was killed."
                        if timed_out
                        else f"Task {execution_id(name)}-task{index} failed with exit code {kw['exit_code']}."
                    )
                )
                if kw["will_retry"]:
                    task["retried"] += 1
                else:
                    task.update(state="FAILED", completionTime=now)
            elif event == "task_succeeded":
                task.update(
                    state="SUCCEEDED", completionTime=now, lastAttemptResult={"status": {}, "exitCode": 0}
                )
            elif event == "task_cancelled":
                task.update(state="CANCELLED", completionTime=now)
            elif event == "finished":
                self._finish_from_tasks(name)
            elif event == "crashed":
                for item in tasks:
                    if item["state"] in ("PENDING", "RUNNING"):
                        item["state"] = "FAILED"
                self._finish(name, "EXECUTION_FAILED", kw["message"])
            self._count(execution, tasks)
            execution["updateTime"] = now
            execution["etag"] = _etag()
            self._save()
            self._changed.notify_all()

    @staticmethod
    def _count(execution: dict[str, Any], tasks: list[dict[str, Any]]) -> None:
        for state, key in (
            ("RUNNING", "runningCount"),
            ("SUCCEEDED", "succeededCount"),
            ("FAILED", "failedCount"),
            ("CANCELLED", "cancelledCount"),
        ):
            count = sum(1 for task in tasks if task["state"] == state)
            if count:
                execution[key] = count
            else:
                execution.pop(key, None)
        retried = sum(
            1 for task in tasks if task["retried"]
        )  # tasks retried at least once, as Cloud Run counts
        if retried:
            execution["retriedCount"] = retried

    def _finish_from_tasks(self, name: str) -> None:
        tasks = self._state["tasks"][name]
        exec_id = execution_id(name)
        total = len(tasks)
        succeeded = sum(1 for task in tasks if task["state"] == "SUCCEEDED")
        failed = [task for task in tasks if task["state"] == "FAILED"]
        cancelled = sum(1 for task in tasks if task["state"] == "CANCELLED")
        if cancelled:
            self._finish(
                name,
                "EXECUTION_CANCELLED",
                f"Execution {exec_id} was cancelled; {succeeded}/{total} tasks were a success.",
                reason="CANCELLED",
            )
        elif failed:
            first = failed[0].get("lastMessage", f"Task {exec_id}-task{failed[0]['index']} failed.")
            self._finish(
                name,
                "EXECUTION_FAILED",
                f"{first} Execution {exec_id} has failed to complete, "
                f"{succeeded}/{total} tasks were a success.",
                reason="NON_ZERO_EXIT_CODE",
            )
        else:
            self._finish(name, "EXECUTION_SUCCEEDED", f"Execution {exec_id} has successfully completed.")

    def _finish(self, name: str, status: str, message: str, reason: str | None = None) -> None:
        execution = self._state["executions"][name]
        now = self._now()
        execution["completionTime"] = now
        execution["updateTime"] = now
        execution["reconciling"] = False
        execution.pop("reconciling")  # proto3 JSON omits false
        if status == "EXECUTION_SUCCEEDED":
            for kind in ("ResourcesAvailable", "Started"):
                _set_condition(execution, kind, "CONDITION_SUCCEEDED", now, keep_time=True)
            _set_condition(execution, "Completed", "CONDITION_SUCCEEDED", now, message=message)
        else:
            _set_condition(
                execution,
                "Completed",
                "CONDITION_FAILED",
                now,
                message=message,
                severity="ERROR",
                reason=reason,
            )
        for condition in execution["conditions"]:
            if condition["state"] == "CONDITION_PENDING":
                condition.update(state="CONDITION_FAILED", lastTransitionTime=now)
        self._count(execution, self._state["tasks"].get(name, []))
        self._set_latest_status(name, status, completion_time=now)
        self._state["pids"].pop(name, None)
        self._runs.pop(name, None)
        self._changed.notify_all()

    def _set_latest_status(self, name: str, status: str, completion_time: str | None = None) -> None:
        job = self._state["jobs"].get(name.split("/executions/")[0])
        latest = job.get("latestCreatedExecution") if job else None
        if latest and latest["name"] == name:
            latest["completionStatus"] = status
            if completion_time:
                latest["completionTime"] = completion_time

    # --- executions ----------------------------------------------------------------------------

    def _require_execution(self, name: str) -> dict[str, Any]:
        execution = self._state["executions"].get(name)
        if execution is None:
            _, project, _, location, *_ = name.split("/")
            raise ApiError(
                404,
                f"Resource '{execution_id(name)}' of kind 'EXECUTION' in region '{location}' in project "
                f"'{project}' does not exist.",
            )
        return execution

    def _list_executions(self, request, body, principal, project, location, job):
        with self._lock:
            if job != "-":
                self._require_job(self._job_name(project, location, job))
            prefix = f"projects/{project}/locations/{location}/jobs/{'' if job == '-' else job + '/'}"
            items = [e for name, e in self._state["executions"].items() if name.startswith(prefix)]
            items.sort(key=lambda e: (e["createTime"], e["name"]), reverse=True)
            page, token = _page(items, request)
            return {"executions": page, **({"nextPageToken": token} if token else {})} if page else {}

    def _get_execution(self, request, body, principal, project, location, job, execution):
        with self._lock:
            return self._require_execution(f"{self._job_name(project, location, job)}/executions/{execution}")

    def _cancel_execution(self, request, body, principal, project, location, job, execution):
        name = f"{self._job_name(project, location, job)}/executions/{execution}"
        with self._lock:
            current = self._require_execution(name)
            if "completionTime" in current:
                raise ApiError(
                    400,
                    f"Execution {execution} has already finished; only a running execution can be cancelled.",
                    "FAILED_PRECONDITION",
                )
            if body.get("validateOnly"):
                return {
                    "name": f"projects/{project}/locations/{location}/operations/{uuid.uuid4()}",
                    "metadata": {"@type": TYPE_EXECUTION, **current},
                }
            _set_condition(
                current,
                "Completed",
                "CONDITION_PENDING",
                self._now(),
                message="Cancelling the execution.",
                reason="CANCELLING",
            )
            run = self._runs.get(name)
            op_name = f"projects/{project}/locations/{location}/operations/{uuid.uuid4()}"
            self._state["operations"][op_name] = {"name": op_name, "execution": name}
            self._save()
        if run is not None:
            run.cancel()
        else:  # never started (no runner): finish it as cancelled here
            with self._lock:
                for task in self._state["tasks"].get(name, []):
                    if task["state"] in ("PENDING", "RUNNING"):
                        task["state"] = "CANCELLED"
                self._finish_from_tasks(name)
                self._save()
        with self._lock:
            return self._render_op(self._state["operations"][op_name])

    def _delete_execution(self, request, body, principal, project, location, job, execution):
        name = f"{self._job_name(project, location, job)}/executions/{execution}"
        with self._lock:
            current = self._require_execution(name)
            etag = request.args.get("etag")
            if etag and etag != current["etag"]:
                raise ApiError(409, f"etag {etag!r} does not match the execution's current etag", "ABORTED")
            deleted = {**current, "deleteTime": self._now()}
            op = {
                "name": f"projects/{project}/locations/{location}/operations/{uuid.uuid4()}",
                "metadata": {"@type": TYPE_EXECUTION, **deleted},
                "done": True,
                "response": {"@type": TYPE_EXECUTION, **deleted},
            }
            if _flag(request, "validateOnly"):
                return op
            run = self._runs.pop(name, None)
            self._state["executions"].pop(name)
            self._state["tasks"].pop(name, None)
            self._state["pids"].pop(name, None)
            self._state["operations"][op["name"]] = op
            self._save()
        if run is not None:
            threading.Thread(target=run.kill, daemon=True).start()
        return op

    def _task_json(self, execution: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
        exec_id = execution_id(execution["name"])
        template = execution["template"]
        out: dict[str, Any] = {
            "name": f"{execution['name']}/tasks/{exec_id}-task{task['index']}",
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{execution['uid']}/{task['index']}")),
            "generation": "1",
            "createTime": task["createTime"],
            **({"startTime": task["startTime"]} if "startTime" in task else {}),
            **({"completionTime": task["completionTime"]} if "completionTime" in task else {}),
            "updateTime": execution["updateTime"],
            "job": execution["job"],
            "execution": exec_id,
            "containers": template["containers"],
            "maxRetries": template.get("maxRetries", 0),
            "timeout": template["timeout"],
            **({"serviceAccount": template["serviceAccount"]} if "serviceAccount" in template else {}),
            "observedGeneration": "1",
            **({"index": task["index"]} if task["index"] else {}),
            **({"retried": task["retried"]} if task["retried"] else {}),
            **({"lastAttemptResult": task["lastAttemptResult"]} if "lastAttemptResult" in task else {}),
            "logUri": execution["logUri"],
            "etag": execution["etag"],
        }
        state = {
            "PENDING": "CONDITION_PENDING",
            "RUNNING": "CONDITION_PENDING",
            "SUCCEEDED": "CONDITION_SUCCEEDED",
        }
        out["conditions"] = [
            {
                "type": "Completed",
                "state": state.get(task["state"], "CONDITION_FAILED"),
                **(
                    {"message": task["lastMessage"]}
                    if task["state"] == "FAILED" and "lastMessage" in task
                    else {}
                ),
                "lastTransitionTime": task.get("completionTime", task.get("startTime", task["createTime"])),
            }
        ]
        if task["state"] in ("PENDING", "RUNNING"):
            out["reconciling"] = True
        return out

    def _list_tasks(self, request, body, principal, project, location, job, execution):
        name = f"{self._job_name(project, location, job)}/executions/{execution}"
        with self._lock:
            current = self._require_execution(name)
            tasks = [self._task_json(current, task) for task in self._state["tasks"].get(name, [])]
            page, token = _page(tasks, request)
            return {"tasks": page, **({"nextPageToken": token} if token else {})} if page else {}

    def _get_task(self, request, body, principal, project, location, job, execution, task):
        name = f"{self._job_name(project, location, job)}/executions/{execution}"
        with self._lock:
            current = self._require_execution(name)
            for item in self._state["tasks"].get(name, []):
                if f"{execution}-task{item['index']}" == task:
                    return self._task_json(current, item)
        raise ApiError(
            404,
            f"Resource '{task}' of kind 'TASK' in region '{location}' in project '{project}' does not exist.",
        )

    # --- operations ----------------------------------------------------------------------------

    def _render_op(self, op: dict[str, Any]) -> dict[str, Any]:
        if "execution" not in op:
            return op
        execution = self._state["executions"].get(op["execution"])
        out: dict[str, Any] = {"name": op["name"]}
        if execution is None:  # deleted since: the operation's last word stands
            return {
                **out,
                **op.get("final", {"done": True, "error": {"code": 5, "message": "execution deleted"}}),
            }
        out["metadata"] = {"@type": TYPE_EXECUTION, **execution}
        if "completionTime" in execution:
            completed = next(c for c in execution["conditions"] if c["type"] == "Completed")
            out["done"] = True
            if completed["state"] == "CONDITION_FAILED" and completed.get("executionReason") != "CANCELLED":
                out["error"] = {"code": 9, "message": completed.get("message", "execution failed")}
            else:
                out["response"] = {"@type": TYPE_EXECUTION, **execution}
            op["final"] = {k: v for k, v in out.items() if k in ("done", "error", "response")}
        return out

    def _require_op(self, name: str) -> dict[str, Any]:
        op = self._state["operations"].get(name)
        if op is None:
            raise ApiError(404, f"Operation '{name}' was not found.")
        return op

    def _get_operation(self, request, body, principal, project, location, op):
        with self._lock:
            return self._render_op(
                self._require_op(f"projects/{project}/locations/{location}/operations/{op}")
            )

    def _list_operations(self, request, body, principal, project, location):
        prefix = f"projects/{project}/locations/{location}/operations/"
        with self._lock:
            ops = [
                self._render_op(op)
                for name, op in self._state["operations"].items()
                if name.startswith(prefix)
            ]
            page, token = _page(ops, request)
            return {"operations": page, **({"nextPageToken": token} if token else {})} if page else {}

    def _delete_operation(self, request, body, principal, project, location, op):
        name = f"projects/{project}/locations/{location}/operations/{op}"
        with self._lock:
            self._require_op(name)
            del self._state["operations"][name]
            self._save()
            return {}

    def _wait_operation(self, request, body, principal, project, location, op):
        name = f"projects/{project}/locations/{location}/operations/{op}"
        timeout = shapes.parse_duration(body["timeout"], "timeout") if body.get("timeout") else MAX_WAIT_S
        deadline = time.monotonic() + min(timeout, MAX_WAIT_S)
        with self._lock:
            while True:
                rendered = self._render_op(self._require_op(name))
                remaining = deadline - time.monotonic()
                if rendered.get("done") or remaining <= 0:
                    return rendered
                self._changed.wait(min(remaining, 0.5))

    # --- services ------------------------------------------------------------------------------

    def _get_service(self, request, body, principal, project, location, service):
        name = f"projects/{project}/locations/{location}/services/{service}"
        with self._lock:
            found = self._state["services"].get(name)
        if found is None:
            raise ApiError(
                404,
                f"Resource '{service}' of kind 'SERVICE' in region '{location}' in project "
                f"'{project}' does not exist.",
            )
        return found

    def _list_services(self, request, body, principal, project, location):
        prefix = f"projects/{project}/locations/{location}/services/"
        with self._lock:
            items = [s for name, s in sorted(self._state["services"].items()) if name.startswith(prefix)]
        page, token = _page(items, request)
        return {"services": page, **({"nextPageToken": token} if token else {})} if page else {}

    def handle_admin(self, request: Request, subpath: str) -> Response:
        """POST /_localcloud/run/services {"service": ID, "uri": URL}: register a service for services.get."""
        if subpath == "services" and request.method == "POST":
            body = request.get_json(silent=True) or {}
            if not isinstance(body.get("service"), str) or not str(body.get("uri", "")).startswith(
                "https://"
            ):
                return json_response(
                    {"error": 'expected {"service": "<id>", "uri": "https://..."}'}, status=400
                )
            with self._lock:
                service = self._put_service(
                    self.cloud.project, self.cloud.region, body["service"], body["uri"]
                )
                self._save()
            return json_response(service)
        return super().handle_admin(request, subpath)


def execution_id(name: str) -> str:
    return name.rsplit("/", 1)[1]


def _flag(request: Request, key: str) -> bool:
    return request.args.get(key, "").lower() in ("true", "1")


def _ordered_job(job: dict[str, Any]) -> dict[str, Any]:
    order = [
        "name",
        "uid",
        "generation",
        "labels",
        "annotations",
        "createTime",
        "updateTime",
        "creator",
        "lastModifier",
        "client",
        "clientVersion",
        "launchStage",
        "binaryAuthorization",
        "template",
    ]
    return {**{k: job[k] for k in order if k in job}, **{k: v for k, v in job.items() if k not in order}}


def _set_condition(
    execution: dict[str, Any],
    kind: str,
    state: str,
    now: str,
    *,
    message: str | None = None,
    severity: str | None = None,
    reason: str | None = None,
    keep_time: bool = False,
) -> None:
    for condition in execution["conditions"]:
        if condition["type"] == kind:
            if keep_time and condition["state"] == state:
                return
            condition.clear()
            condition.update(type=kind, state=state)
            if message:
                condition["message"] = message
            condition["lastTransitionTime"] = now
            if severity:
                condition["severity"] = severity
            if reason:
                condition["executionReason"] = reason
            return


def _kill_stale(pid: int, exec_id: str) -> None:
    """Kill a task process group left by a localcloud that died, if the pid is still that task's."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return
    if f"CLOUD_RUN_EXECUTION={exec_id}".encode() not in environ.split(b"\0"):
        return  # the pid was reused by something else
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _knative_execution(execution: dict[str, Any], project: str) -> dict[str, Any]:
    """A v2 Execution in the v1 (Knative) shape that the legacy jobs:run URL returns."""
    execution = copy.deepcopy(execution)
    execution.pop("@type", None)
    exec_id = execution_id(execution["name"])
    task = execution["template"]
    containers = []
    for container in task["containers"]:
        v1 = {k: v for k, v in container.items() if k in ("name", "image", "command", "args", "workingDir")}
        env = []
        for item in container.get("env", []):
            ref = item.get("valueSource", {}).get("secretKeyRef")
            if ref:
                env.append(
                    {
                        "name": item["name"],
                        "valueFrom": {"secretKeyRef": {"name": ref["secret"], "key": ref["version"]}},
                    }
                )
            else:
                env.append({"name": item["name"], "value": item.get("value", "")})
        if env:
            v1["env"] = env
        v1["resources"] = {"limits": container.get("resources", {}).get("limits", {})}
        containers.append(v1)
    spec_template: dict[str, Any] = {
        "containers": containers,
        "maxRetries": task.get("maxRetries", 0),
        "timeoutSeconds": str(int(shapes.parse_duration(task["timeout"], "timeout"))),
    }
    if task.get("serviceAccount"):
        spec_template["serviceAccountName"] = task["serviceAccount"]
    states = {"CONDITION_SUCCEEDED": "True", "CONDITION_FAILED": "False"}
    conditions = [
        {
            "type": c["type"],
            "status": states.get(c["state"], "Unknown"),
            **({"reason": c["executionReason"]} if "executionReason" in c else {}),
            **({"message": c["message"]} if "message" in c else {}),
            "lastTransitionTime": c["lastTransitionTime"],
        }
        for c in execution["conditions"]
    ]
    status: dict[str, Any] = {"observedGeneration": 1, "conditions": conditions}
    for key in (
        "startTime",
        "completionTime",
        "runningCount",
        "succeededCount",
        "failedCount",
        "cancelledCount",
        "retriedCount",
        "logUri",
    ):
        if key in execution:
            status[key] = execution[key]
    return {
        "apiVersion": "run.googleapis.com/v1",
        "kind": "Execution",
        "metadata": {
            "name": exec_id,
            "namespace": project,
            "selfLink": f"/apis/run.googleapis.com/v1/namespaces/{project}/executions/{exec_id}",
            "uid": execution["uid"],
            "resourceVersion": execution["etag"],
            "generation": 1,
            "creationTimestamp": execution["createTime"],
            "labels": {**execution.get("labels", {}), "run.googleapis.com/job": execution["job"]},
            **({"annotations": execution["annotations"]} if execution.get("annotations") else {}),
        },
        "spec": {
            "parallelism": execution.get("parallelism", 0),
            "taskCount": execution["taskCount"],
            "template": {"spec": spec_template},
        },
        "status": status,
    }
