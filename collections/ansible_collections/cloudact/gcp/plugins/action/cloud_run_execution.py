# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloud_run_execution on the controller: the module's own run(), in ansible-playbook's process.

A release starts and waits for three executions, each wait a task retried per poll window: as a
module every one of those paid a Python start-up, google.auth's imports and a token.
"""

from __future__ import annotations

from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ModuleInProcess


class ActionModule(ModuleInProcess):
    MODULE = "cloud_run_execution"
