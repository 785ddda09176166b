"""Small checks make runs before anything else: `python -m toolkit <command> ...`.

    env ENV                       print the environment ENV names (test is stage: said once on stderr),
                                  or one line: unknown environment 'x': valid environments are ...
    check-inventories             exit 0, or one line naming two inventories that would own the same jobs
    resolve-job WORD [--scheduled]  print the job's full name, or one line naming the valid words

Add a subcommand as a function below and a parser entry in `main`.
"""

from __future__ import annotations

import argparse
import sys

from ansible_collections.cloudact.gcp.plugins.module_utils import environment
from ansible_collections.cloudact.gcp.plugins.module_utils.catalog import load_catalog

from toolkit import ROOT, ToolkitError


def env(args: argparse.Namespace) -> int:
    name = environment.check_environment(args.env, ROOT)
    environment.check_distinct(ROOT)
    note = environment.alias_note(args.env, ROOT)
    if note:
        print(note, file=sys.stderr)
    print(name)
    return 0


def check_inventories(_args: argparse.Namespace) -> int:
    environment.check_distinct(ROOT)
    return 0


def resolve_job(args: argparse.Namespace) -> int:
    catalog = load_catalog(root=ROOT)
    job = catalog.resolve(args.word)
    if args.scheduled and not job.scheduled:
        names = ", ".join(j.shortcut for j in catalog.scheduled)
        raise ToolkitError(f"job {job.shortcut!r} has no trigger (it runs by hand); jobs with one: {names}")
    print(job.name)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m toolkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("env", help="the environment an ENV word names")
    p.add_argument("env")
    p.set_defaults(func=env)
    p = sub.add_parser("check-inventories", help="refuse two inventories that would own the same jobs")
    p.set_defaults(func=check_inventories)
    p = sub.add_parser("resolve-job", help="a shortcut, alias or name -> the job's full name")
    p.add_argument("word")
    p.add_argument("--scheduled", action="store_true", help="the job must have a trigger")
    p.set_defaults(func=resolve_job)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ToolkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
