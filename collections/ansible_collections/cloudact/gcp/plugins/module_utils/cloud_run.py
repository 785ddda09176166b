# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cloud Run Admin API v2 jobs: URLs, and the owned-fields view both job modules compare and return.

The view is flat and normalised (server defaults filled in, "1000m" == "1", "2048Mi" ==
"2Gi", durations as "Ns"), so that a job created from the catalog reads back equal to
what the catalog asks for and a second converge reports no change.
"""

from __future__ import annotations

import copy

from ansible_collections.cloudact.gcp.plugins.module_utils import owner as owners
from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import cpu, duration, memory, short_name

BASE = "https://run.googleapis.com/v2"
PRODUCT = "cloudact-cloud-run"
KIND = "Cloud Run job"  # names one in messages
LIST_PARAMS = None

# Cloud Run's defaults for fields a job may omit (run/v2 task_template.proto, execution_template.proto).
DEFAULTS = {
    "cpu": "1",
    "memory": "512Mi",
    "timeout": "600s",
    "max_retries": 3,
    "task_count": 1,
    "parallelism": 0,
}

# Fields the API sets; never sent back in a PATCH.
OUTPUT_ONLY = (
    "uid",
    "generation",
    "createTime",
    "updateTime",
    "deleteTime",
    "expireTime",
    "creator",
    "lastModifier",
    "observedGeneration",
    "terminalCondition",
    "conditions",
    "executionCount",
    "latestCreatedExecution",
    "reconciling",
    "satisfiesPzs",
)


def owner_of(job):
    """The environment whose label the job carries, else None."""
    return owners.of_labels(job.get("labels"))


def own(entry, env):
    """A job entry that marks the job as `env`'s (its labels gain cloudact-env)."""
    return dict(entry, labels=dict(entry.get("labels") or {}, **{owners.LABEL: env}))


def parent(project, location):
    return "projects/%s/locations/%s" % (project, location)


def jobs_url(project, location):
    return "%s/%s/jobs" % (BASE, parent(project, location))


def job_url(project, location, name):
    return "%s/%s" % (jobs_url(project, location), name)


def secret_id(ref, project):
    """A secretKeyRef's secret as the module takes it: the ID for this project, else the full name."""
    parts = (ref or "").split("/")
    if len(parts) == 4 and parts[0] == "projects" and parts[2] == "secrets" and parts[1] == project:
        return parts[3]
    return ref


def container(job):
    containers = (((job or {}).get("template") or {}).get("template") or {}).get("containers") or [{}]
    return containers[0]


def view(job, project):
    """The owned fields of a Job resource, normalised."""
    execution = job.get("template") or {}
    task = execution.get("template") or {}
    box = container(job)
    limits = (box.get("resources") or {}).get("limits") or {}
    env, secret_env = {}, {}
    for item in box.get("env") or []:
        source = (item.get("valueSource") or {}).get("secretKeyRef")
        if source:
            secret_env[item["name"]] = {
                "secret": secret_id(source.get("secret"), project),
                "version": str(source.get("version") or "latest"),
            }
        else:
            env[item["name"]] = item.get("value", "")
    return {
        "image": box.get("image", ""),
        "command": list(box.get("command") or []),
        "args": list(box.get("args") or []),
        "env": env,
        "secret_env": secret_env,
        "cpu": cpu(limits.get("cpu") or DEFAULTS["cpu"]),
        "memory": memory(limits.get("memory") or DEFAULTS["memory"]),
        "timeout": duration(task.get("timeout") or DEFAULTS["timeout"]),
        "max_retries": int(task.get("maxRetries", DEFAULTS["max_retries"])),
        "task_count": int(execution.get("taskCount") or DEFAULTS["task_count"]),
        "parallelism": int(execution.get("parallelism") or DEFAULTS["parallelism"]),
        "service_account": task.get("serviceAccount", ""),
        "labels": dict(job.get("labels") or {}),
    }


def summary(job, project):
    """What the info module returns per job: names, the owned view, the latest execution."""
    latest = job.get("latestCreatedExecution") or {}
    return {
        "name": short_name(job.get("name")),
        "resource_name": job.get("name"),
        "spec": view(job, project),
        "execution_count": int(job.get("executionCount") or 0),
        "latest_execution": {
            "name": short_name(latest.get("name")),
            "create_time": latest.get("createTime"),
            "completion_time": latest.get("completionTime"),
            "completion_status": latest.get("completionStatus"),
        }
        if latest
        else None,
        "update_time": job.get("updateTime"),
        "resource": job,
    }


def apply(job, spec):
    """A copy of `job` (a Job resource, possibly {}) with the owned fields of `spec` set; for create/PATCH."""
    body = copy.deepcopy(job or {})
    for key in OUTPUT_ONLY:
        body.pop(key, None)
    body.pop("name", None)
    execution = body.setdefault("template", {})
    task = execution.setdefault("template", {})
    containers = task.setdefault("containers", [{}])
    if not containers:
        containers.append({})
    box = containers[0]
    box["image"] = spec["image"]
    for key in ("command", "args"):
        if spec[key]:
            box[key] = list(spec[key])
        else:
            box.pop(key, None)
    env = [{"name": k, "value": v} for k, v in sorted(spec["env"].items())]
    env += [
        {"name": k, "valueSource": {"secretKeyRef": {"secret": v["secret"], "version": v["version"]}}}
        for k, v in sorted(spec["secret_env"].items())
    ]
    if env:
        box["env"] = env
    else:
        box.pop("env", None)
    limits = box.setdefault("resources", {}).setdefault("limits", {})
    limits["cpu"] = spec["cpu"]
    limits["memory"] = spec["memory"]
    task["timeout"] = spec["timeout"]
    task["maxRetries"] = spec["max_retries"]
    if spec["service_account"]:
        task["serviceAccount"] = spec["service_account"]
    else:
        task.pop("serviceAccount", None)
    execution["taskCount"] = spec["task_count"]
    execution["parallelism"] = spec["parallelism"]
    if spec["labels"]:
        body["labels"] = dict(spec["labels"])
    else:
        body.pop("labels", None)
    return body


def service_urls(api, project, location, name):
    """(exists, uri, urls) of a Cloud Run service: where the jobs find the CloudAct API."""
    url = "%s/%s/services/%s" % (BASE, parent(project, location), name)
    service = api.request("GET", url, "Cloud Run service %s" % name, allow_missing=True) or {}
    urls = list(service.get("urls") or [])
    uri = service.get("uri") or (urls[0] if urls else "")
    return bool(service), uri, urls or ([uri] if uri else [])
