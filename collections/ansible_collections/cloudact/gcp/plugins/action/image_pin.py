# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.image_pin: the digest the jobs converge to, what changes, and whether they are stale."""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.cloudact.gcp.plugins.module_utils import image, pin, status
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction, display


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(
        jobs=dict(type="list", elements="str", default=None),
        deployed=dict(type="list", elements="dict", default=None),
        allow_missing=dict(type="bool", default=False),
        one_digest=dict(type="bool", default=False),
        warn_stale=dict(type="bool", default=False),
    )

    def act(self, args):
        facts = {k: self.var(k) for k in status.IMAGE_FACTS}
        names = args["jobs"] or [j["name"] for j in self.var("cloudact_catalog")["jobs"]]
        result = pin.resolve(
            self.client(), facts, names, deployed=args["deployed"], allow_missing=args["allow_missing"]
        )
        if args["one_digest"]:
            pin.check_one_digest(result, facts["cloudact_env"])
        self.say(*result["lines"])
        if args["warn_stale"]:
            for finding in result["stale"]:
                display.warning("stale image: %s" % finding["line"])
        result["summary"] = pin.summary(result)
        return dict(result, changed=False, short=image.short(result.get("digest")))
