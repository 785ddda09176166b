# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.notification_channels: converge an environment's Cloud Monitoring notification channels.

The converge is module_utils/alerts.py's; the REST calls are module_utils/monitoring.py's.
"""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.cloudact.gcp.plugins.module_utils import alerts
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(
        channels=dict(type="list", elements="dict", required=True, options=alerts.CHANNEL_OPTIONS),
        owner=dict(type="str", required=True),
        prune=dict(type="bool", default=False),
        only_prune=dict(type="bool", default=False),
    )

    def act(self, args):
        out = alerts.converge_channels(
            self.client(),
            args["channels"],
            self.environment().project,
            args["owner"],
            self.check_mode,
            prune=args["prune"] or args["only_prune"],
            only_prune=args["only_prune"],
        )
        if not self.diff:
            out.pop("diff")
        return out
