# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.cloud_run_execution_info: read Cloud Run job executions on the controller
(module_utils/cloud_run_executions.py), in the run's environment."""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.cloudact.gcp.plugins.module_utils import cloud_run_executions as runs
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = runs.INFO_ARGUMENT_SPEC

    def act(self, args):
        runs.check_info_options(args)
        env = self.environment()
        p = dict(args, project=env.project, location=args["location"] or env.region)
        return runs.read_executions(self.client(), p)
