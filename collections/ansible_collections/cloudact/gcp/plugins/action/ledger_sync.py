# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.ledger_sync: append Cloud Run's record of executions to the execution ledger, on the
controller (module_utils/ledger_sync.py)."""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.cloudact.gcp.plugins.module_utils import ledger, ledger_sync
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(
        jobs=dict(type="list", elements="dict", required=True),
        runs=dict(type="list", elements="dict"),
        location=dict(type="str"),
        environment=dict(type="str", required=True),
        trigger_account=dict(type="str", default=""),
        dataset=dict(type="str", default=ledger.DATASET),
        best_effort=dict(type="bool", default=False),
    )

    def act(self, args):
        env = self.environment()
        return ledger_sync.sync(
            self.client(),
            env.project,
            args["location"] or env.region,
            args["jobs"],
            args["environment"],
            trigger_account=args["trigger_account"],
            dataset=args["dataset"],
            runs=args["runs"],
            check=self.check_mode,
            diff=self.diff,
            best_effort=args["best_effort"],
        )
