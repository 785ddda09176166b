# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check a credentials file before any change: it exists (~ expanded), is a key of the right project."""

from __future__ import annotations

DOCUMENTATION = r"""
name: service_account_key
short_description: Check a service-account key file against the environment's project
description:
  - Expands C(~) and resolves relative paths against O(root), then checks that the file
    exists, is a service-account key (C(type), C(client_email), C(private_key), C(token_uri))
    and that its C(project_id) is O(project).
  - Returns C({path, ok, error, project_id, client_email}); C(error) is one line naming
    the file and the problem. Never returns key material.
options:
  _terms:
    description: The key file path.
    type: str
    required: true
  project:
    description: The project the key must belong to.
    type: str
    required: true
  root:
    description: Directory relative paths are resolved against.
    type: str
    default: "."
"""

EXAMPLES = r"""
- name: Check the key
  ansible.builtin.set_fact:
    key_check: "{{ lookup('cloudact.gcp.service_account_key', '~/keys/sa.json', project='cloudact-prod') }}"
"""

RETURN = r"""
_raw:
  description: "{path, ok, error, project_id, client_email}"
  type: list
  elements: dict
"""

import json
import os
from pathlib import Path

from ansible.plugins.lookup import LookupBase

REQUIRED = ("client_email", "private_key", "token_uri")


def check_key(path, project, root="."):
    given = str(path)
    resolved = Path(os.path.expanduser(given))
    if not resolved.is_absolute():
        resolved = Path(root) / resolved
    result = {"path": str(resolved), "ok": False, "error": "", "project_id": "", "client_email": ""}
    if not resolved.is_file():
        expanded = " (%s)" % resolved if str(resolved) != given else ""
        result["error"] = "credentials file %s%s does not exist" % (given, expanded)
        return result
    try:
        info = json.loads(resolved.read_text())
    except (OSError, ValueError) as exc:
        result["error"] = "credentials file %s is not readable JSON: %s" % (resolved, type(exc).__name__)
        return result
    if not isinstance(info, dict) or info.get("type") != "service_account":
        kind = info.get("type") if isinstance(info, dict) else type(info).__name__
        result["error"] = (
            "credentials file %s is not a service-account key (type %r, expected 'service_account')"
            % (
                resolved,
                kind,
            )
        )
        return result
    missing = [k for k in REQUIRED if not info.get(k)]
    if missing:
        result["error"] = "credentials file %s is a service-account key without %s" % (
            resolved,
            ", ".join(missing),
        )
        return result
    result["project_id"] = str(info.get("project_id") or "")
    result["client_email"] = str(info["client_email"])
    if result["project_id"] != project:
        result["error"] = (
            "credentials file %s is a key of project %r, but this environment's project is %r"
            % (
                resolved,
                result["project_id"],
                project,
            )
        )
        return result
    result["ok"] = True
    return result


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        return [check_key(term, self.get_option("project"), self.get_option("root")) for term in terms]
