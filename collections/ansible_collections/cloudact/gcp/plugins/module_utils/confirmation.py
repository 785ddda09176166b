# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the prod guard's question names, and the inputs a change needs, checked before it is asked.

make asks before the play (toolkit/ask.py) with these functions; the play checks the same inputs
before its first change (the release and run roles, image_pin, image_plan), so a play run directly
refuses for the same reasons. A question names what will run or be pinned: the digest of the job
image, with its tags, never a tag alone. The answer's digest reaches the play
(`cloudact_confirmed_digest`), which refuses before any change when what would run differs.
"""

from __future__ import annotations

import re

from ansible_collections.cloudact.gcp.plugins.module_utils import artifact_registry as ar
from ansible_collections.cloudact.gcp.plugins.module_utils import image
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

# A Supabase project ref as the migrate job accepts it (jobs/manual/supabase_migrate.py PROJECT_REF).
SUPABASE_REF = re.compile(r"^[a-z0-9][a-z0-9-]*$")
SUPABASE_SECRET = "supabase_access_token"  # noqa: S105 - the catalog's key of the token, not a value
MIGRATIONS_LABEL = "ai.cloudact.migrations"


def where(env):
    return "inventories/%s/group_vars/all/env.yml" % env


def needs_migrations(jobs):
    """Whether any of `jobs` (catalog dicts) runs the migrations (it mounts the Supabase token)."""
    return any(SUPABASE_SECRET in (job.get("secrets") or []) for job in jobs)


def check_inputs(facts, jobs):
    """InputError naming an inventory value `jobs` need that is empty or invalid, and where to set it."""
    env = facts.get("cloudact_env") or "?"
    if needs_migrations(jobs):
        ref = facts.get("cloudact_supabase_project_ref") or ""
        if not SUPABASE_REF.match(ref):
            shortcut = next(j["shortcut"] for j in jobs if SUPABASE_SECRET in (j.get("secrets") or []))
            raise InputError(
                "cloudact_supabase_project_ref=%r: %s needs the Supabase project ref of %s (lowercase "
                "letters, digits and dashes); set it in %s; nothing was changed"
                % (ref, shortcut, env, where(env))
            )


def check_migrations(api, facts, jobs, digest):
    """InputError when `jobs` run the migrations and the image `digest` carries none of this
    environment's: read from the image's migrations label, written at build time (not the disk)."""
    if not needs_migrations(jobs) or not digest or facts.get("cloudact_localcloud"):
        return
    env = facts.get("cloudact_env") or "?"
    ref = ar.parse(facts["cloudact_image_repository"])
    label = ar.labels(api, ref, digest).get(MIGRATIONS_LABEL) or ""
    if not label or label == "examples":
        raise InputError(
            "the image %s carries no migrations of %s (label %s=%r): build it with "
            "cloudact_migrations_source set in %s (make image ENV=%s), then make create-jobs ENV=%s; "
            "nothing was changed" % (image.short(digest), env, MIGRATIONS_LABEL, label, where(env), env, env)
        )


def pinned(api, facts, jobs):
    """{digest, tags, image}: the one digest `jobs` are pinned to now (what a run of them runs).

    InputError when one is not deployed, they are on different digests, or one is not on a digest.
    """
    env = facts["cloudact_env"]
    repository = facts["cloudact_image_repository"]
    names = [j["name"] for j in jobs]
    images = image.deployed_images(api, facts["cloudact_gcp_project"], facts["cloudact_gcp_region"], names)
    missing = [n for n in names if n not in images]
    if missing:
        raise InputError(
            "not deployed in %s: %s; create them with make create-jobs ENV=%s"
            % (env, ", ".join(missing), env)
        )
    digests = {n: image.digest_of(i, repository) for n, i in images.items()}
    image.check_one_digest({"pin": True, "deployed": digests}, env)
    digest = next(iter(digests.values()))
    if not digest:
        raise InputError(
            "%s not pinned to a digest of %s (%s): converge with make create-jobs ENV=%s"
            % (", ".join(names), repository, images[names[0]], env)
        )
    found = {i["digest"]: i["tags"] for i in ar.images(api, ar.parse(repository)) or []}
    return {"digest": digest, "tags": found.get(digest, []), "image": "%s@%s" % (repository, digest)}


def named(found):
    """'<repository>@sha256:... (v1.4.0, git-1a2b3c4)' of a pinned() or image.resolve() answer."""
    return "%s%s" % (found["image"], image.described(found.get("tags")))


def release_question(api, facts, steps):
    """The release's question: its steps and the digest its jobs are pinned to, inputs checked first."""
    check_inputs(facts, steps)
    found = pinned(api, facts, steps)
    check_migrations(api, facts, steps, found["digest"])
    text = "release to %s: %s on image %s" % (
        facts["cloudact_env"],
        " -> ".join(s["shortcut"] for s in steps),
        named(found),
    )
    return {"text": text, "digest": found["digest"]}


def run_question(api, facts, job):
    """`make run`'s question: the job and the digest it is pinned to, inputs checked first."""
    check_inputs(facts, [job])
    found = pinned(api, facts, [job])
    check_migrations(api, facts, [job], found["digest"])
    text = "run %s in %s on image %s" % (job["shortcut"], facts["cloudact_env"], named(found))
    return {"text": text, "digest": found["digest"]}


def converge_question(api, facts, names):
    """create-jobs' question: the digest the converge will pin every job to, with its tags."""
    got = image.resolve(api, facts, names)
    if not got["pin"]:
        return {"text": "converge the job catalog onto %s (image %s)" % (facts["cloudact_env"], got["image"])}
    text = "converge the job catalog onto %s, pinning every job to %s" % (facts["cloudact_env"], named(got))
    return {"text": text, "digest": got["digest"]}
