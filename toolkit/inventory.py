"""Environments: the inventories under inventories/<env>/, merged over the shared defaults.

Ansible reads the same files (the cloudact_env role's defaults, then the inventory's
group_vars); this module gives the Python tools and tests the same resolved facts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import yaml

from toolkit import ROOT, ToolkitError

DEFAULTS_FILE = Path("roles/cloudact_env/defaults/main.yml")


def environments(root: Path = ROOT) -> list[str]:
    """The valid environment names: one per inventories/<env>/hosts.yml."""
    return sorted(p.parent.name for p in (root / "inventories").glob("*/hosts.yml"))


def check_environment(name: str, root: Path = ROOT) -> str:
    valid = environments(root)
    if name not in valid:
        raise ToolkitError(f"unknown environment {name!r}: valid environments are {', '.join(valid)}")
    return name


def _read_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ToolkitError(f"{path}: expected a mapping of variables")
    return data


def _render(value: Any, context: dict[str, Any], env: jinja2.Environment) -> Any:
    if isinstance(value, str) and "{{" in value:
        return env.from_string(value).render(context)
    if isinstance(value, dict):
        return {k: _render(v, context, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, context, env) for v in value]
    return value


def load_environment(name: str, root: Path = ROOT) -> dict[str, Any]:
    """The resolved variables of one environment (defaults, then the inventory's group_vars)."""
    check_environment(name, root)
    merged = _read_yaml(root / DEFAULTS_FILE)
    for path in sorted((root / "inventories" / name / "group_vars" / "all").glob("*.yml")):
        merged.update(_read_yaml(path))
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701 - not HTML
    for _ in range(10):  # references resolve in a few passes; more means a cycle
        rendered = {k: _render(v, merged, env) for k, v in merged.items()}
        if rendered == merged:
            return rendered
        merged = rendered
    raise ToolkitError(f"inventories/{name}: variables reference each other in a cycle")
