"""module_utils/guard.py, the prod guard's one rule, for make (toolkit.ask) and the play (the
cloudact.gcp.confirm action of cloudact_confirm), as data cases."""

from __future__ import annotations

import pytest
from ansible_collections.cloudact.gcp.plugins.module_utils.guard import MAKE, decide

GO = {"needed": True, "go": True, "ask": False, "message": ""}
FREE = {"needed": False, "go": True, "ask": False, "message": ""}
PLAY_HINT = (
    "Answer yes at the prompt (typed, or piped: echo yes | ...), or set CONFIRM=yes, or pass "
    "-e cloudact_confirmed=true"
)


def refused(message: str, ask: bool = False) -> dict:
    return {"needed": True, "go": False, "ask": ask, "message": message}


CASES = [
    # id, kwargs of decide (env prod), verdict
    ("not-guarded", {"required": False, "answer": "no"}, FREE),
    ("check-mode", {"required": True, "check_mode": True}, FREE),
    ("confirmed", {"required": True, "confirmed": True}, GO),
    ("confirm-env", {"required": True, "confirm": "yes"}, GO),
    ("confirmed-false-beats-confirm", {"required": True, "confirmed": False, "confirm": "yes"},
     refused(f"prod needs a typed \"yes\" and got '': nothing was changed. {PLAY_HINT}", ask=True)),
    ("play-asks", {"required": True},
     refused(f"prod needs a typed \"yes\" and got '': nothing was changed. {PLAY_HINT}", ask=True)),
    ("play-wrong-confirm-still-asks", {"required": True, "confirm": "y"},
     refused(f"prod needs a typed \"yes\" and got '': nothing was changed. {PLAY_HINT}", ask=True)),
    ("play-typed-yes", {"required": True, "answer": "  yes \n"}, GO),
    ("play-typed-no", {"required": True, "answer": "no"},
     refused(f'prod needs a typed "yes" and got no: nothing was changed. {PLAY_HINT}')),
    ("play-typed-two-words", {"required": True, "answer": "yes please"},
     refused(f"prod needs a typed \"yes\" and got 'yes please': nothing was changed. {PLAY_HINT}")),
    ("play-typed-nothing", {"required": True, "answer": ""},
     refused(f"prod needs a typed \"yes\" and got '': nothing was changed. {PLAY_HINT}")),
    ("make-confirm-env", {"required": True, "confirm": "yes", "asker": MAKE}, GO),
    ("make-wrong-confirm-refuses", {"required": True, "confirm": "y", "asker": MAKE},
     refused("CONFIRM='y': only CONFIRM=yes confirms; nothing was changed")),
    ("make-asks", {"required": True, "asker": MAKE},
     refused("prod needs a typed \"yes\" and got 'nothing': nothing was changed", ask=True)),
    ("make-typed-YES", {"required": True, "answer": "YES", "asker": MAKE},
     refused("prod needs a typed \"yes\" and got 'YES': nothing was changed")),
    ("make-typed-yes", {"required": True, "answer": "yes\n", "asker": MAKE}, GO),
]  # fmt: skip


@pytest.mark.parametrize(("kwargs", "verdict"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decide(kwargs: dict, verdict: dict) -> None:
    required = kwargs.pop("required")
    assert decide("prod", required, **kwargs) == verdict


def test_an_unknown_asker_is_an_error() -> None:
    with pytest.raises(ValueError, match="asker='cron': valid are make, play"):
        decide("prod", True, asker="cron")
