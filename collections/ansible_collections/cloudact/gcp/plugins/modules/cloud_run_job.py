#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_run_job
short_description: Create, update in place, or delete a Cloud Run job (Admin API v2)
description:
  - Converges one Cloud Run job to the given container spec. Reads the job, compares the
    fields this module owns (normalised, so server defaults do not count as changes), and
    acts only on a difference.
  - An existing job is updated in place with a PATCH (the job keeps its executions and
    their history); it is never deleted and recreated.
  - Waits for the long-running operation of a create, update or delete.
  - Supports check mode and diff mode (before/after of the owned fields).
  - Authenticates like google.cloud's modules (same options and C(GCP_*) environment
    fallbacks) but with one authorised session per run, and retries 429, 5xx and
    connection errors with jittered backoff until O(request_deadline).
  - With O(jobs), converges several jobs in one run (one session; one list call reads them
    all, so a no-change converge of N jobs costs one request instead of N, and one token).
version_added: 0.1.0
author: CloudAct platform team
options:
  state:
    description:
      - V(present) creates or updates the job; V(absent) deletes it (with its executions).
    type: str
    choices: [present, absent]
    default: present
  image:
    description: Container image. Required to create a job.
    type: str
  command:
    description: Container entrypoint, e.g. V([python, -m, jobs.daily.alerts_daily]). V([]) clears it.
    type: list
    elements: str
  args:
    description: Container arguments. V([]) clears them.
    type: list
    elements: str
  env:
    description:
      - "Plain environment variables, V(NAME: value). Owns every plain variable of the
        container when set (others are removed). Never put secrets here; use O(secret_env)."
    type: dict
  secret_env:
    description:
      - Environment variables read from Secret Manager at execution start, V(NAME) to a
        secret ID (or V(projects/P/secrets/S)) or to V({secret, version}). Only the
        reference is stored in the job, never the value. Owns every secret variable when set.
    type: dict
  cpu:
    description: CPU limit, e.g. V("1"), V("2"), V(1000m).
    type: str
  memory:
    description: Memory limit, e.g. V(512Mi), V(2Gi).
    type: str
  timeout:
    description: Task timeout as seconds or a duration (V(600s), V(15m), V(1h)).
    type: raw
  max_retries:
    description: Retries of a failed task before the execution fails.
    type: int
  task_count:
    description: Tasks per execution.
    type: int
  parallelism:
    description: Tasks run at once; V(0) means as many as possible.
    type: int
  service_account:
    description: Email of the service account the job runs as.
    type: str
  labels:
    description: Labels to set on the job. Other labels are kept unless O(purge_labels).
    type: dict
  purge_labels:
    description: Remove labels not listed in O(labels).
    type: bool
    default: false
extends_documentation_fragment:
  - google.cloud.gcp
  - cloudact.gcp.gcp
  - cloudact.gcp.gcp.batch
seealso:
  - module: cloudact.gcp.cloud_run_job_info
  - module: cloudact.gcp.cloud_scheduler_job
"""

EXAMPLES = r"""
- name: Converge the alerts job
  cloudact.gcp.cloud_run_job:
    project: cloudact-testing-1
    location: us-central1
    auth_kind: serviceaccount
    service_account_file: ~/keys/cloudact-testing-1.json
    name: cloudact-daily-alerts
    image: us-central1-docker.pkg.dev/cloudact-testing-1/cloudact/cloudact-jobs-stage:latest
    command: [python, -m, jobs.daily.alerts_daily]
    env:
      GCP_PROJECT_ID: cloudact-testing-1
      ENVIRONMENT: staging
    secret_env:
      CA_ROOT_API_KEY: ca-root-api-key-test
    cpu: "1"
    memory: 2Gi
    timeout: 30m
    max_retries: 1
    service_account: cloudact-jobs@cloudact-testing-1.iam.gserviceaccount.com
    labels:
      managed-by: cloudact-toolkit

- name: Converge a catalog in one run, removing cloudact-* jobs it does not list
  cloudact.gcp.cloud_run_job:
    project: cloudact-testing-1
    location: us-central1
    auth_kind: application
    jobs:
      - name: cloudact-daily-alerts
        image: us-central1-docker.pkg.dev/cloudact-testing-1/cloudact/cloudact-jobs-stage:latest
        command: [python, -m, jobs.daily.alerts_daily]
        timeout: 30m
      - name: cloudact-bootstrap
        state: absent
    purge_prefix: cloudact-

- name: Remove a legacy job
  cloudact.gcp.cloud_run_job:
    project: cloudact-testing-1
    location: us-central1
    auth_kind: application
    name: cloudact-bootstrap
    state: absent
"""

RETURN = r"""
jobs:
  description: With O(jobs), one result per job (listed, then purged), each with the keys below and C(name).
  returned: with O(jobs)
  type: list
  elements: dict
operation:
  description: What was done (or would be, in check mode).
  returned: with O(name)
  type: str
  choices: [create, update, delete, none]
  sample: update
changed_fields:
  description: Owned fields that differ between the job and the requested spec.
  returned: with O(name)
  type: list
  elements: str
  sample: [timeout]
spec:
  description: The owned fields of the job after the run (in check mode, as they would be); V({}) when absent.
  returned: with O(name)
  type: dict
  sample: {image: "img:1", command: [python, -m, jobs.daily.alerts_daily], timeout: 1800s, max_retries: 1}
job:
  description: The job resource as the API returned it after the change (the read one when unchanged).
  returned: with O(name), when the job exists and not in check mode
  type: dict
diff:
  description: Before and after of the changed owned fields (with O(jobs), a list, one per changed job).
  returned: in diff mode
  type: raw
"""

import copy

from ansible_collections.cloudact.gcp.plugins.module_utils import cloud_run
from ansible_collections.cloudact.gcp.plugins.module_utils.batch import (
    batch_module,
    converge_all,
    field_diff,
    met_on_create,
    plan,
)
from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import (
    ApiError,
    changed_fields,
    cpu,
    duration,
    memory,
)


def get_job(api, project, location, name):
    return api.request(
        "GET", cloud_run.job_url(project, location, name), "Cloud Run job %s" % name, allow_missing=True
    )


def create_job(api, project, location, name, spec, env=None):
    """jobs.create, never sent twice blindly: after a lost answer (or a 409) the job of that name is
    adopted only when it is this environment's and has `spec`; anything else is refused."""
    what = "Cloud Run job %s (create)" % name

    def met(_lost=None):
        found = get_job(api, project, location, name)
        if found is None:
            return None
        return {
            "adopted": met_on_create(cloud_run, name, found, env, spec, lambda j: cloud_run.view(j, project))
        }

    try:
        op = api.request(
            "POST",
            cloud_run.jobs_url(project, location),
            what,
            json=cloud_run.apply({}, spec),
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
    return api.wait_operation(op, cloud_run.BASE, what)


def update_job(api, project, location, name, current, spec):
    """A PATCH carrying the etag read. Resent after a lost answer, it meets 409 ABORTED when the first
    one went through: the job is read again, and what it shows then is the answer when it has `spec`."""
    what = "Cloud Run job %s (update)" % name
    try:
        op = api.request(
            "PATCH", cloud_run.job_url(project, location, name), what, json=cloud_run.apply(current, spec)
        )
    except ApiError as exc:
        if exc.status != 409:
            raise
        now = get_job(api, project, location, name)
        if now is None or changed_fields(cloud_run.view(now, project), spec):
            raise ApiError(
                "%s: the job changed since it was read (%s); nothing more was changed: run the converge "
                "again" % (what, str(exc).split(": ", 1)[-1]),
                409,
                "ABORTED",
            ) from None
        return now
    return api.wait_operation(op, cloud_run.BASE, what)


def delete_job(api, project, location, name):
    what = "Cloud Run job %s (delete)" % name
    op = api.request("DELETE", cloud_run.job_url(project, location, name), what, allow_missing=True)
    if op is None:  # deleted by someone else meanwhile
        return {}
    return api.wait_operation(op, cloud_run.BASE, what)


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
    base = (
        copy.deepcopy(current_spec)
        if current_spec
        else dict(cloud_run.DEFAULTS, image="", command=[], args=[])
    )
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
    before = cloud_run.view(current, project) if current else {}
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


def main():
    converge_all(batch_module(JOB_OPTIONS), JOB_OPTIONS, cloud_run, converge, check=check_options)


if __name__ == "__main__":
    main()
