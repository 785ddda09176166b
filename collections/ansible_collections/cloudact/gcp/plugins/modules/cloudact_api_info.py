#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloudact_api_info
short_description: Read the CloudAct API's health and bootstrap status
description:
  - Calls C(GET /health) of the CloudAct API and, with O(root_key_secret), C(GET
    /api/v1/admin/bootstrap/status) with the root key (the calls docs/cloudact-api.md describes).
  - The root key is read from Secret Manager (the latest version of O(root_key_secret), in the
    environment's project) inside the action, sent only to the API, and never returned or logged.
  - A failing call is reported in the result (RV(health.ok), RV(bootstrap.ok)), not as a failure of
    the task, so a play can print a report of every check. A bad O(api_url) fails the task.
  - Reads the CloudAct API only. Whether secrets exist is M(cloudact.gcp.preflight)'s check (or
    M(cloudact.gcp.secret_manager_secret_info)'s); the deployed jobs are
    M(cloudact.gcp.cloud_run_job_info)'s; the datasets are M(cloudact.gcp.bigquery_dataset_info)'s.
  - Changes nothing; runs in check mode too.
version_added: 0.1.0
author: CloudAct platform team (!UNKNOWN)
options:
  api_url:
    description: Base URL of the API, V(https://...) (the release passes C(cloudact_api_url_effective)).
    type: str
    required: true
  root_key_secret:
    description:
      - Secret Manager secret ID, in the environment's project, holding the root API key.
      - Without it only C(/health) is read.
    type: str
  timeout:
    description: Seconds per API call, its retries included.
    type: float
    default: 15
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
extends_documentation_fragment:
  - cloudact.gcp.gcp.environment
  - ansible.builtin.action_common_attributes
seealso:
  - module: cloudact.gcp.bigquery_dataset_info
  - module: cloudact.gcp.preflight
"""

EXAMPLES = r"""
- name: Validate the API after the release
  cloudact.gcp.cloudact_api_info:
    api_url: https://api.cloudact.ai
    root_key_secret: ca-root-api-key-prod
  register: api

- name: Stop when the API is not healthy
  ansible.builtin.assert:
    that: api.health.ok and api.bootstrap.status == 'SYNCED'
"""

RETURN = r"""
health:
  description: The C(/health) call.
  returned: always
  type: dict
  contains:
    ok: {description: Whether it answered 200 with status healthy., type: bool, returned: always}
    status_code: {description: HTTP status (0 when unreachable)., type: int, returned: always}
    body: {description: The JSON body., type: dict, returned: when it answered}
    error: {description: Why it failed., type: str, returned: when not ok}
bootstrap:
  description: The bootstrap status call.
  returned: when O(root_key_secret) is set
  type: dict
  contains:
    ok: {description: Whether it answered 200., type: bool, returned: always}
    status_code:
      description: HTTP status (0 when unreachable or the key could not be read).
      type: int
      returned: always
    status: {description: "SYNCED, OUT_OF_SYNC or NOT_BOOTSTRAPPED.", type: str, returned: when ok}
    body: {description: The JSON body., type: dict, returned: when it answered}
    error:
      description: Why it failed (the key could not be read, or the API's message).
      type: str
      returned: when not ok
"""
