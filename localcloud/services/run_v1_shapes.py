"""Cloud Run v1 (Knative-style) object shapes, converted from and to the v2 state localcloud keeps.

Field names as Google's discovery document run.v1 has them (Job, Execution, Task, ObjectMeta,
ExecutionTemplateSpec, ExecutionSpec, TaskTemplateSpec, TaskSpec, Container, EnvVar, Volume,
GoogleCloudRunV1Condition, ListMeta, Status). The v1 API keeps some v2 fields in annotations and
labels of `metadata`; those localcloud maps:
  job metadata.annotations: run.googleapis.com/creator, run.googleapis.com/lastModifier (output),
    run.googleapis.com/launch-stage <-> launchStage, run.googleapis.com/client-name <-> client,
    run.googleapis.com/client-version <-> clientVersion;
  job metadata.labels: cloud.googleapis.com/location, run.googleapis.com/lastUpdatedTime (output);
  spec.template.metadata.annotations: run.googleapis.com/execution-environment (gen1/gen2) <->
    template.template.executionEnvironment, run.googleapis.com/vpc-access-connector and
    run.googleapis.com/vpc-access-egress <-> template.template.vpcAccess.
Other system keys a client sends (run.googleapis.com/*, cloud.googleapis.com/*, client.knative.dev/*
such as gcloud's nonce label, ...) are dropped.
Volumes: secret and emptyDir are converted; others are dropped in v1 output.
"""

from __future__ import annotations

from typing import Any

from localcloud.services import run_shapes as shapes
from localcloud.services.run_base import execution_id
from localcloud.services.run_errors import ApiError

API_VERSION = "run.googleapis.com/v1"
BASE = "/apis/run.googleapis.com/v1/namespaces"
JOB_LABEL = "run.googleapis.com/job"
EXECUTION_LABEL = "run.googleapis.com/execution"
STATE_LABEL = "run.googleapis.com/runningState"
LOCATION_LABEL = "cloud.googleapis.com/location"
LAST_UPDATED = "run.googleapis.com/lastUpdatedTime"  # a label, where gcloud reads it
CREATOR = "run.googleapis.com/creator"
LAST_MODIFIER = "run.googleapis.com/lastModifier"
LAUNCH_STAGE = "run.googleapis.com/launch-stage"
CLIENT_NAME = "run.googleapis.com/client-name"
CLIENT_VERSION = "run.googleapis.com/client-version"
EXEC_ENV = "run.googleapis.com/execution-environment"
VPC_CONNECTOR = "run.googleapis.com/vpc-access-connector"
VPC_EGRESS = "run.googleapis.com/vpc-access-egress"
_ENVIRONMENTS = {"gen1": "EXECUTION_ENVIRONMENT_GEN1", "gen2": "EXECUTION_ENVIRONMENT_GEN2"}
_EGRESS = {"all-traffic": "ALL_TRAFFIC", "private-ranges-only": "PRIVATE_RANGES_ONLY"}
_CONDITION_STATUS = {"CONDITION_SUCCEEDED": "True", "CONDITION_FAILED": "False"}
_SEVERITY = {"ERROR": "Error", "WARNING": "Warning", "INFO": "Info"}
TASK_STATES = {
    "PENDING": "Pending",
    "RUNNING": "Running",
    "SUCCEEDED": "Succeeded",
    "FAILED": "Failed",
    "CANCELLED": "Cancelled",
}

# The fields of each v1 message a client may send (discovery document run.v1); output-only ones are
# accepted and ignored, as Cloud Run does.
_OBJECT_META = {
    "annotations",
    "clusterName",
    "creationTimestamp",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
    "finalizers",
    "generateName",
    "generation",
    "labels",
    "name",
    "namespace",
    "ownerReferences",
    "resourceVersion",
    "selfLink",
    "uid",
}
_FIELDS: dict[str, set[str]] = {
    "Job": {"apiVersion", "kind", "metadata", "spec", "status"},
    "JobSpec": {"runExecutionToken", "startExecutionToken", "template"},
    "ExecutionTemplateSpec": {"metadata", "spec"},
    "ExecutionSpec": {"delayExecution", "parallelism", "taskCount", "template"},
    "TaskTemplateSpec": {"spec"},
    "TaskSpec": {"containers", "maxRetries", "nodeSelector", "sandboxes", "serviceAccountName",
                 "timeoutSeconds", "volumes"},
    "Container": {"args", "command", "env", "envFrom", "image", "imagePullPolicy", "livenessProbe", "name",
                  "ports", "readinessProbe", "resources", "sandboxLauncher", "securityContext",
                  "startupProbe", "terminationMessagePath", "terminationMessagePolicy", "volumeMounts",
                  "workingDir"},
    "EnvVar": {"name", "value", "valueFrom"},
    "EnvVarSource": {"configMapKeyRef", "secretKeyRef"},
    "SecretKeySelector": {"key", "localObjectReference", "name", "optional"},
    "ResourceRequirements": {"limits", "requests"},
    "ObjectMeta": _OBJECT_META,
}  # fmt: skip
_CHILDREN = {
    "Job": {"metadata": "ObjectMeta", "spec": "JobSpec"},
    "JobSpec": {"template": "ExecutionTemplateSpec"},
    "ExecutionTemplateSpec": {"metadata": "ObjectMeta", "spec": "ExecutionSpec"},
    "ExecutionSpec": {"template": "TaskTemplateSpec"},
    "TaskTemplateSpec": {"spec": "TaskSpec"},
    "TaskSpec": {"containers[]": "Container"},
    "Container": {"env[]": "EnvVar", "resources": "ResourceRequirements"},
    "EnvVar": {"valueFrom": "EnvVarSource"},
    "EnvVarSource": {"secretKeyRef": "SecretKeySelector"},
}


def check_fields(value: Any, kind: str, where: str) -> None:
    """Refuse an unknown field as Google does (400 `Invalid JSON payload received. Unknown name ...`)."""
    if not isinstance(value, dict):
        raise shapes.bad(where, f"expected an object, got {type(value).__name__}")
    for key, item in value.items():
        if key not in _FIELDS[kind]:
            raise ApiError(
                400, f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."
            )
        child = _CHILDREN.get(kind, {})
        if key in child and item is not None:
            check_fields(item, child[key], f"{where}.{key}")
        elif f"{key}[]" in child and isinstance(item, list):
            for i, element in enumerate(item):
                check_fields(element, child[f"{key}[]"], f"{where}.{key}[{i}]")


SYSTEM_KEY_PREFIXES = (*shapes.RESERVED_KEY_PREFIXES, "client.knative.dev/")


def _user_keys(values: dict[str, str] | None) -> dict[str, str]:
    """Labels or annotations without the system keys (which v2 refuses and v1 fills in itself)."""
    return {k: v for k, v in (values or {}).items() if not k.startswith(SYSTEM_KEY_PREFIXES)}


def _int(value: Any, default: int = 0) -> int:
    return int(value) if value not in (None, "") else default


def _self_link(project: str, kind: str, name: str) -> str:
    return f"{BASE}/{project}/{kind}/{name}"


# --- v2 -> v1 ----------------------------------------------------------------------------------------


def container_v1(container: dict[str, Any]) -> dict[str, Any]:
    out = {k: container[k] for k in ("name", "image", "command", "args") if k in container}
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
        out["env"] = env
    out["resources"] = {"limits": container.get("resources", {}).get("limits", {})}
    for key in ("ports", "volumeMounts", "workingDir"):
        if container.get(key):
            out[key] = container[key]
    return out


def _volumes_v1(volumes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for volume in volumes or []:
        if "secret" in volume:
            secret = volume["secret"]
            items = [
                {
                    "key": item.get("version", "latest"),
                    "path": item["path"],
                    **({"mode": item["mode"]} if "mode" in item else {}),
                }
                for item in secret.get("items", [])
            ]
            source = {"secretName": secret["secret"], **({"items": items} if items else {})}
            if "defaultMode" in secret:
                source["defaultMode"] = secret["defaultMode"]
            out.append({"name": volume["name"], "secret": source})
        elif "emptyDir" in volume:
            empty = volume["emptyDir"]
            source = {**({"medium": "Memory"} if empty.get("medium") == "MEMORY" else {})}
            if empty.get("sizeLimit"):
                source["sizeLimit"] = empty["sizeLimit"]
            out.append({"name": volume["name"], "emptyDir": source})
    return out


def task_spec_v1(task: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [container_v1(c) for c in task["containers"]],
        "maxRetries": task.get("maxRetries", 0),
        "timeoutSeconds": str(int(shapes.parse_duration(task["timeout"], "timeout"))),
    }
    if task.get("serviceAccount"):
        spec["serviceAccountName"] = task["serviceAccount"]
    volumes = _volumes_v1(task.get("volumes", []))
    if volumes:
        spec["volumes"] = volumes
    return spec


def _template_annotations(job: dict[str, Any], template: dict[str, Any]) -> dict[str, str]:
    task = template["template"]
    annotations = dict(template.get("annotations", {}))
    if job.get("client"):
        annotations[CLIENT_NAME] = job["client"]
    if job.get("clientVersion"):
        annotations[CLIENT_VERSION] = job["clientVersion"]
    environment = {v: k for k, v in _ENVIRONMENTS.items()}.get(task.get("executionEnvironment", ""))
    if environment:
        annotations[EXEC_ENV] = environment
    vpc = task.get("vpcAccess") or {}
    if vpc.get("connector"):
        annotations[VPC_CONNECTOR] = vpc["connector"]
        egress = {v: k for k, v in _EGRESS.items()}.get(vpc.get("egress", ""))
        if egress:
            annotations[VPC_EGRESS] = egress
    return annotations


def conditions_v1(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for c in conditions:
        item = {"type": c["type"], "status": _CONDITION_STATUS.get(c.get("state", ""), "Unknown")}
        reason = c.get("executionReason") or c.get("reason")
        if reason:  # v2's enum (NON_ZERO_EXIT_CODE) is v1's one-word CamelCase (NonZeroExitCode)
            item["reason"] = "".join(part.capitalize() for part in reason.split("_"))
        if c.get("message"):
            item["message"] = c["message"]
        if c.get("lastTransitionTime"):
            item["lastTransitionTime"] = c["lastTransitionTime"]
        if c.get("severity") in _SEVERITY:
            item["severity"] = _SEVERITY[c["severity"]]
        out.append(item)
    return out


def job_v1(job: dict[str, Any]) -> dict[str, Any]:
    """A v2 Job of the state in the v1 shape."""
    _, project, _, location, _, job_id = job["name"].split("/")
    annotations = dict(job.get("annotations", {}))
    annotations[CREATOR] = job.get("creator", "")
    annotations[LAST_MODIFIER] = job.get("lastModifier", "")
    if job.get("client"):
        annotations[CLIENT_NAME] = job["client"]
    if job.get("clientVersion"):
        annotations[CLIENT_VERSION] = job["clientVersion"]
    if job.get("launchStage", "GA") != "GA":
        annotations[LAUNCH_STAGE] = job["launchStage"]
    template = job["template"]
    template_meta: dict[str, Any] = {}
    if template.get("labels"):
        template_meta["labels"] = template["labels"]
    template_annotations = _template_annotations(job, template)
    if template_annotations:
        template_meta["annotations"] = template_annotations
    execution_spec: dict[str, Any] = {}
    if template.get("parallelism"):
        execution_spec["parallelism"] = template["parallelism"]
    execution_spec["taskCount"] = template["taskCount"]
    execution_spec["template"] = {"spec": task_spec_v1(template["template"])}
    status: dict[str, Any] = {
        "observedGeneration": _int(job.get("observedGeneration"), 1),
        "conditions": conditions_v1([job["terminalCondition"], *job.get("conditions", [])]),
        "executionCount": job.get("executionCount", 0),
    }
    latest = job.get("latestCreatedExecution")
    if latest:
        status["latestCreatedExecution"] = {
            "name": execution_id(latest["name"]),
            "creationTimestamp": latest["createTime"],
            **({"completionTimestamp": latest["completionTime"]} if "completionTime" in latest else {}),
            "completionStatus": latest.get("completionStatus", "EXECUTION_PENDING"),
        }
    if not status["executionCount"]:
        status.pop("executionCount")
    return {
        "apiVersion": API_VERSION,
        "kind": "Job",
        "metadata": {
            "name": job_id,
            "namespace": project,
            "selfLink": _self_link(project, "jobs", job_id),
            "uid": job["uid"],
            "resourceVersion": job["etag"],
            "generation": _int(job["generation"], 1),
            "creationTimestamp": job["createTime"],
            "labels": {**job.get("labels", {}), LOCATION_LABEL: location, LAST_UPDATED: job["updateTime"]},
            "annotations": annotations,
        },
        "spec": {
            # gcloud treats a template without metadata as spec-only and fails on its annotations
            "template": {"metadata": template_meta, "spec": execution_spec}
        },
        "status": status,
    }


def execution_v1(execution: dict[str, Any], job_uid: str | None = None) -> dict[str, Any]:
    """A v2 Execution of the state in the v1 shape (what jobs:run and executions.get answer)."""
    _, project, _, location, *_ = execution["name"].split("/")
    exec_id = execution_id(execution["name"])
    status: dict[str, Any] = {
        "observedGeneration": _int(execution.get("observedGeneration"), 1),
        "conditions": conditions_v1(execution["conditions"]),
    }
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
    labels = {**execution.get("labels", {}), JOB_LABEL: execution["job"], LOCATION_LABEL: location}
    if job_uid:
        labels["run.googleapis.com/jobUid"] = job_uid
    annotations = {**execution.get("annotations", {}), CREATOR: execution.get("creator", "")}
    spec: dict[str, Any] = {}
    if execution.get("parallelism"):
        spec["parallelism"] = execution["parallelism"]
    spec["taskCount"] = execution["taskCount"]
    spec["template"] = {"spec": task_spec_v1(execution["template"])}
    return {
        "apiVersion": API_VERSION,
        "kind": "Execution",
        "metadata": {
            "name": exec_id,
            "namespace": project,
            "selfLink": _self_link(project, "executions", exec_id),
            "uid": execution["uid"],
            "resourceVersion": execution["etag"],
            "generation": _int(execution.get("generation"), 1),
            "creationTimestamp": execution["createTime"],
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
        "status": status,
    }


def task_v1(task: dict[str, Any], state: str, job_uid: str | None = None) -> dict[str, Any]:
    """A v2 Task (as run_executions renders it) in the v1 shape; `state` is the task's run state."""
    _, project, _, location, *_ = task["name"].split("/")
    task_id = task["name"].rsplit("/", 1)[1]
    labels = {
        JOB_LABEL: task["job"],
        EXECUTION_LABEL: task["execution"],
        STATE_LABEL: TASK_STATES.get(state, "Pending"),
        LOCATION_LABEL: location,
        "run.googleapis.com/taskIndex": str(task.get("index", 0)),
    }
    if job_uid:
        labels["run.googleapis.com/jobUid"] = job_uid
    status: dict[str, Any] = {
        "observedGeneration": _int(task.get("observedGeneration"), 1),
        "conditions": conditions_v1(task.get("conditions", [])),
        "index": task.get("index", 0),
    }
    for key in ("startTime", "completionTime", "retried", "lastAttemptResult", "logUri"):
        if key in task:
            status[key] = task[key]
    spec = task_spec_v1(task)
    return {
        "apiVersion": API_VERSION,
        "kind": "Task",
        "metadata": {
            "name": task_id,
            "namespace": project,
            "selfLink": _self_link(project, "tasks", task_id),
            "uid": task["uid"],
            "resourceVersion": task["etag"],
            "generation": _int(task.get("generation"), 1),
            "creationTimestamp": task["createTime"],
            "labels": labels,
        },
        "spec": spec,
        "status": status,
    }


def status_v1(kind: str, name: str, uid: str) -> dict[str, Any]:
    """The Status a v1 delete answers with."""
    return {
        "status": "Success",
        "details": {"name": name, "group": "run.googleapis.com", "kind": kind, "uid": uid},
    }


# --- v1 -> v2 ----------------------------------------------------------------------------------------


def _container_v2(container: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: container[k] for k in ("name", "image", "command", "args") if k in container}
    env = []
    for item in container.get("env") or []:
        ref = (item.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            env.append(
                {
                    "name": item.get("name"),
                    "valueSource": {
                        "secretKeyRef": {"secret": ref.get("name"), "version": ref.get("key", "latest")}
                    },
                }
            )
        else:
            env.append({"name": item.get("name"), "value": item.get("value", "")})
    if env:
        out["env"] = env
    limits = (container.get("resources") or {}).get("limits")
    if limits:
        out["resources"] = {"limits": limits}
    for key in ("ports", "volumeMounts", "workingDir"):
        if container.get(key):
            out[key] = container[key]
    return out


def _volumes_v2(volumes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for volume in volumes or []:
        if "secret" in volume:
            secret = volume["secret"] or {}
            items = [
                {
                    "path": item["path"],
                    "version": item.get("key", "latest"),
                    **({"mode": item["mode"]} if "mode" in item else {}),
                }
                for item in secret.get("items", [])
            ]
            source = {"secret": secret.get("secretName"), **({"items": items} if items else {})}
            if "defaultMode" in secret:
                source["defaultMode"] = secret["defaultMode"]
            out.append({"name": volume.get("name"), "secret": source})
        elif "emptyDir" in volume:
            empty = volume["emptyDir"] or {}
            source = {"medium": "MEMORY"} if empty.get("medium") == "Memory" else {}
            if empty.get("sizeLimit"):
                source["sizeLimit"] = empty["sizeLimit"]
            out.append({"name": volume.get("name"), "emptyDir": source})
    return out


def job_v2(body: dict[str, Any], project: str) -> tuple[str, dict[str, Any]]:
    """(job ID, v2 Job body) of a v1 Job that a client sends to create or replace."""
    check_fields(body, "Job", "job")
    if body.get("apiVersion") not in (None, "", API_VERSION):
        raise shapes.bad("job.apiVersion", f"{body['apiVersion']!r}; expected {API_VERSION!r}")
    if body.get("kind") not in (None, "", "Job"):
        raise shapes.bad("job.kind", f"{body['kind']!r}; expected 'Job'")
    meta = body.get("metadata") or {}
    namespace = meta.get("namespace")
    if namespace and namespace != project:
        raise shapes.bad(
            "job.metadata.namespace", f"{namespace!r} does not match the URL's namespace {project!r}"
        )
    annotations = meta.get("annotations") or {}
    job: dict[str, Any] = {}
    labels = _user_keys(meta.get("labels"))
    if labels:
        job["labels"] = labels
    user_annotations = _user_keys(annotations)
    if user_annotations:
        job["annotations"] = user_annotations
    if annotations.get(LAUNCH_STAGE):
        job["launchStage"] = annotations[LAUNCH_STAGE]
    if annotations.get(CLIENT_NAME):
        job["client"] = annotations[CLIENT_NAME]
    if annotations.get(CLIENT_VERSION):
        job["clientVersion"] = annotations[CLIENT_VERSION]
    if meta.get("resourceVersion"):
        job["etag"] = meta["resourceVersion"]
    spec_template = (body.get("spec") or {}).get("template") or {}
    template_meta = spec_template.get("metadata") or {}
    execution_spec = spec_template.get("spec") or {}
    task = ((execution_spec.get("template") or {}).get("spec")) or {}
    template_v2: dict[str, Any] = {}
    for key in ("labels", "annotations"):
        values = _user_keys(template_meta.get(key))
        if values:
            template_v2[key] = values
    for key in ("parallelism", "taskCount"):
        if execution_spec.get(key):
            template_v2[key] = execution_spec[key]
    task_v2: dict[str, Any] = {"containers": [_container_v2(c) for c in task.get("containers") or []]}
    if "maxRetries" in task:
        task_v2["maxRetries"] = task["maxRetries"]
    if task.get("timeoutSeconds") not in (None, ""):
        seconds = shapes.parse_int(
            task["timeoutSeconds"], "job.spec.template.spec.template.spec.timeoutSeconds", maximum=2**62
        )
        task_v2["timeout"] = f"{seconds}s"
    if task.get("serviceAccountName"):
        task_v2["serviceAccount"] = task["serviceAccountName"]
    volumes = _volumes_v2(task.get("volumes") or [])
    if volumes:
        task_v2["volumes"] = volumes
    template_annotations = template_meta.get("annotations") or {}
    environment = template_annotations.get(EXEC_ENV)
    if environment:
        if environment not in _ENVIRONMENTS:
            raise shapes.bad(
                f"job.spec.template.metadata.annotations[{EXEC_ENV}]", f"{environment!r}; valid: gen1, gen2"
            )
        task_v2["executionEnvironment"] = _ENVIRONMENTS[environment]
    if template_annotations.get(VPC_CONNECTOR):
        task_v2["vpcAccess"] = {"connector": template_annotations[VPC_CONNECTOR]}
        egress = _EGRESS.get(template_annotations.get(VPC_EGRESS, ""))
        if egress:
            task_v2["vpcAccess"]["egress"] = egress
    template_v2["template"] = task_v2
    job["template"] = template_v2
    return meta.get("name") or "", job
