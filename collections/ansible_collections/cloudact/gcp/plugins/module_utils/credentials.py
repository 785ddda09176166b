# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check a credentials file before any change: it exists (~ expanded), is a key of the right project.

`check_key` returns {path, ok, error, project_id, client_email}; `error` is one line naming the
file and the problem. It never returns key material.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

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
