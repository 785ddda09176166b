"""The image's rules on a small git repository of their own: dirty inputs, release tags, the migrations
source, the build context (git archive of HEAD plus the migrations), and stale findings."""

from __future__ import annotations

import gzip
import io
import subprocess
import tarfile
from pathlib import Path

import pytest
from ansible_collections.cloudact.gcp.plugins.module_utils import image
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64


def git(root: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t"}
    env.update(GIT_COMMITTER_EMAIL="t@example.com", PATH="/usr/bin:/bin", HOME=str(root))
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.strip()


def commit(root: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "add", *files)
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commit(
        root,
        {
            "jobs/a.py": "print('a')\n",
            "requirements/jobs.txt": "requests==2\n",
            "Dockerfile": "FROM python\n",
            "cloudbuild-jobs.yaml": "steps: []\n",
            "migrations/01_init.sql": "select 1;\n",
            "README.md": "not an input\n",
        },
        "first",
    )
    return root


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_uncommitted_inputs_are_named_and_other_files_do_not_count(repo):
    (repo / "jobs/a.py").write_text("print('changed')\n")
    (repo / "jobs/new.py").write_text("x = 1\n")
    (repo / "README.md").write_text("edited\n")
    (repo / "migrations/02_more.sql").write_text("select 2;\n")
    assert image.dirty(repo, local=False) == ["jobs/a.py", "jobs/new.py"]
    assert image.dirty(repo, local=True) == ["jobs/a.py", "jobs/new.py", "migrations/02_more.sql"]


@pytest.mark.parametrize(
    ("release", "error"),
    [
        ("v1.4.0", ""),
        ("2026.11.26-1", ""),
        ("latest", "RELEASE=latest: a moving tag is refused"),
        ("git-1a2b3c4", "RELEASE='git-1a2b3c4' is not a valid release tag"),
        ("v1 beta", "RELEASE='v1 beta' is not a valid release tag"),
        ("-x", "RELEASE='-x' is not a valid release tag"),
    ],
)
def test_release_tags(release, error):
    if not error:
        assert image.check_release(release, "stage") == release
        return
    with pytest.raises(InputError, match=error.replace("(", r"\(").replace(")", r"\)")):
        image.check_release(release, "stage")


def test_a_non_local_build_without_a_migrations_source_is_refused_naming_the_variable(repo):
    with pytest.raises(
        InputError, match=r"ENV=prod: cloudact_migrations_source is empty: set it in inventories/prod/"
    ):
        image.migrations("prod", False, "", repo)
    assert image.migrations("local", True, "", repo) == {"files": {}, "label": "examples", "source": ""}


def test_a_migrations_source_gives_its_sql_files_and_its_commit_in_the_label(tmp_path, repo):
    source = tmp_path / "cloudact" / "supabase_db"
    source.mkdir(parents=True)
    git(source, "init", "-q", "-b", "main")
    sha = commit(source, {"10_real.sql": "create table t();\n", "notes.txt": "x\n"}, "real")
    got = image.migrations("stage", False, str(source), repo)
    assert list(got["files"]) == ["10_real.sql"] and got["label"] == f"{source}@{sha[:12]}"
    with pytest.raises(InputError, match="not a directory"):
        image.migrations("stage", False, str(tmp_path / "nope"), repo)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"no \*\.sql files"):
        image.migrations("stage", False, str(empty), repo)


def test_the_context_is_heads_inputs_with_the_environments_migrations(tmp_path, repo):
    (repo / "jobs/a.py").write_text("print('uncommitted')\n")  # never in the context
    rev = image.revision(repo)
    local = members(image.context(repo, rev, True, {}))
    assert local == {
        "jobs/a.py": b"print('a')\n",
        "requirements/jobs.txt": b"requests==2\n",
        "Dockerfile": b"FROM python\n",
        "cloudbuild-jobs.yaml": b"steps: []\n",
        "migrations/01_init.sql": b"select 1;\n",
    }
    real = tmp_path / "10_real.sql"
    real.write_text("create table t();\n")
    stage = members(image.context(repo, rev, False, {"10_real.sql": str(real)}))
    assert "migrations/01_init.sql" not in stage  # the examples never leave local
    assert stage["migrations/10_real.sql"] == b"create table t();\n"
    assert image.context(repo, rev, True, {}) == image.context(repo, rev, True, {})  # same bytes


def test_an_image_behind_the_inputs_counts_the_commits_and_names_the_paths(repo):
    built = git(repo, "rev-parse", "--short=7", "HEAD")
    commit(repo, {"README.md": "docs only\n"}, "docs")
    assert image.behind(repo, built, False) == (0, [])
    commit(repo, {"jobs/a.py": "print('b')\n"}, "job")
    commit(repo, {"Dockerfile": "FROM python:3.11\n"}, "docker")
    assert image.behind(repo, built, False) == (2, ["Dockerfile", "jobs/"])
    assert image.behind(repo, "0000000", False) is None
    found = image.findings({"j1": D1, "j2": D1}, D1, {D1: ["git-" + built, "v1"]}, "", "stage", repo, False)
    assert [f["line"] for f in found] == [
        f"image built from {built}, 2 commits behind on Dockerfile, jobs/: "
        "make image ENV=stage && make create-jobs ENV=stage"
    ]


def test_findings_name_jobs_on_other_digests_and_off_their_tag():
    found = image.findings({"a": D1, "b": D2}, D2, {D2: ["v2"]}, "v2", "prod", "/nonexistent", False)
    assert [f["line"] for f in found] == [
        "jobs on different digests: sha256:aaaaaaaaaaaa (a); sha256:bbbbbbbbbbbb (b): "
        "make create-jobs ENV=prod",
        "a not on tag v2's digest sha256:bbbbbbbbbbbb (v2): make create-jobs ENV=prod",
    ]
    assert image.findings({"a": D2, "b": D2}, D2, {D2: ["v2"]}, "v2", "prod", "/nonexistent", False) == []
