# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.doctor: the read-only checks of `make doctor`, with module_utils/doctor*.py."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.parameters import remove_values
from ansible_collections.cloudact.gcp.plugins.module_utils import doctor_api, doctor_run, environment
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(
        env=dict(type="str", default=""),
        root=dict(type="path", required=True),
        strict=dict(type="bool", default=False),
        expect_paused=dict(type="list", elements="str", default=[]),
        grace_minutes=dict(type="int", default=10),
        probes=dict(type="list", elements="str", default=[]),
    )

    def act(self, args):
        root = Path(args["root"]).resolve()
        word = args["env"] or self.var("cloudact_env") or ""
        # The play's own values of the environment's facts count only when its inventory is ENV's.
        overrides = {}
        if self.var("cloudact_env") == word:
            names = set(environment.read_plain(root / environment.DEFAULTS_FILE))
            names |= {k for k in self._vars if k.startswith("cloudact_")}
            overrides = {k: self.var(k) for k in names if k in self._vars}
        report = doctor_run.run(
            word, root, overrides, lambda facts: self.options(facts, args), strict=args["strict"]
        )
        report = remove_values(report, set(report.pop("secrets")))
        self.say(*report["lines"], report["verdict"]["summary"])
        out = {"changed": False, "rows": report["rows"], "verdict": report["verdict"]}
        if report["verdict"]["failed"]:
            raise AnsibleActionFail(report["verdict"]["message"], result=out)
        return out

    def options(self, facts, args):
        """The checks' options: the probes asked for, the paused triggers expected, the grace, and
        whether the converge takes access with the jobs (the environment's cloudact_jobs_access)."""
        unknown = sorted(set(args["probes"]) - set(doctor_api.PROBES))
        if unknown:
            raise AnsibleActionFail(
                "PROBE=%s: unknown probe; valid probes are %s"
                % (",".join(unknown), ", ".join(doctor_api.PROBES))
            )
        return {
            "probes": list(args["probes"]),
            "access_in_converge": bool(facts.get("cloudact_jobs_access", True)),
            "expect_paused": args["expect_paused"],
            "grace_minutes": args["grace_minutes"],
        }
