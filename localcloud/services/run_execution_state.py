"""An execution's life once started: its secrets resolved and its runner launched, then the runner's
events (attempts, exits, timeouts) turned into task and execution state and conditions."""

from __future__ import annotations

import logging
import os
from typing import Any

from localcloud import iam_enforce
from localcloud.services import run_shapes as shapes
from localcloud.services.run_base import RunState, execution_id, new_etag
from localcloud.services.run_runner import HOST_ENV, ExecutionRun

log = logging.getLogger("localcloud.run")
RESULTS = {
    "EXECUTION_SUCCEEDED": "succeeded",
    "EXECUTION_FAILED": "failed",
    "EXECUTION_CANCELLED": "cancelled",
}


class RunExecutionState(RunState):
    """Launches an execution's runner and keeps the execution's and its tasks' state as the runner reports."""

    def _launch(self, execution: dict[str, Any], job: dict[str, Any]) -> None:
        """Resolve the secrets (failing the execution without running it when one is missing), then run."""
        name = execution["name"]
        _, project, _, location, _, job_id, _, exec_id = name.split("/")
        task = execution["template"]
        container = task["containers"][0]
        env = {key: os.environ[key] for key in HOST_ENV if key in os.environ}
        env.update(self.cloud.client_env(project))  # the key of the execution's project
        iam = getattr(self.cloud, "iam", None)
        enforcing = iam is not None and iam.enforcing
        account = iam_enforce.runtime_account(self.cloud, project, task)
        if enforcing:  # as on Cloud Run, the execution authenticates as its job's service account
            key = str(iam.key_file_for(account))
            env.update(GCP_SERVICE_ACCOUNT_FILE=key, GOOGLE_APPLICATION_CREDENTIALS=key)
        values: dict[str, str] = {}  # the container's own values: image paths in them resolve in the image
        for i, item in enumerate(container.get("env", [])):
            ref = item.get("valueSource", {}).get("secretKeyRef")
            if ref is None:
                values[item["name"]] = item.get("value", "")
                env.pop(item["name"], None)
                continue
            secret, version = ref["secret"], ref.get("version", "latest")
            field = f"spec.template.spec.containers[0].env[{i}].value_from.secret_key_ref.name"
            wanted = [(field, secret, version)]
            denied = enforcing and iam_enforce.secret_problems(self.cloud, account, project, wanted)
            if denied:
                self._resources_failed(name, denied[0])
                return
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
            values.pop(item["name"], None)
        now = self._now()
        set_condition(
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
            container_env=values,
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
        set_condition(
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
                    self._metric("started", name)
                    execution["startTime"] = now
                    set_condition(
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
                self._metric("attempt", name, "failed")
                if kw["will_retry"]:
                    task["retried"] += 1
                else:
                    task.update(state="FAILED", completionTime=now)
            elif event == "task_succeeded":
                self._metric("attempt", name, "succeeded")
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
            execution["etag"] = new_etag()
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
                set_condition(execution, kind, "CONDITION_SUCCEEDED", now, keep_time=True)
            set_condition(execution, "Completed", "CONDITION_SUCCEEDED", now, message=message)
        else:
            set_condition(
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
        self._metric("completed", name, RESULTS.get(status, "failed"), "startTime" in execution)
        self._state["pids"].pop(name, None)
        self._runs.pop(name, None)
        self._changed.notify_all()

    def _metric(self, event: str, name: str, *args: Any) -> None:
        """Cloud Monitoring's job metrics of an execution's event (`run_started`, `run_attempt`,
        `run_completed` of localcloud/services/monitoring_metrics.py)."""
        try:
            getattr(self.cloud.service("monitoring"), f"run_{event}")(name, *args)
        except KeyError:
            pass  # a localcloud built without Monitoring
        except Exception:  # a metric must never break an execution's state
            log.exception("monitoring: recording %s of %s failed", event, name)

    def _set_latest_status(self, name: str, status: str, completion_time: str | None = None) -> None:
        job = self._state["jobs"].get(name.split("/executions/")[0])
        latest = job.get("latestCreatedExecution") if job else None
        if latest and latest["name"] == name:
            latest["completionStatus"] = status
            if completion_time:
                latest["completionTime"] = completion_time


def set_condition(
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
