# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.image_pin: the digest the jobs converge to, what changes, and whether they are stale;
and, before any change, what was confirmed and the inputs the jobs need."""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.cloudact.gcp.plugins.module_utils import confirmation, image
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction, display


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(
        jobs=dict(type="list", elements="str", default=None),
        deployed=dict(type="list", elements="dict", default=None),
        allow_missing=dict(type="bool", default=False),
        one_digest=dict(type="bool", default=False),
        warn_stale=dict(type="bool", default=False),
        confirmed_digest=dict(type="str", default=""),
        confirmed_of=dict(type="str", default="pin", choices=["pin", "deployed"]),
        check_inputs=dict(type="bool", default=False),
    )

    def act(self, args):
        built = self.environment()
        facts = built.image_facts()
        catalog = built.jobs
        names = args["jobs"] or [j["name"] for j in catalog]
        jobs = [j for j in catalog if j["name"] in names]
        if args["check_inputs"]:
            confirmation.check_inputs(facts, jobs)
        api = self.client()
        # make resolved the tag for its question: the play pins what was confirmed, not the tag again
        pinned = args["confirmed_digest"] if args["confirmed_of"] == "pin" else ""
        result = image.resolve(
            api,
            facts,
            names,
            deployed=args["deployed"],
            allow_missing=args["allow_missing"],
            confirmed=pinned,
        )
        if args["one_digest"]:
            image.check_one_digest(result, facts["cloudact_env"])
        runs = (
            next(iter(result["deployed"].values()), "")
            if args["confirmed_of"] == "deployed"
            else result["digest"]
        )
        wanted = args["confirmed_digest"]
        if wanted and runs != wanted:
            what = (
                "the jobs are pinned to" if args["confirmed_of"] == "deployed" else "the converge would pin"
            )
            raise InputError(
                "refused: you confirmed %s but %s %s; nothing was changed"
                % (wanted, what, runs or "no digest")
            )
        if args["check_inputs"] and args["confirmed_of"] == "deployed":
            confirmation.check_migrations(api, facts, jobs, runs)
        self.say(*result["lines"])
        if args["warn_stale"]:
            for finding in result["stale"]:
                display.warning("stale image: %s" % finding["line"])
        result["summary"] = image.summary(result)
        result["runs"] = runs
        return dict(result, changed=False, short=image.short(result.get("digest")))
