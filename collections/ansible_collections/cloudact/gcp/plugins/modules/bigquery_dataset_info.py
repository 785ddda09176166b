#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""List the BigQuery datasets of a project, optionally those whose ID ends with a suffix."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: bigquery_dataset_info
short_description: List BigQuery datasets
description:
  - Lists the dataset IDs of a project (C(datasets.list), every page), optionally only those
    ending with O(suffix), e.g. the org datasets C(<org>_prod) the release check counts.
version_added: 0.1.0
author: CloudAct platform team
options:
  suffix:
    description: Only dataset IDs ending with this text.
    type: str
extends_documentation_fragment:
  - google.cloud.gcp
  - cloudact.gcp.gcp
notes:
  - Authentication options are those of google.cloud's modules.
  - Read-only; supports check mode.
"""

EXAMPLES = r"""
- name: Count the org datasets of prod
  cloudact.gcp.bigquery_dataset_info:
    project: cloudact-prod
    suffix: _prod
  register: datasets
"""

RETURN = r"""
datasets:
  description: Dataset IDs, sorted.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import ApiError, GcpApi
from ansible_collections.cloudact.gcp.plugins.module_utils.gcp_api import gcp_module as module

URL = "https://bigquery.googleapis.com/bigquery/v2/projects/%s/datasets"


def main():
    mod = module(argument_spec=dict(suffix=dict(type="str")), supports_check_mode=True)
    p = mod.params
    try:
        api = GcpApi(mod, "cloudact-bigquery")
        items = api.list_all(URL % p["project"], "datasets", "BigQuery datasets of %s" % p["project"])
    except ApiError as exc:
        mod.fail_json(msg=str(exc), status=exc.status)
    names = sorted((d.get("datasetReference") or {}).get("datasetId", "") for d in items)
    if p["suffix"]:
        names = [n for n in names if n.endswith(p["suffix"])]
    mod.exit_json(changed=False, datasets=names)


if __name__ == "__main__":
    main()
