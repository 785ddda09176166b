"""The report page as data: stats, causes, the release history, escaping, and no resource to load."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from ansible_collections.cloudact.gcp.plugins.module_utils import report_html, report_page
from ansible_collections.cloudact.gcp.plugins.module_utils.catalog import load_catalog
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

from tests.report_rows import VIEW_COLUMNS, row
from tests.report_rows import rows as make_rows
from toolkit import ROOT

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
JOBS = [j.as_dict() for j in load_catalog(ROOT / "catalog/jobs.yml", root=ROOT).jobs]
BY = {j["shortcut"]: j for j in JOBS}
# Anything that makes a browser fetch: a script, a stylesheet or font link, an image, a CSS url().
FETCHES = re.compile(r"<script|<link|<img|<iframe|<object|\bsrc=|\bhref=|url\(|@import|@font-face", re.I)


def page(rows, **extra):
    base = {
        "env": "local",
        "project": "cloudact-local",
        "generated": NOW,
        "days": 30,
        "rows": rows,
        "jobs": JOBS,
        "source": "the ledger",
        "stale": None,
    }
    return report_html.render({**base, **extra})


def test_the_row_factory_has_exactly_the_view_columns() -> None:
    r = row("cloudact-daily-alerts", "x-1", NOW)
    assert list(r) == VIEW_COLUMNS


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"failure_class": "exit_code", "exit_code": 2}, "exit code 2"),
        ({"failure_class": "timeout"}, "task timeout"),
        ({"failure_class": "missing_secret"}, "missing secret"),
        ({"failure_class": "permission"}, "permission denied"),
        ({"failure_class": "retries_exhausted"}, "retries exhausted"),
        ({"failure_class": None}, "unknown cause"),
    ],
)
def test_causes_are_named(fields, text) -> None:
    assert report_html.cause(row("j", "x", NOW, result="failed", **fields)) == text


def test_stats_success_rate_percentiles_and_last_failure() -> None:
    job = "cloudact-daily-alerts"
    rows = [row(job, f"e{i}", NOW - timedelta(hours=20 - i), duration_s=float(i + 1)) for i in range(20)]
    rows[3].update(result="failed", failure_class="timeout")
    rows[7].update(result="failed", failure_class="exit_code", exit_code=1)
    rows[9].update(result="cancelled")
    rows[19].update(result="running", duration_s=None, completed=None)
    stats = report_html.job_stats(rows)
    assert stats["counts"] == {"succeeded": 16, "failed": 2, "cancelled": 1, "running": 1}
    assert stats["success_rate"] == pytest.approx(16 / 19)
    # durations 1..19 s (the running one has none): inclusive p50 is 10 s, p95 18.1 s
    assert stats["p50"] == pytest.approx(10.0)
    assert stats["p95"] == pytest.approx(18.1)
    assert stats["last_failure"]["execution"] == "e7"
    assert report_html.job_stats([])["success_rate"] is None


def test_release_history_groups_steps_by_release_id_in_release_order() -> None:
    t = NOW - timedelta(days=2)
    rows = [
        row(BY["org-sync-all"]["name"], "o1", t + timedelta(minutes=9), trigger="release", release_id="r-2"),
        row(BY["migrate"]["name"], "m1", t, trigger="release", release_id="r-2"),
        row(
            BY["bootstrap"]["name"], "b1", t + timedelta(minutes=3), trigger="release", release_id="r-2",
            result="failed", failure_class="exit_code", exit_code=1,
        ),
        row(BY["migrate"]["name"], "m0", t - timedelta(days=5), trigger="release", release_id="r-1"),
        row(BY["alerts"]["name"], "a1", t),
    ]  # fmt: skip
    got = report_html.releases(rows, JOBS)
    assert [g["release_id"] for g in got] == ["r-2", "r-1"]
    assert [(s["shortcut"], s["result"], s["cause"]) for s in got[0]["steps"]] == [
        ("migrate", "succeeded", ""),
        ("bootstrap", "failed", "exit code 1"),
        ("org-sync-all", "succeeded", ""),
    ]
    html = page(rows)
    assert 'data-release="r-2"' in html
    assert (
        "migrate: succeeded, bootstrap: failed (exit code 1), org-sync-all: succeeded</td><td>failed" in html
    )


def test_page_has_flags_logs_command_fires_and_loads_nothing() -> None:
    rows = make_rows(JOBS, NOW)
    html = page(
        rows,
        flags={"stale-cleanup": ["FAILED", "OVERDUE"]},
        notes={"stale-cleanup": ["stale-cleanup was due 2026-12-01 02:00 UTC and has not run since"]},
        fires={BY["alerts"]["name"]: [{"utc": NOW, "local": NOW, "note": ""}]},
    )
    assert not FETCHES.search(html)
    assert "<style>" in html and html.count("<svg") == 1 + 2 * len(JOBS)  # legend + timeline, durations
    assert '<span class="flag FAILED">FAILED</span><span class="flag OVERDUE">OVERDUE</span>' in html
    assert "has not run since" in html
    last = max((r for r in rows if r["job"] == BY["stale-cleanup"]["name"] and r["result"] == "failed"),
               key=lambda r: r["created"])  # fmt: skip
    assert f"make logs ENV=local JOB=stale-cleanup EXECUTION={last['execution']}" in html
    assert "<h3>Next fire times</h3>" in html and "2026-12-01 12:00 UTC" in html
    assert html.count('<line class="timeout"') == len(JOBS)
    assert "stale check not available" in html


def test_hostile_text_is_escaped() -> None:
    evil = '<script>alert(1)</script>"'
    rows = [row(BY["alerts"]["name"], 'x"><script>', NOW - timedelta(hours=1), summary=evil, result="failed")]
    html = page(rows, notes={"alerts": [evil]})
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;" in html


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "DAYS='0': expected a whole number of days from 1 to 400, e.g. DAYS=30"),
        ("30d", "DAYS='30d': expected a whole number of days from 1 to 400, e.g. DAYS=30"),
        ("401", "DAYS='401': expected a whole number of days from 1 to 400, e.g. DAYS=30"),
    ],
)
def test_bad_days_is_one_line(value, message) -> None:
    with pytest.raises(InputError) as info:
        report_page.check_days(value)
    assert str(info.value) == message
    assert report_page.check_days("7") == 7


def test_out_path(tmp_path) -> None:
    assert report_page.out_path("", str(tmp_path), "stage") == tmp_path / "reports" / "report-stage.html"
    with pytest.raises(InputError, match="is a directory"):
        report_page.out_path(str(tmp_path), None, "local")
    with pytest.raises(InputError, match="does not exist"):
        report_page.out_path(str(tmp_path / "no" / "r.html"), None, "local")
    target = tmp_path / "r.html"
    assert report_page.write(target, "<p>é</p>") == len("<p>é</p>".encode())
    assert target.read_text() == "<p>é</p>" and [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_image_digest_and_stale() -> None:
    alerts, reset = BY["alerts"]["name"], BY["quota-reset"]["name"]
    html = page(
        [],
        images={alerts: "r/cloudact-jobs@sha256:" + "1" * 64, reset: "r/cloudact-jobs:latest"},
        stale={alerts: True, reset: False},
        flags={"alerts": ["STALE"]},
        source_notes=["stale image: jobs on different digests: ..."],
    )
    assert (
        f'<code>sha256:{"1" * 64}</code> <span class="note">(stale: see the note at the top)</span>' in html
    )
    assert '<code>r/cloudact-jobs:latest</code> <span class="note">(not pinned to a digest)</span>' in html
    assert (
        '<span class="flag STALE">STALE</span>' in html and "stale image: jobs on different digests" in html
    )
