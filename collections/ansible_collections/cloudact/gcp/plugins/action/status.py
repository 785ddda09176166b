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
        env, project = self.var("cloudact_env"), self.var("cloudact_gcp_project")
        catalog_jobs = self.var("cloudact_catalog")["jobs"]
        image_facts = {k: self.var(k) for k in status.IMAGE_FACTS}
        found = status.gather(
            self.client(), project, self.var("cloudact_gcp_region"), catalog_jobs, image_facts=image_facts
        )
        report = status.report(
            catalog_jobs,
            found["jobs"],
            found["triggers"],
            found["executions"],
            found["now"],
            args["grace_minutes"] * 60,
            self.var("cloudact_trigger_account", ""),
            env,
            image=found.get("image"),
        )
        self.say(
            "status of %s (%s) at %s" % (env, project, report["now"]), *report["lines"], *report["notes"]
        )
        out = {"changed": False, "report": report}
        if args["strict"] and report["problem"]:
            raise AnsibleActionFail(report["strict_message"], result=out)
        return out
