"""requirements.yml declares the collections; the installed ones must fall inside its ranges."""

from __future__ import annotations

import json
from pathlib import Path

import ansible_collections
import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from toolkit import ROOT

DECLARED = yaml.safe_load((ROOT / "requirements.yml").read_text())["collections"]


def installed_version(name: str) -> Version:
    namespace, collection = name.split(".")
    for base in ansible_collections.__path__:
        manifest = Path(base) / namespace / collection / "MANIFEST.json"
        if manifest.is_file():
            return Version(json.loads(manifest.read_text())["collection_info"]["version"])
    pytest.fail(f"collection {name} is not installed (it should come with the pinned `ansible` package)")


@pytest.mark.parametrize("entry", DECLARED, ids=[c["name"] for c in DECLARED])
def test_installed_collection_is_within_the_declared_range(entry: dict) -> None:
    version = installed_version(entry["name"])
    assert version in SpecifierSet(entry["version"]), (
        f"{entry['name']} {version} is outside requirements.yml's range {entry['version']}"
    )


def test_the_collection_declares_the_same_range() -> None:
    galaxy = yaml.safe_load((ROOT / "collections/ansible_collections/cloudact/gcp/galaxy.yml").read_text())
    declared = {c["name"]: c["version"] for c in DECLARED}
    assert galaxy["dependencies"] == declared
