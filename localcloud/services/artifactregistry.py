"""Artifact Registry v1 (artifactregistry.googleapis.com): Docker repositories (get/create as an
Operation/list), dockerImages list/get, packages list/get, packages.tags get/list, packages.versions get,
and operations.get. Images arrive by Cloud Build's `docker push` (the `push` API below); the registry
host `<region>-docker.pkg.dev` serves the read side of the Docker Registry HTTP API V2 over this state
(localcloud/services/artifactregistry_docker.py, through `docker_package`).

State: state/artifactregistry/index.json (repositories, images per repository and package, tags) and
each image's files and config under state/artifactregistry/images/sha256-<hex>/ (keyed by digest).
Other services resolve an image reference with `image(ref)` / `image_files(ref)` / `image_config(ref)`.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, unquote

from werkzeug.wrappers import Request, Response

from localcloud.clock import rfc3339
from localcloud.projects import access_error
from localcloud.service import Service, google_error, json_response
from localcloud.services.artifactregistry_images import MANIFEST_TYPE, load_config, store_image
from localcloud.services.cloudbuild_config import enum_names
from localcloud.services.run_errors import ApiError, json_body, match_route, url_not_found

TYPE = "type.googleapis.com/google.devtools.artifactregistry.v1."
REPO_ID = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
IMAGE_REF = re.compile(
    r"^(?P<location>[a-z0-9-]+)-docker\.pkg\.dev/(?P<project>[^/]+)/(?P<repo>[^/]+)/"
    r"(?P<image>[a-z0-9][a-z0-9._/-]*?)(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
MAX_PAGE = 1000
_P = r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
_R = _P + r"/repositories/(?P<repo>[^/]+)"
_PKG = _R + r"/packages/(?P<package>[^/]+)"


class PushError(Exception):
    """A push the registry refuses (as `docker push` reports it)."""


def parse_ref(ref: str) -> dict[str, str] | None:
    """The parts of `<loc>-docker.pkg.dev/<project>/<repo>/<image>[:tag][@sha256:...]`, else None."""
    match = IMAGE_REF.match(ref)
    return match.groupdict() if match else None


class ArtifactRegistryService(Service):
    name = "artifactregistry"
    hosts = ("artifactregistry.googleapis.com",)
    permissions: ClassVar[dict[str, str]] = {
        f"artifactregistry.projects.locations.{method}": f"artifactregistry.{permission}"
        for method, permission in (
            ("repositories.get", "repositories.get"),
            ("repositories.create", "repositories.create"),
            ("repositories.list", "repositories.list"),
            ("repositories.dockerImages.list", "dockerimages.list"),
            ("repositories.dockerImages.get", "dockerimages.get"),
            ("repositories.packages.list", "packages.list"),
            ("repositories.packages.get", "packages.get"),
            ("repositories.packages.tags.get", "tags.get"),
            ("repositories.packages.tags.list", "tags.list"),
            ("repositories.packages.versions.get", "versions.get"),
            ("repositories.packages.versions.list", "versions.list"),
            ("operations.get", "repositories.get"),
        )
    }

    def __init__(self, cloud):
        super().__init__(cloud)
        self._file = self.state_dir / "index.json"
        self.images_dir = self.state_dir / "images"
        self.images_dir.mkdir(exist_ok=True)
        self._lock = threading.RLock()
        self._state: dict[str, Any] = {"repositories": {}, "images": {}, "operations": {}}
        if self._file.exists():
            self._state = json.loads(self._file.read_text())
        self._routes = [
            ("GET", re.compile(_P + r"/operations/(?P<op>[^/:]+)$"), self._get_operation),
            ("GET", re.compile(_P + r"/repositories$"), self._list_repositories),
            ("POST", re.compile(_P + r"/repositories$"), self._create_repository),
            ("GET", re.compile(_R + r"$"), self._get_repository),
            ("GET", re.compile(_R + r"/dockerImages$"), self._list_docker_images),
            ("GET", re.compile(_R + r"/dockerImages/(?P<image>[^/]+)$"), self._get_docker_image),
            ("GET", re.compile(_R + r"/packages$"), self._list_packages),
            ("GET", re.compile(_PKG + r"$"), self._get_package),
            ("GET", re.compile(_PKG + r"/tags$"), self._list_tags),
            ("GET", re.compile(_PKG + r"/tags/(?P<tag>[^/]+)$"), self._get_tag),
            ("GET", re.compile(_PKG + r"/versions$"), self._list_versions),
            ("GET", re.compile(_PKG + r"/versions/(?P<version>[^/]+)$"), self._get_version),
        ]

    def _save(self) -> None:
        tmp = self._file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state))
        tmp.replace(self._file)

    def reset(self) -> None:
        with self._lock:
            self._state = {"repositories": {}, "images": {}, "operations": {}}
            self._save()

    # ---- in-process API ------------------------------------------------------------------------------

    def image(self, ref: str) -> dict[str, Any] | None:
        """The stored image a reference names (`...:tag`, `...@sha256:`, or neither = `:latest`):
        {"digest", "dir", "uri", "repository", "package"}; None when the registry does not hold it."""
        parts = parse_ref(ref)
        if parts is None:
            return None
        with self._lock:
            repo = self._repo_name(parts["project"], parts["location"], parts["repo"])
            package = self._state["images"].get(repo, {}).get(parts["image"])
            if package is None:
                return None
            digest = parts["digest"] or package["tags"].get(parts["tag"] or "latest")
            if digest is None or digest not in package["versions"]:
                return None
            host = f"{parts['location']}-docker.pkg.dev/{parts['project']}/{parts['repo']}/{parts['image']}"
            return {
                "digest": digest,
                "dir": self.images_dir / digest.replace(":", "-"),
                "uri": f"{host}@{digest}",
                "repository": repo,
                "package": parts["image"],
            }

    def repository_of(self, ref: str) -> dict[str, Any] | None:
        """The repository an image reference points into, when this registry has it."""
        parts = parse_ref(ref)
        if parts is None:
            return None
        with self._lock:
            found = self._state["repositories"].get(
                self._repo_name(parts["project"], parts["location"], parts["repo"])
            )
            return dict(found) if found else None

    def docker_package(self, project: str, location: str, repo: str, image: str) -> dict[str, Any] | None:
        """What the registry protocol reads of an image of a repository: {"tags": {tag: digest},
        "digests": [...], "dirs": {digest: stored image directory}}; {} when the repository holds no such
        image; None when there is no such repository."""
        with self._lock:
            name = self._repo_name(project, location, repo)
            if name not in self._state["repositories"]:
                return None
            package = self._state["images"].get(name, {}).get(image)
            if package is None:
                return {}
            digests = list(package["versions"])
            return {
                "tags": dict(package["tags"]),
                "digests": digests,
                "dirs": {d: self.images_dir / d.replace(":", "-") for d in digests},
            }

    def image_files(self, ref: str) -> Path | None:
        """The root filesystem directory of an image the registry holds, else None."""
        found = self.image(ref)
        return found["dir"] / "files" if found else None

    def image_config(self, ref: str) -> dict[str, Any] | None:
        """An image's config (Env, WorkingDir, User, Cmd, Entrypoint, Labels), else None."""
        found = self.image(ref)
        return load_config(found["dir"]) if found else None

    def push(
        self,
        ref: str,
        files: Path,
        config: dict[str, Any],
        digest: str,
        manifest: bytes,
        size: int,
        built: str,
    ) -> dict[str, Any]:
        """`docker push ref`: store the image, point its tag at it; the DockerImage. Raises PushError."""
        parts = parse_ref(ref)
        if parts is None or parts["digest"]:
            raise PushError(
                f"invalid reference format: {ref!r} is not <region>-docker.pkg.dev/<p>/<repo>/<image>:<tag>"
            )
        with self._lock:
            repo = self._repo_name(parts["project"], parts["location"], parts["repo"])
            if repo not in self._state["repositories"]:
                raise PushError(f'name unknown: Repository "{parts["repo"]}" not found')
            store_image(self.images_dir, files, config, digest, manifest)
            now = rfc3339(self.cloud.now())
            package = (
                self._state["images"]
                .setdefault(repo, {})
                .setdefault(parts["image"], {"createTime": now, "versions": {}, "tags": {}})
            )
            version = package["versions"].setdefault(
                digest,
                {"imageSizeBytes": str(size), "buildTime": built, "uploadTime": now, "createTime": now},
            )
            version["updateTime"] = package["updateTime"] = now
            package["tags"][parts["tag"] or "latest"] = digest
            self._state["repositories"][repo]["updateTime"] = now
            self._save()
            return self._docker_image(repo, parts["image"], digest)

    # ---- HTTP ----------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        principal = self.cloud.authenticate(request)
        found = match_route(self._routes, request)
        if found is None:
            return url_not_found(request)
        fn, params = found
        try:
            problem = access_error(params["project"], principal)
            if problem:
                raise ApiError(403, problem, "PERMISSION_DENIED")
            with self._lock:
                return json_response(fn(request, **params))
        except ApiError as e:
            return google_error(e.code, e.message, e.status)

    @staticmethod
    def _repo_name(project: str, location: str, repo: str) -> str:
        return f"projects/{project}/locations/{location}/repositories/{repo}"

    def _repo(self, project: str, location: str, repo: str) -> dict[str, Any]:
        found = self._state["repositories"].get(self._repo_name(project, location, repo))
        if found is None:
            raise ApiError(404, "Requested entity was not found.", "NOT_FOUND")
        return found

    def _package(self, project: str, location: str, repo: str, package: str) -> dict[str, Any]:
        self._repo(project, location, repo)
        found = self._state["images"].get(self._repo_name(project, location, repo), {}).get(unquote(package))
        if found is None:
            raise ApiError(404, "Requested entity was not found.", "NOT_FOUND")
        return found

    # ---- repositories --------------------------------------------------------------------------------

    def _create_repository(self, request, project, location):
        repo_id = request.args.get("repositoryId", "")
        if not REPO_ID.match(repo_id):
            raise ApiError(
                400,
                f"repository id {repo_id!r} is invalid: it must start with a lowercase letter, contain "
                "only lowercase letters, digits and hyphens, end with a letter or digit, and be at most 63 "
                "characters",
                "INVALID_ARGUMENT",
            )
        body = enum_names("artifactregistry.v1", "Repository", json_body(request))
        fmt = body.get("format", "FORMAT_UNSPECIFIED")
        if fmt != "DOCKER":
            raise ApiError(
                400, f"localcloud Artifact Registry emulates DOCKER repositories only, not {fmt!r}"
            )
        name = self._repo_name(project, location, repo_id)
        if name in self._state["repositories"]:
            raise ApiError(409, "the repository already exists", "ALREADY_EXISTS")
        now = rfc3339(self.cloud.now())
        repo = {
            "name": name,
            "format": "DOCKER",
            "mode": body.get("mode") or "STANDARD_REPOSITORY",
            "createTime": now,
            "updateTime": now,
            "registryUri": f"{location}-docker.pkg.dev/{project}/{repo_id}",
            **{k: body[k] for k in ("description", "labels", "dockerConfig") if body.get(k)},
        }
        self._state["repositories"][name] = repo
        op_name = f"projects/{project}/locations/{location}/operations/{uuid.uuid4()}"
        op = {
            "name": op_name,
            "metadata": {"@type": TYPE + "OperationMetadata"},
            "done": True,
            "response": {"@type": TYPE + "Repository", **self._public_repo(repo)},
        }
        self._state["operations"][op_name] = op
        self._save()
        return op

    def _public_repo(self, repo: dict[str, Any]) -> dict[str, Any]:
        images = self._state["images"].get(repo["name"], {})
        size = sum(int(v["imageSizeBytes"]) for p in images.values() for v in p["versions"].values())
        return {**repo, "sizeBytes": str(size)} if size else dict(repo)

    def _get_repository(self, request, project, location, repo):
        return self._public_repo(self._repo(project, location, repo))

    def _list_repositories(self, request, project, location):
        prefix = f"projects/{project}/locations/{location}/repositories/"
        repos = [
            self._public_repo(r)
            for n, r in sorted(self._state["repositories"].items())
            if n.startswith(prefix)
        ]
        return _page("repositories", repos, request)

    def _get_operation(self, request, project, location, op):
        found = self._state["operations"].get(f"projects/{project}/locations/{location}/operations/{op}")
        if found is None:
            raise ApiError(404, "Requested entity was not found.", "NOT_FOUND")
        return found

    # ---- docker images -------------------------------------------------------------------------------

    def _docker_image(self, repo_name: str, image: str, digest: str) -> dict[str, Any]:
        package = self._state["images"][repo_name][image]
        version = package["versions"][digest]
        _, project, _, location, _, repo = repo_name.split("/")
        out = {
            "name": f"{repo_name}/dockerImages/{quote(image, safe='')}@{digest}",
            "uri": f"{location}-docker.pkg.dev/{project}/{repo}/{image}@{digest}",
            "tags": sorted(t for t, d in package["tags"].items() if d == digest),
            "imageSizeBytes": version["imageSizeBytes"],
            "uploadTime": version["uploadTime"],
            "mediaType": MANIFEST_TYPE,
            "buildTime": version["buildTime"],
            "updateTime": version["updateTime"],
        }
        return {k: v for k, v in out.items() if v}

    def _list_docker_images(self, request, project, location, repo):
        self._repo(project, location, repo)
        name = self._repo_name(project, location, repo)
        images = [
            self._docker_image(name, image, digest)
            for image, package in sorted(self._state["images"].get(name, {}).items())
            for digest in package["versions"]
        ]
        order = request.args.get("orderBy", "").replace("_", "").lower()
        for field in ("updatetime", "uploadtime", "buildtime", "name"):
            if order.startswith(field):
                key = {"updatetime": "updateTime", "uploadtime": "uploadTime", "buildtime": "buildTime"}.get(
                    field, "name"
                )
                images.sort(key=lambda i: i.get(key, ""), reverse=order.endswith("desc"))
        return _page("dockerImages", images, request)

    def _get_docker_image(self, request, project, location, repo, image):
        self._repo(project, location, repo)
        name = self._repo_name(project, location, repo)
        image_name, _, digest = unquote(image).partition("@")
        package = self._state["images"].get(name, {}).get(image_name)
        if package is None or digest not in package["versions"]:
            raise ApiError(404, "Requested entity was not found.", "NOT_FOUND")
        return self._docker_image(name, image_name, digest)

    # ---- packages, tags, versions --------------------------------------------------------------------

    def _public_package(self, repo_name: str, image: str) -> dict[str, Any]:
        package = self._state["images"][repo_name][image]
        return {
            "name": f"{repo_name}/packages/{quote(image, safe='')}",
            "createTime": package["createTime"],
            "updateTime": package.get("updateTime", package["createTime"]),
        }

    def _list_packages(self, request, project, location, repo):
        self._repo(project, location, repo)
        name = self._repo_name(project, location, repo)
        return _page(
            "packages",
            [self._public_package(name, i) for i in sorted(self._state["images"].get(name, {}))],
            request,
        )

    def _get_package(self, request, project, location, repo, package):
        self._package(project, location, repo, package)
        return self._public_package(self._repo_name(project, location, repo), unquote(package))

    def _tags(self, project, location, repo, package) -> list[dict[str, str]]:
        found = self._package(project, location, repo, package)
        base = f"{self._repo_name(project, location, repo)}/packages/{quote(unquote(package), safe='')}"
        return [
            {"name": f"{base}/tags/{tag}", "version": f"{base}/versions/{digest}"}
            for tag, digest in sorted(found["tags"].items())
        ]

    def _list_tags(self, request, project, location, repo, package):
        tags = self._tags(project, location, repo, package)
        wanted = request.args.get("filter", "").strip()
        if wanted:
            match = re.fullmatch(r'(name|version)\s*=\s*"([^"]*)"', wanted)
            if not match:
                raise ApiError(
                    400, f'invalid filter {wanted!r}: localcloud supports name="..." and version="..."'
                )
            field, value = match.groups()
            tags = [
                t for t in tags if t[field] == value or (field == "name" and t[field].endswith("/" + value))
            ]
        return _page("tags", tags, request)

    def _get_tag(self, request, project, location, repo, package, tag):
        for found in self._tags(project, location, repo, package):
            if found["name"].rsplit("/", 1)[1] == unquote(tag):
                return found
        raise ApiError(404, "Requested entity was not found.", "NOT_FOUND")

    def _get_version(self, request, project, location, repo, package, version):
        found = self._package(project, location, repo, package)
        digest = unquote(version)
        if digest not in found["versions"]:
            raise ApiError(404, "Requested entity was not found.", "NOT_FOUND")
        full = request.args.get("view") in ("FULL", "2")  # an enum, by name or number
        return self._version(project, location, repo, unquote(package), digest, full)

    def _list_versions(self, request, project, location, repo, package):
        found = self._package(project, location, repo, package)
        full = request.args.get("view") in ("FULL", "2")
        versions = [
            self._version(project, location, repo, unquote(package), d, full) for d in found["versions"]
        ]
        order = request.args.get("orderBy", "").replace("_", "").lower()
        key = (
            "updateTime"
            if order.startswith("updatetime")
            else "createTime"
            if order.startswith("createtime")
            else "name"
        )
        versions.sort(key=lambda v: v[key], reverse=order.endswith("desc"))
        return _page("versions", versions, request)

    def _version(self, project, location, repo, image: str, digest: str, full: bool) -> dict[str, Any]:
        repo_name = self._repo_name(project, location, repo)
        record = self._state["images"][repo_name][image]["versions"][digest]
        docker = self._docker_image(repo_name, image, digest)
        out: dict[str, Any] = {
            "name": f"{repo_name}/packages/{quote(image, safe='')}/versions/{digest}",
            "createTime": record["createTime"],
            "updateTime": record["updateTime"],
            "metadata": {
                "name": docker["name"],
                "imageSizeBytes": docker["imageSizeBytes"],
                "mediaType": docker["mediaType"],
                "buildTime": docker["buildTime"],
            },
        }
        if full:
            related = self._tags(project, location, repo, quote(image, safe=""))
            out["relatedTags"] = [t for t in related if t["version"] == out["name"]]
        return out


def _page(field: str, items: list[dict[str, Any]], request: Request) -> dict[str, Any]:
    raw = request.args.get("pageSize", "") or "0"
    if not raw.isdigit():
        raise ApiError(400, f"Invalid pageSize {raw!r}: expected a non-negative integer", "INVALID_ARGUMENT")
    size = min(int(raw) or MAX_PAGE, MAX_PAGE)
    token = request.args.get("pageToken", "")
    start = int(token) if token.isdigit() else 0
    if token and not token.isdigit():
        raise ApiError(400, f"Invalid pageToken {token!r}", "INVALID_ARGUMENT")
    out: dict[str, Any] = {}
    if items[start : start + size]:
        out[field] = items[start : start + size]
    if start + size < len(items):
        out["nextPageToken"] = str(start + size)
    return out
