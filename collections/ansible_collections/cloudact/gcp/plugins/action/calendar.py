# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.calendar: `make calendar`, each trigger's next fire times (module_utils/calendar.py)."""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.cloudact.gcp.plugins.module_utils import calendar as cal
from ansible_collections.cloudact.gcp.plugins.module_utils import cloud_scheduler
from ansible_collections.cloudact.gcp.plugins.module_utils import run_execution as rx
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(
        count=dict(type="str", default="5"),
        at=dict(type="str", default=""),
    )

    def act(self, args):
        count = cal.check_count(args["count"])  # before any call
        start = cal.check_at(args["at"])
        built = self.environment()
        env, project, region = built.word, built.project, built.region
        api = built.client()
        deployed = {
            t["name"]: t
            for t in (
                cloud_scheduler.summary(j)
                for j in api.list_all(
                    cloud_scheduler.jobs_url(project, region),
                    "jobs",
                    f"Cloud Scheduler jobs of {project}/{region}",
                )
            )
        }
        now = start or rx.server_now(api)
        entries = cal.trigger_calendar(built.jobs, now, count)
        self.say(
            f"calendar of {env} ({project}): next {count} fire time(s) after {now:%Y-%m-%d %H:%M} UTC",
            *cal.lines(entries, deployed, from_now=start is None),
        )
        return {"changed": False, "calendar": cal.as_data(entries)}
