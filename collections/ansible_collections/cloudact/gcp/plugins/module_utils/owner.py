# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which environment owns a resource, so that two environments can never overwrite each other.

A Cloud Run job carries the label `cloudact-env=<env>`. A Cloud Scheduler job has no labels: its
owner is written at the end of its description, `[cloudact-env=<env>]`. The converge modules
(batch.py) refuse, before any change, to take over a resource another environment owns; the first
converge adopts an unlabelled resource of the catalog's names and says so; a prune never touches
another environment's resource.
"""

from __future__ import annotations

import re

LABEL = "cloudact-env"
_MARK = re.compile(r"\s*\[cloudact-env=([A-Za-z0-9_.-]*)\]\s*$")


def of_labels(labels):
    """The owner a resource's labels name, else None (unlabelled)."""
    return (labels or {}).get(LABEL) or None


def of_description(text):
    """The owner the end of a description names (`[cloudact-env=stage]`), else None."""
    found = _MARK.search(text or "")
    return found.group(1) or None if found else None


def described(text, env):
    """`text` with its owner mark set to `env` (any old mark replaced)."""
    base = _MARK.sub("", text or "").rstrip()
    mark = "[%s=%s]" % (LABEL, env)
    return "%s %s" % (base, mark) if base else mark


def refusal(kind, name, found, env):
    """The one line that refuses a takeover, naming both environments and the resource."""
    return (
        "refused: %s %s belongs to environment %s (%s=%s), not %s: a converge of %s never takes over "
        "another environment's resources; nothing was changed" % (kind, name, found, LABEL, found, env, env)
    )
