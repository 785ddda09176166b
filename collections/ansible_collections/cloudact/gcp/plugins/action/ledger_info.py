# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.ledger_info: read the execution ledger's view on the controller (module_utils/ledger.py)."""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.cloudact.gcp.plugins.module_utils import ledger
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(
        dataset=dict(type="str", default=ledger.DATASET),
        job=dict(type="str"),
        days=dict(type="int"),
        limit=dict(type="int", default=0),
    )

    def act(self, args):
        env = self.environment()
        found = ledger.info(
            self.client(),
            env.project,
            args["dataset"],
            job=args["job"],
            days=args["days"],
            limit=args["limit"],
        )
        return dict(found, changed=False)
