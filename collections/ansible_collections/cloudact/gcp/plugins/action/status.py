# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.status: the status report of `make status VIA=ansible`, with module_utils/status.py."""

from __future__ import annotations

from typing import ClassVar

from ansible.errors import AnsibleActionFail
from ansible_collections.cloudact.gcp.plugins.module_utils import status
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(
        strict=dict(type="bool", default=False),
        grace_minutes=dict(type="int", default=10),
    )

    def act(self, args):
        report = status.of(self.environment(), args["grace_minutes"])
        self.say(report["heading"], *report["lines"], *report["notes"])
        out = {"changed": False, "report": report}
        if args["strict"] and report["problem"]:
            raise AnsibleActionFail(report["strict_message"], result=out)
        return out
