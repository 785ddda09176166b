"""`make status`: the status table straight from the APIs, in about a second.

    python -m toolkit.live_status ENV [--strict] [--grace-minutes 10]

The same report as playbooks/status.yml (the rules are toolkit.status; the execution summary is
the cloudact.gcp modules' own code), without ansible-playbook's start-up and per-task cost, so
monitoring can call it often: one token, one list of jobs, one of triggers, and one request per
deployed job for its last execution. Credentials as the playbooks take them: the inventory's
key file, else GCP_SERVICE_ACCOUNT_FILE, else application default credentials; a key of another
project is refused. ENV=local talks to localcloud through its proxy and CA.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import google.auth
import requests
from google.auth.transport.requests import AuthorizedSession, Request
from google.oauth2 import service_account

from localcloud.config import StateFiles, default_state_dir
from toolkit import ROOT, ToolkitError, status
from toolkit.catalog import load_catalog
from toolkit.inventory import load_environment

sys.path.insert(0, str(ROOT / "collections"))
from ansible_collections.cloudact.gcp.plugins.lookup.service_account_key import check_key
from ansible_collections.cloudact.gcp.plugins.module_utils import run_execution as rx

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
RUN = "https://run.googleapis.com/v2/projects/{project}/locations/{region}/jobs"
SCHEDULER = "https://cloudscheduler.googleapis.com/v1/projects/{project}/locations/{region}/jobs"
TIMEOUT = 30


def _localcloud_env() -> dict[str, str]:
    state = default_state_dir()
    path = StateFiles(state).client_env
    if not path.is_file():
        raise ToolkitError(f"localcloud has never started in {state}: start it with make local-up")
    return json.loads(path.read_text())


def session(facts: dict[str, Any]) -> AuthorizedSession:
    """One authorised session (one token) for every call, pointed at localcloud for ENV=local."""
    plain = requests.Session()
    key = facts.get("cloudact_credentials_file") or ""
    if facts.get("cloudact_localcloud"):
        env = _localcloud_env()
        plain.trust_env = False
        plain.proxies = {"https": env["HTTPS_PROXY"]}
        plain.verify = env["REQUESTS_CA_BUNDLE"]
        key = env.get("GCP_SERVICE_ACCOUNT_FILE") or key
    key = key or os.environ.get("GCP_SERVICE_ACCOUNT_FILE", "")
    if key:
        checked = check_key(key, facts["cloudact_gcp_project"], root=str(ROOT))
        if not checked["ok"]:
            raise ToolkitError(f"ENV={facts['cloudact_env']}: {checked['error']}")
        creds = service_account.Credentials.from_service_account_file(checked["path"], scopes=SCOPES)
    else:
        creds, _ = google.auth.default(scopes=SCOPES)
    authed = AuthorizedSession(creds, auth_request=Request(session=plain))
    authed.trust_env = plain.trust_env
    authed.proxies = plain.proxies
    authed.verify = plain.verify
    return authed


def _get(s: AuthorizedSession, url: str, what: str, params: dict | None = None) -> requests.Response:
    try:
        resp = s.get(url, params=params or {}, timeout=TIMEOUT)
    except (requests.RequestException, google.auth.exceptions.GoogleAuthError) as exc:
        raise ToolkitError(f"{what}: {str(exc).splitlines()[0][:300]}") from None
    if resp.status_code >= 400:
        try:
            message = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = resp.text.strip()[:200]
        raise ToolkitError(f"{what}: {resp.status_code} {message}")
    return resp


def _list(s: AuthorizedSession, url: str, key: str, what: str) -> tuple[list[dict], str]:
    items: list[dict] = []
    params: dict[str, Any] = {}
    date = ""
    while True:
        resp = _get(s, url, what, params)
        date = resp.headers.get("Date", date)
        page = resp.json()
        items += page.get(key) or []
        if not page.get("nextPageToken"):
            return items, date
        params["pageToken"] = page["nextPageToken"]


def gather(facts: dict[str, Any], catalog_names: list[str]) -> tuple[list[dict], list[dict], list[dict], str]:
    """(jobs, triggers, last executions, server Date) for the status report."""
    where = {"project": facts["cloudact_gcp_project"], "region": facts["cloudact_gcp_region"]}
    s = session(facts)
    jobs_url = RUN.format(**where)
    raw_jobs, _ = _list(s, jobs_url, "jobs", "Cloud Run jobs")
    raw_triggers, _ = _list(s, SCHEDULER.format(**where), "jobs", "Cloud Scheduler jobs")
    jobs = [{"name": rx.short_name(j["name"]), "resource": j} for j in raw_jobs]
    triggers = [
        {
            "name": rx.short_name(t["name"]),
            "state": t.get("state") if isinstance(t.get("state"), str) else "ENABLED",
        }
        for t in raw_triggers
    ]
    deployed = {j["name"] for j in jobs}
    last, date = [], ""
    for name in catalog_names:
        if name in deployed:
            resp = _get(s, f"{jobs_url}/{name}/executions", f"executions of {name}", {"pageSize": 1})
            date = resp.headers.get("Date", date)
            last += (resp.json().get("executions") or [])[:1]
    api = type("Api", (), {"server_date": date})()  # rx.server_now reads the last reply's Date
    now = rx.server_now(api)
    return jobs, triggers, [rx.summary(e, now) for e in last], now.strftime("%Y-%m-%dT%H:%M:%SZ")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m toolkit.live_status", description=__doc__.splitlines()[0]
    )
    parser.add_argument("env")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any job is flagged")
    parser.add_argument("--grace-minutes", type=int, default=10)
    args = parser.parse_args(argv)
    try:
        facts = load_environment(args.env)
        catalog = [j.as_dict() for j in load_catalog(ROOT / facts["cloudact_catalog_file"]).jobs]
        jobs, triggers, executions, now = gather(facts, [j["name"] for j in catalog])
    except ToolkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = status.report(catalog, jobs, triggers, executions, now, args.grace_minutes * 60)
    print(f"status of {args.env} ({facts['cloudact_gcp_project']}) at {report['now']}")
    print("\n".join(report["lines"] + report["notes"]))
    if args.strict and report["problem"]:
        flags = (
            ", ".join(f"{k}: {'+'.join(v)}" for k, v in report["flags"].items()) or "jobs not in the catalog"
        )
        print(f"error: {flags} (STRICT=1)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
