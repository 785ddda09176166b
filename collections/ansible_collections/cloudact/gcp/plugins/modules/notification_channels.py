#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: notification_channels
short_description: Converge an environment's Cloud Monitoring notification channels
description:
  - Converges, in place and one write at a time, the Cloud Monitoring (v3) notification channels of
    one environment (O(owner)) to O(channels). A channel is this environment's when its C(userLabels)
    hold C(managed_by=cloudact-toolkit) and C(cloudact_env=<owner>); it is found by its display name
    among them (one filtered list call). Server-assigned IDs are never guessed, and a channel without
    both labels is never touched.
  - Before any write, every entry is checked against the project's C(notificationChannelDescriptors)
    (an unknown type or label is refused naming the valid ones), and every secret is read (a missing
    or unreadable secret is refused naming it).
  - Sensitive labels (C(slack) C(auth_token), C(webhook_basicauth) C(password), C(webhook_tokenauth)
    C(url)) are given as a Secret Manager secret, read at converge and written into the channel,
    never returned, printed or diffed. Google returns such values partly or not at all, so every
    label is compared through the userLabel C(cloudact_digest), the first 32 hex characters of
    HMAC-SHA256 with the key C(cloudact-toolkit/<project>/<owner>/<name>) over the JSON of the
    channel's type and labels (sorted keys).
  - An update is a PATCH with an C(updateMask) of the changed fields. The type of a channel cannot
    change (refused).
  - With O(prune) or O(only_prune), this environment's channels that O(channels) does not list are
    deleted with C(force), and only when no policy of someone else (another environment, or not the
    toolkit's) names it; such a channel is kept and said so (RV(channels[].kept)).
version_added: 0.2.0
author: CloudAct platform team (!UNKNOWN)
options:
  channels:
    description: The channels of the environment (the inventory's C(cloudact_alert_channels)).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The display name, unique within the environment.
        type: str
        required: true
      type:
        description:
          - The channel type, one of the project's C(notificationChannelDescriptors), for example V(email),
            V(webhook_tokenauth), V(pubsub) or V(slack).
        type: str
        required: true
      labels:
        description:
          - The labels of the type (every label of the type is required).
          - A sensitive label is a mapping C({secret, version}) naming a Secret Manager secret (its ID in the
            environment's project, or C(projects/P/secrets/S)) and version (default V(latest)); any other
            label is its value.
        type: dict
        default: {}
      enabled:
        description: Whether the channel sends notifications.
        type: bool
        default: true
  owner:
    description: The environment whose channels these are (C(cloudact_env)); an empty one is refused.
    type: str
    required: true
  prune:
    description: Also delete this environment's channels that O(channels) does not list.
    type: bool
    default: false
  only_prune:
    description:
      - Only delete (as O(prune)); the listed channels are checked, not converged. For a play that prunes
        its channels after its policies.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: A sensitive label is shown as V((sensitive)); its change only through C(cloudact_digest).
extends_documentation_fragment:
  - cloudact.gcp.gcp.environment
  - ansible.builtin.action_common_attributes
seealso:
  - module: cloudact.gcp.alert_policies
  - name: Notification channels (Cloud Monitoring API v3)
    description: projects.notificationChannels and notificationChannelDescriptors.
    link: https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.notificationChannels
"""

EXAMPLES = r"""
- name: A webhook whose URL (with its token) is a secret
  cloudact.gcp.notification_channels:
    owner: stage
    channels:
      - name: cloudact-stage-hooks
        type: webhook_tokenauth
        labels:
          url: {secret: cloudact-alerts-webhook-test}
      - name: cloudact-stage-oncall
        type: email
        labels:
          email_address: oncall@example.com
  register: channels
"""

RETURN = r"""
channels:
  description: One result per listed channel, then per unlisted channel of the environment.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: The display name., type: str, returned: always}
    type: {description: The channel type., type: str, returned: always}
    operation:
      description: What was done (would be, in check mode).
      type: str
      returned: always
      choices: [create, update, delete, none]
    changed: {description: Whether it was (would be) written., type: bool, returned: always}
    changed_fields:
      description: The fields that differ (C(enabled), C(labels), C(cloudact_digest)).
      type: list
      elements: str
      returned: always
    spec:
      description: The compared fields after the change; a sensitive label as V((sensitive)).
      type: dict
      returned: always
    resource_name:
      description: C(projects/<p>/notificationChannels/<id>), once it exists (not in a check-mode create).
      type: str
      returned: when it exists
    verification_status:
      description: The channel's C(verificationStatus); empty when it has none (webhooks, Pub/Sub).
      type: str
      returned: always
    unlisted:
      description: True for a channel of the environment that O(channels) does not list.
      type: bool
      returned: when true
    kept:
      description: Why an unlisted channel was not pruned (a foreign policy names it).
      type: str
      returned: when kept
"""
