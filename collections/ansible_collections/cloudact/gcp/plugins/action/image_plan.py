# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.image_plan: what `make image` would build and push, checked before anything changes."""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.cloudact.gcp.plugins.module_utils import image
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(
        release=dict(type="str", default=""),
        dirty=dict(type="bool", default=False),
        force=dict(type="bool", default=False),
    )

    def act(self, args):
        built = self.environment()
        plan = image.plan(
            built.client(), built.image_facts(), built.root, args["release"], args["dirty"], args["force"]
        )
        self.say(*plan["lines"])
        return {"changed": False, "plan": plan, "lines": plan["lines"]}
