# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.env_facts: validate the environment and the catalog, and set the facts every role uses."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from ansible_collections.cloudact.gcp.plugins.module_utils import catalog, environment
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(root=dict(type="path", required=True))

    def act(self, args):
        root = Path(args["root"]).resolve()
        plain = environment.read_plain(root / environment.DEFAULTS_FILE)
        facts = {name: self.var(name) for name in plain}
        facts.update({k: self.var(k) for k in self._vars if k.startswith("cloudact_") and k not in facts})
        sources = ", ".join(Path(s).name for s in self.var("ansible_inventory_sources", []) or [])
        environment.check_environment(facts.get("cloudact_env"), root, inventory=sources)
        derived = environment.derive(facts)
        facts.update(derived)
        environment.check_facts(facts)
        parsed = catalog.load_catalog(
            root / facts["cloudact_catalog_file"], root=root, secrets=set(facts["cloudact_secrets"])
        )
        out = dict(derived)
        out["cloudact_root"] = str(root)
        out["cloudact_catalog"] = parsed.as_dict()
        # localcloud's client env and key: ENV=local's, or (REHEARSE=1) the project's copy; else none.
        client_env, state = environment.client_environment(root, facts)
        out["cloudact_client_env"] = client_env
        if state is not None:
            out["cloudact_localcloud_state"] = state
        return {"changed": False, "ansible_facts": out}
