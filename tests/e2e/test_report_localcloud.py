"""`make report` and `make calendar` end to end on localcloud.

The report runs on the module's localcloud (tests/e2e/conftest.py) and makes the runs it shows
itself (create-jobs, then two runs), so it stands alone. Its page is opened in
headless Chromium with no host resolvable, and the marks in the DOM are compared with the rows the
page shows, read here through the collection's own reader. The calendar runs on a localcloud of its
own: an inventory override gives two triggers America/New_York and converges them, then the DST
weeks of 2026 are printed and compared with times written out by hand (see test_calendar.py). On
that same localcloud, 30 days of the 8 jobs (alerts hourly) are written to the ledger and the
page's marks in Chromium are compared with them.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml
from ansible_collections.cloudact.gcp.plugins.module_utils import bigquery as bq
from ansible_collections.cloudact.gcp.plugins.module_utils import client, ledger, report_page
from ansible_collections.cloudact.gcp.plugins.module_utils.catalog import load_catalog
from ansible_collections.cloudact.gcp.plugins.module_utils.timefmt import parse_time

from localcloud.client import LocalCloudProcess
from tests.e2e.conftest import E2E
from tests.e2e.test_report import parse, render_in_chromium
from tests.report_rows import rows as make_rows
from toolkit import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.localcloud]

PROJECT, REGION = "cloudact-local", "us-central1"
LINE = re.compile(
    r"report of local \(cloudact-local\) at (\S+): (\d+) executions of 8 jobs over 30 days from (.+?);"
)


def rows_shown(e2e: E2E, source: str, now) -> list[dict]:
    """The rows the page was made from, read again through the collection's client and reader."""
    jobs = [j.as_dict() for j in load_catalog(ROOT / "catalog/jobs.yml", root=ROOT).jobs]
    with client.applied_environment(e2e.client_env):
        api = client.Client(lambda: client.credentials("serviceaccount", str(e2e.key_file)))
        since = now - report_page.timedelta(days=30)
        if source == report_page.LIVE_SOURCE:  # a ledger not converged (not expected after create-jobs)
            return report_page.live_rows(api, PROJECT, REGION, jobs, "local", since, now)
        assert source == f"the ledger {PROJECT}.cloudact_ops.job_executions", source
        # The ledger's rows and Cloud Run's executions it lacks (the page appends nothing, it shows them),
        # only what existed when the page was made (a scheduled run may land after it).
        rows = ledger.read_rows(api, PROJECT, since=since)
        known = {r["execution"] for r in rows}
        rows += [
            r
            for r in report_page.live_rows(api, PROJECT, REGION, jobs, "local", since, now)
            if r["execution"] not in known
        ]
        return [r for r in rows if r["created"] <= now]


def unfinished(e2e: E2E) -> list[str]:
    """The executions of every job of the project that have not finished."""
    with client.applied_environment(e2e.client_env):
        api = client.Client(lambda: client.credentials("serviceaccount", str(e2e.key_file)))
        url = f"https://run.googleapis.com/v2/projects/{PROJECT}/locations/{REGION}/jobs/-/executions"
        found = api.list_all(url, "executions", "executions", params={"pageSize": 1000})
    return [x["name"] for x in found if not x.get("completionTime")]


def test_make_report_renders_in_chromium_and_its_marks_are_the_rows(e2e: E2E, tmp_path: Path) -> None:
    r = e2e.make("create-jobs", "ENV=local")
    assert r.returncode == 0, r.out
    for job in ("quota-reset", "alerts"):  # on a fresh state (not bootstrapped) these fail: marks too
        r = e2e.make("run", "ENV=local", f"JOB={job}")
        assert f"{job}: started " in r.out, r.out

    # The page shows what the cloud has when it is made, and the rows below are read after it: no
    # execution of the earlier tests may still be running (its result would differ between the two).
    e2e.wait_for(lambda: not unfinished(e2e), "every execution to finish", timeout=300)
    out = tmp_path / "report.html"
    r = e2e.make("report", "ENV=local", f"OUT={out}")
    assert r.returncode == 0, r.out
    said = LINE.search(r.out)
    assert said, r.out
    assert f"-> {out} (" in r.out

    assert said.group(3) == f"the ledger {PROJECT}.cloudact_ops.job_executions", r.out
    rows = rows_shown(e2e, said.group(3), parse_time(said.group(1)))
    assert len(rows) == int(said.group(2)) >= 2
    assert {"cloudact-daily-quota-reset", "cloudact-daily-alerts"} <= {r["job"] for r in rows}
    dom, shot = render_in_chromium(out, tmp_path)
    found = parse(dom)
    assert Counter((m["data-job"], m["data-result"], m["data-trigger"]) for m in found.marks) == Counter(
        (r["job"], r["result"], r["trigger"]) for r in rows
    )
    assert {"job-quota-reset", "job-alerts", "end"} <= found.ids and found.tags["script"] == 0
    assert shot.stat().st_size > 10_000


def test_make_report_refuses_bad_days_before_any_call(e2e: E2E) -> None:
    e2e.admin.reset_requests()
    r = e2e.make("report", "ENV=local", "DAYS=0")
    assert r.returncode != 0
    assert "DAYS='0': expected a whole number of days from 1 to 400, e.g. DAYS=30" in r.out
    assert not [q for q in e2e.admin.requests()["requests"] if "run.googleapis.com" in q.get("host", "")]


NY_SPRING = """\
cloudact-daily-quota-cleanup-trigger (quota-cleanup): 30 1 * * * America/New_York
  2026-03-06 06:30 UTC   2026-03-06 01:30 EST
  2026-03-07 06:30 UTC   2026-03-07 01:30 EST
  2026-03-08 06:30 UTC   2026-03-08 01:30 EST
  2026-03-09 05:30 UTC   2026-03-09 01:30 EDT
cloudact-daily-stale-cleanup-trigger (stale-cleanup): 30 2 * * * America/New_York
  2026-03-06 07:30 UTC   2026-03-06 02:30 EST
  2026-03-07 07:30 UTC   2026-03-07 02:30 EST
  2026-03-08 07:00 UTC   2026-03-08 03:00 EDT   skipped hour: 02:30 does not exist on 2026-03-08 \
in America/New_York (clocks go forward); runs at 03:00 EDT instead
  2026-03-09 06:30 UTC   2026-03-09 02:30 EDT
"""

NY_FALL = """\
cloudact-daily-quota-cleanup-trigger (quota-cleanup): 30 1 * * * America/New_York
  2026-10-30 05:30 UTC   2026-10-30 01:30 EDT
  2026-10-31 05:30 UTC   2026-10-31 01:30 EDT
  2026-11-01 05:30 UTC   2026-11-01 01:30 EDT   repeated hour: 01:30 occurs twice on 2026-11-01 \
in America/New_York (EDT, then EST); this is the first; runs once, at the first
  2026-11-02 06:30 UTC   2026-11-02 01:30 EST
cloudact-daily-stale-cleanup-trigger (stale-cleanup): 30 2 * * * America/New_York
  2026-10-30 06:30 UTC   2026-10-30 02:30 EDT
  2026-10-31 06:30 UTC   2026-10-31 02:30 EDT
  2026-11-01 07:30 UTC   2026-11-01 02:30 EST
  2026-11-02 07:30 UTC   2026-11-02 02:30 EST
"""


@pytest.fixture(scope="module")
def own_cloud(tmp_path_factory: pytest.TempPathFactory):
    proc = LocalCloudProcess(tmp_path_factory.mktemp("calendar") / "state")
    proc.start(timeout=120)
    try:
        proc.files.pid.write_text(f"{proc.pid}\n")  # as `localcloud up` leaves it, for make's own check
        yield E2E(
            state_dir=proc.state_dir, key_file=proc.key_file, client_env=proc.client_env, admin=proc.admin
        )
    finally:
        proc.stop()


def ny_override(tmp_path: Path) -> Path:
    """An inventory that puts two triggers in America/New_York (through its catalog file)."""
    data = yaml.safe_load((ROOT / "catalog/jobs.yml").read_text())
    for job in data["jobs"]:
        if job["shortcut"] == "quota-cleanup":
            job.update(schedule="30 1 * * *", time_zone="America/New_York")
        if job["shortcut"] == "stale-cleanup":
            job.update(schedule="30 2 * * *", time_zone="America/New_York")
    catalog = tmp_path / "jobs.yml"
    catalog.write_text(yaml.safe_dump(data, sort_keys=False))
    inventory = tmp_path / "override.yml"
    inventory.write_text(yaml.safe_dump({"all": {"vars": {"cloudact_catalog_file": str(catalog)}}}))
    return inventory


def block(out: str, first: str, count: int) -> str:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    return "\n".join(lines[start : start + count]) + "\n"


def test_make_calendar_across_the_new_york_dst_changes(own_cloud: E2E, tmp_path: Path) -> None:
    args = f"ANSIBLE_ARGS=-i {ny_override(tmp_path)}"
    r = own_cloud.make("create-jobs", "ENV=local", args)
    assert r.returncode == 0, r.out

    r = own_cloud.make("calendar", "ENV=local", "N=4", "AT=2026-03-05T12:00:00Z", args)
    assert r.returncode == 0, r.out
    assert "calendar of local (cloudact-local): next 4 fire time(s) after 2026-03-05 12:00 UTC" in r.out
    assert block(r.out, "cloudact-daily-quota-cleanup-trigger", 10) == NY_SPRING
    assert r.out.count("Cloud Scheduler runs on wall-clock time") == 1

    r = own_cloud.make("calendar", "ENV=local", "N=4", "AT=2026-10-29T12:00:00Z", args)
    assert r.returncode == 0, r.out
    assert block(r.out, "cloudact-daily-quota-cleanup-trigger", 10) == NY_FALL

    # Without the override the catalog says UTC while the triggers are converged to New York.
    r = own_cloud.make("calendar", "ENV=local", "N=1")
    assert r.returncode == 0, r.out
    assert (
        "cloudact-daily-stale-cleanup-trigger (stale-cleanup): 0 2 * * * UTC "
        "(deployed: 30 2 * * * America/New_York; make create-jobs converges it)" in r.out
    )


def test_thirty_days_in_the_ledger_render_as_marks_in_chromium(own_cloud: E2E, tmp_path: Path) -> None:
    """30 days of the 8 jobs (alerts hourly) written to the ledger as the jobs' own inserts would be:
    the page's marks per job, result and trigger are those rows."""
    inventory = tmp_path / "hourly.yml"
    data = yaml.safe_load((ROOT / "catalog/jobs.yml").read_text())
    for job in data["jobs"]:
        if job["shortcut"] == "alerts":
            job["schedule"] = "0 * * * *"
    (tmp_path / "jobs.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    inventory.write_text(
        yaml.safe_dump({"all": {"vars": {"cloudact_catalog_file": str(tmp_path / "jobs.yml")}}})
    )
    args = f"ANSIBLE_ARGS=-i {inventory}"
    r = own_cloud.make("create-jobs", "ENV=local", args)
    assert r.returncode == 0, r.out

    jobs = [j.as_dict() for j in load_catalog(tmp_path / "jobs.yml", root=ROOT).jobs]
    rows = make_rows(jobs, own_cloud.admin.now(), days=30)
    with client.applied_environment(own_cloud.client_env):
        api = client.Client(lambda: client.credentials("serviceaccount", str(own_cloud.key_file)))
        observations = [dict(row, schema_version=ledger.SCHEMA_VERSION) for row in rows]
        bq.insert_all(
            api,
            PROJECT,
            ledger.DATASET,
            ledger.TABLE,
            [(ledger.insert_id(o), ledger.to_json(o)) for o in observations],
        )

    out = tmp_path / "report.html"
    r = own_cloud.make("report", "ENV=local", "DAYS=30", f"OUT={out}", args)
    assert r.returncode == 0, r.out
    said = LINE.search(r.out)
    assert said and int(said.group(2)) == len(rows) > 800, r.out
    dom, _ = render_in_chromium(out, tmp_path)
    found = parse(dom)
    assert Counter((m["data-job"], m["data-result"], m["data-trigger"]) for m in found.marks) == Counter(
        (row["job"], row["result"], row["trigger"]) for row in rows
    )
    assert sum(1 for m in found.marks if m["data-job"] == "cloudact-daily-alerts") == 720
