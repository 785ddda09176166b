#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_build
short_description: Build the job image with Cloud Build from the committed tree and push it
description:
  - Runs on the controller (an action plugin) with the plan of C(cloudact.gcp.image_plan).
  - Creates the build bucket (Cloud Storage) and the Docker repository (Artifact Registry) when the
    plan says they are missing.
  - Uploads the build context (C(git archive) of the plan's revision, cut to the image's inputs, plus
    the environment's migrations under C(migrations/)) with a media upload, or a resumable one past
    8 MiB.
  - Creates the build (C(projects.locations.builds.create)) with the steps of the revision's
    C(cloudbuild-jobs.yaml) and the substitutions C(_ENV), C(_RELEASE), C(_REVISION),
    C(_REVISION_SHORT) and C(_MIGRATIONS); waits on its operation printing the build's log lines
    (Cloud Logging) as they come; prints the pushed digest.
  - A build that does not succeed fails the task naming its status, the failed step and its last
    log lines; Cloud Build pushes nothing then.
  - Check mode builds nothing.
version_added: 0.2.0
author: CloudAct platform team (!UNKNOWN)
options:
  plan:
    description: The C(plan) returned by C(cloudact.gcp.image_plan).
    type: dict
    required: true
  timeout:
    description: Seconds to wait for the build.
    type: int
    default: 1800
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
extends_documentation_fragment:
  - cloudact.gcp.gcp.environment
  - ansible.builtin.action_common_attributes
"""

EXAMPLES = r"""
- name: Build and push the job image
  cloudact.gcp.cloud_build:
    plan: "{{ cloudact_image_plan.plan }}"
"""

RETURN = r"""
image:
  description: The pushed image, C(<repository>@sha256:<digest>).
  returned: success
  type: str
digest:
  description: Its digest.
  returned: success
  type: str
tags:
  description: The tags pushed (the release and C(git-<short sha>)).
  returned: success
  type: list
  elements: str
build_id:
  description: The Cloud Build build ID.
  returned: success
  type: str
bytes_uploaded:
  description: Size of the uploaded build context.
  returned: success
  type: int
requests:
  description: HTTP requests made.
  returned: success
  type: int
"""
