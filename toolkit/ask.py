"""The prod guard for make: ask for a typed "yes" before a play changes a guarded environment.

    python -m toolkit.ask ENV "what is about to happen"

Prints `false` when the environment needs no confirmation, and `true` (the play gets
-e cloudact_confirmed=true) when it does and CONFIRM=yes or the line read from stdin is "yes"
(typed at a terminal or piped: `yes | make run ENV=prod JOB=alerts`). Anything else prints one
line on stderr and exits 1, so make runs nothing; an unknown ENV exits 2 naming the valid ones.
The answer is read here because ansible's pause cannot read piped input; the rule itself is
module_utils/guard.py of the cloudact.gcp collection, which the cloudact_confirm role uses too.
"""

from __future__ import annotations

import os
import sys

from ansible_collections.cloudact.gcp.plugins.module_utils import environment
from ansible_collections.cloudact.gcp.plugins.module_utils.guard import MAKE, decide

from toolkit import ROOT, ToolkitError


def image_text(facts: dict) -> str:
    """The image the change deploys: its tag resolved to the digest now (what the play will pin),
    with the tags that digest carries; the reference as configured when it cannot be resolved."""
    from ansible_collections.cloudact.gcp.plugins.module_utils import pin
    from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError
    from google.auth.exceptions import GoogleAuthError

    from toolkit.live_status import connect

    try:
        api = connect(facts)
        api.deadline = 20.0  # a prompt should not hang on an unreachable registry
        got = pin.resolve(api, dict(facts, cloudact_root=str(ROOT)), [], deployed=[])
    except (ToolkitError, ApiError, GoogleAuthError) as exc:  # no credentials, no answer: say so, ask anyway
        return f"{facts.get('cloudact_image')} (digest not resolved: {str(exc).splitlines()[0]})"
    if not got.get("digest"):
        return str(got.get("image") or facts.get("cloudact_image"))
    tags = ", ".join(got.get("tags") or []) or "no tags"
    return f"{facts['cloudact_image_repository']}@{got['digest']} ({tags})"


def confirmed(env: str, action: str, stdin=sys.stdin, stderr=sys.stderr) -> bool | None:
    """None: no confirmation needed; True: confirmed; False: refused (said on stderr)."""
    facts = environment.load_environment(env, ROOT)
    required = bool(facts.get("cloudact_confirm_required"))
    confirm = os.environ.get("CONFIRM", "")
    verdict = decide(env, required, confirm=confirm, asker=MAKE)
    if verdict["ask"]:
        where = f"project {facts.get('cloudact_gcp_project')}, image {image_text(facts)}"
        print(f"About to {action} ({where}). Type yes to go on: ", end="", file=stderr)
        stderr.flush()
        answer = stdin.readline().strip()
        if not stdin.isatty():
            print(answer, file=stderr)
        verdict = decide(env, required, confirm=confirm, answer=answer, asker=MAKE)
    if not verdict["needed"]:
        return None
    if not verdict["go"]:
        print(verdict["message"], file=stderr)
    return verdict["go"]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m toolkit.ask ENV ACTION", file=sys.stderr)
        return 2
    try:
        ok = confirmed(args[0], args[1])
    except ToolkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if ok is False:
        return 1
    print("true" if ok else "false")
    return 0


if __name__ == "__main__":
    sys.exit(main())
