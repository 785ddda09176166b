"""Environments cannot overwrite each other: test is stage, and two inventories that would own the same
jobs (one project, region and set of job names) are refused by name, in make lint and at every load."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.cloudact.gcp.plugins.module_utils import environment
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of what an environment is read from: the inventories, the shared defaults, the catalog."""
    for part in ("inventories", "catalog"):
        shutil.copytree(ROOT / part, tmp_path / part)
    (tmp_path / environment.DEFAULTS_FILE).parent.mkdir(parents=True)
    shutil.copy(ROOT / environment.DEFAULTS_FILE, tmp_path / environment.DEFAULTS_FILE)
    return tmp_path


def add_inventory(root: Path, name: str, project: str) -> None:
    shutil.copytree(root / "inventories/stage", root / f"inventories/{name}")
    env = root / f"inventories/{name}/group_vars/all/env.yml"
    text = env.read_text().replace("cloudact_env: stage", f"cloudact_env: {name}")
    text = text.replace("cloudact_env_aliases: [test]", "cloudact_env_aliases: []")
    env.write_text(
        text.replace("cloudact_gcp_project: cloudact-testing-1", f"cloudact_gcp_project: {project}")
    )


def test_the_repositorys_inventories_are_distinct_and_test_is_stage() -> None:
    environment.check_distinct(ROOT)
    assert environment.check_environment("test", ROOT) == "stage"
    assert not (ROOT / "inventories/test").exists()


def test_two_inventories_on_one_project_are_refused_naming_both(root: Path) -> None:
    add_inventory(root, "qa", "cloudact-testing-1")
    with pytest.raises(InputError) as err:
        environment.check_distinct(root)
    assert str(err.value).startswith(
        "inventories/qa and inventories/stage resolve to the same project cloudact-testing-1, region "
        "us-central1 and job names: they would overwrite each other's jobs"
    )
    assert "cloudact_env_aliases: [stage] in inventories/qa/group_vars/all/" in str(err.value)
    with pytest.raises(InputError):  # every load refuses them, not only make lint
        environment.load_environment("prod", root)


def test_an_environment_with_a_project_of_its_own_stands_beside_the_others(root: Path) -> None:
    add_inventory(root, "qa", "cloudact-qa-1")
    environment.check_distinct(root)
    assert environment.load_environment("qa", root)["cloudact_gcp_project"] == "cloudact-qa-1"
    assert environment.valid_words(root) == "local, prod, qa, stage, test (= stage)"


def test_make_lint_runs_the_check() -> None:
    makefile = (ROOT / "Makefile").read_text()
    lint = makefile[makefile.index("\nlint:") : makefile.index("\n.PHONY: test\n")]
    assert "$(BIN)/python -m toolkit check-inventories" in lint
    done = subprocess.run(
        [sys.executable, "-m", "toolkit", "check-inventories"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_the_env_word_of_make_says_once_that_test_is_stage() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "toolkit", "env", "test"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        "stage\n",
        "test is stage (cloudact-testing-1)\n",
    )
