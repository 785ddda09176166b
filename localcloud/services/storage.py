"""Cloud Storage JSON API (storage.googleapis.com): buckets get/insert/list; objects insert (media,
multipart and resumable uploads under /upload/storage/v1/...), get (metadata, `alt=media`, and the
/download/storage/v1/... media link) and list, as google-cloud-storage and gcloud speak them.

State: state/storage/index.json (buckets and object metadata, rewritten atomically on each change),
the data of each object generation in state/storage/data/<generation>, and each open resumable
session's bytes in state/storage/uploads/<upload_id>. Bucket names are global, as on Google: a bucket
belongs to the project that created it, and only that project's accounts may use it (no IAM yet).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

from werkzeug.wrappers import Request, Response

from localcloud.clock import rfc3339
from localcloud.projects import BY_ID, project_of
from localcloud.service import Service, json_response
from localcloud.services.storage_media import (
    StorageError,
    byte_range,
    check_given_checksums,
    checksums,
    content_range,
    invalid,
    parse_multipart,
)

HOST = "storage.googleapis.com"
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
MAX_RESULTS = 1000
BUCKET_FIELDS_IN = {"name", "location", "storageClass", "labels", "iamConfiguration", "versioning"}
OBJECT_FIELDS_IN = {
    "name",
    "contentType",
    "contentEncoding",
    "contentDisposition",
    "contentLanguage",
    "cacheControl",
    "metadata",
    "customTime",
}
_B = r"/storage/v1/b/(?P<bucket>[^/]+)"


def project_number(project: str) -> str:
    """The project's 12-digit number, fixed per project ID (as localcloud's projects give it)."""
    digest = int(hashlib.sha256(f"project-number/{project}".encode()).hexdigest(), 16)
    return str(10**11 + digest % (9 * 10**11))


def object_url(bucket: str, name: str) -> str:
    return f"{_quote(bucket)}/o/{_quote(name)}"


def _quote(text: str) -> str:
    return quote(text, safe="")


class StorageService(Service):
    name = "storage"
    hosts = (HOST,)
    permissions: ClassVar[dict[str, str]] = {
        "storage.buckets.get": "storage.buckets.get",
        "storage.buckets.insert": "storage.buckets.create",
        "storage.buckets.list": "storage.buckets.list",
        "storage.objects.insert": "storage.objects.create",
        "storage.objects.get": "storage.objects.get",
        "storage.objects.list": "storage.objects.list",
    }

    def __init__(self, cloud):
        super().__init__(cloud)
        self._index_file = self.state_dir / "index.json"
        self._data = self.state_dir / "data"
        self._uploads_dir = self.state_dir / "uploads"
        self._lock = threading.RLock()
        self._buckets: dict[str, dict[str, Any]] = {}
        self._objects: dict[str, dict[str, dict[str, Any]]] = {}  # bucket -> name -> object
        self._uploads: dict[str, dict[str, Any]] = {}  # upload_id -> session
        if self._index_file.exists():
            saved = json.loads(self._index_file.read_text())
            self._buckets, self._objects = saved["buckets"], saved["objects"]
            self._uploads = saved.get("uploads", {})
        self._data.mkdir(exist_ok=True)
        self._uploads_dir.mkdir(exist_ok=True)

    # ---- state ---------------------------------------------------------------------------------------

    def _save(self) -> None:
        tmp = self._index_file.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"buckets": self._buckets, "objects": self._objects, "uploads": self._uploads})
        )
        tmp.replace(self._index_file)

    def reset(self) -> None:
        with self._lock:
            for folder in (self._data, self._uploads_dir):
                for path in folder.iterdir():
                    path.unlink()
            self._buckets, self._objects, self._uploads = {}, {}, {}
            self._save()

    # ---- in-process API (Cloud Build's source fetch) -------------------------------------------------

    def bucket_project(self, bucket: str) -> str | None:
        with self._lock:
            found = self._buckets.get(bucket)
            return found["_project"] if found else None

    def read_object(
        self, bucket: str, name: str, generation: str | None = None
    ) -> tuple[dict[str, Any], bytes]:
        """(metadata, data) of an object; raises StorageError (404) when there is none."""
        with self._lock:
            obj = self._object(bucket, name, generation)
            return dict(obj), (self._data / obj["generation"]).read_bytes()

    def write_object(
        self, project: str, bucket: str, name: str, data: bytes, content_type: str
    ) -> dict[str, Any]:
        """Store an object as an upload by an account of `project` would (the bucket must exist)."""
        with self._lock:
            self._bucket(bucket, f"svc@{project}.iam.gserviceaccount.com", "storage.objects.create")
            return self._finalize(bucket, {"name": name, "contentType": content_type}, data, {})

    # ---- IAM (localcloud/iam_enforce.py) ------------------------------------------------------------

    def iam_resource(self, request: Request, method: Any) -> str:
        """What IAM judges a call on: `projects/<p>/buckets/<b>` (the bucket's project; a missing
        bucket is judged in the caller's, so it stays a 404), else the `project` parameter's project."""
        match = re.match(r"^(?:/download|/upload)?/storage/v1/b/([^/]+)", request.path)
        if match:
            with self._lock:
                bucket = self._buckets.get(match[1])
            project = bucket["_project"] if bucket else project_of(self.cloud.authenticate(request))
            return f"projects/{project}/buckets/{match[1]}"
        project = request.args.get("project", "")
        return f"projects/{project}" if project else ""

    def iam_denied(self, permission: str, resource: str, principal: str) -> Response:
        what = "Google Cloud Storage object" if ".objects." in permission else "Google Cloud Storage bucket"
        if resource.count("/") == 1:
            what = "Google Cloud project"
        return StorageError(
            403,
            f"{principal} does not have {permission} access to the {what}. "
            f"Permission '{permission}' denied on resource (or it may not exist).",
            "forbidden",
        ).response()

    # ---- HTTP ----------------------------------------------------------------------------------------

    def routes(self) -> list[tuple[str, str]]:
        b, o = "/storage/v1/b/{bucket}", "/storage/v1/b/{bucket}/o"
        upload = "/upload/storage/v1/b/{bucket}/o"
        return [
            ("GET", "/storage/v1/b"),
            ("POST", "/storage/v1/b"),
            ("GET", b),
            ("GET", o),
            ("GET", o + "/{object}"),
            ("GET", "/download" + o + "/{object}"),
            ("POST", upload),
            ("PUT", upload),
        ]

    def handle(self, request: Request) -> Response:
        principal = self.cloud.authenticate(request)
        path, method = request.path, request.method
        try:
            with self._lock:
                if path == "/storage/v1/b" and method in ("GET", "POST"):
                    if method == "GET":
                        return json_response(self._list_buckets(request, principal))
                    return json_response(self._insert_bucket(request, principal))
                match = re.fullmatch(_B, path)
                if match and method == "GET":
                    return json_response(
                        self._public_bucket(self._bucket(match["bucket"], principal, "storage.buckets.get"))
                    )
                match = re.fullmatch(_B + "/o", path)
                if match and method == "GET":
                    return json_response(self._list_objects(match["bucket"], request, principal))
                if match and method == "POST":
                    raise invalid(
                        "Upload requests must include an uploadType URL parameter and a URL path beginning "
                        "with /upload/"
                    )
                match = re.fullmatch(r"(?:/download)?" + _B + "/o/(?P<object>.+)", path)
                if match and method == "GET":
                    return self._get_object(match["bucket"], match["object"], request, principal)
                match = re.fullmatch(r"/upload" + _B + "/o", path)
                if match and method == "POST":
                    return self._upload(match["bucket"], request, principal)
                if match and method == "PUT":
                    return self._resume(match["bucket"], request, principal)
        except StorageError as e:
            return e.response()
        return StorageError(
            404, f"Not Found: localcloud Cloud Storage does not serve {method} {path}", "notFound"
        ).response()

    # ---- buckets -------------------------------------------------------------------------------------

    def _bucket(self, name: str, principal: str, permission: str) -> dict[str, Any]:
        bucket = self._buckets.get(name)
        if bucket is None:
            raise StorageError(404, "The specified bucket does not exist.", "notFound")
        if project_of(principal) != bucket["_project"]:
            raise StorageError(
                403,
                f"{principal} does not have {permission} access to the Google Cloud Storage bucket. "
                f"Permission '{permission}' denied on resource (or it may not exist).",
                "forbidden",
            )
        return bucket

    def _project_param(self, request: Request, principal: str, permission: str) -> str:
        project = request.args.get("project", "")
        if not project:
            raise StorageError(400, "Required parameter: project", "required")
        if project not in BY_ID or project_of(principal) != project:
            raise StorageError(
                403,
                f"{principal} does not have {permission} access to the Google Cloud project. "
                f"Permission '{permission}' denied on resource (or it may not exist).",
                "forbidden",
            )
        return project

    def _insert_bucket(self, request: Request, principal: str) -> dict[str, Any]:
        project = self._project_param(request, principal, "storage.buckets.create")
        body = _json(request)
        name = body.get("name", "")
        if not isinstance(name, str) or not name:
            raise StorageError(400, "Required parameter: name", "required")
        if not BUCKET_NAME.match(name) or ".." in name or name.startswith("goog"):
            raise invalid(f"Invalid bucket name: '{name}'")
        if name in self._buckets:
            if self._buckets[name]["_project"] == project:
                raise StorageError(
                    409,
                    "Your previous request to create the named bucket succeeded and you already own it.",
                    "conflict",
                )
            raise StorageError(
                409,
                "The requested bucket name is not available. The bucket namespace is shared by all users "
                "of the system. Please select a different name and try again.",
                "conflict",
            )
        now = rfc3339(self.cloud.now())
        location = str(body.get("location") or "US").upper()
        bucket = {
            "kind": "storage#bucket",
            "selfLink": f"https://www.googleapis.com/storage/v1/b/{name}",
            "id": name,
            "name": name,
            "projectNumber": project_number(project),
            "generation": str(_generation()),
            "metageneration": "1",
            "location": location,
            "storageClass": body.get("storageClass") or "STANDARD",
            "etag": "CAE=",
            "timeCreated": now,
            "updated": now,
            "locationType": "multi-region" if location in ("US", "EU", "ASIA") else "region",
            "rpo": "DEFAULT",
            **{k: body[k] for k in ("labels", "iamConfiguration", "versioning") if body.get(k)},
            "_project": project,
        }
        self._buckets[name] = bucket
        self._objects[name] = {}
        self._save()
        return self._public_bucket(bucket)

    def _list_buckets(self, request: Request, principal: str) -> dict[str, Any]:
        project = self._project_param(request, principal, "storage.buckets.list")
        prefix = request.args.get("prefix", "")
        names = sorted(
            n for n, b in self._buckets.items() if b["_project"] == project and n.startswith(prefix)
        )
        page, token = _page(names, request)
        out: dict[str, Any] = {"kind": "storage#buckets"}
        if page:
            out["items"] = [self._public_bucket(self._buckets[n]) for n in page]
        if token:
            out["nextPageToken"] = token
        return out

    @staticmethod
    def _public_bucket(bucket: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in bucket.items() if not k.startswith("_")}

    # ---- objects -------------------------------------------------------------------------------------

    def _object(self, bucket: str, name: str, generation: str | None = None) -> dict[str, Any]:
        obj = self._objects.get(bucket, {}).get(name)
        if obj is None or (generation and generation != obj["generation"]):
            raise StorageError(404, f"No such object: {bucket}/{name}", "notFound")
        return obj

    def _get_object(self, bucket: str, name: str, request: Request, principal: str) -> Response:
        self._bucket(bucket, principal, "storage.objects.get")
        obj = self._object(bucket, name, request.args.get("generation"))
        _preconditions(request, obj)
        if request.args.get("alt", request.args.get("$alt", "json")) != "media":
            return json_response(obj)
        data = (self._data / obj["generation"]).read_bytes()
        headers = {
            "X-Goog-Generation": obj["generation"],
            "X-Goog-Metageneration": obj["metageneration"],
            "X-Goog-Stored-Content-Length": obj["size"],
            "X-Goog-Stored-Content-Encoding": obj.get("contentEncoding", "identity"),
            "X-Goog-Hash": f"crc32c={obj['crc32c']},md5={obj['md5Hash']}",
            "ETag": obj["etag"],
            "Last-Modified": self.cloud.now().strftime("%a, %d %b %Y %H:%M:%S GMT"),
        }
        span = byte_range(request.headers.get("Range"), len(data))
        status = 200
        if span is not None:
            start, end = span
            data, status = data[start : end + 1], 206
            headers["Content-Range"] = f"bytes {start}-{end}/{obj['size']}"
        return Response(data, status=status, headers=headers, content_type=obj["contentType"])

    def _list_objects(self, bucket: str, request: Request, principal: str) -> dict[str, Any]:
        self._bucket(bucket, principal, "storage.objects.list")
        prefix = request.args.get("prefix", "")
        delimiter = request.args.get("delimiter", "")
        start, end = request.args.get("startOffset", ""), request.args.get("endOffset", "")
        names, prefixes = [], set()
        for name in sorted(self._objects[bucket]):
            if not name.startswith(prefix) or (start and name < start) or (end and name >= end):
                continue
            rest = name[len(prefix) :]
            if delimiter and delimiter in rest:
                prefixes.add(prefix + rest.split(delimiter, 1)[0] + delimiter)
            else:
                names.append(name)
        page, token = _page(names, request, "maxResults")
        out: dict[str, Any] = {"kind": "storage#objects"}
        if prefixes:
            out["prefixes"] = sorted(prefixes)
        if page:
            out["items"] = [self._objects[bucket][n] for n in page]
        if token:
            out["nextPageToken"] = token
        return out

    def _finalize(self, bucket: str, metadata: dict[str, Any], data: bytes, args: Any) -> dict[str, Any]:
        name = metadata.get("name") or args.get("name", "")
        if not name:
            raise StorageError(400, "Required parameter: name", "required")
        if len(name.encode()) > 1024 or "\r" in name or "\n" in name:
            raise invalid(f"The object name {name!r} is not valid: at most 1024 bytes of UTF-8, no CR or LF.")
        check_given_checksums(metadata, data)
        current = self._objects[bucket].get(name)
        _insert_preconditions(args, current)
        generation = str(_generation())
        (self._data / generation).write_bytes(data)
        if current is not None:
            (self._data / current["generation"]).unlink(missing_ok=True)
        now = rfc3339(self.cloud.now())
        obj = {
            "kind": "storage#object",
            "id": f"{bucket}/{name}/{generation}",
            "selfLink": f"https://www.googleapis.com/storage/v1/b/{object_url(bucket, name)}",
            "mediaLink": f"https://{HOST}/download/storage/v1/b/{object_url(bucket, name)}"
            f"?generation={generation}&alt=media",
            "name": name,
            "bucket": bucket,
            "generation": generation,
            "metageneration": "1",
            "contentType": metadata.get("contentType") or "application/octet-stream",
            "storageClass": self._buckets[bucket]["storageClass"],
            "size": str(len(data)),
            **checksums(data),
            "etag": base64.b64encode(int(generation).to_bytes(8, "big").lstrip(b"\0") + b"\x10\x01").decode(),
            "timeCreated": now,
            "updated": now,
            "timeStorageClassUpdated": now,
            "timeFinalized": now,
            **{k: metadata[k] for k in sorted(OBJECT_FIELDS_IN - {"name", "contentType"}) if metadata.get(k)},
        }
        self._objects[bucket][name] = obj
        self._save()
        return obj

    # ---- uploads -------------------------------------------------------------------------------------

    def _upload(self, bucket: str, request: Request, principal: str) -> Response:
        self._bucket(bucket, principal, "storage.objects.create")
        kind = request.args.get("uploadType", "")
        body = request.get_data()
        if kind == "media":
            metadata = {"contentType": request.content_type or ""}
            return json_response(self._finalize(bucket, metadata, body, request.args))
        if kind == "multipart":
            raw, media_type, media = parse_multipart(request.content_type or "", body)
            metadata = _metadata(raw)
            metadata.setdefault("contentType", media_type)
            return json_response(self._finalize(bucket, metadata, media, request.args))
        if kind == "resumable":
            metadata = _metadata(body) if body.strip() else {}
            metadata.setdefault("contentType", request.headers.get("X-Upload-Content-Type", ""))
            upload_id = secrets.token_urlsafe(48)
            query = {k: v for k, v in request.args.items(multi=True) if k not in ("upload_id",)}
            self._uploads[upload_id] = {
                "bucket": bucket,
                "metadata": metadata,
                "args": query,
                "project": self._buckets[bucket]["_project"],
            }
            (self._uploads_dir / upload_id).write_bytes(b"")
            self._save()
            location = f"https://{HOST}/upload/storage/v1/b/{_quote(bucket)}/o?" + urlencode(
                {**query, "upload_id": upload_id}
            )
            return Response(
                b"", status=200, headers={"Location": location, "X-GUploader-UploadID": upload_id}
            )
        raise invalid(f"Invalid upload type {kind!r}: use media, multipart or resumable.")

    def _resume(self, bucket: str, request: Request, principal: str) -> Response:
        upload_id = request.args.get("upload_id", "")
        session = self._uploads.get(upload_id)
        if session is None or session["bucket"] != bucket:
            raise StorageError(
                404, "No such upload session, or it has been completed or cancelled.", "notFound"
            )
        self._bucket(bucket, principal, "storage.objects.create")
        part = self._uploads_dir / upload_id
        have = part.stat().st_size
        first, last, total = content_range(request.headers.get("Content-Range"))
        chunk = request.get_data()
        if request.headers.get("Content-Range") is None:
            first, total = 0, len(chunk)
            if have:
                raise invalid("A resumable upload chunk without Content-Range must carry the whole object.")
        if first is not None:
            if first > have:
                raise invalid(
                    f"Invalid request. The chunk starts at byte {first}, past the {have} bytes received."
                )
            skip = have - first  # a retried chunk: keep what already arrived
            if last is not None and last - first + 1 != len(chunk):
                raise invalid(
                    f"The Content-Range length ({last - first + 1}) does not match the body ({len(chunk)})."
                )
            with part.open("ab") as f:
                f.write(chunk[skip:])
            have = part.stat().st_size
        if total is not None and have > total:
            raise invalid(f"The upload has {have} bytes, more than the declared total {total}.")
        if total is None or have < total:
            headers = {"X-GUploader-UploadID": upload_id}
            if have:
                headers["Range"] = f"bytes=0-{have - 1}"
            return Response(b"", status=308, headers=headers)
        data = part.read_bytes()
        obj = self._finalize(bucket, session["metadata"], data, session["args"])
        part.unlink(missing_ok=True)
        del self._uploads[upload_id]
        self._save()
        return json_response(obj)


def _generation() -> int:
    """Generations are microsecond timestamps on Google; unique and increasing here."""
    global _LAST_GENERATION
    with _GEN_LOCK:
        _LAST_GENERATION = max(_LAST_GENERATION + 1, time.time_ns() // 1000)
        return _LAST_GENERATION


_LAST_GENERATION = 0
_GEN_LOCK = threading.Lock()


def _json(request: Request) -> dict[str, Any]:
    raw = request.get_data()
    if not raw.strip():
        return {}
    return _metadata(raw)


def _metadata(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise StorageError(400, "Parse Error", "parseError") from None
    if not isinstance(body, dict):
        raise StorageError(400, "Parse Error", "parseError")
    return body


def _page(names: list[str], request: Request, size_param: str = "maxResults") -> tuple[list[str], str]:
    raw = request.args.get(size_param, "") or str(MAX_RESULTS)
    if not raw.isdigit():
        raise invalid(f"Invalid value for {size_param}: {raw!r}")
    size = min(int(raw) or MAX_RESULTS, MAX_RESULTS)
    token = request.args.get("pageToken", "")
    if token:
        try:
            after = base64.urlsafe_b64decode(token.encode()).decode()
        except ValueError:
            raise invalid(f"Invalid pageToken {token!r}") from None
        names = [n for n in names if n > after]
    page = names[:size]
    more = len(names) > size
    return page, base64.urlsafe_b64encode(page[-1].encode()).decode() if more else ""


def _preconditions(request: Request, obj: dict[str, Any]) -> None:
    match, not_match = request.args.get("ifGenerationMatch"), request.args.get("ifGenerationNotMatch")
    if (match and match != obj["generation"]) or (not_match and not_match == obj["generation"]):
        raise StorageError(
            412, "At least one of the pre-conditions you specified did not hold.", "conditionNotMet"
        )


def _insert_preconditions(args: Any, current: dict[str, Any] | None) -> None:
    generation = current["generation"] if current else "0"
    match, not_match = args.get("ifGenerationMatch"), args.get("ifGenerationNotMatch")
    if (match is not None and match != generation) or (not_match is not None and not_match == generation):
        raise StorageError(
            412, "At least one of the pre-conditions you specified did not hold.", "conditionNotMet"
        )
