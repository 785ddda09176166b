# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.service_accounts: create the missing service accounts of the environment's project, on
the controller (module_utils/iam_policy.py); never deletes one."""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.cloudact.gcp.plugins.module_utils import iam_policy
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(
        accounts=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(
                email=dict(type="str", required=True),
                display_name=dict(type="str", default=""),
                description=dict(type="str", default=""),
            ),
        ),
    )

    def act(self, args):
        project = self.environment().project
        iam_policy.check_accounts(args["accounts"], project)
        return iam_policy.ensure_accounts(
            self.client(), project, args["accounts"], self.check_mode, self.diff
        )
