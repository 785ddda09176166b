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
import os
import sys

from ansible_collections.cloudact.gcp.plugins.module_utils import client, environment, status
from ansible_collections.cloudact.gcp.plugins.module_utils.catalog import load_catalog

from toolkit import ROOT, ToolkitError


def connect(facts: dict) -> client.Client:
    """The client of this run; localcloud's client environment (ENV=local, or REHEARSE=1 with the
    project's issued key) applied to this process first."""
    client_env, state = environment.client_environment(ROOT, facts)  # raises ToolkitError (InputError)
    chosen = environment.run_credentials(facts, client_env, state, ROOT)
    if state is not None:
        os.environ.update(client_env)  # what the play's `environment:` gives its modules
    return client.Client(lambda: client.credentials(chosen["kind"], chosen["file"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m toolkit.live_status", description=__doc__.splitlines()[0]
    )
    parser.add_argument("env")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any job is flagged")
    parser.add_argument("--grace-minutes", type=int, default=10)
    args = parser.parse_args(argv)
    try:
        facts = environment.load_environment(args.env, ROOT)
        jobs = [j.as_dict() for j in load_catalog(ROOT / facts["cloudact_catalog_file"], root=ROOT).jobs]
        project, region = facts["cloudact_gcp_project"], facts["cloudact_gcp_region"]
        image_facts = dict(facts, cloudact_root=str(ROOT))
        found = status.gather(connect(facts), project, region, jobs, image_facts=image_facts)
    except (ToolkitError, client.ApiError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = status.report(
        jobs,
        found["jobs"],
        found["triggers"],
        found["executions"],
        found["now"],
        args.grace_minutes * 60,
        facts["cloudact_trigger_account"],
        args.env,
        image=found.get("image"),
    )
    print(f"status of {args.env} ({project}) at {report['now']}")
    print("\n".join(report["lines"] + report["notes"]))
    if args.strict and report["problem"]:
        print(f"error: {report['strict_message']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
