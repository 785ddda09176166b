#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: env_facts
short_description: Validate a CloudAct environment and its job catalog, and set the facts the roles use
description:
  - Runs on the controller (an action plugin); changes nothing.
  - Checks that C(cloudact_env) names an inventory under O(root)C(/inventories), that the
    inventory's facts are valid (C(cloudact_environment), C(cloudact_gcp_project), the image),
    and that the catalog (C(cloudact_catalog_file)) is valid against the environment's secrets.
    Each failure is one line naming the bad value and what is valid.
  - Derives the facts an inventory leaves empty (secret names, the service account, the API's
    Cloud Run service, the image), with the same code the toolkit CLIs use.
  - For a localcloud environment (C(cloudact_localcloud)), reads localcloud's state directory
    (C($LOCALCLOUD_STATE_DIR), else C(<root>/.localcloud)) through its client contract,
    C(client-env.json) and whether C(ready.json)'s proxy answers its health check.
  - With C(REHEARSE=1) in the environment, any other inventory gets the same, with the key
    localcloud issued for the inventory's project (C(keys.json)) in place of the local one; without
    it a stage or prod play gets no client environment and no localcloud key.
version_added: 0.2.0
author: CloudAct platform team (!UNKNOWN)
options:
  root:
    description: The checkout (inventories, catalog, roles).
    type: path
    required: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
extends_documentation_fragment:
  - cloudact.gcp.gcp.controller
  - ansible.builtin.action_common_attributes
"""

EXAMPLES = r"""
- name: Validate the environment and the job catalog, and set the environment's facts
  cloudact.gcp.env_facts:
    root: "{{ role_path }}/../.."
"""

RETURN = r"""
ansible_facts:
  description: >-
    cloudact_root, cloudact_catalog ({jobs, legacy_jobs, legacy_triggers}), cloudact_client_env,
    cloudact_localcloud_state (localcloud or REHEARSE=1 only), and the derived cloudact_secrets,
    cloudact_service_account, cloudact_trigger_account, cloudact_api_service, cloudact_image_registry,
    cloudact_image_repository, cloudact_image, cloudact_supabase_secret_suffix.
  returned: always
  type: dict
"""
