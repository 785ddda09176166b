# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The prod guard: may a change to a guarded environment go on? The one place the rule lives.

Used by make (toolkit/ask.py, before the play) and by the cloudact_confirm role (the
cloudact.gcp.confirm action, when a playbook runs without make's confirmation). A guarded
environment (cloudact_confirm_required, i.e. prod) is changed only when:
  - the change was confirmed (`-e cloudact_confirmed=true`: make passes it after reading a yes), or
  - CONFIRM=yes is in the environment, or
  - the answer typed or piped is "yes".
Check mode changes nothing and never asks.

The two askers differ where their moment differs, and each keeps its own words:
  - make reads CONFIRM as an answer: any other non-empty CONFIRM is a refusal (nothing runs);
  - the play takes only CONFIRM=yes and otherwise asks (a terminal, or a line of a pipe), and its
    refusal says every way to confirm.
"""

from __future__ import annotations

import shlex
from typing import Any

MAKE = "make"
PLAY = "play"
ANSWER = "yes"


def confirmed_by(confirm: str | None) -> bool:
    """Whether the CONFIRM environment variable confirms."""
    return (confirm or "") == ANSWER


def refusal(env: str, answer: str, asker: str = PLAY) -> str:
    """Why nothing was changed after `answer` (stripped), in the words of each asker."""
    if asker == MAKE:
        return f'{env} needs a typed "yes" and got {answer or "nothing"!r}: nothing was changed'
    return (
        f'{env} needs a typed "yes" and got {shlex.quote(answer) or "none"}: nothing was changed. '
        "Answer yes at the prompt (typed, or piped: echo yes | ...), or set CONFIRM=yes, or pass "
        "-e cloudact_confirmed=true"
    )


def decide(
    env: str,
    required: bool,
    *,
    check_mode: bool = False,
    confirmed: bool | None = None,
    confirm: str | None = "",
    answer: str | None = None,
    asker: str = PLAY,
) -> dict[str, Any]:
    """The guard's verdict: {needed, go, ask, message}.

    `confirmed`: -e cloudact_confirmed (None: not given, so CONFIRM decides); `confirm`: the CONFIRM
    environment variable; `answer`: what was typed (None: not asked yet). `ask` means: ask for an
    answer, then decide again with it; `message` is the refusal when `go` is false.
    """
    if asker not in (MAKE, PLAY):
        raise ValueError(f"asker={asker!r}: valid are {MAKE}, {PLAY}")
    if not required or check_mode:
        return {"needed": False, "go": True, "ask": False, "message": ""}
    if confirmed_by(confirm) if confirmed is None else confirmed:
        return {"needed": True, "go": True, "ask": False, "message": ""}
    if asker == MAKE and confirm:
        message = f"CONFIRM={confirm!r}: only CONFIRM=yes confirms; nothing was changed"
        return {"needed": True, "go": False, "ask": False, "message": message}
    typed = (answer or "").strip()
    if answer is not None and typed == ANSWER:
        return {"needed": True, "go": True, "ask": False, "message": ""}
    return {"needed": True, "go": False, "ask": answer is None, "message": refusal(env, typed, asker)}
