# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Artifact Registry v1: the job image's Docker repository, its images and their tags.

An image path is `<location>-docker.pkg.dev/<project>/<repository>/<package>`; the API names the
repository `projects/P/locations/L/repositories/R`, a tag `.../packages/<package>/tags/<tag>` whose
`version` is `.../versions/sha256:<hex>`, and an image `.../dockerImages/<package>@sha256:<hex>`
(each with `uri`, `tags`, `uploadTime`, `buildTime`). Artifact Registry's REST API shows tags, not
image labels: the `git-<short sha>` tag every build pushes is how status knows what an image was
built from. The labels a build wrote (its migrations, its build context) are read where Docker reads
them, from the registry host's Docker Registry API v2 (`labels`: the manifest, then its config blob).
"""

from __future__ import annotations

import re
from urllib.parse import quote

from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

BASE = "https://artifactregistry.googleapis.com/v1"
_PATH = re.compile(
    r"^(?P<location>[a-z0-9-]+)-docker\.pkg\.dev/(?P<project>[^/]+)/(?P<repository>[^/]+)/(?P<package>[^@:]+)$"
)
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def parse(image_path):
    """{location, project, repository, package, path} of a repository path (no tag, no digest)."""
    match = _PATH.match(image_path or "")
    if not match:
        raise InputError(
            "image repository %r: expected <location>-docker.pkg.dev/<project>/<repository>/<package>"
            % (image_path or "")
        )
    out = match.groupdict()
    out["path"] = image_path
    return out


def split_ref(image):
    """(path, tag, digest) of an image reference: `path:tag`, `path@sha256:...`, or a bare path."""
    image = image or ""
    path, _at, digest = image.partition("@")
    tag = ""
    head, sep, tail = path.rpartition(":")
    if sep and "/" not in tail:
        path, tag = head, tail
    return path, tag, digest


def repository_name(ref):
    return "projects/%s/locations/%s/repositories/%s" % (ref["project"], ref["location"], ref["repository"])


def package_name(ref):
    return "%s/packages/%s" % (repository_name(ref), quote(ref["package"], safe=""))


MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    )
)


def labels(api, ref, digest):
    """The labels the image `digest` of the repository carries (its config's Labels), {} if none.

    Two GETs on `<location>-docker.pkg.dev` with the client's token, as Docker pulls: the manifest,
    then the config blob it names.
    """
    base = "https://%s-docker.pkg.dev/v2/%s/%s/%s" % (
        ref["location"],
        ref["project"],
        ref["repository"],
        ref["package"],
    )
    what = "image %s@%s" % (ref["path"], digest)
    manifest = api.request(
        "GET", "%s/manifests/%s" % (base, digest), what, headers={"Accept": MANIFEST_TYPES}
    )
    config_digest = ((manifest or {}).get("config") or {}).get("digest")
    if not config_digest:
        raise ApiError("%s: its manifest names no config" % what)
    config = api.request("GET", "%s/blobs/%s" % (base, config_digest), what) or {}
    return dict((config.get("config") or {}).get("Labels") or {})


def get_repository(api, ref):
    """The Repository resource, or None when it does not exist."""
    return api.request(
        "GET",
        "%s/%s" % (BASE, repository_name(ref)),
        "Artifact Registry repository %s" % repository_name(ref),
        allow_missing=True,
    )


def create_repository(api, ref, description="CloudAct job images"):
    """repositories.create (DOCKER format), waited for; the Repository."""
    what = "Artifact Registry repository %s" % repository_name(ref)
    parent = "projects/%s/locations/%s" % (ref["project"], ref["location"])

    def made(_lost=None):  # after a lost answer: the repository of that name, as a done operation
        found = get_repository(api, ref)
        return {"done": True, "response": found} if found else None

    try:
        op = api.request(
            "POST",
            "%s/%s/repositories" % (BASE, parent),
            what,
            params={"repositoryId": ref["repository"]},
            json={"format": "DOCKER", "description": description},
            look=made,
        )
    except ApiError as exc:
        op = made() if exc.status == 409 else None  # made meanwhile: the toolkit's by name
        if op is None:
            raise
    return api.wait_operation(op, BASE, what)


def tag_digest(api, ref, tag):
    """packages.tags.get: the digest (`sha256:...`) `tag` points at, or None when there is no such tag."""
    name = "%s/tags/%s" % (package_name(ref), quote(tag, safe=""))
    found = api.request(
        "GET", "%s/%s" % (BASE, name), "image tag %s:%s" % (ref["path"], tag), allow_missing=True
    )
    if not found:
        return None
    version = (found.get("version") or "").rsplit("/", 1)[-1]
    if not DIGEST.match(version):
        raise ApiError("image tag %s:%s: version %r is not a sha256 digest" % (ref["path"], tag, version))
    return version


def images(api, ref):
    """The package's images, newest first: [{digest, uri, tags, upload_time, build_time}].

    dockerImages.list lists every package of the repository; only `ref`'s package is kept. None when
    the repository does not exist.
    """
    what = "images of %s" % ref["path"]
    url = "%s/%s/dockerImages" % (BASE, repository_name(ref))
    try:
        listed = api.list_all(url, "dockerImages", what, params={"pageSize": 1000})
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    prefix = ref["path"] + "@"
    out = []
    for item in listed:
        uri = item.get("uri") or ""
        if not uri.startswith(prefix):
            continue
        out.append(
            {
                "digest": uri[len(prefix) :],
                "uri": uri,
                "tags": sorted(item.get("tags") or []),
                "upload_time": item.get("uploadTime") or "",
                "build_time": item.get("buildTime") or "",
            }
        )
    out.sort(key=lambda i: (i["upload_time"], i["build_time"]), reverse=True)
    return out
