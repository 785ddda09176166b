# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The third-party libraries of the pure models (PyYAML, cronsim), imported once, guarded.

They are requirements of the controller (requirements/dev.in); guarded so that every module_utils file
imports without them (ansible-test's import sanity test runs with ansible-core alone), and a call that
needs one fails naming it, as Ansible's `missing_required_lib` words it.
"""

from __future__ import annotations

__all__ = ["HAS_CRONSIM", "HAS_YAML", "CronSim", "CronSimError", "cron", "load_yaml", "require", "yaml"]

try:
    import yaml
except ImportError:
    yaml = None
try:
    from cronsim import CronSim, CronSimError
except ImportError:
    CronSim = CronSimError = None

HAS_YAML = yaml is not None
HAS_CRONSIM = CronSim is not None


def require(library, present):
    """ImportError naming a missing required library (only where the requirements are not installed)."""
    if not present:
        from ansible.module_utils.basic import missing_required_lib

        raise ImportError(missing_required_lib(library))


def load_yaml(text):
    """PyYAML's safe_load of `text`."""
    require("PyYAML", HAS_YAML)
    return yaml.safe_load(text)


def cron(schedule, start, reverse=False):
    """cronsim's iterator over the schedule's fire times after (or, reversed, before) `start`."""
    require("cronsim", HAS_CRONSIM)
    return CronSim(schedule, start, reverse=reverse)
