"""Environments for the toolkit CLIs: the collection's plain-data reader, rooted at this checkout."""

from __future__ import annotations

from pathlib import Path

from ansible_collections.cloudact.gcp.plugins.module_utils import environment

from toolkit import ROOT


def environments(root: Path = ROOT) -> list[str]:
    return environment.environments(root)


def check_environment(name: str, root: Path = ROOT) -> str:
    return environment.check_environment(name, root)


def load_environment(name: str, root: Path = ROOT) -> dict:
    return environment.load_environment(name, root)
