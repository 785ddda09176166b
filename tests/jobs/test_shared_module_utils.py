"""The collection's module_utils that the job image carries import with the image's dependencies only.

The Dockerfile copies some of the cloudact.gcp collection's module_utils files (verbs.py, the one
retry rule) to the same import path under /app, and the job code imports them from there
(`from ansible_collections.cloudact.gcp.plugins.module_utils import verbs` in jobs/runtime/http.py),
with no Ansible installed: `ansible_collections` is a namespace package of the files copied alone.
The dev venv cannot show that (it has Ansible, and its .pth puts the checkout's collections/ on
sys.path), so this test builds what the image has: a fresh venv (`python -m venv`) with only
requirements/jobs.txt, installed as the Dockerfile installs it, and /app laid out as its COPY lines
say. Then, as a job runs (PYTHONPATH=/app, WORKDIR /app, nothing of the caller's environment), each
shared file and each job module that imports one is imported. The venv is made once per session
(about 15 s, nearly all of it pip installing the pinned wheels); pip's own cache (~/.cache/pip) and
configuration (index, certificate) pass through to it.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
APP = "/app/"


def dockerfile_copies() -> list[tuple[str, str]]:
    """(source, destination) of every COPY instruction of the Dockerfile, continuation lines joined."""
    out = []
    for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines():
        words = line.split()
        if words[:1] == ["COPY"]:
            *sources, dest = [w for w in words[1:] if not w.startswith("--")]
            out.extend((source, dest) for source in sources)
    return out


# The collection files the image carries: {checkout path: path under /app}.
SHARED = {src: dest.removeprefix(APP) for src, dest in dockerfile_copies() if src.startswith("collections/")}


def dotted(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def importers() -> list[str]:
    """The job modules that import from the collection (`ansible_collections...`), as module names."""
    out = []
    for path in sorted((ROOT / "jobs").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if any(n.split(".")[0] == "ansible_collections" for n in names):
                out.append(dotted(str(path.relative_to(ROOT))))
                break
    return out


# Imports the modules named on the command line; reports where each came from and what got loaded.
PROBE = """
import sys
before = set(sys.modules)  # what the interpreter loaded at start-up (site, .pth hooks)
import importlib, importlib.util, json
files = {name: importlib.import_module(name).__file__ for name in sys.argv[1:]}
loaded = sorted({name.split(".")[0] for name in set(sys.modules) - before})
stdlib = sys.stdlib_module_names | set(sys.builtin_module_names)
print(json.dumps({
    "files": files,
    "third_party": [name for name in loaded if name not in stdlib],
    "ansible": importlib.util.find_spec("ansible") is not None,
    "path": sys.path,
}))
"""


@pytest.fixture(scope="session")
def image_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv's python with requirements/jobs.txt installed as the Dockerfile installs it.

    The venv is made without pip (ensurepip would add seconds) and this interpreter's pip installs
    into it (`pip --python`): the same packages, with the caller's pip cache, index and certificate.
    """
    venv = tmp_path_factory.mktemp("job-image") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PIP_NO_CACHE_DIR"}
    pip = [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check"]
    requirements = str(ROOT / "requirements" / "jobs.txt")
    for args in (["install", "--quiet", "--no-deps", "--only-binary=:all:", "-r", requirements], ["check"]):
        proc = subprocess.run(
            [*pip, *args], env=env, capture_output=True, text=True, timeout=600, check=False
        )
        assert proc.returncode == 0, f"pip {args[0]}: {proc.stdout}{proc.stderr}"
    return python


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/app as the Dockerfile's COPY lines lay out the job code and the shared collection files."""
    app = tmp_path_factory.mktemp("image-app") / "app"
    shutil.copytree(ROOT / "jobs", app / "jobs", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for src, dest in SHARED.items():
        (app / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / src, app / dest)
    return app


def probe(python: Path, app: Path, *modules: str) -> dict:
    """Import `modules` in the image's way: PYTHONPATH=/app, WORKDIR /app, no caller environment."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONPATH": str(app), "PYTHONNOUSERSITE": "1"}
    proc = subprocess.run(
        [str(python), "-c", PROBE, *modules],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_dockerfile_copies_shared_module_utils_to_their_import_path() -> None:
    assert SHARED, "the Dockerfile copies no collection file"
    for src, dest in SHARED.items():
        assert src.startswith("collections/ansible_collections/cloudact/gcp/plugins/module_utils/"), src
        assert src.endswith(".py") and dest == src.removeprefix("collections/"), (src, dest)
    assert "jobs.runtime.http" in importers()


@pytest.mark.parametrize("path", sorted(SHARED.values()))
def test_a_shared_file_imports_with_the_standard_library_only(
    image_python: Path, app: Path, path: str
) -> None:
    report = probe(image_python, app, dotted(path))
    assert report["files"] == {dotted(path): str(app / path)}  # the copy under /app, not the checkout's
    assert report["ansible"] is False  # the image has no Ansible: ansible_collections is the copied files
    assert report["third_party"] == ["ansible_collections"]
    assert str(ROOT) not in json.dumps(report["path"])


def test_the_job_modules_import_the_shared_files_from_the_image_layout(image_python: Path, app: Path) -> None:
    modules = [*importers(), *(dotted(p) for p in sorted(SHARED.values()))]
    report = probe(image_python, app, *modules)
    assert report["ansible"] is False
    for name, file in report["files"].items():
        assert Path(file).is_relative_to(app), (name, file)
    assert str(ROOT) not in json.dumps(report["path"])
