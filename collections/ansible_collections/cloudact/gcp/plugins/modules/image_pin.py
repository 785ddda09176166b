#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_pin
short_description: Resolve the inventory's image tag to the digest the jobs converge to
description:
  - Runs on the controller (an action plugin); changes nothing.
  - When C(cloudact_image) names C(cloudact_image_repository), resolves C(cloudact_image_tag)
    through Artifact Registry (C(packages.tags.get); empty tag, the newest build by
    C(dockerImages.list)) and returns C(image) as C(<repository>@sha256:<digest>). Any other
    C(cloudact_image) is returned as it is.
  - A tag that does not exist is an error naming it and the newest tags that do.
  - Prints the change of each deployed job's digest, old -> new with the tags each carries, and
    returns the stale findings (jobs on different digests, not on the tag's digest, an image whose
    C(git-<sha>) tag is behind the commits that touched the image's inputs).
version_added: 0.2.0
author: CloudAct platform team (!UNKNOWN)
options:
  jobs:
    description: The jobs to look at; default every catalog job.
    type: list
    elements: str
  deployed:
    description: The deployed jobs as C([{name, image}]) already read; default they are listed.
    type: list
    elements: dict
  allow_missing:
    description: A repository without any image answers C(missing=true) instead of failing.
    type: bool
    default: false
  one_digest:
    description: Fail, naming the jobs, when the jobs are not on one digest (the release's check).
    type: bool
    default: false
  warn_stale:
    description: Print each stale finding as a warning.
    type: bool
    default: false
  confirmed_digest:
    description:
      - The digest the operator confirmed (make's question named it, resolving the tag once).
      - With O(confirmed_of=pin) it is the digest every job is pinned to, not the tag resolved again;
        one the repository does not have fails before any change. With O(confirmed_of=deployed), when
        the jobs are pinned to another digest, fail before any change, naming both.
    type: str
    default: ""
  confirmed_of:
    description:
      - What O(confirmed_digest) is compared with. V(pin), the digest the converge pins every job
        to; V(deployed), the digest the jobs are pinned to now (what a release or a run runs).
    type: str
    choices: [pin, deployed]
    default: pin
  check_inputs:
    description:
      - Before anything else, fail naming an inventory value the jobs need that is empty or invalid
        (C(cloudact_supabase_project_ref) for migrate) and where to set it. With
        O(confirmed_of=deployed), also fail when a migrate would run an image that carries no
        migrations of this environment (its C(ai.cloudact.migrations) label, read from the registry).
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
- name: Resolve the image tag to a digest
  cloudact.gcp.image_pin:
  register: cloudact_jobs_image
"""

RETURN = r"""
image:
  description: The image the jobs converge to.
  returned: always
  type: str
pin:
  description: Whether the image was resolved to a digest.
  returned: always
  type: bool
digest:
  description: The resolved digest (empty when not pinned).
  returned: always
  type: str
tags:
  description: The tags of that digest.
  returned: always
  type: list
  elements: str
runs:
  description: The digest compared with O(confirmed_digest) (per O(confirmed_of)).
  returned: always
  type: str
missing:
  description: The repository has no image yet (with O(allow_missing)).
  returned: always
  type: bool
jobs:
  description:
    - The jobs of O(jobs) that are deployed, each C({name, image}), sorted by name (O(deployed) when
      given, else one listing of the region's jobs, whether the image is pinned or not).
    - The release refuses missing release jobs, or release jobs on different images, from it.
  returned: always
  type: list
  elements: dict
changes:
  description: One line per old digest the jobs leave.
  returned: always
  type: list
  elements: str
stale:
  description: The stale findings, each {kind, jobs, line}.
  returned: always
  type: list
  elements: dict
summary:
  description: The digest and its tags in one phrase, for prompts.
  returned: always
  type: str
"""
