"""The Ansible side of validation (cloudact_env role + cloudact.gcp.catalog filter), as operators run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from toolkit import ROOT

PLAYBOOK = ROOT / "playbooks/validate.yml"


def run_validate(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "NO_COLOR": "1", "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), str(PLAYBOOK), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_unknown_inventory_is_refused_with_the_valid_ones() -> None:
    result = run_validate("-i", "inventories/dev")
    assert result.returncode != 0
    assert "unknown environment dev: valid environments are local, prod, stage, test" in result.stdout


def test_every_inventory_validates() -> None:
    for env in ("local", "prod"):
        result = run_validate("-i", f"inventories/{env}")
        assert result.returncode == 0, result.stdout[-2000:]
        assert f"{env}: 8 jobs, 5 triggers, catalog valid" in result.stdout


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (
            {"schedule": "0 0 * *"},
            "jobs[3] (quota-reset) field 'schedule': invalid cron expression '0 0 * *'",
        ),
        ({"secrets": ["slack_token"]}, "jobs[3] (quota-reset) field 'secrets': 'slack_token' is not defined"),
    ],
    ids=["bad-cron", "undefined-secret"],
)
def test_a_bad_catalog_stops_the_play_naming_entry_and_field(
    tmp_path: Path, edit: dict, fragment: str
) -> None:
    data = yaml.safe_load((ROOT / "catalog/jobs.yml").read_text())
    data["jobs"][3].update(edit)
    bad = tmp_path / "jobs.yml"
    bad.write_text(yaml.safe_dump(data))
    result = run_validate("-i", "inventories/local", "-e", f"cloudact_catalog_file={bad}")
    assert result.returncode != 0
    assert fragment in " ".join(result.stdout.split())
