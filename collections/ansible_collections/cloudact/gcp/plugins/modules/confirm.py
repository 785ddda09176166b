#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: confirm
short_description: The prod guard in a play, asking for a typed or piped yes
description:
  - Runs on the controller (an action plugin); changes nothing. A play calls it before its first change.
  - In an environment that needs confirmation (O(required), prod), the play goes on only when
    O(confirmed) is true (make passes it after C(toolkit.ask) read the answer), C(CONFIRM=yes) is in
    the environment, or the operator answers C(yes). Anything else fails the task naming every way
    to confirm; nothing after it runs. Check mode never asks.
  - The answer is read from ansible-playbook's own standard input, at a terminal through Ansible's
    prompt or as one line of a pipe (C(echo yes | ansible-playbook ...)), which
    C(ansible.builtin.pause) cannot read.
  - >-
    The rule is module_utils/guard.py C(decide), the same function make's C(toolkit.ask) calls: a
    play that make confirmed never asks twice.
version_added: 0.2.0
author: CloudAct platform team (!UNKNOWN)
options:
  action:
    description: What is about to happen, as the question names it (the digest that will run, say).
    type: str
    required: true
  required:
    description: Whether the environment needs confirmation (C(cloudact_confirm_required)).
    type: bool
    required: true
  confirmed:
    description:
      - The change was confirmed before the play (C(-e cloudact_confirmed=true)).
      - Not given, C(CONFIRM=yes) in the environment confirms, else the operator is asked.
    type: bool
  project:
    description: The project, named in the question.
    type: str
    default: ""
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
extends_documentation_fragment:
  - cloudact.gcp.gcp.controller
  - ansible.builtin.action_common_attributes
"""

EXAMPLES = r"""
- name: Ask for a typed yes before changing a guarded environment
  cloudact.gcp.confirm:
    action: "release to prod: migrate -> bootstrap -> org-sync-all with image sha256:1a2b3c4d5e6f (v1.4.0)"
    required: "{{ cloudact_confirm_required }}"
    confirmed: "{{ cloudact_confirmed }}"
    project: cloudact-prod
"""

RETURN = r"""
needed:
  description: Whether the environment needed confirmation.
  returned: success
  type: bool
asked:
  description: Whether the operator was asked (and answered yes).
  returned: success
  type: bool
"""
