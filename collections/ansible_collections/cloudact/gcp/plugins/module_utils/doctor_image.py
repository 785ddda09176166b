# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The doctor's image check, on the image model (module_utils/image.py): the digest the
inventory's tag names now (the same resolution the converge makes before it converges the jobs),
one image across the deployed jobs, and the stale findings (jobs on different digests, not on the
tag's digest, an image whose git-<sha> is behind the commits that touched the image's inputs).

The resolution is also what the plan templates the converge's jobs with (`cloudact_jobs_image`).
"""

from __future__ import annotations

from ansible_collections.cloudact.gcp.plugins.module_utils import cloud_run, image
from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError
from ansible_collections.cloudact.gcp.plugins.module_utils.doctor import (
    FAIL,
    OK,
    WARN,
    Context,
    Row,
    Skip,
    lacks,
)
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

PIN_FACTS = (
    "cloudact_env",
    "cloudact_gcp_project",
    "cloudact_gcp_region",
    "cloudact_image",
    "cloudact_image_repository",
    "cloudact_image_tag",
    "cloudact_localcloud",
)


def catalog_names(ctx: Context) -> list[str]:
    return [j["name"] for j in ctx.options["catalog"]["jobs"]]


def images(ctx: Context) -> dict[str, str]:
    """{job: image} of the catalog jobs deployed (from the shared list of jobs)."""
    from ansible_collections.cloudact.gcp.plugins.module_utils.doctor_jobs import deployed

    found = deployed(ctx)
    return {n: cloud_run.container(found[n]).get("image", "") for n in catalog_names(ctx) if n in found}


def resolved(ctx: Context) -> dict:
    """image.resolve's answer for the environment (as the converge's image_pin task has it)."""

    def read():
        facts = {k: ctx.facts.get(k) for k in PIN_FACTS}
        facts["cloudact_root"] = ctx.root
        deployed = [{"name": n, "image": i} for n, i in images(ctx).items()]
        try:
            return image.resolve(
                ctx.cloud(), facts, catalog_names(ctx), deployed=deployed, allow_missing=True
            )
        except ApiError as exc:
            raise lacks("artifactregistry.tags.get", exc) or exc from None
        except InputError as exc:
            raise Skip(str(exc)) from None

    return ctx.once("image", read)


def _fix_of(line: str, default: str) -> tuple[str, str]:
    """(what, fix) of a stale finding's line, 'what: make ...'."""
    what, sep, fix = line.partition(": make ")
    return (what, "make " + fix) if sep else (line, default)


def check_image(ctx: Context) -> Row:
    try:
        result = resolved(ctx)
    except Skip as why:
        if "make image" in str(why):  # no image yet, or a tag that is not there
            return Row("image", FAIL, str(why), ctx.make("image"))
        raise
    deployed = images(ctx)
    if result.get("missing"):
        return Row("image", FAIL, result["lines"][0], ctx.make("image"))
    if not result["pin"]:
        distinct = sorted(set(deployed.values()))
        if len(distinct) > 1:
            off = sorted(n for n, i in deployed.items() if i != ctx.facts["cloudact_image"])
            return Row(
                "image",
                FAIL,
                "jobs on %d images; not on %s: %s"
                % (len(distinct), ctx.facts["cloudact_image"], ", ".join(off)),
                ctx.make("create-jobs"),
            )
        return Row(
            "image",
            OK,
            "%d of %d jobs on %s (not pinned to a digest)"
            % (len(deployed), len(catalog_names(ctx)), result["image"]),
        )
    findings = result.get("stale") or []
    if findings:
        parts = [_fix_of(f["line"], ctx.make("create-jobs")) for f in findings]
        worst = WARN if all(f["kind"] == "behind" for f in findings) else FAIL
        fixes = list(dict.fromkeys(fix for _what, fix in parts))
        return Row("image", worst, "stale: " + "; ".join(what for what, _fix in parts), "; ".join(fixes))
    described = image.summary(result).split(" ", 1)[1]
    return Row("image", OK, "%d of %d jobs on %s" % (len(deployed), len(catalog_names(ctx)), described))
