#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: service_accounts
short_description: Create the service accounts a deployment runs as, when missing
description:
  - Ensures each service account of O(accounts) exists in the environment's project (IAM v1
    C(projects.serviceAccounts.get), then C(create) for a missing one, its ID the email's local part).
  - Never deletes, renames or edits an account; one that exists is left as it is (RV(accounts[].operation)
    is V(none)).
  - A create whose answer is lost, or that meets 409 ALREADY_EXISTS (a concurrent run), reads the account
    instead of creating it again.
  - Every email is checked before any request (an account of the environment's project, a valid ID,
    listed once); a bad one fails naming it and what is valid.
  - Supports check mode (the accounts that would be created) and diff mode (each created account).
  - The bindings of the accounts are M(cloudact.gcp.iam_bindings)' job.
version_added: 0.2.0
author: CloudAct platform team (!UNKNOWN)
options:
  accounts:
    description:
      - The accounts, as the C(accounts) of the M(cloudact.gcp.access_plan) filter's result.
    type: list
    elements: dict
    required: true
    suboptions:
      email:
        description:
          - The account's email, V(NAME@PROJECT.iam.gserviceaccount.com), where V(PROJECT) is the
            environment's project and V(NAME) 6 to 30 lowercase letters, digits and hyphens.
        type: str
        required: true
      display_name:
        description: The display name given to the account when it is created.
        type: str
        default: ""
      description:
        description: The description given to the account when it is created.
        type: str
        default: ""
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
extends_documentation_fragment:
  - cloudact.gcp.gcp.environment
  - ansible.builtin.action_common_attributes
seealso:
  - module: cloudact.gcp.iam_bindings
  - plugin: cloudact.gcp.access_plan
    plugin_type: filter
    description: The accounts and bindings the job catalog implies.
"""

EXAMPLES = r"""
- name: Create the accounts the jobs and the triggers run as
  cloudact.gcp.service_accounts:
    accounts:
      - email: cloudact-jobs@cloudact-stage.iam.gserviceaccount.com
        display_name: CloudAct jobs
        description: Runtime account of the CloudAct Cloud Run jobs
      - email: cloudact-scheduler@cloudact-stage.iam.gserviceaccount.com
        display_name: CloudAct scheduler
  register: accounts

# roles/cloudact_access/tasks/main.yml: the accounts the catalog implies
- name: Create the accounts (never deleting one)
  cloudact.gcp.service_accounts:
    accounts: "{{ cloudact_access.accounts }}"
  register: cloudact_access_accounts_result
"""

RETURN = r"""
accounts:
  description: Each account of O(accounts), in order, and what was done.
  returned: always
  type: list
  elements: dict
  contains:
    email: {description: The account's email., type: str, returned: always}
    operation:
      description: V(create) (created, or would be in check mode) or V(none) (it exists).
      type: str
      returned: always
  sample: [{email: cloudact-jobs@cloudact-stage.iam.gserviceaccount.com, operation: none}]
"""
