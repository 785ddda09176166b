"""One direction of imports: product code never imports the emulator and never edits sys.path.

Product code is toolkit/, collections/ and jobs/ (what runs in a play, a CLI or the job image);
localcloud/ and tests/ may import the product, never the other way round. Checked on the syntax
tree, so a string or a comment that mentions them does not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("toolkit", "collections", "jobs")
FILES = sorted(p for d in PRODUCT for p in (ROOT / d).rglob("*.py"))


def offences(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] == "localcloud"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "localcloud":
            found.append(f"from {node.module} import ...")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr == "path"
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
        ):
            found.append("sys.path")
    return found


def test_the_checker_finds_what_it_looks_for() -> None:
    assert offences("import localcloud.client\n") == ["import localcloud.client"]
    assert offences("from localcloud.config import StateFiles\n") == ["from localcloud.config import ..."]
    assert offences("import sys\nsys.path.insert(0, 'x')\n") == ["sys.path"]
    assert offences("import sys\nprint(sys.argv)\n'localcloud'\n# sys.path\n") == []


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_product_code_imports_no_emulator_and_edits_no_sys_path(path: Path) -> None:
    assert offences(path.read_text()) == [], f"{path.relative_to(ROOT)}"
