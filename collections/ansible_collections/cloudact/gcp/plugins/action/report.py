# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.report: `make report`, the static HTML page (module_utils/report_html.py)."""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.cloudact.gcp.plugins.module_utils import report_page
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(
        days=dict(type="str", default="30"),
        out=dict(type="str", default=""),
        grace_minutes=dict(type="int", default=10),
        dataset=dict(type="str", default="cloudact_ops"),
    )

    def act(self, args):
        days = report_page.check_days(args["days"])  # before any call
        built = self.environment()
        env = built.word
        out = report_page.out_path(args["out"], str(built.root), built.name)
        made = report_page.build(
            built.client(),
            env=env,
            project=built.project,
            region=built.region,
            catalog_jobs=built.jobs,
            days=days,
            grace_seconds=args["grace_minutes"] * 60,
            trigger_account=built.get("cloudact_trigger_account", "") or "",
            dataset=args["dataset"],
            image_facts=built.image_facts(),
        )
        if self.check_mode:  # the page is built, not written
            self.say(made["line"] + f" -> {out} (check mode: not written)", *made["notes"])
        else:
            size = report_page.write(out, made["html"])
            self.say(made["line"] + f" -> {out} ({size // 1024} KiB)", *made["notes"])
        return {
            "changed": False,  # a page on this machine; nothing in the environment
            "path": str(out),
            "rows": made["rows"],
            "source": made["source"],
        }
