"""Small checks make runs before anything else: `python -m toolkit <command> ...`.

    check-env ENV                 exit 0, or one line: unknown environment 'x': valid environments are ...
    resolve-job WORD [--scheduled]  print the job's full name, or one line naming the valid words

Add a subcommand as a function below and a parser entry in `main`.
"""

from __future__ import annotations

import argparse
import sys

from ansible_collections.cloudact.gcp.plugins.module_utils import environment
from ansible_collections.cloudact.gcp.plugins.module_utils.catalog import load_catalog

from toolkit import ROOT, ToolkitError


def check_env(args: argparse.Namespace) -> int:
    environment.check_environment(args.env, ROOT)
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
    p = sub.add_parser("check-env", help="validate an environment name")
    p.add_argument("env")
    p.set_defaults(func=check_env)
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
