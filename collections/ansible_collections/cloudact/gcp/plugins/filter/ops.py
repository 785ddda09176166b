"""Filters of the operations roles (run, release): thin calls into module_utils/runs.py.

The rules live in the collection's module_utils, unit-tested as data; the roles only wire module results
through these filters. A bad input becomes one AnsibleFilterError line.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ansible.errors import AnsibleFilterError
from ansible_collections.cloudact.gcp.plugins.module_utils import runs as run
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError as ToolkitError

DOCUMENTATION = ""


def _wrap(fn):
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ToolkitError as exc:
            raise AnsibleFilterError(str(exc)) from None

    call.__name__ = fn.__name__
    call.__doc__ = fn.__doc__
    return call


def release_id(given=""):
    """The release's id: the one given (RELEASE_ID), else rel-<UTC now>; a bad one is refused."""
    if given:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", given):
            raise AnsibleFilterError(
                "RELEASE_ID=%r: use letters, digits, '.', '_' and '-' (at most 63), e.g. rel-2026-12-01"
                % given
            )
        return given
    return datetime.now(UTC).strftime("rel-%Y%m%dT%H%M%SZ")


def release_plan(jobs, start=None):
    return run.release_plan(jobs, start or None)


class FilterModule:
    def filters(self):
        return {
            name: _wrap(fn)
            for name, fn in {
                "release_plan": release_plan,
                "release_id": release_id,
                "dependency_warning": run.dependency_warning,
                "parse_args": run.parse_args,
                "parse_env": run.parse_env,
                "release_report": run.release_report,
            }.items()
        }
