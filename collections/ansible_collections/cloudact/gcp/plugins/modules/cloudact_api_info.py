#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the CloudAct API's health and bootstrap status (the release's validation)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cloudact_api_info
short_description: Read the CloudAct API's health and bootstrap status
description:
  - Calls C(GET /health) and, with the root key read from Secret Manager,
    C(GET /api/v1/admin/bootstrap/status) of the CloudAct API.
  - The key is read inside the module and never returned or logged.
  - A failing call is reported in the result (RV(health.ok), RV(bootstrap.ok)), not as a module failure,
    so a play can print a report of every check.
version_added: 0.1.0
author: CloudAct platform team
options:
  api_url:
    description: Base URL of the API (https://api.cloudact.ai).
    type: str
    required: true
  root_key_secret:
    description:
      - Secret Manager secret ID (in O(project)) holding the root API key.
      - Without it only /health is read.
    type: str
  secrets_exist:
    description:
      - Secret Manager secret IDs (in O(project)) that must exist; only their metadata is read, never a
        value. A missing one fails the call (before the other checks), naming every missing secret
        (as C(secret_manager_secret_info) with C(on_missing=fail) does), so the release's preflight
        takes one call.
    type: list
    elements: str
  run_jobs_location:
    description:
      - Also list the Cloud Run jobs of O(project) in this region (name and image), so that the release's
        preflight (the API answers, the release jobs exist and share one image) takes one call.
    type: str
  dataset_suffix:
    description:
      - Also list the BigQuery datasets of O(project) whose IDs end with this text (the org datasets
        C(<org>_prod) the release validation counts), so the validation checks take one call.
    type: str
  timeout:
    description: Seconds per API call.
    type: float
    default: 15
extends_documentation_fragment:
  - google.cloud.gcp
  - cloudact.gcp.gcp
notes:
  - Authentication options (for Secret Manager) are those of google.cloud's modules.
  - Read-only; supports check mode.
"""

EXAMPLES = r"""
- name: Validate the API after the release
  cloudact.gcp.cloudact_api_info:
    api_url: https://api.cloudact.ai
    root_key_secret: ca-root-api-key-prod
  register: api
"""

RETURN = r"""
health:
  description: The /health call.
  returned: always
  type: dict
  contains:
    ok: {description: Whether it answered 200 with status healthy., type: bool, returned: always}
    status_code: {description: HTTP status (0 when unreachable)., type: int, returned: always}
    body: {description: The JSON body., type: dict, returned: when it answered JSON}
    error: {description: Why it failed., type: str, returned: when not ok}
bootstrap:
  description: The bootstrap status call.
  returned: when O(root_key_secret) is set
  type: dict
  contains:
    ok: {description: Whether it answered 200., type: bool, returned: always}
    status: {description: SYNCED, OUT_OF_SYNC or NOT_BOOTSTRAPPED., type: str, returned: when ok}
    body: {description: The JSON body., type: dict, returned: when it answered JSON}
    error: {description: Why it failed., type: str, returned: when not ok}
jobs:
  description: The Cloud Run jobs in O(run_jobs_location), sorted by name.
  returned: when O(run_jobs_location) is set
  type: list
  elements: dict
  contains:
    name: {description: The job ID., type: str, returned: always}
    image: {description: The image of its (first) container., type: str, returned: always}
datasets:
  description: Dataset IDs ending with O(dataset_suffix), sorted.
  returned: when O(dataset_suffix) is set
  type: list
  elements: str
"""

import base64

from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import (
    ApiError,
    GcpApi,
    error_message,
    short_name,
)
from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import gcp_module as module

JOBS_URL = "https://run.googleapis.com/v2/projects/%s/locations/%s/jobs"
DATASETS_URL = "https://bigquery.googleapis.com/bigquery/v2/projects/%s/datasets"
SECRET_META_URL = "https://secretmanager.googleapis.com/v1/projects/%s/secrets/%s"  # noqa: S105
SECRET_URL = "https://secretmanager.googleapis.com/v1/projects/%s/secrets/%s/versions/latest:access"  # noqa: S105


def image(job):
    containers = ((job.get("template") or {}).get("template") or {}).get("containers") or [{}]
    return containers[0].get("image", "")


def read_key(api, project, secret):
    body = api.request("GET", SECRET_URL % (project, secret), "secret %s" % secret)
    return base64.b64decode(body["payload"]["data"]).decode("utf-8").strip()


def call(api, url, timeout, headers=None):
    """{ok, status_code, body?, error?} of a CloudAct API GET, under the client's retry policy."""
    try:
        response = api.send(
            "GET", url, "the CloudAct API", headers=headers, authorized=False, deadline=timeout
        )
    except ApiError as exc:
        return {"ok": False, "status_code": 0, "error": str(exc)}
    out = {"status_code": response.status_code, "ok": response.status_code == 200}
    try:
        out["body"] = response.json()
    except ValueError:
        out["body"] = {}
    if not out["ok"]:
        out["error"] = error_message(response)[0]
    return out


ARGUMENT_SPEC = dict(
    api_url=dict(type="str", required=True),
    root_key_secret=dict(type="str", no_log=False),
    secrets_exist=dict(type="list", elements="str", no_log=False),
    run_jobs_location=dict(type="str"),
    dataset_suffix=dict(type="str"),
    timeout=dict(type="float", default=15.0),
)


def main():
    run(module(argument_spec=dict(ARGUMENT_SPEC), supports_check_mode=True))


def run(mod):
    """The module's work on a GcpModule, or on the action plugin's in-process stand-in."""
    p = mod.params
    base = p["api_url"].rstrip("/")
    if not base.startswith("https://") and not base.startswith("http://"):
        mod.fail_json(msg="api_url %r: expected an https:// URL" % p["api_url"])
    gcp = GcpApi(mod, "cloudact-api-check")  # the Google calls; the CloudAct API gets no token
    health = call(gcp, base + "/health", p["timeout"])
    if health["ok"] and (health.get("body") or {}).get("status") != "healthy":
        health.update(ok=False, error="status %r" % (health.get("body") or {}).get("status"))
    result = {"changed": False, "health": health}
    if p["secrets_exist"]:
        try:
            missing = [
                name
                for name in p["secrets_exist"]
                if gcp.request(
                    "GET", SECRET_META_URL % (p["project"], name), "secret %s" % name, allow_missing=True
                )
                is None
            ]
        except ApiError as exc:
            mod.fail_json(msg=str(exc), status=exc.status)
        if missing:
            mod.fail_json(
                msg="secret(s) %s do not exist in project %s: create them (gcloud secrets create NAME) first"
                % (", ".join(missing), p["project"]),
                missing=missing,
            )
    if p["root_key_secret"]:
        try:
            key = read_key(gcp, p["project"], p["root_key_secret"])
        except (ApiError, KeyError, ValueError) as exc:
            result["bootstrap"] = {"ok": False, "status_code": 0, "error": "root key: %s" % exc}
        else:
            mod.no_log_values.add(key)
            headers = {"X-CA-Root-Key": key, "Content-Type": "application/json"}
            boot = call(gcp, base + "/api/v1/admin/bootstrap/status", p["timeout"], headers)
            if boot["ok"]:
                boot["status"] = (boot.get("body") or {}).get("status", "")
            result["bootstrap"] = boot
    if p["run_jobs_location"]:
        try:
            jobs = gcp.list_all(
                JOBS_URL % (p["project"], p["run_jobs_location"]),
                "jobs",
                "Cloud Run jobs of %s/%s" % (p["project"], p["run_jobs_location"]),
            )
        except ApiError as exc:
            mod.fail_json(msg=str(exc), status=exc.status)
        result["jobs"] = sorted(
            ({"name": short_name(j.get("name")), "image": image(j)} for j in jobs), key=lambda j: j["name"]
        )
    if p["dataset_suffix"]:
        try:
            items = gcp.list_all(
                DATASETS_URL % p["project"], "datasets", "BigQuery datasets of %s" % p["project"]
            )
        except ApiError as exc:
            mod.fail_json(msg=str(exc), status=exc.status)
        names = ((d.get("datasetReference") or {}).get("datasetId", "") for d in items)
        result["datasets"] = sorted(n for n in names if n.endswith(p["dataset_suffix"]))
    mod.exit_json(**result)


if __name__ == "__main__":
    main()
