# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.doctor: the read-only checks of `make doctor`, with module_utils/doctor*.py."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import yaml
from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.parameters import remove_values
from ansible.template import trust_as_template
from ansible_collections.cloudact.gcp.plugins.module_utils import (
    doctor_api,
    doctor_jobs,
    doctor_run,
    environment,
)
from ansible_collections.cloudact.gcp.plugins.module_utils.doctor import Skip
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
            word, root, overrides, lambda facts: self.options(root, facts, args), strict=args["strict"]
        )
        report = remove_values(report, set(report.pop("secrets")))
        self.say(*report["lines"], report["verdict"]["summary"])
        out = {"changed": False, "rows": report["rows"], "verdict": report["verdict"]}
        if report["verdict"]["failed"]:
            raise AnsibleActionFail(report["verdict"]["message"], result=out)
        return out

    def options(self, root, facts, args):
        """The checks' options: the paused triggers expected, the grace, and `entries(kind, registered)`,
        the converge's own `jobs:` expressions (doctor_jobs.PLAN_TASKS) templated over the environment's
        facts, the converge roles' defaults, the play's values and what the converge's earlier tasks
        register (`registered`)."""
        defaults = {}
        for name in doctor_jobs.ROLE_DEFAULTS:
            defaults.update(_trusted(yaml.safe_load((root / name).read_text()) or {}))
        play = {k: self._vars[k] for k in defaults if k in self._vars}

        def entries(kind, registered):
            path, module = doctor_jobs.PLAN_TASKS[kind]
            tasks = yaml.safe_load((root / path).read_text()) or []
            task = next(t for t in tasks if module in t)
            variables = dict(defaults, **facts, **play)
            variables.update(
                registered, cloudact_catalog=facts.get("cloudact_catalog"), cloudact_prune_unlisted=False
            )
            templar = self._templar.copy_with_new_env(available_variables=variables)
            try:
                return templar.template(trust_as_template(task[module]["jobs"]))
            except AnsibleError as exc:
                raise Skip("the plan of %s: %s" % (path, str(exc).splitlines()[0])) from None

        access = self.var("cloudact_jobs_access") if "cloudact_jobs_access" in self._vars else None
        if access is None and "cloudact_jobs_access" in defaults:
            templar = self._templar.copy_with_new_env(available_variables=dict(defaults, **facts))
            access = templar.template(defaults["cloudact_jobs_access"])
        unknown = sorted(set(args["probes"]) - set(doctor_api.PROBES))
        if unknown:
            raise AnsibleActionFail(
                "PROBE=%s: unknown probe; valid probes are %s"
                % (",".join(unknown), ", ".join(doctor_api.PROBES))
            )
        return {
            "probes": list(args["probes"]),
            "access_in_converge": bool(access) if access is not None else True,
            "expect_paused": args["expect_paused"],
            "grace_minutes": args["grace_minutes"],
            "entries": entries,
        }


def _trusted(value):
    """Role defaults read from their file, marked as templates as Ansible marks a role's own."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: _trusted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    return value
