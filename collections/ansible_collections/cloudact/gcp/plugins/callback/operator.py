# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Operator output: what a person needs from a play, without Ansible's banners.

- `debug` messages are printed as they are (a list prints one line per item): the roles use
  them for tables, progress and reports. The collection's controller-side actions print their
  report lines themselves (Ansible's display), so they show under any stdout callback.
- A failure prints `error: <msg>` (one line, the module's or the assert's message).
- A retried task that returns an `execution` prints a progress line (state, task counts, elapsed).
- Changed tasks print `changed: <task> (<item>)`, and diffs with --diff, except in plays that set
  `cloudact_report_only: true` (run, status, logs: starting an execution is not news there).
- With -v, every task prints one line. Colour comes from Ansible's display: only on a terminal
  (and never with NO_COLOR / ANSIBLE_NOCOLOR).
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: operator
type: stdout
short_description: Short, human output for the CloudAct operations playbooks
description:
  - Prints debug messages, one-line errors, progress of waiting tasks and changes; hides task banners.
version_added: 0.1.0
author: CloudAct platform team (!UNKNOWN)
"""

import atexit
import os
import re

from ansible import constants as C
from ansible.plugins.callback import CallbackBase
from ansible_collections.cloudact.gcp.plugins.module_utils.runs import progress as _progress_line

# Ansible wraps a plugin's own one-line error in context ("Task failed: Finalization of task args for
# 'set_fact' failed: Error while resolving value for 'x': The filter plugin 'f' failed: <error>").
_PLUGIN_FAILED = re.compile(r"The (?:filter|lookup|test) plugin '[^']+' failed: ")
_PREFIXES = ("Task failed: ", "Module failed: ", "Action failed: ")


def _clean(msg):
    found = list(_PLUGIN_FAILED.finditer(msg))
    if found:
        return msg[found[-1].end() :]
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if msg.startswith(prefix):
                msg, changed = msg[len(prefix) :], True
    return msg


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "cloudact.gcp.operator"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._report_only = False
        self._changed = 0
        # An interrupted wait leaves the execution running: say so, and how to cancel it, on the
        # way out (ansible-playbook exits through sys.exit after KeyboardInterrupt).
        self._cancel_hint = ""
        atexit.register(self._interrupted)
        if os.environ.get("NO_COLOR"):
            C.ANSIBLE_NOCOLOR = True  # the display reads this before colouring

    # ---- helpers ---------------------------------------------------------------------------------

    def _say(self, text, color=None, stderr=False):
        self._display.display(str(text), color=color, stderr=stderr)

    def _verbose(self):
        return self._display.verbosity >= 1

    @staticmethod
    def _label(result):
        item = result.result.get("_ansible_item_label", result.result.get("item"))
        if isinstance(item, dict):
            item = item.get("name") or item.get("shortcut") or item.get("key")
        return " (%s)" % item if item is not None else ""

    def _error(self, result):
        res = result.result
        if res.get("censored"):
            return "%s failed (output hidden: no_log)" % result.task.get_name()
        msg = res.get("msg") or res.get("reason") or ""
        if isinstance(msg, list):
            msg = "\n".join(str(m) for m in msg)
        if not msg and res.get("module_stderr"):
            msg = str(res["module_stderr"]).strip().splitlines()[-1]
        if not msg:
            msg = "%s failed" % result.task.get_name()
        return _clean(str(msg).strip())

    # ---- plays -----------------------------------------------------------------------------------

    def v2_playbook_on_play_start(self, play):
        self._report_only = bool((play.vars or {}).get("cloudact_report_only"))
        if self._verbose():
            self._say("PLAY %s" % play.get_name(), color=C.COLOR_HIGHLIGHT)

    def v2_playbook_on_task_start(self, task, is_conditional):
        if self._display.verbosity >= 2:
            self._say("TASK %s" % task.get_name(), color=C.COLOR_DEBUG)

    def v2_playbook_on_no_hosts_matched(self):
        self._say("error: no hosts matched; check the inventory (-i inventories/<env>)", color=C.COLOR_ERROR)

    # ---- results ---------------------------------------------------------------------------------

    def v2_runner_on_ok(self, result):
        self._handle_warnings_and_exception(result)
        res = result.result
        if result.task.action in ("debug", "ansible.builtin.debug"):
            if "msg" in res:
                msg = res["msg"]
                lines = msg if isinstance(msg, list) else str(msg).splitlines() or [""]
                for line in lines:
                    self._say(line)
                    if "cancel with: " in str(line):
                        self._cancel_hint = str(line).split("cancel with: ", 1)[1]
            return
        if isinstance(res.get("execution"), dict) and res.get("done"):
            self._cancel_hint = ""
        if res.get("changed"):
            self._changed += 1
            if not self._report_only:
                self._say(
                    "changed: %s%s" % (result.task.get_name(), self._label(result)), color=C.COLOR_CHANGED
                )
                return
        if self._verbose():
            self._say("ok: %s%s" % (result.task.get_name(), self._label(result)), color=C.COLOR_OK)

    def v2_runner_item_on_ok(self, result):
        self.v2_runner_on_ok(result)

    def _warnings_only(self, result):
        # The failure is printed as one line below; Ansible's exception report (origin, source
        # excerpt) only with -vv.
        if self._display.verbosity >= 2:
            self._handle_warnings_and_exception(result)
        else:
            self._handle_warnings(result.result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._warnings_only(result)
        if ignore_errors:
            if self._verbose():
                self._say(
                    "ignored: %s: %s" % (result.task.get_name(), self._error(result)), color=C.COLOR_SKIP
                )
            return
        if "results" in result.result:
            return  # each failed item was printed by v2_runner_item_on_failed
        self._say("error: %s" % self._error(result), color=C.COLOR_ERROR, stderr=False)

    def v2_runner_item_on_failed(self, result):
        self._warnings_only(result)
        self._say("error: %s" % self._error(result), color=C.COLOR_ERROR)

    def v2_runner_on_skipped(self, result):
        if self._display.verbosity >= 2:
            self._say("skipped: %s%s" % (result.task.get_name(), self._label(result)), color=C.COLOR_SKIP)

    def v2_runner_item_on_skipped(self, result):
        self.v2_runner_on_skipped(result)

    def v2_runner_on_unreachable(self, result):
        self._say(
            "error: %s is unreachable: %s" % (result.host.get_name(), self._error(result)),
            color=C.COLOR_ERROR,
        )

    def v2_runner_retry(self, result):
        res = result.result
        execution = res.get("execution")
        if isinstance(execution, dict) and execution.get("state"):
            self._say("  " + _progress_line(execution))
            return
        self._say(
            "  waiting: %s (%s of %s)" % (result.task.get_name(), res.get("attempts"), res.get("retries")),
            color=C.COLOR_DEBUG,
        )

    def v2_on_file_diff(self, result):
        if self._report_only:
            return
        diff = result.result.get("diff")
        if diff:
            text = self._get_diff(diff)
            if text.strip():
                self._say(text)

    def _interrupted(self):
        if self._cancel_hint:
            self._say(
                "interrupted: the execution keeps running in the cloud; to stop it: %s" % self._cancel_hint,
                color=C.COLOR_WARN,
            )

    def v2_playbook_on_stats(self, stats):
        self._cancel_hint = ""
        failures = unreachable = 0
        for host in sorted(stats.processed):
            s = stats.summarize(host)
            failures += s["failures"]
            unreachable += s["unreachable"]
            # Kept in Ansible's recap format: tools (molecule's idempotence check) read "changed=N".
            if (s["changed"] and not self._report_only) or self._verbose():
                self._say(
                    "%s : ok=%d changed=%d unreachable=%d failed=%d skipped=%d rescued=%d ignored=%d"
                    % (
                        host,
                        s["ok"],
                        s["changed"],
                        s["unreachable"],
                        s["failures"],
                        s["skipped"],
                        s["rescued"],
                        s["ignored"],
                    ),
                    color=C.COLOR_CHANGED if s["changed"] else C.COLOR_OK,
                )
