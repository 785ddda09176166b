# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.alert_policies: converge an environment's Cloud Monitoring alert policies.

The converge is module_utils/alerts.py's; the entries come from the catalog
(module_utils/converge_plan.policy_entries, the cloudact.gcp.policy_entries filter).
"""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.cloudact.gcp.plugins.module_utils import alerts
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(
        policies=dict(type="list", elements="dict", required=True, options=alerts.POLICY_OPTIONS),
        owner=dict(type="str", required=True),
        prune=dict(type="bool", default=False),
    )

    def act(self, args):
        out = alerts.converge_policies(
            self.client(),
            args["policies"],
            self.environment().project,
            args["owner"],
            self.check_mode,
            prune=args["prune"],
        )
        if not self.diff:
            out.pop("diff")
        return out
