"""Cloud Run's v1 (Knative) surface: today only `namespaces/P/jobs/J:run` on the regional host, which
runs the job through the v2 code and answers with the execution in the v1 shape."""

from __future__ import annotations

import copy
from typing import Any

from localcloud.services import run_shapes as shapes
from localcloud.services.run_base import RunState, execution_id

V1_RUN = r"/apis/run\.googleapis\.com/v1/namespaces/(?P<project>[^/]+)/jobs/(?P<job>[^/:]+):run"


class RunV1(RunState):
    """The v1 (Knative) routes, answered by the v2 handlers."""

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
