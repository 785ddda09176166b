"""Filters that validate the job catalog and name the environments, with the toolkit's own code.

The playbooks and the Python tools must agree on what a valid catalog is, so these
filters call toolkit.catalog rather than re-implementing its rules in Jinja.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ansible.errors import AnsibleFilterError

try:
    from toolkit import ToolkitError, catalog, inventory
except ImportError:  # ansible-playbook run from outside the venv: use the checkout this file is in
    sys.path.insert(0, str(Path(__file__).resolve().parents[6]))
    from toolkit import ToolkitError, catalog, inventory

DOCUMENTATION = ""


def validated_catalog(data, secrets=None, root=None, source="catalog/jobs.yml"):
    """Catalog data -> {jobs: [...], legacy_jobs: [...], legacy_triggers: [...]}, or one-line error."""
    try:
        parsed = catalog.parse_catalog(
            data,
            source=source,
            root=Path(root) if root else catalog.ROOT,
            secrets=set(secrets) if secrets is not None else None,
        )
    except ToolkitError as exc:
        raise AnsibleFilterError(str(exc)) from None
    return {
        "jobs": [job.as_dict() for job in parsed.jobs],
        "legacy_jobs": list(parsed.legacy_jobs),
        "legacy_triggers": list(parsed.legacy_triggers),
    }


def environments(root=None):
    """The valid environment names (one per inventories/<env>/)."""
    return inventory.environments(Path(root) if root else inventory.ROOT)


class FilterModule:
    def filters(self):
        return {"catalog": validated_catalog, "environments": environments}
