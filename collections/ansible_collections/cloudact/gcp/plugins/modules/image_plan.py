#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_plan
short_description: What make image would build and push, checked before anything changes
description:
  - Runs on the controller (an action plugin) after C(cloudact.gcp.preflight); changes nothing.
  - Refuses uncommitted changes to the image's inputs (C(jobs/), C(requirements/jobs.txt),
    C(Dockerfile), C(cloudbuild-jobs.yaml), C(.dockerignore), and C(migrations/) on a local
    environment), naming them, unless O(dirty).
  - The release tag is O(release), else C(git describe --tags --always); C(latest) and C(git-*) are
    refused; an existing release tag is refused unless O(force).
  - The migrations are C(cloudact_migrations_source)'s C(*.sql) files; a local environment without
    one takes this repository's examples, any other is refused naming the variable.
  - Reads whether the build bucket (C(cloudact_build_bucket)) and the Artifact Registry repository
    exist and prints what will be created.
version_added: 0.2.0
author: CloudAct platform team (!UNKNOWN)
options:
  release:
    description: The release tag; empty means C(git describe --tags --always).
    type: str
    default: ""
  dirty:
    description: Build HEAD even when the image's inputs have uncommitted changes.
    type: bool
    default: false
  force:
    description: Move an existing release tag to the new build.
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
- name: Check what make image would build
  cloudact.gcp.image_plan:
    release: v1.4.0
"""

RETURN = r"""
plan:
  description: The checked plan for C(cloudact.gcp.cloud_build) (release, tags, bucket, repository, ...).
  returned: always
  type: dict
lines:
  description: The plan as printed.
  returned: always
  type: list
  elements: str
"""
