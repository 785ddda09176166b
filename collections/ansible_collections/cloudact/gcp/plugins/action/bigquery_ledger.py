# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.bigquery_ledger: converge the execution ledger on the controller (module_utils/ledger.py)."""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.cloudact.gcp.plugins.module_utils import ledger
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(
        dataset=dict(type="str", default=ledger.DATASET),
        location=dict(type="str", default="US"),
        retention_days=dict(type="int"),
    )

    def act(self, args):
        env = self.environment()
        ledger.check_converge(env.project, args["dataset"], args["location"], args["retention_days"])
        return ledger.converge(
            self.client(),
            env.project,
            dataset=args["dataset"],
            location=args["location"],
            retention_days=args["retention_days"],
            check=self.check_mode,
            diff=self.diff,
        )
