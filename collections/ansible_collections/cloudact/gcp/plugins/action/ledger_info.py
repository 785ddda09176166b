# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ledger_info on the controller: the module's own main() in ansible-playbook's process."""

from __future__ import annotations

from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ModuleInProcess


class ActionModule(ModuleInProcess):
    MODULE = "ledger_info"
