"""Cloud Run v2 executions and their tasks as the API shows them: jobs:run starts one; get, list, cancel
and delete (what the runner makes of an execution is in run_execution_state.py)."""

from __future__ import annotations

import secrets
import string
import threading
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from localcloud.services import run_shapes as shapes
from localcloud.services.run_base import TYPE_EXECUTION, RunState, execution_id, flag, list_body, new_etag
from localcloud.services.run_errors import ApiError
from localcloud.services.run_execution_state import set_condition

_ALPHANUM = string.ascii_lowercase + string.digits
# Cloud Run keeps "the most recent 1,000 executions of a job ... along with any executions that occurred
# within the last seven days"; older ones are removed (https://cloud.google.com/run/docs/execute/jobs).
RETAIN_NEWEST = 1000
RETAIN_YOUNGER = timedelta(days=7)


class RunExecutions(RunState):
    """jobs.run, executions.get/list/cancel/delete, tasks.get/list."""

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
            self._apply_retention(name)
            self._save()
            self._launch(execution, current)
            return self._render_op(self._state["operations"][op_name])

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
            "etag": new_etag(),
        }
        return execution

    def _new_task(self, execution: dict[str, Any], index: int) -> dict[str, Any]:
        return {"index": index, "state": "PENDING", "retried": 0, "createTime": execution["createTime"]}

    # --- retention -----------------------------------------------------------------------------

    def _apply_retention(self, job_name: str | None = None) -> int:
        """Delete the finished executions of a job (every job when None) that are neither among its
        newest RETAIN_NEWEST nor younger than RETAIN_YOUNGER on the emulated clock, as Cloud Run removes
        them; their log entries stay, as in Cloud Logging. Returns how many were deleted. Caller holds
        the lock. One pass over the executions; a job under the limit costs a count only."""
        by_job: dict[str, list[tuple[str, str]]] = {}
        for name, execution in self._state["executions"].items():
            job = name.split("/executions/")[0]
            if job_name is None or job == job_name:
                by_job.setdefault(job, []).append((execution["createTime"], name))
        cutoff = (self.cloud.now() - RETAIN_YOUNGER).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        deleted = 0
        for items in by_job.values():
            if len(items) <= RETAIN_NEWEST:
                continue
            items.sort(reverse=True)
            for created, name in items[RETAIN_NEWEST:]:
                if created < cutoff and "completionTime" in self._state["executions"][name]:
                    self._forget_execution(name)
                    deleted += 1
        return deleted

    def _forget_execution(self, name: str) -> None:
        self._state["executions"].pop(name, None)
        self._state["tasks"].pop(name, None)
        self._state["pids"].pop(name, None)

    def clock_changed(self) -> None:
        """The emulated clock moved: executions may have aged out of the seven days."""
        with self._lock:
            if self._apply_retention():
                self._save()

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
            return list_body("executions", items, request)

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
            set_condition(
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
            if flag(request, "validateOnly"):
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
            return list_body("tasks", tasks, request)

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
