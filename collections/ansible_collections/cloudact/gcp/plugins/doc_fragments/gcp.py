# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared documentation of cloudact.gcp's plugins.

DOCUMENTATION: what a real module (one Ansible runs as a module, in the `gcp` action group) adds to
google.cloud's auth options (module_utils/gcp_api.py). ENVIRONMENT: what every controller-side action
plugin shares (plugin_utils/controller.py). BATCH: the options of a converging action
(module_utils/batch.py).
"""

from __future__ import annotations


class ModuleDocFragment:
    # Extended after google.cloud.gcp: gcp_module() adds request_deadline and requires project.
    DOCUMENTATION = r"""
options:
  request_deadline:
    description: Seconds within which one API call, retries included, must succeed.
    type: float
    default: 120
notes:
  - O(project) is required (or C(GCP_PROJECT), or C(module_defaults) of C(group/cloudact.gcp.gcp)).
"""

    # A controller-side action plugin (plugin_utils/controller.py), documented by its module file.
    CONTROLLER = r"""
notes:
  - An action plugin that runs on the controller (no module is sent to a host), like
    C(ansible.builtin.debug); this file documents it.
attributes:
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: all
  action:
    description: Runs on the controller as an action plugin.
    support: full
  bypass_host_loop:
    description: Forces a global task that does not execute per host.
    support: none
  async:
    description: Supports being used with the C(async) keyword.
    support: none
"""

    # A controller-side action that works on the run's environment (project, region, credentials): the
    # controller fragment's note and attributes and its own (a module lists one of the two, never both;
    # Ansible refuses a fragment without options or attributes, so this one repeats them).
    ENVIRONMENT = r"""
notes:
  - An action plugin that runs on the controller (no module is sent to a host), like
    C(ansible.builtin.debug); this file documents it.
  - It works on the run's environment, built once per run by M(cloudact.gcp.env_facts) (the
    C(cloudact_env) role) from the inventory and published as the fact C(cloudact_environment_model),
    with the credentials M(cloudact.gcp.preflight) chose and checked. The project, the region and the
    credentials are the environment's; a play that has not built it fails with one line saying so.
  - Its calls follow the collection's one retry rule (transient answers are retried; a call that is
    not idempotent and whose answer is lost is never resent blindly, the resource is read first).
requirements:
  - google-auth
  - requests
attributes:
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: all
  action:
    description: Runs on the controller as an action plugin.
    support: full
  bypass_host_loop:
    description: Forces a global task that does not execute per host.
    support: none
  async:
    description: Supports being used with the C(async) keyword.
    support: none
"""

    # A real module (Ansible runs it as a module): google.cloud's auth options, the gcp action group.
    MODULE = r"""
attributes:
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
  action_group:
    description: Use C(group/cloudact.gcp.gcp) in C(module_defaults) to set the auth options once.
    support: full
    membership: [cloudact.gcp.gcp]
requirements:
  - google-auth
  - requests
"""

    # The options module_utils/batch.py adds to a converging action (cloud_run_job, cloud_scheduler_job).
    BATCH = r"""
options:
  name:
    description: Job ID (the last segment of its resource name). One of O(name) and O(jobs) is required.
    type: str
  jobs:
    description:
      - Several jobs in one run. Each entry takes the options of a single job (O(name),
        O(state), ...) and is validated like them.
    type: list
    elements: dict
  purge_prefix:
    description:
      - With O(jobs), also delete every existing job whose ID starts with this prefix and is
        not listed in O(jobs) (e.g. V(cloudact-) to prune jobs a catalog no longer has).
      - An empty prefix would select every job of the region and is refused before any request;
        leave the option out to prune nothing. With O(owner), a job another environment owns is
        never pruned.
    type: str
  owner:
    description:
      - The environment that owns what this run converges. Each job is marked as its own (a Cloud
        Run job by the label C(cloudact-env=<owner>), a Cloud Scheduler job by the end of its
        description, C([cloudact-env=<owner>])).
      - A listed job that another environment owns is refused before any change, naming both
        environments; an unlabelled one is adopted and reported (C(adopted)).
      - A create that meets an existing job of its name (after a lost answer, or a 409) adopts it
        only when it has this owner and the requested spec; anything else is refused as a takeover.
    type: str
  recent_grants:
    description:
      - What the access converge of the same run just granted (C(role member on kind name)). A
        PERMISSION_DENIED is then named as IAM propagation rather than as a fault.
    type: list
    elements: str
    default: []
  location:
    description: Region of the job; by default the environment's (C(cloudact_gcp_region)).
    type: str
    aliases: [region]
"""
