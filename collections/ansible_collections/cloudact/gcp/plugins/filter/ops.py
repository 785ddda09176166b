"""Filters of the operations roles (run, release, status, history): thin calls into toolkit.run/status.

The rules live in Python (toolkit/), unit-tested as data; the roles only wire module results
through these filters. A bad input becomes one AnsibleFilterError line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ansible.errors import AnsibleFilterError

try:
    from toolkit import ToolkitError, run, status
except ImportError:  # ansible-playbook run from outside the venv: use the checkout this file is in
    sys.path.insert(0, str(Path(__file__).resolve().parents[6]))
    from toolkit import ToolkitError, run, status

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


def status_report(jobs, deployed, triggers, executions, now, grace_seconds=600):
    return status.report(jobs, deployed, triggers, executions, now, int(grace_seconds))


def history_table(job, executions, now):
    return status.history(job, executions, now)


def release_plan(jobs, start=None):
    return run.release_plan(jobs, start or None)


class FilterModule:
    def filters(self):
        return {
            name: _wrap(fn)
            for name, fn in {
                "status_report": status_report,
                "history_table": history_table,
                "release_plan": release_plan,
                "dependency_warning": run.dependency_warning,
                "run_progress": run.progress,
                "summary_line": run.summary_line,
                "run_failure": run.failure,
                "parse_args": run.parse_args,
                "parse_env": run.parse_env,
                "wait_budget": run.wait_budget,
                "release_report": run.release_report,
            }.items()
        }
