# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The job image: what a build takes from the checkout, its tags, and whether a deployed one is stale.

- The build context is `git archive` of HEAD (the committed tree, never the work tree), cut to the
  image's inputs (INPUTS), plus the migrations under `migrations/`: this repository's examples only
  on a local environment; on any other, the `*.sql` files of `cloudact_migrations_source` (CloudAct's
  real migrations), whose directory and commit go into a label.
- Tags: the release (`git describe --tags --always` by default; `latest` and `git-*` refused) and
  `git-<short sha>`, the revision Artifact Registry shows (it shows tags, not labels).
- Stale: the jobs are on different digests, or not on the digest their tag names now, or the image's
  `git-<sha>` is behind the last commit that touched the image's inputs.
- Pinning: the inventory names `cloudact_image_tag` (a release tag; empty: the newest build of the
  environment's package). `resolve` reads it through Artifact Registry (`packages.tags.get`, and
  `dockerImages.list` for the tags each digest carries and the newest builds) and answers the image
  every job converges to, `<repository>@sha256:<digest>`. An inventory that sets `cloudact_image` to
  another reference (not under `cloudact_image_repository`) is used as it is, unresolved.

The whole image concern is here; module_utils/artifact_registry.py is the registry's REST calls only.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import subprocess
import tarfile
from pathlib import Path

from ansible_collections.cloudact.gcp.plugins.module_utils import artifact_registry, cloud_run, storage
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

# The collection's module_utils the job image shares with the operator side (standard library only),
# copied by the Dockerfile to the same import path under /app.
SHARED = ("collections/ansible_collections/cloudact/gcp/plugins/module_utils/verbs.py",)
# What the image is built from (Dockerfile's COPY lines and the build file); a change to any of
# them without a rebuild makes the deployed image stale.
INPUTS = ("jobs/", *SHARED, "requirements/jobs.txt", "Dockerfile", "cloudbuild-jobs.yaml", ".dockerignore")
EXAMPLES = "migrations/"  # this repository's example migrations: local images only
SOURCE_VARIABLE = "cloudact_migrations_source"
CONTEXT_LABEL = "ai.cloudact.context"  # the build context's fingerprint (context_digest), set at build time
RELEASE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
SHORT = 7


def git(root, *args, check=True, strip=True):
    """The stripped stdout of `git -C root args`; InputError naming the command when it fails."""
    proc = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=False, timeout=60
    )
    if check and proc.returncode != 0:
        raise InputError("git %s in %s: %s" % (" ".join(args), root, (proc.stderr or proc.stdout).strip()))
    out = proc.stdout if proc.returncode == 0 else ""
    return out.strip() if strip else out


def inputs(local):
    """The image's input paths: with the example migrations on a local environment."""
    return (*INPUTS, EXAMPLES) if local else INPUTS


def dirty(root, local):
    """The image inputs with uncommitted changes (staged, unstaged or untracked), sorted."""
    out = git(
        root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *inputs(local), strip=False
    )
    names, entries = set(), iter(out.split("\0"))
    for entry in entries:
        if len(entry) > 3:
            names.add(entry[3:])
            if entry[0] in "RC":  # a rename or copy: its source path follows
                next(entries, None)
    return sorted(names)


def revision(root):
    return git(root, "rev-parse", "HEAD")


def default_release(root):
    return git(root, "describe", "--tags", "--always")


def check_release(release, env):
    """The release tag, or InputError naming it and what is valid."""
    if release == "latest":
        raise InputError(
            "RELEASE=latest: a moving tag is refused (jobs are pinned to digests); name a release, "
            "e.g. make image ENV=%s RELEASE=v1.4.0 (default: git describe --tags --always)" % env
        )
    if release.startswith("git-") or not RELEASE.match(release or ""):
        raise InputError(
            "RELEASE=%r is not a valid release tag: use letters, digits, '.', '_' or '-' (up to 128, "
            "not starting with '.', '-' or 'git-'), e.g. v1.4.0" % (release or "")
        )
    return release


def migrations(env, local, source, root):
    """{files: {name: path}, label, source}: the migrations the image carries under migrations/.

    A local environment without a source takes this repository's examples; any other environment
    must name its source (InputError naming `cloudact_migrations_source`).
    """
    root = Path(root)
    if not source:
        if not local:
            raise InputError(
                "ENV=%s: %s is empty: set it in inventories/%s/group_vars/all/ to the directory of "
                "CloudAct's migrations (e.g. <cloudact checkout>/01-fronted-system/scripts/supabase_db); "
                "only a local image carries this repository's example migrations"
                % (env, SOURCE_VARIABLE, env)
            )
        return {"files": {}, "label": "examples", "source": ""}
    directory = Path(source).expanduser()
    if not directory.is_absolute():
        directory = (root / directory).resolve()
    if not directory.is_dir():
        raise InputError("%s=%r: not a directory" % (SOURCE_VARIABLE, source))
    files = {p.name: p for p in sorted(directory.glob("*.sql")) if p.is_file()}
    if not files:
        raise InputError("%s=%r: no *.sql files in %s" % (SOURCE_VARIABLE, source, directory))
    commit = git(directory, "rev-parse", "HEAD", check=False)
    label = "%s@%s" % (directory, commit[:12]) if commit else str(directory)
    return {"files": {k: str(v) for k, v in files.items()}, "label": label, "source": str(directory)}


def context(root, rev, local, migration_files):
    """The build context as a gzipped tar (bytes): HEAD's image inputs, plus the migrations.

    Deterministic for one revision and one set of migrations (git archive's mtimes, fixed mtimes for
    the added files), so the same inputs upload the same bytes.
    """
    paths = inputs(local) if not migration_files else INPUTS
    proc = subprocess.run(
        ["git", "-C", str(root), "archive", "--format=tar", rev],
        capture_output=True,
        check=False,
        timeout=120,
    )
    if proc.returncode != 0:
        error = proc.stderr.decode(errors="replace").strip()
        raise InputError("git archive %s in %s: %s" % (rev, root, error))
    out = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w") as tar,
        tarfile.open(fileobj=io.BytesIO(proc.stdout), mode="r") as archived,
    ):
        for member in archived.getmembers():
            if member.isfile() and any(_under(member.name, p) for p in paths):
                tar.addfile(member, archived.extractfile(member))
        if migration_files:
            folder = tarfile.TarInfo("migrations")
            folder.type, folder.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(folder)
            for name, path in sorted(migration_files.items()):
                data = Path(path).read_bytes()
                info = tarfile.TarInfo("migrations/%s" % name)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def context_digest(root, rev, local, migration_files):
    """The build context's fingerprint, 'sha256:<hex>': HEAD's image inputs (each path and blob id at
    `rev`) and the migrations' names and contents. The image carries it as a label, so a rebuild of
    the same context is known to be one, and a changed migrations source on the same HEAD is not."""
    paths = inputs(local) if not migration_files else INPUTS
    listed = git(root, "ls-tree", "-r", "--full-tree", rev, "--", *paths, strip=False)
    digest = hashlib.sha256()
    for line in sorted(listed.splitlines()):
        meta, _tab, path = line.partition("\t")
        digest.update(("%s %s\n" % (meta.split()[-1], path)).encode())
    for name, path in sorted((migration_files or {}).items()):
        digest.update(
            ("migrations/%s %s\n" % (name, hashlib.sha256(Path(path).read_bytes()).hexdigest())).encode()
        )
    return "sha256:" + digest.hexdigest()


def plan(api, facts, root, release="", dirty_ok=False, force=False):
    """What `make image` would build and push, every input checked first; InputError naming a bad one.

    {env, project, region, local, root, repository, release, revision, short, tags, bucket,
    bucket_exists, repository_exists, migrations, context, moves, exists, action, lines}: `exists`
    (a line) when that release tag already holds an image of this very context (nothing to build).
    """
    env, project, region = facts["cloudact_env"], facts["cloudact_gcp_project"], facts["cloudact_gcp_region"]
    local = bool(facts.get("cloudact_localcloud"))
    ref = artifact_registry.parse(facts["cloudact_image_repository"])
    changed = dirty(root, local)
    if changed and not dirty_ok:
        raise InputError(
            "uncommitted changes to the image's inputs: %s: commit them, or DIRTY=1 builds HEAD "
            "without them" % ", ".join(changed)
        )
    release = check_release(release or default_release(root), env)
    rev = revision(root)
    found = migrations(env, local, facts.get(SOURCE_VARIABLE) or "", root)
    fingerprint = context_digest(root, rev, local, found["files"])
    bucket = facts["cloudact_build_bucket"]
    bucket_exists = storage.get_bucket(api, bucket) is not None
    repository_exists = artifact_registry.get_repository(api, ref) is not None
    existing = artifact_registry.tag_digest(api, ref, release) if repository_exists else None
    rev_short = rev[:SHORT]
    tags = [release, "git-%s" % rev_short]
    out = {
        "env": env,
        "project": project,
        "region": region,
        "local": local,
        "root": str(root),
        "repository": ref["path"],
        "release": release,
        "revision": rev,
        "short": rev_short,
        "tags": tags,
        "bucket": bucket,
        "bucket_exists": bucket_exists,
        "repository_exists": repository_exists,
        "migrations": found,
        "context": fingerprint,
        "moves": "",
        "exists": "",
    }
    if existing:
        labels = artifact_registry.labels(api, ref, existing)
        if labels.get(CONTEXT_LABEL) == fingerprint and not force:
            have = [i["tags"] for i in artifact_registry.images(api, ref) or [] if i["digest"] == existing]
            out["exists"] = "image for %s exists: %s@%s%s; nothing to build" % (
                rev_short,
                ref["path"],
                existing,
                described(have[0] if have else [release]),
            )
            out.update(action="", lines=[out["exists"]])
            return out
        if not force:
            raise InputError(
                "release tag %s:%s exists (%s) and holds another build context: a release tag is never "
                "moved to a new build; name another RELEASE, or FORCE=1 moves it"
                % (ref["path"], release, short(existing))
            )
        out["moves"] = existing
    creating = [
        w
        for w, there in (
            ("bucket gs://%s" % bucket, bucket_exists),
            ("repository %s" % artifact_registry.repository_name(ref), repository_exists),
        )
        if not there
    ]
    out["lines"] = [
        "image %s: tags %s, from %s%s"
        % (ref["path"], ", ".join(tags), rev_short, " (DIRTY=1: HEAD only)" if changed else ""),
        "migrations: %s"
        % (
            "this repository's examples (local only)"
            if not found["files"]
            else "%d file(s) from %s" % (len(found["files"]), found["label"])
        ),
        "build bucket gs://%s: %s"
        % (bucket, "exists" if bucket_exists else "will be created in %s" % region),
        "repository %s: %s"
        % (artifact_registry.repository_name(ref), "exists" if repository_exists else "will be created"),
    ]
    if existing:
        out["lines"].append("release tag %s moves from %s (FORCE=1)" % (release, short(existing)))
    out["action"] = "build and push %s:%s (git-%s)%s" % (
        ref["package"],
        release,
        rev_short,
        "; create %s" % " and ".join(creating) if creating else "",
    )
    return out


def _under(name, path):
    return name.startswith(path) if path.endswith("/") else name == path


# ---- stale ------------------------------------------------------------------------------------------


def behind(root, built_from, local):
    """(commits, paths) of HEAD after `built_from` that touched the image's inputs; None when the
    checkout does not have that commit (or is not a git checkout)."""
    if not built_from:
        return None
    full = git(root, "rev-parse", "--verify", "--quiet", built_from + "^{commit}", check=False)
    if not full:
        return None
    paths = inputs(local)
    count = int(git(root, "rev-list", "--count", "%s..HEAD" % full, "--", *paths, check=False) or 0)
    if not count:
        return 0, []
    changed = git(root, "diff", "--name-only", full, "HEAD", "--", *paths, check=False).splitlines()
    tops = sorted({p.split("/", 1)[0] + ("/" if "/" in p else "") for p in changed})
    return count, tops


def findings(deployed, current, digest_tags, tag, env, root, local):
    """The stale findings: [{kind, jobs, line}] (kind: digests, moved, behind), [] when none.

    `deployed`: {job: digest or ''} of the catalog jobs that exist; `current`: the digest the tag (or
    the newest build) names now ('' unknown); `digest_tags`: {digest: [tags]}; `tag`: the inventory's
    cloudact_image_tag ('' for the newest build).
    """
    out = []
    by_digest = {}
    for job, digest in sorted(deployed.items()):
        by_digest.setdefault(digest or "unpinned", []).append(job)
    if len(by_digest) > 1:
        parts = ["%s (%s)" % (short(d), ", ".join(j)) for d, j in sorted(by_digest.items())]
        out.append(
            {
                "kind": "digests",
                "jobs": sorted(deployed),
                "line": "jobs on different digests: %s: make create-jobs ENV=%s" % ("; ".join(parts), env),
            }
        )
    if current:
        off = sorted(j for j, d in deployed.items() if d != current)
        if off:
            what = "tag %s" % tag if tag else "the newest build"
            out.append(
                {
                    "kind": "moved",
                    "jobs": off,
                    "line": "%s not on %s's digest %s%s: make create-jobs ENV=%s"
                    % (", ".join(off), what, short(current), described(digest_tags.get(current)), env),
                }
            )
    for digest, jobs in sorted(by_digest.items()):
        from_sha = git_revision(digest_tags.get(digest))
        found = behind(root, from_sha, local) if from_sha else None
        if found and found[0]:
            fix = (
                "make image ENV=%s && make create-jobs ENV=%s" % (env, env)
                if not tag
                else "make image ENV=%s RELEASE=<new tag>, set cloudact_image_tag, make create-jobs ENV=%s"
                % (env, env)
            )
            out.append(
                {
                    "kind": "behind",
                    "jobs": jobs,
                    "line": "image built from %s, %d commit%s behind on %s: %s"
                    % (from_sha, found[0], "" if found[0] == 1 else "s", ", ".join(found[1]), fix),
                }
            )
    return out


def short(digest):
    """'sha256:1a2b3c4d5e6f' (12 hex digits) of a digest; the text as it is otherwise."""
    return digest[:19] if (digest or "").startswith("sha256:") else (digest or "-")


def described(tags):
    return " (%s)" % ", ".join(tags) if tags else ""


# ---- the tags of the images in a repository -------------------------------------------------------------


def git_revision(tags):
    """The short sha of an image's `git-<sha>` tag, or ''."""
    for tag in tags or []:
        if tag.startswith("git-") and re.fullmatch(r"[0-9a-f]{7,40}", tag[4:]):
            return tag[4:]
    return ""


def newest_tags(found, limit=5):
    """The release tags of the newest images (not the `git-` ones), newest first, at most `limit`."""
    out = []
    for item in found or []:
        out += [t for t in item["tags"] if not t.startswith("git-") and t not in out]
    return out[:limit]


# ---- pinning: the inventory's tag resolved to a digest before planning, and what that changes -----------


def wanted(image_ref, repository):
    """Whether `image_ref` (cloudact_image) is to be resolved: it names the repository (any tag)."""
    path, _tag, digest = artifact_registry.split_ref(image_ref)
    return path == repository and not digest


def deployed_images(api, project, region, names):
    """{job: image} of the named jobs that exist (one list call)."""
    jobs = api.list_all(
        cloud_run.jobs_url(project, region), "jobs", "Cloud Run jobs of %s/%s" % (project, region)
    )
    found = {cloud_run.short_name(j.get("name")): cloud_run.container(j).get("image", "") for j in jobs}
    return {n: found[n] for n in names if n in found}


def digest_of(image_ref, repository):
    """The digest of `<repository>@sha256:...`, else '' (a tag, another repository)."""
    path, _tag, digest = artifact_registry.split_ref(image_ref)
    return digest if path == repository and digest else ""


def resolve(api, facts, names, deployed=None, allow_missing=False, confirmed=""):
    """{pin, image, digest, tag, tags, missing, jobs, deployed, changes, stale, lines}.

    `deployed`: [{name, image}] already read (else the jobs are listed, one call, whether the image is
    pinned or not); `jobs` is that list for the named jobs that exist, sorted. `allow_missing`: a
    repository without any image answers missing=True instead of an error (a fresh local machine).
    `confirmed`: the digest the operator confirmed (make resolved the tag for its question): it is
    the pin, not resolved again, when the repository has it; else the run is refused.
    """
    env = facts["cloudact_env"]
    repository = facts["cloudact_image_repository"]
    # The tag: cloudact_image_tag, else the one an inventory's own cloudact_image names.
    tag = facts.get("cloudact_image_tag") or artifact_registry.split_ref(facts["cloudact_image"])[1]
    out = {
        "pin": False,
        "image": facts["cloudact_image"],
        "digest": "",
        "tag": tag,
        "tags": [],
        "missing": False,
    }
    if deployed is None:
        images = deployed_images(api, facts["cloudact_gcp_project"], facts["cloudact_gcp_region"], names)
    else:
        images = {d["name"]: d.get("image", "") for d in deployed if d.get("name") in names}
    out["jobs"] = [{"name": name, "image": images[name]} for name in sorted(images)]
    out.update({"deployed": {}, "changes": [], "stale": [], "lines": []})
    if not wanted(facts["cloudact_image"], repository):
        return out
    ref = artifact_registry.parse(repository)
    found = artifact_registry.images(api, ref) or []
    if confirmed:  # the tag was resolved once, for the question: what was confirmed is what runs
        if confirmed not in {i["digest"] for i in found}:
            raise InputError(
                "refused: you confirmed %s but %s has no image of that digest; nothing was changed"
                % (confirmed, repository)
            )
        digest = confirmed
    elif tag and found:
        digest = artifact_registry.tag_digest(api, ref, tag)
    else:
        digest = found[0]["digest"] if found else ""
    if not digest:
        if not found and allow_missing:
            return dict(out, image=repository, missing=True, lines=["no image in %s yet" % repository])
        raise InputError(missing_message(env, repository, tag, found))
    digest_tags = {i["digest"]: i["tags"] for i in found}
    digests = {n: digest_of(i, repository) for n, i in images.items()}
    out.update(
        pin=True, image="%s@%s" % (repository, digest), digest=digest, tags=digest_tags.get(digest, [])
    )
    out["deployed"] = digests
    out["changes"] = changes(images, digests, digest, digest_tags)
    out["stale"] = findings(
        digests, digest, digest_tags, tag, env, facts["cloudact_root"], bool(facts.get("cloudact_localcloud"))
    )
    what = "tag %s" % tag if tag else "the newest build"
    out["lines"] = ["image: %s is %s%s" % (what, short(digest), described(out["tags"]))]
    out["lines"] += out["changes"]
    return out


def changes(images, digests, new, digest_tags):
    """'image: <old> (tags) -> <new> (tags): job, job' per old image that differs from the new digest."""
    by_old = {}
    for job, old in sorted(digests.items()):
        if old != new:
            label = "%s%s" % (short(old), described(digest_tags.get(old))) if old else images[job]
            by_old.setdefault(label, []).append(job)
    target = "%s%s" % (short(new), described(digest_tags.get(new)))
    return ["image: %s -> %s: %s" % (old, target, ", ".join(jobs)) for old, jobs in sorted(by_old.items())]


def missing_message(env, repository, tag, found):
    if not found:
        return "ENV=%s: no image in %s yet%s: build one with make image ENV=%s" % (
            env,
            repository,
            " (cloudact_image_tag=%s)" % tag if tag else "",
            env,
        )
    newest = newest_tags(found)
    return "ENV=%s: cloudact_image_tag=%r is not a tag of %s; the newest tags: %s" % (
        env,
        tag,
        repository,
        ", ".join(newest) or "none but git-* ones",
    )


def check_one_digest(result, env):
    """InputError naming the jobs per digest when the (release) jobs are not on one digest."""
    if not result["pin"]:
        return
    by_digest = {}
    for job, digest in sorted(result["deployed"].items()):
        by_digest.setdefault(digest, []).append(job)
    if len(by_digest) > 1:
        parts = [
            "%s on %s" % (", ".join(jobs), short(d) if d else "no digest")
            for d, jobs in sorted(by_digest.items())
        ]
        raise InputError(
            "the release jobs are not on one digest (%s): converge them with make create-jobs ENV=%s"
            % ("; ".join(parts), env)
        )


def short_cell(digest, image_ref):
    """A status cell: the short digest of a pinned job, else its image's last path segment."""
    return short(digest)[7:] if digest else (image_ref or "-").rsplit("/", 1)[-1]


def summary(result):
    """'image sha256:1a2b3c4d5e6f (v1.4.0, git-1a2b3c4)' for prompts; the reference when not pinned."""
    if not result["pin"]:
        return "image %s" % result["image"]
    return "image %s%s" % (short(result["digest"]), described(result["tags"]))
