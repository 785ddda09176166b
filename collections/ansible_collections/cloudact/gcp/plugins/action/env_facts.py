# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.env_facts: build the run's environment once, and set the facts every role uses."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from ansible_collections.cloudact.gcp.plugins.module_utils import environment
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(root=dict(type="path", required=True))

    def act(self, args):
        root = Path(args["root"]).resolve()
        # The play's variables, as Ansible's precedence made them (the role's defaults, the inventory, -e).
        names = set(environment.read_plain(root / environment.DEFAULTS_FILE))
        names |= {k for k in self._vars if k.startswith("cloudact_")}
        names.discard(environment.FACT)
        facts = {name: self.var(name) for name in names if name in self._vars}
        sources = ", ".join(Path(s).name for s in self.var("ansible_inventory_sources", []) or [])
        env = environment.Environment.compose(facts, root, inventory=sources)
        out = {k: env.facts[k] for k in environment.derive(env.facts)}
        out["cloudact_root"] = str(root)
        out["cloudact_catalog"] = env.catalog
        # localcloud's client env and key: ENV=local's, or (REHEARSE=1) the project's copy; else none.
        out["cloudact_client_env"] = env.client_env
        if env.localcloud is not None:
            out["cloudact_localcloud_state"] = env.localcloud
        out[environment.FACT] = env.to_fact()
        return {"changed": False, "ansible_facts": out}
