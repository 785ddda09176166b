"""`ansible-galaxy collection build` makes cloudact.gcp's tarball, with what a user installs and nothing else.

The build writes into the test's tmp_path, never into the repository. The tarball holds every plugin
file of the checkout and no cache or test output (galaxy.yml's build_ignore and ansible-galaxy's own
ignores); its MANIFEST.json carries galaxy.yml's version, and that version is the one antsibull-changelog
will release: above every release in changelogs/changelog.yaml while fragments wait, the last one
once they are merged.
"""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
from pathlib import Path, PurePosixPath

import pytest
import yaml
from packaging.version import Version

from .conftest import BIN, ROOT

COLLECTION = ROOT / "collections" / "ansible_collections" / "cloudact" / "gcp"
GALAXY = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())
# Never content: caches, compiled files, ansible-test's output, editor leftovers, unreleased fragments.
NEVER = ("__pycache__", ".pytest_cache", ".ruff_cache", ".ansible", "tests/output", "changelogs/fragments")
NEVER_SUFFIXES = (".pyc", ".orig", ".rej", ".swp", "~")


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("collection-build")
    proc = subprocess.run(
        [BIN / "ansible-galaxy", "collection", "build", str(COLLECTION), "--output-path", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = out / f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
    assert path.is_file(), f"no {path.name} in {sorted(p.name for p in out.iterdir())}: {proc.stdout}"
    return path


@pytest.fixture(scope="module")
def members(tarball: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(tarball) as tar:
        return {m.name.removeprefix("./"): m for m in tar.getmembers()}


def test_the_tarball_holds_every_plugin_file(members: dict[str, tarfile.TarInfo]) -> None:
    plugins = sorted(
        str(p.relative_to(COLLECTION))
        for p in (COLLECTION / "plugins").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(NEVER_SUFFIXES)
    )
    assert any(p.startswith("plugins/modules/") for p in plugins)
    assert any(p.startswith("plugins/module_utils/") for p in plugins)
    assert [p for p in plugins if p not in members] == []
    for name in ("MANIFEST.json", "FILES.json", "README.md", "meta/runtime.yml", "changelogs/changelog.yaml"):
        assert name in members, name


def test_the_tarball_holds_no_cache_output_nor_fragment(members: dict[str, tarfile.TarInfo]) -> None:
    def unwanted(name: str) -> bool:
        path = PurePosixPath(name)
        parts = "/".join(path.parts)
        return any(f"/{n}/" in f"/{parts}/" for n in NEVER) or name.endswith(NEVER_SUFFIXES)

    assert [n for n in members if unwanted(n)] == []
    # build_ignore says so itself for what ansible-galaxy does not leave out on its own.
    for pattern in ("changelogs/fragments", ".ansible", ".pytest_cache", ".ruff_cache"):
        assert pattern in GALAXY["build_ignore"], pattern


def test_the_manifest_carries_galaxy_yml(tarball: Path) -> None:
    with tarfile.open(tarball) as tar:
        manifest = json.load(tar.extractfile("MANIFEST.json"))["collection_info"]
    assert (manifest["namespace"], manifest["name"], manifest["version"]) == (
        GALAXY["namespace"],
        GALAXY["name"],
        GALAXY["version"],
    )
    assert manifest["dependencies"] == GALAXY["dependencies"]


def test_galaxy_version_is_the_one_the_changelog_releases_next() -> None:
    changelogs = COLLECTION / "changelogs"
    released = sorted(
        Version(str(v)) for v in yaml.safe_load((changelogs / "changelog.yaml").read_text())["releases"]
    )
    fragments = sorted(p.name for p in (changelogs / "fragments").glob("*.y*ml"))
    version = Version(GALAXY["version"])
    assert released, "changelog.yaml records no release"
    if fragments:
        # `antsibull-changelog release` takes galaxy.yml's version: the fragments become that release.
        assert version > released[-1], (
            f"{version} is released already; fragments {fragments} wait for the next"
        )
        # A fragment that says which release brings its change names that one.
        named = {
            (name, match)
            for name in fragments
            for match in re.findall(
                r"\bnew in (\d+\.\d+\.\d+)", (changelogs / "fragments" / name).read_text()
            )
        }
        assert [(name, v) for name, v in sorted(named) if Version(v) != version] == []
    else:
        assert version == released[-1], (
            f"no fragment waits, so galaxy.yml should be the last release {released[-1]}"
        )
