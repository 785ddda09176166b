# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cloud Build v1: a build from a source tarball in Cloud Storage, waited for with its log lines.

`projects.locations.builds.create` (`POST /v1/projects/P/locations/L/builds`, body Build) answers
with an Operation whose `metadata.build` is the Build (`BuildOperationMetadata`); the operation is
read at `/v1/<operation name>` until `done`. The Build carries `status` (QUEUED, WORKING, SUCCESS,
FAILURE, INTERNAL_ERROR, TIMEOUT, CANCELLED, EXPIRED), its `steps` each with `status` and `timing`,
`results.images[{name, digest}]` and `logUrl`. With `options.logging: CLOUD_LOGGING_ONLY` its log
lines are Cloud Logging entries of log `cloudbuild`, resource `build` with label `build_id`, read
here with entries:list while the build runs.

A tarball build has no trigger, so Cloud Build leaves `$COMMIT_SHA` empty: the revision travels as
the `_REVISION` substitution.
"""

from __future__ import annotations

import time

from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError

BASE = "https://cloudbuild.googleapis.com/v1"
LOGGING = "https://logging.googleapis.com/v2/entries:list"
DONE = ("SUCCESS", "FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED")
# Fields of cloudbuild-jobs.yaml that go into the Build as they are.
CONFIG_FIELDS = ("steps", "options", "images", "timeout", "tags", "substitutions", "availableSecrets")


def parent(project, location):
    return "projects/%s/locations/%s" % (project, location)


def build_body(config, bucket, obj, generation, substitutions):
    """The Build of `config` (cloudbuild-jobs.yaml, parsed) from gs://bucket/obj; `substitutions`
    over the config's own."""
    body = {k: config[k] for k in CONFIG_FIELDS if k in config}
    merged = {k: str(v) for k, v in (config.get("substitutions") or {}).items()}
    merged.update({k: str(v) for k, v in substitutions.items()})
    body["substitutions"] = merged
    source = {"bucket": bucket, "object": obj}
    if generation:
        source["generation"] = str(generation)
    body["source"] = {"storageSource": source}
    return body


def create(api, project, location, body):
    """builds.create: the Operation (its metadata.build is the queued Build). Never sent twice
    blindly: after a lost answer the build of this upload (its source object names it) is adopted."""
    source = (body.get("source") or {}).get("storageSource") or {}
    return api.request(
        "POST",
        "%s/%s/builds" % (BASE, parent(project, location)),
        "Cloud Build build in %s" % project,
        json=body,
        look=lambda _lost: build_of_source(api, project, location, source),
    )


def build_of_source(api, project, location, source):
    """A build from `source` (bucket, object), newest first among the last builds, as an operation
    whose metadata names it (wait() then follows the build itself); None when there is none."""
    page = (
        api.request(
            "GET",
            "%s/%s/builds" % (BASE, parent(project, location)),
            "Cloud Build builds in %s" % project,
            params={"pageSize": 50},
        )
        or {}
    )
    for build in page.get("builds") or []:
        theirs = (build.get("source") or {}).get("storageSource") or {}
        if (theirs.get("bucket"), theirs.get("object")) == (source.get("bucket"), source.get("object")):
            return {"name": "", "metadata": {"build": build}, "adopted": True}
    return None


def get(api, name):
    return api.request("GET", "%s/%s" % (BASE, name), "Cloud Build build %s" % name)


def build_name(build, project, location):
    return build.get("name") or "%s/builds/%s" % (parent(project, location), build.get("id"))


class LogTail:
    """The new log lines of one build on each `read()`, from Cloud Logging, oldest first."""

    def __init__(self, api, project, build_id):
        self.api = api
        self.project = project
        self.build_id = build_id
        self.seen = set()
        self.after = ""
        self.requests = 0

    def read(self):
        text = 'resource.type="build" AND resource.labels.build_id="%s"' % self.build_id
        if self.after:
            text += ' AND timestamp>="%s"' % self.after
        body = {
            "resourceNames": ["projects/%s" % self.project],
            "filter": text,
            "orderBy": "timestamp asc",
            "pageSize": 1000,
        }
        lines = []
        while True:
            self.requests += 1
            page = (
                self.api.request(
                    "POST", LOGGING, "log lines of build %s" % self.build_id, json=body, idempotent=True
                )
                or {}
            )
            for entry in page.get("entries") or []:
                key = entry.get("insertId") or (entry.get("timestamp"), entry.get("textPayload"))
                if key in self.seen:
                    continue
                self.seen.add(key)
                self.after = max(self.after, entry.get("timestamp") or "")
                payload = entry.get("textPayload")
                if payload is None:
                    payload = (entry.get("jsonPayload") or {}).get("message", "")
                lines.append(str(payload).rstrip("\n"))
            if not page.get("nextPageToken"):
                return lines
            body["pageToken"] = page["nextPageToken"]


def wait(api, operation, project, location, on_line=None, timeout=1800.0):
    """Wait for the build of `operation` (the client's one LRO waiter), handing each new log line to
    `on_line`; the final Build.

    A failed build is not an exception here: its operation's error ends the wait, and the Build
    (read once done) says what failed (`failure(build)` words it).
    """
    seen = {"op": operation, "build": (operation.get("metadata") or {}).get("build") or {}, "tail": None}

    def on_poll(op):
        seen["op"] = op
        seen["build"] = (op.get("metadata") or {}).get("build") or seen["build"]
        if seen["tail"] is None and seen["build"].get("id"):
            seen["tail"] = LogTail(api, project, seen["build"]["id"])
        if seen["tail"] is not None and on_line is not None:
            for line in seen["tail"].read():
                on_line(line)

    what = "Cloud Build build %s" % (seen["build"].get("id") or operation.get("name"))
    try:
        if operation.get("adopted"):  # found by its source after a lost answer: follow the build
            follow_build(api, seen["build"], project, location, on_poll, timeout)
        else:
            api.wait_operation(operation, BASE, what, timeout=timeout, interval=1.0, on_poll=on_poll)
    except ApiError:
        if not seen["op"].get("done"):
            raise
    build = seen["build"]
    final = get(api, build_name(build, project, location)) if build.get("id") else dict(build)
    tail = seen["tail"]
    if tail is not None and on_line is not None:
        for line in tail.read():  # the last lines may land after the operation is done
            on_line(line)
    final["_log_requests"] = tail.requests if tail else 0
    error = seen["op"].get("error")
    if error and final.get("status") in (None, "", "SUCCESS"):
        final["status"] = "FAILURE"
        final["statusDetail"] = error.get("message") or ""
    return final


DONE = ("SUCCESS", "FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED")


def follow_build(api, build, project, location, on_poll, timeout):
    """Poll builds.get until the build is done, handing on_poll an operation-shaped view of it."""
    give_up = time.monotonic() + timeout
    name = build_name(build, project, location)
    while True:
        build = get(api, name)
        done = build.get("status") in DONE
        on_poll({"done": done, "metadata": {"build": build}})
        if done:
            return build
        if time.monotonic() > give_up:
            raise ApiError("Cloud Build build %s not done after %.0fs" % (build.get("id"), timeout))
        time.sleep(1.0)


def failed_step(build):
    """The first step whose status is not SUCCESS (or QUEUED/PENDING), as {id, name, status}; {} if none."""
    for index, step in enumerate(build.get("steps") or []):
        if step.get("status") in ("FAILURE", "TIMEOUT", "CANCELLED", "INTERNAL_ERROR", "EXPIRED"):
            return {
                "index": index,
                "id": step.get("id") or "#%d" % index,
                "name": step.get("name"),
                "status": step["status"],
            }
    return {}


def failure(build, log_lines=()):
    """One line: 'build <id> FAILURE at step smoke-test (<builder>): <detail>; last lines: ...'."""
    step = failed_step(build)
    where = " at step %s (%s)" % (step["id"], step["name"]) if step else ""
    detail = build.get("statusDetail") or (build.get("failureInfo") or {}).get("detail") or ""
    tail = [line for line in log_lines if line.strip()][-5:]
    return "Cloud Build build %s %s%s%s%s; nothing was pushed (log: %s)" % (
        build.get("id"),
        build.get("status"),
        where,
        ": %s" % detail if detail else "",
        "; last lines: %s" % " | ".join(tail) if tail else "",
        build.get("logUrl") or "-",
    )


def pushed(build, image_path):
    """{tag: digest} of the images the build pushed under `image_path` (results.images)."""
    out = {}
    for item in (build.get("results") or {}).get("images") or []:
        name = item.get("name") or ""
        if name.startswith(image_path + ":") and item.get("digest"):
            out[name[len(image_path) + 1 :]] = item["digest"]
    return out
