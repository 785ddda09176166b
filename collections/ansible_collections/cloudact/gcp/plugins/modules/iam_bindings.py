#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: iam_bindings
short_description: Converge the IAM bindings of projects, accounts, secrets, datasets and Cloud Run jobs
description:
  - Converges, in place and in order, the (role, member) pairs of each resource of O(resources),
    a project (Resource Manager v1), a service account (IAM v1), a Secret Manager secret, a Cloud Run v2
    job (C(getIamPolicy/setIamPolicy)), or a BigQuery dataset (its access entries, through
    C(datasets.get/patch) with the dataset's etag).
  - Read-modify-write with the policy's etag and C(requestedPolicyVersion=3), so conditional bindings
    and everything else others put in a policy survive; a concurrent change (409 ABORTED, or 412 on a
    dataset) is retried from a fresh read.
  - On each resource it adds the pairs O(resources[].bindings) lists that the resource lacks, and
    removes the pairs of O(resources[].managed_members) in the roles it manages on that kind of
    resource that the entry does not list. Nothing else is touched. The roles it manages
    are, per kind, V(project) C(roles/bigquery.jobUser), V(account) C(roles/iam.serviceAccountUser),
    V(secret) C(roles/secretmanager.secretAccessor), V(job) C(roles/run.invoker), V(dataset) V(READER)
    and V(WRITER) (C(roles/bigquery.dataViewer) and C(roles/bigquery.dataEditor)); a binding in another
    role is refused before any request.
  - The O(resources[].legacy) pairs a resource holds are reported (RV(resources[].legacy)) and removed
    only with O(prune).
  - A dataset that does not exist yet is left for later (RV(resources[].deferred)), not an error (a
    fresh environment's C(organizations) dataset is created by the first C(bootstrap) run); the
    C(cloudact.gcp.access_deferred) filter tells a play to converge again after it.
  - Every entry is checked before any request (each resource listed once, each member C(TYPE:ID), a
    dataset's members C(serviceAccount:) or C(user:)); a bad one fails naming it and what is valid.
  - Supports check mode (the plan, each pair to add or remove per resource; a resource that does not
    exist yet is planned from an empty policy) and diff mode (per changed resource, the pairs it looks at
    before and after).
  - "Why the toolkit's bindings, per Google's docs:
    a job's runtime account needs roles/secretmanager.secretAccessor on each secret it mounts
    (https://cloud.google.com/run/docs/configuring/jobs/secrets);
    a job run on a schedule needs roles/run.invoker on the job for the account Cloud Scheduler mints
    the OAuth token for, and whoever creates or updates the trigger needs iam.serviceAccounts.actAs
    on that account, which roles/iam.serviceAccountUser on the account grants
    (https://cloud.google.com/run/docs/execute/jobs-on-schedule,
    https://cloud.google.com/scheduler/docs/http-target-auth);
    deploying a job that runs as an account needs actAs on it too
    (https://cloud.google.com/run/docs/securing/service-identity);
    BigQuery data access is granted per dataset, and running a query job needs
    bigquery.jobs.create on the project, which roles/bigquery.jobUser grants
    (https://cloud.google.com/bigquery/docs/access-control)."
  - Google documents that IAM changes can take minutes to apply
    (https://cloud.google.com/iam/docs/access-change-propagation); RV(granted) lists what this run
    added, for the converging actions' C(recent_grants) option (the C(cloudact.gcp.recent_grants)
    filter), so that a later PERMISSION_DENIED is named as propagation.
version_added: 0.2.0
author: CloudAct platform team (!UNKNOWN)
options:
  resources:
    description:
      - The resources to converge, in order (the C(resources) or the C(jobs) of the
        M(cloudact.gcp.access_plan) filter's result).
    type: list
    elements: dict
    required: true
    suboptions:
      kind:
        description: The kind of resource.
        type: str
        required: true
        choices: [project, secret, job, dataset, account]
      name:
        description:
          - What the API addresses - the project ID, the secret ID or the job name (in the environment's
            project, the job in O(location)), the dataset ID, the account's email.
        type: str
        required: true
      bindings:
        description:
          - The pairs the resource must hold. Each role must be one this action manages on the kind.
          - For a dataset, V(READER) or V(WRITER) (or the predefined role that is the same).
        type: list
        elements: dict
        default: []
        suboptions:
          role:
            description: The role, for example V(roles/secretmanager.secretAccessor).
            type: str
            required: true
          member:
            description: The IAM member, for example V(serviceAccount:NAME@PROJECT.iam.gserviceaccount.com).
            type: str
            required: true
      managed_members:
        description:
          - The members whose pairs in the managed roles this converge owns on the resource; such a pair
            not in O(resources[].bindings) is removed. Other members' pairs are never touched.
          - By default the members named in O(resources[].bindings).
        type: list
        elements: str
      legacy:
        description:
          - Pairs (any role) reported when the resource holds them and removed only with O(prune), for
            example the project-wide grants of scripts this deployment replaced.
        type: list
        elements: dict
        default: []
        suboptions:
          role:
            description: The role.
            type: str
            required: true
          member:
            description: The IAM member.
            type: str
            required: true
  prune:
    description: Also remove the O(resources[].legacy) pairs the resources hold.
    type: bool
    default: false
  location:
    description: Region of the Cloud Run jobs; by default the environment's (C(cloudact_gcp_region)).
    type: str
    aliases: [region]
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
extends_documentation_fragment:
  - cloudact.gcp.gcp.environment
  - ansible.builtin.action_common_attributes
seealso:
  - module: cloudact.gcp.service_accounts
  - plugin: cloudact.gcp.access_plan
    plugin_type: filter
    description: The accounts and bindings the job catalog implies.
"""

EXAMPLES = r"""
- name: The runtime account may read the secret, the trigger account may run the job
  cloudact.gcp.iam_bindings:
    resources:
      - kind: secret
        name: ca-root-api-key-stage
        bindings:
          - role: roles/secretmanager.secretAccessor
            member: serviceAccount:cloudact-jobs@cloudact-stage.iam.gserviceaccount.com
      - kind: job
        name: cloudact-daily-alerts
        bindings:
          - role: roles/run.invoker
            member: serviceAccount:cloudact-scheduler@cloudact-stage.iam.gserviceaccount.com
  register: bindings

# roles/cloudact_access/tasks/main.yml: before the jobs exist, what the catalog implies
- name: Converge the project, account, secret and dataset bindings
  cloudact.gcp.iam_bindings:
    resources: "{{ cloudact_access.resources }}"
    prune: "{{ cloudact_access_prune_legacy }}"
  register: cloudact_access_resources_result

# roles/cloudact_access/tasks/jobs.yml: after the jobs, their own policies
- name: Converge the jobs' policies
  cloudact.gcp.iam_bindings:
    resources: "{{ cloudact_access.jobs }}"
    location: "{{ cloudact_gcp_region }}"
  register: cloudact_access_jobs_result
"""

RETURN = r"""
resources:
  description: Each resource of O(resources), in order, and its change.
  returned: always
  type: list
  elements: dict
  contains:
    kind: {description: The kind of resource., type: str, returned: always}
    name: {description: Its name., type: str, returned: always}
    add:
      description: The pairs added (would be, in check mode), each C({role, member}).
      type: list
      elements: dict
      returned: always
    remove:
      description: The pairs removed (would be, in check mode), each C({role, member}).
      type: list
      elements: dict
      returned: always
    legacy:
      description: The O(resources[].legacy) pairs the resource holds and keeps (without O(prune)).
      type: list
      elements: dict
      returned: always
    changed: {description: Whether its policy was (would be) written., type: bool, returned: always}
    deferred:
      description: Why it was left for later (a dataset that does not exist yet); empty otherwise.
      type: str
      returned: always
granted:
  description:
    - V(<role> <member> on <kind> <name>) of each pair this run added; empty in check mode.
    - The C(cloudact.gcp.recent_grants) filter joins those of several results.
  returned: always
  type: list
  elements: str
  sample:
    - >-
      roles/run.invoker serviceAccount:cloudact-scheduler@cloudact-stage.iam.gserviceaccount.com
      on job cloudact-daily-alerts
"""
