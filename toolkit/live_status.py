"""`make status`: the status table straight from the APIs, in about a second.

    python -m toolkit.live_status ENV [--strict] [--grace-minutes 10]

The same report as `make status VIA=ansible` (playbooks/status.yml): both call the collection's
status model (module_utils/status.py: three reads and the rules) through its one client, without
ansible-playbook's start-up, so monitoring can call it often. Credentials as the playbooks take
them (module_utils/environment.py): the inventory's key file, localcloud's issued key on ENV=local,
else GCP_SERVICE_ACCOUNT_FILE, else application default credentials; a key of another project is
refused. ENV=local reaches localcloud through the client environment it publishes, and so does any
ENV under REHEARSE=1, with localcloud's key of that environment's project.
"""

from __future__ import annotations

import argparse
import sys

from ansible_collections.cloudact.gcp.plugins.module_utils import client, environment, status

from toolkit import ROOT, ToolkitError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m toolkit.live_status", description=__doc__.splitlines()[0]
    )
    parser.add_argument("env")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any job is flagged")
    parser.add_argument("--grace-minutes", type=int, default=10)
    args = parser.parse_args(argv)
    try:
        env = environment.Environment.load(args.env, ROOT)
        env.apply()  # localcloud's client environment (ENV=local, REHEARSE=1), as a play's `environment:`
        report = status.of(env, args.grace_minutes)
    except (ToolkitError, client.ApiError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report["heading"])
    print("\n".join(report["lines"] + report["notes"]))
    if args.strict and report["problem"]:
        print(f"error: {report['strict_message']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
