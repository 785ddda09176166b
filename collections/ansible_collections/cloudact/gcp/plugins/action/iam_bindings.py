# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.iam_bindings: converge the IAM bindings of a list of resources, on the controller.

The model (what a resource's change is) is module_utils/access.py's; the reads and writes (read-modify-
write with the etag, requestedPolicyVersion 3, a concurrent change retried from a fresh read) are
module_utils/iam_policy.py's.
"""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.cloudact.gcp.plugins.module_utils import access, iam_policy
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction

PAIR = dict(role=dict(type="str", required=True), member=dict(type="str", required=True))


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(
        resources=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(
                kind=dict(type="str", required=True, choices=list(access.KINDS)),
                name=dict(type="str", required=True),
                bindings=dict(type="list", elements="dict", default=[], options=dict(PAIR)),
                managed_members=dict(type="list", elements="str"),
                legacy=dict(type="list", elements="dict", default=[], options=dict(PAIR)),
            ),
        ),
        prune=dict(type="bool", default=False),
        location=dict(type="str", aliases=["region"]),
    )

    def act(self, args):
        env = self.environment()
        resources = access.check_resources(args["resources"])
        return iam_policy.converge_bindings(
            self.client(),
            resources,
            env.project,
            args["location"] or env.region,
            self.check_mode,
            self.diff,
            prune=args["prune"],
        )
