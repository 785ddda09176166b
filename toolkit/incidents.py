"""`make incidents`: the open and recent incidents of ENV's alert policies, from Cloud Monitoring.

    python -m toolkit.incidents ENV [--limit 20]

Monitoring v3 `projects.alerts.list` filtered to the policies this environment owns (their userLabels
managed_by=cloudact-toolkit and cloudact_env=<env>): state, open and close time, job and policy, open
incidents first, then the newest. Read-only; credentials and localcloud's client environment as
`make status` takes them (toolkit/live_status.py).
"""

from __future__ import annotations

import argparse
import sys

from ansible_collections.cloudact.gcp.plugins.module_utils import alerts, client, environment

from toolkit import ROOT, ToolkitError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m toolkit.incidents", description=__doc__.splitlines()[0])
    parser.add_argument("env")
    parser.add_argument("--limit", type=int, default=20, help="show at most this many incidents")
    args = parser.parse_args(argv)
    try:
        env = environment.Environment.load(args.env, ROOT)
        env.apply()  # localcloud's client environment (ENV=local, REHEARSE=1), as a play's `environment:`
        heading, lines = alerts.incidents_report(env.client(), env.project, env.name, args.limit)
    except (ToolkitError, client.ApiError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(heading)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
