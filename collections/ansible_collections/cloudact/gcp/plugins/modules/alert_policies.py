#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: alert_policies
short_description: Converge an environment's Cloud Monitoring alert policies derived from the job catalog
description:
  - Converges, in place and one write at a time, the Cloud Monitoring (v3) alert policies of one
    environment (O(owner)) to O(policies) (the C(cloudact.gcp.policy_entries) filter's result, one per
    catalog job). A policy is this environment's when its C(userLabels) hold C(managed_by=cloudact-toolkit)
    and C(cloudact_env=<owner>) (one list call with C(filter=user_label.managed_by="cloudact-toolkit" AND
    user_label.cloudact_env="<owner>")); it is found by its display name among them. Server-assigned IDs are
    never guessed, and a policy without both labels is never touched.
  - A V(failed) policy has one condition, Cloud Run's
    C(run.googleapis.com/job/completed_execution_count) with C(metric.labels.result="failed") for the
    job's C(resource.labels.job_name) on C(resource.type="cloud_run_job") (executions that failed after
    their retries, not task attempts) - threshold > 0 over C(ALIGN_SUM) in 300 s windows, no
    cross-series reducer, C(duration) 60 s, C(EVALUATION_MISSING_DATA_INACTIVE) - and
    C(alertStrategy.autoClose) 1800 s, with the userLabels C(cloudact_job=<shortcut>) and
    C(cloudact_alert=failed).
  - An update is a PATCH with an C(updateMask) of the changed fields; each condition keeps its
    server-assigned C(name).
  - O(policies[].notification_channels) are display names of the environment's channels
    (M(cloudact.gcp.notification_channels) converges them first); in check mode a channel that does not exist
    yet is planned by its name.
  - With O(prune), this environment's policies that O(policies) does not list are deleted.
version_added: 0.2.0
author: CloudAct platform team (!UNKNOWN)
options:
  policies:
    description: The policies of the environment.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The display name, unique within the environment.
        type: str
        required: true
      kind:
        description: The condition - V(failed), an execution of O(policies[].job) failed after its retries.
        type: str
        required: true
        choices: [failed]
      job:
        description: The Cloud Run job's name.
        type: str
        required: true
      shortcut:
        description: The job's catalog shortcut (the userLabel C(cloudact_job)).
        type: str
        required: true
      severity:
        description: The policy's severity.
        type: str
        required: true
        choices: [CRITICAL, ERROR, WARNING]
      documentation:
        description: The markdown sent with each notification.
        type: str
        required: true
      notification_channels:
        description: Display names of the environment's notification channels.
        type: list
        elements: str
        default: []
      enabled:
        description: Whether the policy is evaluated.
        type: bool
        default: true
  owner:
    description: The environment whose policies these are (C(cloudact_env)); an empty one is refused.
    type: str
    required: true
  prune:
    description: Also delete this environment's policies that O(policies) does not list.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
extends_documentation_fragment:
  - cloudact.gcp.gcp.environment
  - ansible.builtin.action_common_attributes
seealso:
  - module: cloudact.gcp.notification_channels
  - plugin: cloudact.gcp.policy_entries
    plugin_type: filter
    description: The catalog's jobs as the entries of this action.
  - name: Alert policies (Cloud Monitoring API v3)
    description: projects.alertPolicies.
    link: https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.alertPolicies
"""

EXAMPLES = r"""
# roles/cloudact_alerts/tasks/main.yml
- name: Converge a failure alert policy per catalog job
  cloudact.gcp.alert_policies:
    policies: "{{ cloudact_environment_model | cloudact.gcp.policy_entries }}"
    owner: "{{ cloudact_env }}"
    prune: "{{ cloudact_alerts_prune | bool }}"
  register: cloudact_alerts_policies_result
"""

RETURN = r"""
policies:
  description: One result per listed policy, then per unlisted policy of the environment.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: The display name., type: str, returned: always}
    job: {description: The Cloud Run job (listed policies)., type: str, returned: when listed}
    kind: {description: The condition kind (listed policies)., type: str, returned: when listed}
    operation:
      description: What was done (would be, in check mode).
      type: str
      returned: always
      choices: [create, update, delete, none]
    changed: {description: Whether it was (would be) written., type: bool, returned: always}
    changed_fields:
      description:
        - The fields that differ - C(display_name), C(documentation), C(severity), C(enabled), C(combiner),
          C(conditions), C(notification_channels), C(auto_close), C(user_labels).
      type: list
      elements: str
      returned: always
    spec:
      description: The compared fields after the change (channels by display name).
      type: dict
      returned: always
    resource_name:
      description: C(projects/<p>/alertPolicies/<id>), once it exists.
      type: str
      returned: when it exists
    unlisted:
      description: True for a policy of the environment that O(policies) does not list.
      type: bool
      returned: when true
"""
