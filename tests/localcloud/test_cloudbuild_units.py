"""Cloud Build's pieces without a server: .dockerignore matching, the Dockerfile's image (files and
config) and its digest, substitutions as Cloud Build checks and expands them, and the container's
path mapping. Cases as data where they fit."""

from __future__ import annotations

from pathlib import Path

import pytest

from localcloud.services import cloudbuild_config as cfg
from localcloud.services.artifactregistry_images import Container, image_manifest, store_image
from localcloud.services.cloudbuild_docker import DockerError, DockerIgnore, LocalImages, build, normalize
from localcloud.services.run_errors import ApiError

ROOT = Path(__file__).resolve().parents[2]

IGNORE_CASES = [
    # (patterns, path, excluded)
    ("*\n!jobs/\n**/__pycache__", "jobs/daily/a.py", False),
    ("*\n!jobs/\n**/__pycache__", "jobs/__pycache__/a.pyc", True),
    ("*\n!jobs/\n**/__pycache__", "tests/test_x.py", True),
    ("*\n!requirements/jobs.txt", "requirements/jobs.txt", False),
    ("*\n!requirements/jobs.txt", "requirements/dev.txt", True),
    ("**/*.pyc", "a/b/c.pyc", True),
    ("**/*.pyc", "c.pyc", True),
    ("docs", "docs/x/y.md", True),
    ("docs", "src/docs/y.md", False),  # anchored at the context root, unlike .gitignore
    ("# comment\n\n./build/", "build/out", True),
    ("*.md\n!README.md", "README.md", False),
]


@pytest.mark.parametrize(("patterns", "path", "excluded"), IGNORE_CASES)
def test_dockerignore_matches_as_docker_does(patterns, path, excluded):
    assert DockerIgnore(patterns).excluded(path) is excluded


def context(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def built(tmp_path: Path, files: dict[str, str], *args: str) -> tuple[LocalImages, list[str]]:
    ctx = context(tmp_path / "ctx", files)
    images = LocalImages(tmp_path / "images")
    log: list[str] = []
    build([*args, "."], ctx, images, tmp_path, log.append)
    return images, log


def test_the_image_is_what_copy_places_with_the_dockerfiles_config(tmp_path):
    dockerfile = """
ARG BASE=python:3.11
FROM ${BASE}
ARG APP=/srv
ENV HOME_DIR=$APP A="x y"
WORKDIR $APP
WORKDIR sub
COPY a.txt b.txt ./
COPY ["dir/", "${HOME_DIR}/d/"]
COPY *.cfg /etc/app/
RUN echo never
LABEL team=ops
USER 1000
ENTRYPOINT ["tini"]
CMD python -m app
"""
    files = {
        "Dockerfile": dockerfile,
        "a.txt": "a",
        "b.txt": "b",
        "dir/x/y.txt": "y",
        "one.cfg": "1",
        "junk": "j",
    }
    images, log = built(tmp_path, files, "-t", "reg/app:v1", "--label=rev=abc", "--build-arg", "APP=/opt/app")
    digest = images.tags["reg/app:v1"]
    root = images.dir(digest) / "files"
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert names == ["etc/app/one.cfg", "opt/app/d/x/y.txt", "opt/app/sub/a.txt", "opt/app/sub/b.txt"]
    config = __import__("json").loads((images.dir(digest) / "config.json").read_text())
    assert config["Env"] == ["HOME_DIR=/opt/app", "A=x y"]
    assert config["WorkingDir"] == "/opt/app/sub" and config["User"] == "1000"
    assert config["Entrypoint"] == ["tini"] and config["Cmd"] == ["/bin/sh", "-c", "python -m app"]
    assert config["Labels"] == {"team": "ops", "rev": "abc"}
    assert any("RUN is not executed" in line for line in log)


def test_the_digest_depends_on_files_and_config_only(tmp_path):
    files = {"Dockerfile": "FROM scratch\nCOPY a.txt /a.txt\n", "a.txt": "a", "unused": "u"}
    first, _ = built(tmp_path / "1", files, "-t", "x:1")
    second, _ = built(tmp_path / "2", {**files, "unused": "changed"}, "-t", "x:1")
    third, _ = built(tmp_path / "3", {**files, "a.txt": "b"}, "-t", "x:1")
    labelled, _ = built(tmp_path / "4", files, "-t", "x:1", "--label", "k=v")
    assert first.tags["x:1"] == second.tags["x:1"]  # what COPY does not take does not count
    assert len({first.tags["x:1"], third.tags["x:1"], labelled.tags["x:1"]}) == 3


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        (
            {"Dockerfile": "FROM scratch\nCOPY missing /x\n"},
            [],
            "COPY failed: file not found in build context",
        ),
        ({"Dockerfile": "FROM a AS b\nFROM c\nCOPY --from=b /x /x\n"}, [], "multi-stage builds"),
        ({"Dockerfile": "FROM scratch\n"}, ["--squash"], "unknown flag: --squash"),
        ({"Dockerfile": "COPY a /a\n", "a": ""}, [], "no FROM instruction"),
    ],
)
def test_docker_build_refusals_name_the_problem(tmp_path, files, args, message):
    with pytest.raises(DockerError, match=message):
        built(tmp_path, files, *args)


def test_normalize_adds_latest_only_without_tag_or_digest():
    assert normalize("r.io/p/i") == "r.io/p/i:latest"
    assert normalize("localhost:5000/i") == "localhost:5000/i:latest"
    assert normalize("r.io/p/i:v1") == "r.io/p/i:v1"
    assert normalize("r.io/p/i@sha256:00") == "r.io/p/i@sha256:00"


BUILTINS = {"PROJECT_ID": "p", "BUILD_ID": "b", "LOCATION": "global", "COMMIT_SHA": ""}
SUBSTITUTION_CASES = [
    # (substitutions, dynamic, arg, expanded)
    ({"_A": "x"}, False, "$_A-${_A}-$$_A-$PROJECT_ID", "x-x-$_A-p"),
    (
        {"_V": "v1.2.3"},
        True,
        "${_V#v}|${_V%.3}|${_V/./_}|${_V//./_}|${_V:1:3}|${_V^^}",
        "1.2.3|v1.2|v1_2.3|v1_2_3|1.2|V1.2.3",
    ),
    ({"_E": ""}, True, "${_E:-fallback}", "fallback"),
    ({"_R": "us", "_IMG": "${_R}-docker.pkg.dev/${PROJECT_ID}"}, True, "$_IMG", "us-docker.pkg.dev/p"),
    ({"_S": "[$COMMIT_SHA]"}, True, "$_S", "[]"),
]


@pytest.mark.parametrize(("subs", "dynamic", "arg", "expanded"), SUBSTITUTION_CASES)
def test_substitutions_expand_as_cloud_build_does(subs, dynamic, arg, expanded):
    build = {
        "steps": [{"name": "bash", "args": [arg]}],
        "substitutions": subs,
        "options": {"dynamicSubstitutions": dynamic},
    }
    values = cfg.resolve(build, BUILTINS)
    assert cfg.apply(build, values)["steps"][0]["args"] == [expanded]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        ({"steps": []}, "at least one build step"),
        ({"steps": [{"args": ["x"]}]}, "build step 0 must specify name"),
        ({"steps": [{"name": "a", "id": "x"}, {"name": "b", "id": "x"}]}, 'duplicate id "x"'),
        ({"steps": [{"name": "a", "waitFor": ["later"]}]}, 'unknown step id "later"'),
        ({"steps": [{"name": "a", "timeout": "ten"}]}, "not a duration"),
        ({"steps": [{"name": "a"}], "source": {"gitSource": {"url": "x"}}}, "storageSource only"),
    ],
)
def test_builds_create_refusals(build, message):
    with pytest.raises(ApiError, match=message):
        cfg.check(build)


def test_allow_loose_lifts_both_substitution_checks():
    build = {
        "steps": [{"name": "bash", "args": ["$_MISSING"]}],
        "substitutions": {"_UNUSED": "1"},
        "options": {"substitutionOption": "ALLOW_LOOSE"},
    }
    assert cfg.apply(build, cfg.resolve(build, BUILTINS))["steps"][0]["args"] == [""]


def test_a_container_maps_the_images_paths_into_its_copy(tmp_path):
    files = tmp_path / "files"
    (files / "app" / "jobs").mkdir(parents=True)
    config = {
        "Env": ["PYTHONPATH=/app:/nowhere", "MODE=x"],
        "WorkingDir": "/app",
        "Cmd": ["python", "-m", "jobs"],
    }
    digest, manifest, _, _ = image_manifest(files, config)
    image_dir = store_image(tmp_path / "store", files, config, digest, manifest)
    container = Container(image_dir, config, tmp_path)
    try:
        argv, env, cwd = container.command(None, ["python", "/app/jobs/x.py", "/etc/passwd"], {"MODE": "job"})
        root = str(container.root)
        assert argv[1:] == [f"{root}/app/jobs/x.py", "/etc/passwd"]  # only the image's own paths move
        assert cwd == f"{root}/app" and env["MODE"] == "job"
        assert env["PYTHONPATH"].split(":")[1:] == [f"{root}/app", "/nowhere"]  # the shim first
        assert container.command(None, None)[0][1:] == ["-m", "jobs"]
    finally:
        container.close()
    assert not container.dir.exists()


def test_docker_run_finds_this_builds_image_by_tag_or_digest_and_refuses_others(tmp_path):
    from localcloud.services.cloudbuild_docker import run_argv

    class NoRegistry:
        def image(self, ref):
            return None

    files = {"Dockerfile": 'FROM scratch\nWORKDIR /w\nCOPY a.txt ./\nCMD ["cat", "a.txt"]\n', "a.txt": "a"}
    images, _ = built(tmp_path, files, "-t", "reg/x:1")
    digest = images.tags["reg/x:1"]
    for ref in ("reg/x:1", f"reg/x@{digest}"):
        container, argv, _, cwd = run_argv(["--rm", "-e", "K=V", ref], images, NoRegistry(), tmp_path)
        try:
            assert argv == ["cat", "a.txt"] and Path(cwd, "a.txt").read_text() == "a"
        finally:
            container.close()
    with pytest.raises(DockerError, match="Unable to find image 'reg/y:1' locally") as refused:
        run_argv(["reg/y:1"], images, NoRegistry(), tmp_path)
    assert refused.value.code == 125
