#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: secret_manager_secret_info
short_description: Tell which Secret Manager secrets exist, never reading a value
description:
  - For each secret ID, reads the secret's metadata (not a version's payload), so a converge
    can refuse to reference a secret that does not exist.
  - Never accesses a payload. Changes nothing; runs in check mode too.
version_added: 0.1.0
author: CloudAct platform team (!UNKNOWN)
options:
  names:
    description: Secret IDs in O(project).
    type: list
    elements: str
    required: true
  on_missing:
    description:
      - What a missing secret does. V(fail) stops with one line naming every missing secret and
        the project; V(warn) (e.g. in check mode) only warns.
    type: str
    choices: [ignore, warn, fail]
    default: ignore
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
extends_documentation_fragment:
  - google.cloud.gcp
  - cloudact.gcp.gcp
  - cloudact.gcp.gcp.module
  - ansible.builtin.action_common_attributes
"""

EXAMPLES = r"""
- name: Check the secrets the jobs reference
  cloudact.gcp.secret_manager_secret_info:
    project: cloudact-testing-1
    auth_kind: application
    names: [ca-root-api-key-test, supabase-access-token-stage]
    on_missing: fail
  register: cloudact_secret_check
"""

RETURN = r"""
secrets:
  description: One entry per requested ID, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Secret ID.
      type: str
      returned: always
    exists:
      description: Whether the secret exists.
      type: bool
      returned: always
missing:
  description: IDs of the requested secrets that do not exist.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.cloudact.gcp.plugins.module_utils import secret_manager
from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import ApiError, GcpApi, gcp_module


def main():
    module = gcp_module(
        dict(
            names=dict(type="list", elements="str", required=True),
            on_missing=dict(type="str", default="ignore", choices=["ignore", "warn", "fail"]),
        ),
        supports_check_mode=True,
    )
    project = module.params["project"]
    try:
        found = secret_manager.existing(
            GcpApi(module, "cloudact-secret-manager"), project, module.params["names"]
        )
    except ApiError as exc:
        module.fail_json(msg=str(exc), status=exc.status, reason=exc.reason)
    missing = [s["name"] for s in found if not s["exists"]]
    if missing and module.params["on_missing"] != "ignore":
        msg = secret_manager.missing_message(missing, project)
        if module.params["on_missing"] == "fail":
            module.fail_json(msg=msg, secrets=found, missing=missing)
        module.warn(msg)
    module.exit_json(changed=False, secrets=found, missing=missing)


if __name__ == "__main__":
    main()
