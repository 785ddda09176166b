"""The report page in a real headless Chromium (Debian's package; `make chromium` installs it).

Chromium opens the file with every host unresolvable (`--host-resolver-rules`), takes a screenshot
into the test's tmp_path and dumps the DOM; the marks are counted from the dumped DOM by their
data attributes and compared with the rows the page was made from. A missing Chromium fails
these tests (it does not skip them). Every Chromium is started in its own process group and that
group is killed by its id when the run ends, also on a timeout or a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections import Counter
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from ansible_collections.cloudact.gcp.plugins.module_utils import calendar as cal
from ansible_collections.cloudact.gcp.plugins.module_utils import report_html
from ansible_collections.cloudact.gcp.plugins.module_utils.catalog import load_catalog

from tests.report_rows import rows as make_rows
from toolkit import ROOT

pytestmark = [pytest.mark.e2e]

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def chromium() -> str:
    found = shutil.which("chromium")
    if not found:
        pytest.fail(
            "chromium is missing: `make chromium` installs Debian's package (apt-get install -y chromium)"
        )
    return found


def render_in_chromium(page: Path, tmp_path: Path, timeout: float = 90) -> tuple[str, Path]:
    """(the dumped DOM, the screenshot) of `page` opened from disk with no host resolvable."""
    shot = tmp_path / "page.png"
    profile = tmp_path / "chromium-profile"
    argv = [
        chromium(),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--window-size=1100,2400",
        f"--screenshot={shot}",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the renderer and GPU helpers die with it
        env={**os.environ, "HOME": str(tmp_path)},
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {err[-2000:]}"
    return out, shot


class Marks(HTMLParser):
    """The elements with data-job (the timeline marks), the ids and the text of the dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[dict[str, str]] = []
        self.ids: set[str] = set()
        self.tags: Counter = Counter()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags[tag] += 1
        if "id" in a:
            self.ids.add(a["id"])
        if "data-job" in a:
            self.marks.append(a)


def parse(dom: str) -> Marks:
    found = Marks()
    found.feed(dom)
    return found


def catalog_jobs(hourly: str | None = None) -> list[dict]:
    jobs = [j.as_dict() for j in load_catalog(ROOT / "catalog/jobs.yml", root=ROOT).jobs]
    for j in jobs:
        if j["shortcut"] == hourly:
            j["schedule"] = "0 * * * *"
    return jobs


def page_of(rows: list[dict], jobs: list[dict]) -> dict:
    return {
        "env": "local",
        "project": "cloudact-local",
        "generated": NOW,
        "days": 30,
        "rows": rows,
        "jobs": jobs,
        "source": "the ledger",
        "flags": {"stale-cleanup": ["FAILED"]},
        "notes": {"stale-cleanup": ["stale-cleanup: last execution x failed"]},
        "images": {j["name"]: "repo@sha256:" + "cd" * 32 for j in jobs},
        "stale": None,
        "stale_note": "stale flag not in the status model yet",
        "fires": {
            j["name"]: cal.fire_times(j["schedule"], j["time_zone"], NOW, 5) for j in jobs if j["schedule"]
        },
    }


def test_the_marks_in_chromium_are_the_rows_and_the_page_is_whole_offline(tmp_path: Path) -> None:
    jobs = catalog_jobs(hourly="alerts")
    rows = make_rows(jobs, NOW)
    page = tmp_path / "report.html"
    page.write_text(report_html.render(page_of(rows, jobs)))

    dom, shot = render_in_chromium(page, tmp_path)

    found = parse(dom)
    drawn = Counter((m["data-job"], m["data-result"], m["data-trigger"]) for m in found.marks)
    given = Counter((r["job"], r["result"], r["trigger"]) for r in rows)
    assert drawn == given
    assert sorted(m["data-execution"] for m in found.marks) == sorted(r["execution"] for r in rows)
    # Every kind of mark is there: results and the three triggers (shapes).
    assert {k[1] for k in drawn} == {"succeeded", "failed", "cancelled", "running"}
    assert {k[2] for k in drawn} == {"scheduler", "manual", "release"}
    # Whole with no host resolvable: every job's section and the footer rendered, no script at all.
    assert {f"job-{j['shortcut']}" for j in jobs} | {"end"} <= found.ids
    assert found.tags["script"] == 0 and found.tags["link"] == 0 and found.tags["img"] == 0
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_failed_mark_carries_its_cause_in_its_title(tmp_path: Path) -> None:
    jobs = catalog_jobs()
    rows = make_rows(jobs, NOW)
    page = tmp_path / "report.html"
    page.write_text(report_html.render(page_of(rows, jobs)))
    dom, _ = render_in_chromium(page, tmp_path)

    titles = {}

    class Titles(HTMLParser):
        current: str | None = None

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if "data-execution" in a:
                self.current = a["data-execution"]

        def handle_data(self, data):
            if self.current:
                titles[self.current] = data
                self.current = None

    Titles().feed(dom)
    failed = [r for r in rows if r["result"] == "failed"]
    assert failed
    for r in failed:
        assert f"cause: {report_html.cause(r)}" in titles[r["execution"]]
