# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for what the roles print, refuse with and choose.

Thin calls into module_utils/messages.py and confirmation.py (pure functions, unit-tested
as data in tests/unit/test_messages.py), so the YAML holds no `x if c else y` and no and/or picking
a value. Flags arrive as Ansible passes them (true, "true", "yes", ...) and are read as the
`bool` filter reads them. A bad input becomes one AnsibleFilterError line.
"""

from __future__ import annotations

import functools

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.cloudact.gcp.plugins.module_utils import confirmation
from ansible_collections.cloudact.gcp.plugins.module_utils import messages as m
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

DOCUMENTATION = ""


def _flag(value):
    return boolean(value, strict=False)


def _one_line(fn):
    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except m.BadInput as exc:
            raise AnsibleFilterError(str(exc)) from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            detail = " ".join(f"{type(exc).__name__}: {exc}".split())
            raise AnsibleFilterError(f"{fn.__name__}: unexpected input ({detail})") from None

    return call


def prune_prefix(prune):
    return m.prune_prefix(_flag(prune))


def if_running(force):
    return m.if_running(_flag(force))


def checks_dependencies(target, check):
    return m.checks_dependencies(target, _flag(check))


def run_reads(target, catalog_jobs, dependencies):
    return m.run_reads(target, catalog_jobs, _flag(dependencies))


def inputs_refusal(job, env, supabase_ref):
    """'' when the inventory holds what `job` needs, else one line naming the value and where to set it."""
    facts = {"cloudact_env": env, "cloudact_supabase_project_ref": supabase_ref}
    try:
        confirmation.check_inputs(facts, [job])
    except InputError as exc:
        return str(exc)
    return ""


def release_converge_first(found, catalog_jobs, localcloud, enabled):
    return m.release_converge_first(found, catalog_jobs, _flag(localcloud), _flag(enabled))


class FilterModule:
    def filters(self):
        return {
            fn.__name__: _one_line(fn)
            for fn in (
                prune_prefix,
                m.catalog_line,
                m.trigger_targets,
                m.trigger_action,
                m.trigger_state_line,
                checks_dependencies,
                run_reads,
                m.not_deployed,
                if_running,
                release_converge_first,
                inputs_refusal,
                m.release_refusal,
                m.release_plan_line,
                m.release_stop,
                m.cancel_targets,
                m.cancel_lines,
                m.logs_since,
                m.log_lines,
            )
        }
