"""No reference dangles: every Markdown document the code and docs name exists in the repository.

A path ending in `.md` in a source, config or documentation file must exist relative to the
repository root or to the naming file's own folder. The documents the project cites are its own
(docs/ and the READMEs), so nothing may point at a folder of shared documents outside it.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = frozenset(
    {".venv", ".git", ".localcloud", "__pycache__", ".pytest_cache", ".ruff_cache", ".ansible"}
)
SUFFIXES = frozenset({".py", ".yml", ".yaml", ".md", ".cfg", ".toml"})
NAMES = frozenset({"Makefile", "Dockerfile"})
THIS = Path(__file__).resolve()  # its own allow-list names paths that do not exist

URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+")
DOC = re.compile(r"(?<![A-Za-z0-9_./-])[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md(?![A-Za-z0-9_])")
OUTSIDE = re.compile(r"\.\./shared\b|\bshared/[A-Za-z0-9_.-]+\.md\b")

# (file, path) pairs that are data, not references.
NOT_REFERENCES = {
    ("tests/localcloud/test_cloudbuild_units.py", "docs/x/y.md"): ".dockerignore pattern test data",
    ("tests/localcloud/test_cloudbuild_units.py", "src/docs/y.md"): ".dockerignore pattern test data",
}


def scanned_files() -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            path = Path(folder, name)
            if (path.suffix in SUFFIXES or name in NAMES) and path != THIS:
                found.append(path)
    return found


@functools.cache
def problems() -> tuple[list[str], list[str]]:
    """(`file:line: path` of each missing document, `file:line: text` of each outside reference)."""
    missing, outside = [], []
    for path in scanned_files():
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        if ".md" not in text and "shared" not in text:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if "shared" in line:
                outside += [f"{rel}:{number}: {m.group(0)}" for m in OUTSIDE.finditer(line)]
            if ".md" not in line:
                continue
            for match in DOC.finditer(URL.sub(" ", line)):
                named = match.group(0)
                if (rel, named) in NOT_REFERENCES:
                    continue
                if not ((ROOT / named).is_file() or (path.parent / named).is_file()):
                    missing.append(f"{rel}:{number}: {named}")
    return missing, outside


def test_every_named_markdown_document_exists() -> None:
    missing, _ = problems()
    assert not missing, "documents named but not in the repository:\n" + "\n".join(missing)


def test_nothing_cites_documents_outside_the_repository() -> None:
    _, outside = problems()
    assert not outside, "references to shared documents outside the repository:\n" + "\n".join(outside)


def test_the_allow_list_is_still_needed() -> None:
    for (rel, named), reason in NOT_REFERENCES.items():
        assert reason.strip(), f"{rel}: {named}: give the reason"
        assert named in (ROOT / rel).read_text(encoding="utf-8"), f"{rel} no longer names {named}: remove it"
