"""The job image without a container engine: its layout works, and its build file checks its inputs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.cloudact.gcp.plugins.module_utils import environment as inventory
from ansible_collections.cloudact.gcp.plugins.module_utils.catalog import load_catalog

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Path:
    """/app as the Dockerfile lays it out: jobs/ and migrations/ -> migrations/supabase_db/."""
    app = tmp_path_factory.mktemp("image") / "app"
    shutil.copytree(ROOT / "jobs", app / "jobs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "migrations", app / "migrations" / "supabase_db")
    return app


def test_dockerfile_copies_what_the_layout_fixture_copies():
    assert re.search(r"^FROM python:3\.11\.\d+-slim-bookworm$", DOCKERFILE, re.M)  # an exact version
    assert "COPY --chown=root:root jobs/ /app/jobs/" in DOCKERFILE
    assert "COPY --chown=root:root migrations/ /app/migrations/supabase_db/" in DOCKERFILE
    assert "-r /app/requirements/jobs.txt" in DOCKERFILE
    assert re.search(r"^ENV PYTHONUNBUFFERED=1", DOCKERFILE, re.M)
    assert re.search(r"^USER 10001:10001$", DOCKERFILE, re.M)
    # Jobs run as modules from /app; PYTHONPATH lets a script run as a file too (the build's smoke test).
    assert re.search(r"^WORKDIR /app$", DOCKERFILE, re.M)
    assert re.search(r"^    PYTHONPATH=/app \\$", DOCKERFILE, re.M)
    assert re.search(r'^CMD \["python", "-m", "jobs"\]$', DOCKERFILE, re.M)


# Runs a module as `python -m` does and reports which jobs.runtime it imported.
WRAPPER = (
    "import json, runpy, sys\n"
    "sys.argv = sys.argv[1:]\n"
    "try:\n    runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n"
    "except SystemExit as exc:\n    code = exc.code\n"
    "print(json.dumps({'exit': code, 'runtime': sys.modules['jobs.runtime'].__file__}))\n"
)


def module_of(script: str) -> str:
    return script.removesuffix(".py").replace("/", ".")


def test_a_module_run_from_the_workdir_imports_the_runtime_of_the_image(app):
    """`python -m jobs...` in WORKDIR /app finds /app/jobs/runtime/ (not the checkout's)."""
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, "jobs.manual.bootstrap_smart", "--help"],
        cwd=app,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report == {"exit": 0, "runtime": str(app / "jobs/runtime/__init__.py")}


def test_every_catalog_command_runs_in_the_image_layout(app):
    """The container command converge builds (`python -m <module of script>`), run from WORKDIR:
    each script the catalog names answers --help."""
    for job in load_catalog(root=ROOT).jobs:
        proc = subprocess.run(
            [sys.executable, "-m", module_of(job.script), "--help"],
            cwd=app,
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, f"{job.script}: {proc.stderr}"
        assert "Exit codes:" in proc.stdout


def test_a_script_also_runs_as_a_file_with_the_images_pythonpath(app):
    """`docker run IMAGE python /app/jobs/manual/bootstrap_smart.py` works too (PYTHONPATH=/app)."""
    proc = subprocess.run(
        [sys.executable, str(app / "jobs/manual/bootstrap_smart.py"), "--help"],
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(app)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_default_command_lists_every_catalog_script(app):
    proc = subprocess.run(
        [sys.executable, "-m", "jobs"], cwd=app, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: python -m jobs.<category>.<script>")
    for job in load_catalog(root=ROOT).jobs:
        assert module_of(job.script) in proc.stderr
    helped = subprocess.run(
        [sys.executable, "-m", "jobs", "--help"],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert helped.returncode == 0
    assert "jobs.daily.alerts_daily" in helped.stdout


BUILD = yaml.safe_load((ROOT / "cloudbuild-jobs.yaml").read_text())


def substitute(text: str, values: dict[str, str]) -> str:
    """Cloud Build's substitution: ${_NAME} and $NAME from `values`, then $$ -> $."""
    text = re.sub(r"\$\{(\w+)\}|\$(?!\$)(\w+)", lambda m: values[m[1] or m[2]], text)
    return text.replace("$$", "$")


@pytest.mark.parametrize(
    ("env", "release", "error"),
    [
        ("stage", "v1.4.0", ""),
        ("prod", "2026.11.26-1", ""),
        ("dev", "v1", "_ENV='dev' is not valid; use local, test, stage or prod"),
        ("prod", "", "_RELEASE='' is not valid"),
        ("prod", "latest", "_RELEASE='latest' is not valid"),
        ("prod", "v1 beta", "_RELEASE='v1 beta' is not valid"),
    ],
)
def test_cloudbuild_checks_its_substitutions_before_building(env, release, error):
    step = BUILD["steps"][0]
    assert step["id"] == "check-substitutions"
    script = substitute(step["args"][1], {"_ENV": env, "_RELEASE": release, "_REVISION_SHORT": "1a2b3c4"})
    proc = subprocess.run(["bash", "-euc", script], capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == (2 if error else 0)
    assert error in proc.stderr if error else proc.stderr == ""


def test_cloudbuild_pushes_the_release_tag_and_the_git_tag_where_the_inventories_look():
    values = {
        "_REGION": "us-central1",
        "PROJECT_ID": "cloudact-prod",
        "_ENV": "prod",
        "_RELEASE": "v1.4.0",
        "_REVISION_SHORT": "1a2b3c4",
    }
    image = substitute(BUILD["substitutions"]["_IMAGE"], {**BUILD["substitutions"], **values})
    assert image == "us-central1-docker.pkg.dev/cloudact-prod/cloudact/cloudact-jobs-prod"
    pushed = [substitute(i, {**values, "_IMAGE": image}) for i in BUILD["images"]]
    assert pushed == [f"{image}:v1.4.0", f"{image}:git-1a2b3c4"]  # no :latest: jobs are pinned to digests
    assert inventory.load_environment("prod", ROOT)["cloudact_image_repository"] == image
