# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.cloudact_api_info: read the CloudAct API's /health and bootstrap status on the controller.

The calls are module_utils/cloudact_api.py's; the root key is read from Secret Manager with the run's
credentials and censored from the result (it is never returned or logged).
"""

from __future__ import annotations

from typing import ClassVar

from ansible.module_utils.common.parameters import remove_values
from ansible_collections.cloudact.gcp.plugins.module_utils import cloudact_api
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(
        api_url=dict(type="str", required=True),
        root_key_secret=dict(type="str", no_log=False),  # a secret's ID, not its value
        timeout=dict(type="float", default=cloudact_api.TIMEOUT),
    )

    def act(self, args):
        base = cloudact_api.base_url(args["api_url"])
        api = self.client()
        result = {"changed": False, "health": cloudact_api.health(api, base, args["timeout"])}
        if not args["root_key_secret"]:
            return result
        project = self.environment().project
        result["bootstrap"], key = cloudact_api.bootstrap_status(
            api, base, project, args["root_key_secret"], args["timeout"]
        )
        return remove_values(result, {key} if key else set())
