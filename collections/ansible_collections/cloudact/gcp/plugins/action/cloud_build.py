# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.cloud_build: build the job image of a checked plan with Cloud Build and push it."""

from __future__ import annotations

import time
from typing import ClassVar

import yaml
from ansible_collections.cloudact.gcp.plugins.module_utils import artifact_registry as ar
from ansible_collections.cloudact.gcp.plugins.module_utils import cloud_build, image, storage
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction, display


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(
        plan=dict(type="dict", required=True),
        timeout=dict(type="int", default=1800),
    )

    def act(self, args):
        plan = args["plan"]
        if plan.get("exists"):  # this context is built under that tag already: say so, build nothing
            return {"changed": False, "exists": True, "msg": plan["exists"], "image": "", "digest": ""}
        diff = {
            "before": {"tags": {}},
            "after": {"tags": dict.fromkeys(plan["tags"], "a build of %s" % plan["short"])},
            "before_header": plan["repository"],
            "after_header": plan["repository"],
        }
        if self.check_mode:  # what a build would do, built nothing
            out = dict(changed=True, msg="check mode: would build %s" % plan["short"], image="", digest="")
            return dict(out, diff=diff) if self.diff else out
        api = self.client()
        ref = ar.parse(plan["repository"])
        started = time.monotonic()
        if not plan["bucket_exists"] and storage.get_bucket(api, plan["bucket"]) is None:
            storage.create_bucket(api, plan["project"], plan["bucket"], plan["region"])
            display.display("created bucket gs://%s" % plan["bucket"])
        if not plan["repository_exists"] and ar.get_repository(api, ref) is None:
            ar.create_repository(api, ref)
            display.display("created repository %s" % ar.repository_name(ref))
        files = plan["migrations"]["files"]
        tarball = image.context(plan["root"], plan["revision"], plan["local"], files)
        name = "source/%s-%s-%d.tgz" % (plan["release"], plan["short"], int(time.time()))
        obj = storage.upload(api, plan["bucket"], name, tarball)
        display.display("uploaded gs://%s/%s (%d bytes)" % (plan["bucket"], name, len(tarball)))
        config = yaml.safe_load(image.git(plan["root"], "show", "%s:cloudbuild-jobs.yaml" % plan["revision"]))
        body = cloud_build.build_body(
            config,
            plan["bucket"],
            name,
            obj.get("generation"),
            {
                "_REGION": plan["region"],
                "_ENV": plan["env"],
                "_RELEASE": plan["release"],
                "_REVISION": plan["revision"],
                "_REVISION_SHORT": plan["short"],
                "_MIGRATIONS": plan["migrations"]["label"],
                # the build context's fingerprint label, when the committed build file takes it
                **(
                    {"_CONTEXT": plan["context"]} if "_CONTEXT" in (config.get("substitutions") or {}) else {}
                ),
            },
        )
        op = cloud_build.create(api, plan["project"], plan["region"], body)
        build_id = ((op.get("metadata") or {}).get("build") or {}).get("id", "?")
        display.display("build %s started" % build_id)
        seen = []

        def line(text):
            seen.append(text)
            display.display("  | %s" % text)

        build = cloud_build.wait(
            api, op, plan["project"], plan["region"], on_line=line, timeout=args["timeout"]
        )
        if build.get("status") != "SUCCESS":
            raise InputError(cloud_build.failure(build, seen))
        pushed = cloud_build.pushed(build, plan["repository"])
        digest = pushed.get(plan["release"]) or next(iter(pushed.values()), "")
        if not digest:
            raise InputError(
                "Cloud Build build %s succeeded but pushed no image of %s"
                % (build.get("id"), plan["repository"])
            )
        ref_line = "%s@%s" % (plan["repository"], digest)
        self.say(
            "pushed %s (tags %s) in %.0fs: %d bytes uploaded, %d requests"
            % (
                ref_line,
                ", ".join(plan["tags"]),
                time.monotonic() - started,
                len(tarball),
                api.requests_sent,
            ),
        )
        if self.diff:
            diff["after"]["tags"] = dict.fromkeys(plan["tags"], digest)
        return {
            **({"diff": diff} if self.diff else {}),
            "changed": True,
            "image": ref_line,
            "digest": digest,
            "tags": plan["tags"],
            "build_id": build.get("id"),
            "log_url": build.get("logUrl", ""),
            "bytes_uploaded": len(tarball),
            "requests": api.requests_sent,
        }
