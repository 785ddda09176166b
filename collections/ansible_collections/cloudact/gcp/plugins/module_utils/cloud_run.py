# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cloud Run Admin API v2 jobs: URLs, the owned-fields view, and the converge of one job.

The view is flat and normalised (server defaults filled in, "1000m" == "1", "2048Mi" ==
"2Gi", durations as "Ns"), so that a job created from the catalog reads back equal to
what the catalog asks for and a second converge reports no change.

`converge` brings one job to its options (JOB_OPTIONS) with the verbs below, each safe to meet a
lost answer (module_utils/verbs.py: a create looks before it leaps; a PATCH carries the etag it
read). The cloud_run_job action runs it over a batch (module_utils/batch.py); the doctor plans
with it in check mode.
"""

from __future__ import annotations

import copy

from ansible_collections.cloudact.gcp.plugins.module_utils import owner as owners
from ansible_collections.cloudact.gcp.plugins.module_utils.batch import field_diff, met_on_create, plan
from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError
from ansible_collections.cloudact.gcp.plugins.module_utils.fields import (
    changed_fields,
    cpu,
    duration,
    memory,
    short_name,
)

BASE = "https://run.googleapis.com/v2"
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


# ---- the converge of one job ----------------------------------------------------------------------


def get_job(api, project, location, name):
    return api.request("GET", job_url(project, location, name), "Cloud Run job %s" % name, allow_missing=True)


def create_job(api, project, location, name, spec, env=None):
    """jobs.create, never sent twice blindly: after a lost answer (or a 409) the job of that name is
    adopted only when it is this environment's and has `spec`; anything else is refused."""
    what = "Cloud Run job %s (create)" % name

    def met(_lost=None):
        found = get_job(api, project, location, name)
        if found is None:
            return None
        return {"adopted": met_on_create(KIND, name, found, owner_of(found), view(found, project), env, spec)}

    try:
        op = api.request(
            "POST",
            jobs_url(project, location),
            what,
            json=apply({}, spec),
            params={"jobId": name},
            look=met,
        )
    except ApiError as exc:
        found = met() if exc.status == 409 else None  # made meanwhile (by us, or another converge)
        if not found:
            raise
        op = found
    if "adopted" in op:
        return op["adopted"]
    return api.wait_operation(op, BASE, what)


def update_job(api, project, location, name, current, spec):
    """A PATCH carrying the etag read. Resent after a lost answer, it meets 409 ABORTED when the first
    one went through: the job is read again, and what it shows then is the answer when it has `spec`."""
    what = "Cloud Run job %s (update)" % name
    try:
        op = api.request("PATCH", job_url(project, location, name), what, json=apply(current, spec))
    except ApiError as exc:
        if exc.status != 409:
            raise
        now = get_job(api, project, location, name)
        if now is None or changed_fields(view(now, project), spec):
            raise ApiError(
                "%s: the job changed since it was read (%s); nothing more was changed: run the converge "
                "again" % (what, str(exc).split(": ", 1)[-1]),
                409,
                "ABORTED",
            ) from None
        return now
    return api.wait_operation(op, BASE, what)


def delete_job(api, project, location, name):
    what = "Cloud Run job %s (delete)" % name
    op = api.request("DELETE", job_url(project, location, name), what, allow_missing=True)
    if op is None:  # deleted by someone else meanwhile
        return {}
    return api.wait_operation(op, BASE, what)


def secret_refs(value, name):
    """secret_env option -> {NAME: {secret, version}}; ValueError naming the bad entry."""
    refs = {}
    for key, ref in (value or {}).items():
        if isinstance(ref, str) and ref:
            refs[key] = {"secret": ref, "version": "latest"}
        elif isinstance(ref, dict) and ref.get("secret"):
            refs[key] = {"secret": str(ref["secret"]), "version": str(ref.get("version") or "latest")}
        else:
            raise ValueError(
                "secret_env %s of job %s: expected a secret ID or {secret, version}, got %r"
                % (key, name, ref)
            )
    return refs


def desired_spec(params, current_spec):
    """The owned fields after the run: the options given, over the current (or default) values."""
    base = copy.deepcopy(current_spec) if current_spec else dict(DEFAULTS, image="", command=[], args=[])
    base.setdefault("env", {})
    base.setdefault("secret_env", {})
    base.setdefault("service_account", "")
    base.setdefault("labels", {})
    spec = dict(base)
    for key in ("image", "service_account"):
        if params[key] is not None:
            spec[key] = params[key]
    for key in ("command", "args"):
        if params[key] is not None:
            spec[key] = list(params[key])
    if params["env"] is not None:
        spec["env"] = {str(k): str(v) for k, v in params["env"].items()}
    if params["secret_env"] is not None:
        spec["secret_env"] = secret_refs(params["secret_env"], params["name"])
    if params["cpu"] is not None:
        spec["cpu"] = cpu(params["cpu"])
    if params["memory"] is not None:
        spec["memory"] = memory(params["memory"])
    if params["timeout"] is not None:
        spec["timeout"] = duration(params["timeout"])
    for option, key in (
        ("max_retries", "max_retries"),
        ("task_count", "task_count"),
        ("parallelism", "parallelism"),
    ):
        if params[option] is not None:
            spec[key] = params[option]
    if params["labels"] is not None:
        given = {str(k): str(v) for k, v in params["labels"].items()}
        spec["labels"] = given if params["purge_labels"] else dict(base["labels"], **given)
    clash = sorted(set(spec["env"]) & set(spec["secret_env"]))
    if clash:
        raise ValueError("job %s: %s set both in env and secret_env" % (params["name"], ", ".join(clash)))
    return spec


# Options of one job; also the schema of each entry of `jobs`.
JOB_OPTIONS = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    image=dict(type="str"),
    command=dict(type="list", elements="str"),
    args=dict(type="list", elements="str"),
    env=dict(type="dict"),
    secret_env=dict(type="dict"),
    cpu=dict(type="str"),
    memory=dict(type="str"),
    timeout=dict(type="raw"),
    max_retries=dict(type="int"),
    task_count=dict(type="int"),
    parallelism=dict(type="int"),
    service_account=dict(type="str"),
    labels=dict(type="dict"),
    purge_labels=dict(type="bool", default=False),
)


def check_options(p):
    name = p["name"]
    if p["timeout"] is not None:
        duration(p["timeout"])
    for key in ("max_retries", "task_count", "parallelism"):
        if p[key] is not None and p[key] < 0:
            raise ValueError("%s %d of job %s: must be 0 or more" % (key, p[key], name))


def converge(api, p, current, project, location, check, env=None):
    """Bring one job to the options `p`; (result, diff)."""
    name = p["name"]
    before = view(current, project) if current else {}
    after = None
    if p["state"] != "absent":
        after = desired_spec(p, before)
        if not current and not after["image"]:
            raise ValueError("job %s does not exist: image is required to create it" % name)
    result = plan(name, current, before, after)
    operation = result["operation"]
    if operation == "none" and after is not None:
        result["job"] = current
    elif not check and operation == "delete":
        delete_job(api, project, location, name)
    elif not check and operation == "create":
        result["job"] = create_job(api, project, location, name, after, env)
    elif not check and operation == "update":
        result["job"] = update_job(api, project, location, name, current, after)
    return result, field_diff("cloud_run_job %s" % name, result, current, before, after)
