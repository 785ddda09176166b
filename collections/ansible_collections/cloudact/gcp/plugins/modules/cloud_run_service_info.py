#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_run_service_info
short_description: Read a Cloud Run service's URL (Admin API v2)
description:
  - Reads one Cloud Run service and returns its URL, e.g. to find the CloudAct API that the
    jobs call. Changes nothing; runs in check mode too.
version_added: 0.1.0
author: CloudAct platform team (!UNKNOWN)
options:
  name:
    description: Service ID.
    type: str
    required: true
  location:
    description: Region of the service.
    type: str
    required: true
    aliases: [region]
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
- name: Find the API's URL
  cloudact.gcp.cloud_run_service_info:
    project: cloudact-testing-1
    location: us-central1
    auth_kind: application
    name: cloudact-api-service-test
  register: api_service
"""

RETURN = r"""
exists:
  description: Whether the service exists.
  returned: always
  type: bool
uri:
  description: The service's main URL (empty when it does not exist or has none yet).
  returned: always
  type: str
  sample: https://cloudact-api-service-test-abc123-uc.a.run.app
urls:
  description: Every URL of the service.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.cloudact.gcp.plugins.module_utils import cloud_run
from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import ApiError, GcpApi, gcp_module


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        location=dict(type="str", required=True, aliases=["region"]),
    )
    module = gcp_module(argument_spec, supports_check_mode=True)
    p = module.params
    try:
        api = GcpApi(module, "cloudact-cloud-run")
        exists, uri, urls = cloud_run.service_urls(api, p["project"], p["location"], p["name"])
    except ApiError as exc:
        module.fail_json(msg=str(exc), status=exc.status, reason=exc.reason)
    module.exit_json(changed=False, exists=exists, uri=uri, urls=urls)


if __name__ == "__main__":
    main()
