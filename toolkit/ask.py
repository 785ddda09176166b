"""The prod guard for make: check a change's inputs, then ask for a typed or piped "yes" naming what will run.

    python -m toolkit.ask ENV KIND [--job WORD] [--from STEP] [--state paused|enabled]
                          [--release TAG] [--dirty] [--force] [--extra-vars -- ANSIBLE_ARGS...]

KIND is the target: converge, release, run, image, pause, resume, cancel. Prints the play's extra
variables as one JSON object (make passes it as `-e '<json>'`): `{}` when the environment needs no
confirmation; `{"cloudact_confirmed": true, "cloudact_confirmed_digest": "sha256:..."}` after a yes
(typed at a terminal, piped: `echo yes | make release ENV=prod`, or CONFIRM=yes), so the play
refuses before any change when what would run is not what was confirmed. A refusal is one line on
stderr and exit 1; a bad input (named before anything is asked) or an unknown ENV exits 2.

Inputs are checked before the question, so a refusal names its real cause: the Supabase project
ref a migrate needs, the migrations the image carries (its label), the release jobs on one digest,
the image plan (a dirty tree, the release tag, the migrations source). The rules are the collection's
(module_utils/guard.py decides; confirmation.py and image.py say what is asked and check the inputs);
the play's cloudact.gcp.confirm task calls the same `decide` when a playbook runs without make.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

from ansible_collections.cloudact.gcp.plugins.module_utils import environment
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import ApiError
from ansible_collections.cloudact.gcp.plugins.module_utils.guard import MAKE, decide

from toolkit import ROOT, ToolkitError

KINDS = ("converge", "release", "run", "image", "pause", "resume", "cancel")


def extra_vars(args: list[str]) -> dict:
    """The -e/--extra-vars of ANSIBLE_ARGS, parsed by Ansible's own loader (key=value, JSON, @file)."""
    values = []
    it = iter(args)
    for arg in it:
        if arg in ("-e", "--extra-vars"):
            values.append(next(it, ""))
        elif arg.startswith("--extra-vars="):
            values.append(arg.split("=", 1)[1])
        elif arg.startswith("-e") and len(arg) > 2:
            values.append(arg[2:])
    if not values:
        return {}
    from ansible import context
    from ansible.module_utils.common.collections import ImmutableDict
    from ansible.parsing.dataloader import DataLoader
    from ansible.utils.vars import load_extra_vars

    # load_extra_vars reads Ansible's global CLI arguments and keeps its first answer on itself (a
    # process-wide memo): both are set for this call, then put back as they were.
    saved = context.CLIARGS, getattr(load_extra_vars, "extra_vars", None)
    context.CLIARGS = ImmutableDict(extra_vars=tuple(values))
    load_extra_vars.extra_vars = None
    try:
        return dict(load_extra_vars(DataLoader()))
    finally:
        context.CLIARGS, load_extra_vars.extra_vars = saved


def question(kind: str, env: environment.Environment, args: argparse.Namespace) -> dict:
    """{text, digest?, nothing?}: what the yes confirms, every input of the change checked first."""
    # The client and the image's modules only when a question is asked: an environment that needs no
    # yes (local, stage) answers {} without importing the HTTP stack (every make target runs this).
    from ansible_collections.cloudact.gcp.plugins.module_utils import confirmation, image
    from ansible_collections.cloudact.gcp.plugins.module_utils.runs import release_plan

    if kind in ("pause", "resume"):
        what = env.resolve(args.job, scheduled=True)["trigger"] if args.job else "every trigger"
        return {"text": f"{kind} {what} in {env.name}"}
    if kind == "cancel":
        shortcut = env.resolve(args.job)["shortcut"]
        return {"text": f"cancel {shortcut} {args.execution or '(its running executions)'} in {env.name}"}
    env.apply()  # localcloud's client environment (ENV=local, REHEARSE=1), as the play's
    facts, api = env.image_facts(), env.client()
    if kind == "release":
        return confirmation.release_question(api, facts, release_plan(env.jobs, args.start))
    if kind == "run":
        return confirmation.run_question(api, facts, env.resolve(args.job))
    if kind == "converge":
        return confirmation.converge_question(api, facts, [j["name"] for j in env.jobs])
    plan = image.plan(api, facts, ROOT, args.release, args.dirty, args.force)
    if plan["exists"]:
        return {"text": "", "nothing": plan["exists"]}
    return {"text": plan["action"], "lines": plan["lines"]}  # what it builds and creates, shown first


def confirmed(
    env: str, kind: str, args: argparse.Namespace, stdin=sys.stdin, stderr=sys.stderr
) -> dict | None:
    """The play's extra variables after a yes ({} when none is needed); None after a refusal (on stderr)."""
    # Whether the environment is guarded needs no more than its plain facts (the -e over them).
    plain = dict(environment.read_facts(env, ROOT), **extra_vars(args.extra))
    required = bool(plain.get("cloudact_confirm_required"))
    confirm = os.environ.get("CONFIRM", "")
    verdict = decide(env, required, confirm=confirm, asker=MAKE)
    if not verdict["needed"]:
        return {}
    if not verdict["go"] and not verdict["ask"]:  # CONFIRM=<anything but yes>
        print(verdict["message"], file=stderr)
        return None
    built = environment.Environment.load(env, ROOT, extra_vars(args.extra))  # the play's, as it will build it
    asked = question(kind, built, args)
    if asked.get("nothing"):  # nothing would change: nothing to confirm (the play says so)
        return {}
    for line in asked.get("lines") or []:
        print(line, file=stderr)
    if verdict["ask"]:
        print(
            f"About to {asked['text']} (project {built.project}). Type yes to go on: ",
            end="",
            file=stderr,
        )
        stderr.flush()
        answer = stdin.readline().strip()
        if not stdin.isatty():
            print(answer, file=stderr)
        verdict = decide(env, required, confirm=confirm, answer=answer, asker=MAKE)
    if not verdict["go"]:
        print(verdict["message"], file=stderr)
        return None
    out = {"cloudact_confirmed": True}
    if asked.get("digest"):
        out["cloudact_confirmed_digest"] = asked["digest"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m toolkit.ask", description=__doc__.splitlines()[0])
    parser.add_argument("env")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--job", default="")
    parser.add_argument("--execution", default="")
    parser.add_argument("--from", dest="start", default="")
    parser.add_argument("--release", default="")
    parser.add_argument("--dirty", action="store_true")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--extra-vars", dest="extra_text", default="", help="ANSIBLE_ARGS, as make has it")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    args.extra = shlex.split(args.extra_text)
    try:
        env = environment.check_environment(args.env, ROOT)
        out = confirmed(env, args.kind, args)
    except (ToolkitError, ApiError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if out is None:
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
