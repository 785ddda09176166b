"""make status's image column and STALE flag (module_utils/status.py `stale_flags`), as data."""

from __future__ import annotations

from ansible_collections.cloudact.gcp.plugins.module_utils import status
from ansible_collections.cloudact.gcp.plugins.module_utils.catalog import load_catalog

from toolkit import ROOT

NOW = "2026-03-02T12:00:00Z"
JOBS = [j.as_dict() for j in load_catalog(root=ROOT).jobs]
NAMES = [j["name"] for j in JOBS]


def deployed():
    return [{"name": n, "resource": {"createTime": NOW}} for n in NAMES]


def triggers():
    return [{"name": f"{j['name']}-trigger", "state": "ENABLED"} for j in JOBS if j.get("schedule")]


def test_without_image_state_the_table_keeps_its_columns():
    report = status.report(JOBS, deployed(), triggers(), [], NOW)
    assert "image" not in report["lines"][0].split()


def test_a_stale_finding_flags_its_jobs_and_says_why_with_the_fix():
    fix = "make image ENV=stage && make create-jobs ENV=stage"
    line = f"image built from 1a2b3c4, 3 commits behind on jobs/: {fix}"
    image = {
        "cells": dict.fromkeys(NAMES, "1a2b3c4d5e6f"),
        "stale": [{"kind": "behind", "jobs": NAMES[:2], "line": line}],
        "error": "",
    }
    report = status.report(JOBS, deployed(), triggers(), [], NOW, env="stage", image=image)
    header = report["lines"][0].split()
    assert header[-2:] == ["image", "flags"]
    rows = {line.split()[0]: line.split() for line in report["lines"][1:9]}
    first, second, third = (JOBS[i]["shortcut"] for i in range(3))
    assert rows[first][-2:] == ["1a2b3c4d5e6f", "STALE"] and rows[second][-1] == "STALE"
    assert "STALE" not in rows[third]
    assert f"stale image: {line}" in report["notes"]
    assert report["flags"][first] == ["STALE"] and "STALE" in report["strict_message"]


def test_an_unresolvable_tag_is_a_note_not_a_failed_status():
    image = {"cells": {}, "stale": [], "error": "ENV=prod: cloudact_image_tag='v9' is not a tag of x"}
    report = status.report(JOBS, deployed(), triggers(), [], NOW, image=image)
    assert "image: ENV=prod: cloudact_image_tag='v9' is not a tag of x" in report["notes"]
    assert not report["flagged"]
