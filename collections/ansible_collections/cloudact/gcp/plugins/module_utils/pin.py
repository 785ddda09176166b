# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pinning: the inventory's image tag resolved to a digest before planning, and what that changes.

The inventory names `cloudact_image_tag` (a release tag; empty: the newest build of the
environment's package). `resolve` reads it through Artifact Registry (`packages.tags.get`, and
`dockerImages.list` for the tags each digest carries and the newest builds) and answers the image
every job converges to, `<repository>@sha256:<digest>`. An inventory that sets `cloudact_image` to
another reference (not under `cloudact_image_repository`) is used as it is, unresolved.
"""

from __future__ import annotations

from ansible_collections.cloudact.gcp.plugins.module_utils import artifact_registry as ar
from ansible_collections.cloudact.gcp.plugins.module_utils import cloud_run, image
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError


def wanted(image_ref, repository):
    """Whether `image_ref` (cloudact_image) is to be resolved: it names the repository (any tag)."""
    path, _, digest = ar.split_ref(image_ref)
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
    path, _, digest = ar.split_ref(image_ref)
    return digest if path == repository and digest else ""


def resolve(api, facts, names, deployed=None, allow_missing=False):
    """{pin, image, digest, tag, tags, missing, deployed, changes, stale, lines}.

    `deployed`: [{name, image}] already read (else the jobs are listed); `allow_missing`: a
    repository without any image answers missing=True instead of an error (a fresh local machine).
    """
    env = facts["cloudact_env"]
    repository = facts["cloudact_image_repository"]
    # The tag: cloudact_image_tag, else the one an inventory's own cloudact_image names.
    tag = facts.get("cloudact_image_tag") or ar.split_ref(facts["cloudact_image"])[1]
    out = {
        "pin": False,
        "image": facts["cloudact_image"],
        "digest": "",
        "tag": tag,
        "tags": [],
        "missing": False,
    }
    out.update({"deployed": {}, "changes": [], "stale": [], "lines": []})
    if not wanted(facts["cloudact_image"], repository):
        return out
    ref = ar.parse(repository)
    found = ar.images(api, ref) or []
    digest = ar.tag_digest(api, ref, tag) if tag and found else ""
    if not tag and found:
        digest = found[0]["digest"]
    if not digest:
        if not found and allow_missing:
            return dict(out, image=repository, missing=True, lines=["no image in %s yet" % repository])
        raise InputError(missing_message(env, repository, tag, found))
    digest_tags = {i["digest"]: i["tags"] for i in found}
    if deployed is None:
        images = deployed_images(api, facts["cloudact_gcp_project"], facts["cloudact_gcp_region"], names)
    else:
        images = {d["name"]: d.get("image", "") for d in deployed if d.get("name") in names}
    digests = {n: digest_of(i, repository) for n, i in images.items()}
    out.update(
        pin=True, image="%s@%s" % (repository, digest), digest=digest, tags=digest_tags.get(digest, [])
    )
    out["deployed"] = digests
    out["changes"] = changes(images, digests, digest, digest_tags)
    out["stale"] = image.findings(
        digests, digest, digest_tags, tag, env, facts["cloudact_root"], bool(facts.get("cloudact_localcloud"))
    )
    what = "tag %s" % tag if tag else "the newest build"
    out["lines"] = ["image: %s is %s%s" % (what, image.short(digest), image.described(out["tags"]))]
    out["lines"] += out["changes"]
    return out


def changes(images, digests, new, digest_tags):
    """'image: <old> (tags) -> <new> (tags): job, job' per old image that differs from the new digest."""
    by_old = {}
    for job, old in sorted(digests.items()):
        if old != new:
            label = "%s%s" % (image.short(old), image.described(digest_tags.get(old))) if old else images[job]
            by_old.setdefault(label, []).append(job)
    target = "%s%s" % (image.short(new), image.described(digest_tags.get(new)))
    return ["image: %s -> %s: %s" % (old, target, ", ".join(jobs)) for old, jobs in sorted(by_old.items())]


def missing_message(env, repository, tag, found):
    if not found:
        return "ENV=%s: no image in %s yet%s: build one with make image ENV=%s" % (
            env,
            repository,
            " (cloudact_image_tag=%s)" % tag if tag else "",
            env,
        )
    newest = ar.newest_tags(found)
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
            "%s on %s" % (", ".join(jobs), image.short(d) if d else "no digest")
            for d, jobs in sorted(by_digest.items())
        ]
        raise InputError(
            "the release jobs are not on one digest (%s): converge them with make create-jobs ENV=%s"
            % ("; ".join(parts), env)
        )


def short_cell(digest, image_ref):
    """A status cell: the short digest of a pinned job, else its image's last path segment."""
    return image.short(digest)[7:] if digest else (image_ref or "-").rsplit("/", 1)[-1]


def summary(result):
    """'image sha256:1a2b3c4d5e6f (v1.4.0, git-1a2b3c4)' for prompts; the reference when not pinned."""
    if not result["pin"]:
        return "image %s" % result["image"]
    return "image %s%s" % (image.short(result["digest"]), image.described(result["tags"]))
