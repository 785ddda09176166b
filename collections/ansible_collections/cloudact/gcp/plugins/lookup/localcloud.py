# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether localcloud is up in a state directory, and the client environment it publishes."""

from __future__ import annotations

DOCUMENTATION = r"""
name: localcloud
short_description: localcloud's state directory, whether it is up, and its client environment
description:
  - Reads localcloud's state directory (O(state_dir), else C($LOCALCLOUD_STATE_DIR), else
    C(<root>/.localcloud)); C(ready.json) gives the server's pid and port, its admin API its
    health, and C(client-env.json) the variables that point Google clients at it
    (C(HTTPS_PROXY), C(NO_PROXY), C(REQUESTS_CA_BUNDLE), C(SSL_CERT_FILE), C(GCP_SERVICE_ACCOUNT_FILE)).
  - Never starts it (C(make local-up) does).
options:
  root:
    description: The checkout; its C(.localcloud) is the default state directory.
    type: str
    required: true
  state_dir:
    description: The state directory; overrides C($LOCALCLOUD_STATE_DIR).
    type: str
"""

EXAMPLES = r"""
- name: Read localcloud's state
  ansible.builtin.set_fact:
    cloudact_localcloud_state: "{{ lookup('cloudact.gcp.localcloud', root=cloudact_root) }}"
"""

RETURN = r"""
_raw:
  description: "{state_dir, up, reason, proxy_url, env}; env is {} when localcloud never started there."
  type: list
  elements: dict
"""

import json
import os
from pathlib import Path

import requests
from ansible.plugins.lookup import LookupBase

# The checkout's localcloud package (on the venv's path): its own test of a pid, zombies included.
from localcloud.client import pid_alive


def localcloud_state(root, state_dir=None):
    directory = state_dir or os.environ.get("LOCALCLOUD_STATE_DIR") or str(Path(root) / ".localcloud")
    directory = Path(directory).expanduser().resolve()
    state = {"state_dir": str(directory), "up": False, "reason": "", "proxy_url": "", "env": {}}
    client_env = directory / "client-env.json"
    if client_env.is_file():
        state["env"] = json.loads(client_env.read_text())
    try:
        ready = json.loads((directory / "ready.json").read_text())
    except (OSError, ValueError):
        state["reason"] = "localcloud is not running (no %s/ready.json)" % directory
        return state
    pid, proxy_url = ready.get("pid"), ready.get("proxy_url") or ""
    state["proxy_url"] = proxy_url
    if not isinstance(pid, int) or not pid_alive(pid):
        state["reason"] = "localcloud is not running (pid %s in %s/ready.json is gone)" % (pid, directory)
        return state
    session = requests.Session()
    session.trust_env = False  # the admin port is plain HTTP on loopback, never proxied
    try:
        session.get(proxy_url.rstrip("/") + "/_localcloud/health", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        state["reason"] = "localcloud pid %s does not answer at %s: %s" % (pid, proxy_url, type(exc).__name__)
        return state
    state["up"] = True
    return state


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        return [localcloud_state(self.get_option("root"), self.get_option("state_dir"))]
