"""Cloud Run Admin API v2 (jobs, executions, tasks, operations, services) and v1 jobs/executions/tasks.

Proto3 JSON as the real API speaks it (docs/gcp-rest.md, Cloud Run Admin API v2). Jobs, executions, tasks and
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
one); the v1 (Knative) jobs, executions and tasks that gcloud speaks (run_v1.py); jobs'
getIamPolicy/setIamPolicy/testIamPermissions (served by localcloud/iam_enforce.py).
Not covered: showDeleted, revisions, services create/update,
v1 services/revisions/routes, project numbers in names (only the project ID `cloudact-local`;
others get 403), more than the first container of a task (sidecars are kept but not run),
volumes (kept, not mounted), and `Retry`/`ContainerReady` conditions.
An execution killed because localcloud stopped is marked failed at the next start (the processes
die with localcloud; their pids are kept in the state so a localcloud that crashed kills them then).
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from localcloud import iam_permissions
from localcloud.service import Unauthenticated, google_error, json_response
from localcloud.services.run_base import EXEC, JOB, OP, P, execution_id
from localcloud.services.run_errors import UNAUTHENTICATED, ApiError, json_body, match_route, url_not_found
from localcloud.services.run_execution_state import RunExecutionState
from localcloud.services.run_executions import RunExecutions
from localcloud.services.run_jobs import RunJobs
from localcloud.services.run_operations import RunOperations
from localcloud.services.run_runner import ExecutionRun
from localcloud.services.run_services import RunServices
from localcloud.services.run_v1 import RunV1

V1_ITEM = re.compile(
    r"^/apis/run\.googleapis\.com/v1/namespaces/(?P<project>[^/]+)/(?P<kind>executions|tasks)/(?P<item>[^/]+)$"
)


class RunService(RunJobs, RunExecutions, RunExecutionState, RunOperations, RunServices, RunV1):
    """The Cloud Run Admin API: the routes, the state's lifecycle and the HTTP entry; each resource's
    handlers are in its mixin (run_jobs, run_executions, run_execution_state, run_operations,
    run_services, run_v1)."""

    name = "run"
    hosts = ("run.googleapis.com", "us-central1-run.googleapis.com")
    permissions = iam_permissions.RUN

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
            ("POST", P + r"/jobs", self._create_job),
            ("GET", P + r"/jobs", self._list_jobs),
            ("GET", JOB, self._get_job),
            ("PATCH", JOB, self._patch_job),
            ("DELETE", JOB, self._delete_job),
            ("POST", JOB + r":run", self._run_job),
            ("GET", JOB + r"/executions", self._list_executions),
            ("GET", EXEC, self._get_execution),
            ("DELETE", EXEC, self._delete_execution),
            ("POST", EXEC + r":cancel", self._cancel_execution),
            ("GET", EXEC + r"/tasks", self._list_tasks),
            ("GET", EXEC + r"/tasks/(?P<task>[^/:]+)", self._get_task),
            ("GET", P + r"/operations", self._list_operations),
            ("GET", OP, self._get_operation),
            ("DELETE", OP, self._delete_operation),
            ("POST", OP + r":wait", self._wait_operation),
            ("GET", P + r"/services", self._list_services),
            ("GET", P + r"/services/(?P<service>[^/:]+)", self._get_service),
            *self._v1_routes(),
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
            self._seed_services()  # the hosted projects' API services that are missing
            self._fail_interrupted()
            self._save(now=True)

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
            self._save(now=True)

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
            self._save(now=True)

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

    def iam_resource(self, request: Request, method) -> str:
        """v1 executions and tasks are named by namespace: IAM sees them under their job, as v2 names
        them, so a binding on the job covers them (localcloud/iam_enforce.py)."""
        found = V1_ITEM.match(request.path.split(":", 1)[0])
        if not found:
            return ""
        exec_id = found["item"] if found["kind"] == "executions" else found["item"].rsplit("-task", 1)[0]
        with self._lock:
            try:
                return self._v1_execution_name(request, found["project"], exec_id)
            except ApiError:
                return ""

    def iam_missing(self, resource: str) -> str | None:
        """Google's 404 for the policy methods of a job that does not exist (localcloud/iam_enforce.py)."""
        with self._lock:
            try:
                self._require_job(resource)
            except ApiError as err:
                return err.message
        return None

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
            self._check_scope(params.get("project", ""), params.get("location", self.cloud.region), principal)
            result = fn(request, body, principal, **params)
        except ApiError as err:
            return google_error(err.code, err.message, err.status)
        with self._lock:  # results may be live state: serialise them while nothing changes them
            return json_response(result)


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
