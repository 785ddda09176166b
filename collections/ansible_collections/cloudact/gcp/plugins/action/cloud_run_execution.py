# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.cloud_run_execution: start (exactly one), wait for or cancel a Cloud Run job execution on
the controller (module_utils/cloud_run_executions.py), in the run's environment."""

from __future__ import annotations

from typing import ClassVar

from ansible.errors import AnsibleActionFail
from ansible_collections.cloudact.gcp.plugins.module_utils import cloud_run_executions as runs
from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = runs.ARGUMENT_SPEC
    VALIDATION: ClassVar[dict] = runs.VALIDATION

    def act(self, args):
        runs.check_options(args)
        env = self.environment()
        p = dict(args, project=env.project, location=args["location"] or env.region)
        word = next((j["shortcut"] for j in env.jobs if j["name"] == p["job"]), p["job"])
        operator = runs.Operator(self.live if p["report"] else None, word, env.name)
        api = self.client()
        try:
            return runs.execute(api, p, self.check_mode, self.diff, operator)
        except runs.Refused as exc:
            raise AnsibleActionFail(str(exc), result=dict(exc.result, lost_answers=list(api.lost))) from None
        except ApiError as exc:
            raise AnsibleActionFail(
                str(exc), result=dict(status=exc.status, reason=exc.reason, lost_answers=list(api.lost))
            ) from None

    def live(self, *lines):
        """The operator's lines as they happen (a wait takes minutes), not when the action ends."""
        self.say(*lines)
        self.flush()
