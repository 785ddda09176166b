#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bigquery_dataset_info
short_description: List the BigQuery datasets of the environment's project
description:
  - Lists the datasets of the environment's project (BigQuery v2 C(datasets.list), every page) and
    returns their IDs, sorted; with O(suffix), only those whose ID ends with it (the release counts
    the organization datasets C(<org>_<env>) this way).
  - Changes nothing; runs in check mode too.
version_added: 0.2.0
author: CloudAct platform team (!UNKNOWN)
options:
  suffix:
    description: Only datasets whose ID ends with this text (for example V(_prod)); empty for every dataset.
    type: str
    default: ""
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
extends_documentation_fragment:
  - cloudact.gcp.gcp.environment
  - ansible.builtin.action_common_attributes
seealso:
  - module: cloudact.gcp.cloudact_api_info
"""

EXAMPLES = r"""
- name: Count the organization datasets of this environment
  cloudact.gcp.bigquery_dataset_info:
    suffix: "_{{ cloudact_secret_suffix }}"
  register: org_datasets

- name: Show them
  ansible.builtin.debug:
    msg: "{{ org_datasets.datasets | length }} org datasets: {{ org_datasets.datasets | join(', ') }}"
"""

RETURN = r"""
datasets:
  description: The IDs of the datasets found (ending with O(suffix)), sorted.
  returned: always
  type: list
  elements: str
  sample: [acme_prod, globex_prod]
"""
