# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.confirm: the prod guard in a play, asking at a terminal or reading a piped answer.

The verdict is module_utils/guard.py's `decide`, the function make's toolkit.ask calls before the
play: a play that make confirmed (cloudact_confirmed=true) never asks again. A play run directly
asks here. ansible.builtin.pause cannot read piped input (a worker's stdin is /dev/null and the
controller's prompt needs a terminal), so this action reads the controller's own standard input:
at a terminal through Ansible's prompt (the controller asks, as pause does), else one line of the
pipe or file ansible-playbook's standard input is (`echo yes | ansible-playbook ...`).
"""

from __future__ import annotations

import os
from typing import ClassVar

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible_collections.cloudact.gcp.plugins.module_utils import guard
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction, display


def controller_stdin():
    """The controller's standard input (ansible-playbook's), opened for this worker; None if unreadable.

    A worker is a child of the controller, which keeps its stdin: /proc/<controller>/fd/0 is that
    pipe, file or terminal (Linux). Elsewhere there is no such path and only a terminal can answer.
    """
    try:
        return open("/proc/%d/fd/0" % os.getppid(), encoding="utf-8", errors="replace")
    except OSError:
        return None


def read_answer(question):
    """The operator's answer to `question`: typed at a terminal, or a line of the piped stdin; '' if none."""
    stdin = controller_stdin()
    if stdin is None or stdin.isatty():
        if stdin is not None:
            stdin.close()
        try:
            answer = display.prompt_until(question, private=False, complete_input=(b"\r", b"\n"))
        except AnsibleError:  # no terminal after all (AnsiblePromptNoninteractive), or interrupted
            return ""
        return answer.decode(errors="replace") if isinstance(answer, bytes) else str(answer)
    with stdin:
        display.display(question)
        line = stdin.readline()
    display.display(line.strip() or "(no answer)")
    return line


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(
        action=dict(type="str", required=True),
        required=dict(type="bool", required=True),
        confirmed=dict(type="bool", default=None),
        project=dict(type="str", default=""),
    )

    def act(self, args):
        env = self.environment().word
        confirm = os.environ.get("CONFIRM", "")
        facts = dict(required=args["required"], check_mode=self.check_mode, confirmed=args["confirmed"])
        verdict = guard.decide(env, confirm=confirm, asker=guard.PLAY, **facts)
        asked = False
        if verdict["ask"]:
            where = " (project %s)" % args["project"] if args["project"] else ""
            question = "About to %s%s. Type yes to go on, anything else to stop: " % (args["action"], where)
            answer = read_answer(question)
            asked = True
            verdict = guard.decide(env, confirm=confirm, answer=answer, asker=guard.PLAY, **facts)
        if not verdict["go"]:
            raise AnsibleActionFail(verdict["message"])
        return {"changed": False, "needed": verdict["needed"], "asked": asked}
