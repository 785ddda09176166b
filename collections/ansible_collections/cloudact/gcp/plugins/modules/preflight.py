#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: preflight
short_description: The checks before any change, and the auth facts of the play's modules
description:
  - Runs on the controller (an action plugin) after C(cloudact.gcp.env_facts); changes nothing.
  - For a localcloud environment (or a rehearsal), refuses to go on when localcloud does not answer.
  - Chooses the credentials (the inventory's C(cloudact_credentials_file), localcloud's issued key,
    C($GCP_SERVICE_ACCOUNT_FILE), else application default credentials) and checks the key file
    exists (C(~) expanded), is a service-account key, and is of the environment's project.
  - With O(check_secrets), checks every Secret Manager secret the catalog's jobs reference exists
    (its metadata only, never a value); in check mode a missing one is a warning.
  - With O(api_url), without C(cloudact_api_url), discovers the API URL from the API's Cloud Run service
    and prints it. A play that never calls the API (status, history, logs, report, calendar, run)
    leaves O(api_url) false, so it does not need that service to exist.
  - Sets C(cloudact_auth_kind), C(cloudact_auth_file), C(cloudact_credentials_path) and
    C(cloudact_api_url_effective). Each refusal is one line naming the value and the fix.
version_added: 0.2.0
author: CloudAct platform team (!UNKNOWN)
options:
  check_secrets:
    description: Check that the secrets the jobs reference exist.
    type: bool
    default: true
  needs:
    description:
      - >-
        What the play will do (V(converge), V(run), V(release)). The operator's own permissions
        for it are checked first with Resource Manager C(testIamPermissions) on the project; each
        one lacking is named on its own line with the predefined role that grants it
        (module_utils/access.py C(NEEDS), C(ROLE_HINTS): the product's data), before any change.
        V(converge) includes C(iam.serviceAccounts.actAs) (deploying jobs that run as the runtime
        account, triggers that mint tokens for the trigger account); V(run) includes
        C(run.jobs.runWithOverrides) (C(make run) sends overrides; C(run.jobs.run) is not enough).
    type: str
    choices: ["", converge, run, release]
    default: ""
  api_url:
    description:
      - >-
        The play calls the CloudAct API (or gives its URL to the jobs): set C(cloudact_api_url_effective),
        discovering the URL from the API's Cloud Run service when C(cloudact_api_url) is empty.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
extends_documentation_fragment:
  - cloudact.gcp.gcp.environment
  - ansible.builtin.action_common_attributes
"""

EXAMPLES = r"""
- name: Check localcloud, the credentials, the secrets and the API URL before any change
  cloudact.gcp.preflight:
    check_secrets: true
"""

RETURN = r"""
ansible_facts:
  description: cloudact_auth_kind, cloudact_auth_file, cloudact_credentials_path, cloudact_api_url_effective.
  returned: always
  type: dict
"""
