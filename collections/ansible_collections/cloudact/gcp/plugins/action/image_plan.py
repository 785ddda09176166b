# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.image_plan: what `make image` would build and push, checked before anything changes."""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.cloudact.gcp.plugins.module_utils import artifact_registry as ar
from ansible_collections.cloudact.gcp.plugins.module_utils import image, storage
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(
        release=dict(type="str", default=""),
        dirty=dict(type="bool", default=False),
        force=dict(type="bool", default=False),
    )

    def act(self, args):
        env, project = self.var("cloudact_env"), self.var("cloudact_gcp_project")
        region, root = self.var("cloudact_gcp_region"), self.var("cloudact_root")
        local = bool(self.var("cloudact_localcloud"))
        ref = ar.parse(self.var("cloudact_image_repository"))
        changed = image.dirty(root, local)
        if changed and not args["dirty"]:
            raise InputError(
                "uncommitted changes to the image's inputs: %s: commit them, or DIRTY=1 builds HEAD "
                "without them" % ", ".join(changed)
            )
        release = image.check_release(args["release"] or image.default_release(root), env)
        rev = image.revision(root)
        migrations = image.migrations(env, local, self.var(image.SOURCE_VARIABLE) or "", root)
        api = self.client()
        bucket = self.var("cloudact_build_bucket")
        bucket_exists = storage.get_bucket(api, bucket) is not None
        repository_exists = ar.get_repository(api, ref) is not None
        existing = ar.tag_digest(api, ref, release) if repository_exists else None
        if existing and not args["force"]:
            raise InputError(
                "release tag %s:%s exists (%s): a release tag is never moved to a new build; name "
                "another RELEASE, or FORCE=1 moves it" % (ref["path"], release, image.short(existing))
            )
        short = rev[: image.SHORT]
        tags = [release, "git-%s" % short]
        creating = [
            w
            for w, there in (
                ("bucket gs://%s" % bucket, bucket_exists),
                ("repository %s" % ar.repository_name(ref), repository_exists),
            )
            if not there
        ]
        lines = [
            "image %s: tags %s, from %s%s"
            % (ref["path"], ", ".join(tags), short, " (DIRTY=1: HEAD only)" if changed else ""),
            "migrations: %s"
            % (
                "this repository's examples (local only)"
                if not migrations["files"]
                else "%d file(s) from %s" % (len(migrations["files"]), migrations["label"])
            ),
            "build bucket gs://%s: %s"
            % (bucket, "exists" if bucket_exists else "will be created in %s" % region),
            "repository %s: %s"
            % (ar.repository_name(ref), "exists" if repository_exists else "will be created"),
        ]
        if existing:
            lines.append("release tag %s moves from %s (FORCE=1)" % (release, image.short(existing)))
        self.say(*lines)
        action = "build and push %s:%s (git-%s)%s" % (
            ref["package"],
            release,
            short,
            "; create %s" % " and ".join(creating) if creating else "",
        )
        plan = {
            "env": env,
            "project": project,
            "region": region,
            "local": local,
            "root": root,
            "repository": ref["path"],
            "release": release,
            "revision": rev,
            "short": short,
            "tags": tags,
            "bucket": bucket,
            "bucket_exists": bucket_exists,
            "repository_exists": repository_exists,
            "migrations": migrations,
            "moves": existing or "",
            "action": action,
        }
        return {"changed": False, "plan": plan, "lines": lines}
