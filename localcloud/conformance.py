"""Google's discovery documents as the judge of localcloud's Google APIs.

google-api-python-client ships the machine-readable description of every REST API Google serves
(`googleapiclient/discovery_cache/documents/<api>.<version>.json`). localcloud holds its services
to them, for every request it serves (the proxy calls `Conformance.handle` once, for every service):
- a request body with a field the method's request schema lacks is refused as Google refuses it:
  400 INVALID_ARGUMENT, `Invalid JSON payload received. Unknown name "x" at 'job.template': Cannot
  find field.` (always on, as on Google);
- a 2xx JSON response is checked against the method's response schema (no key the schema lacks,
  types and enums as the schema says), and a request to a route no method of the document has is
  noted; each violation is appended as one JSON line to `$LOCALCLOUD_CONFORMANCE_LOG` when it is
  set (the test session sets it and fails on any line).

`python -m localcloud.conformance --coverage` prints, per document, the methods localcloud emulates
out of the document's total.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from localcloud import iam_enforce
from localcloud.service import Unauthenticated, google_error

if TYPE_CHECKING:
    from localcloud.service import Service

log = logging.getLogger("localcloud.conformance")

LOG_ENV = "LOCALCLOUD_CONFORMANCE_LOG"

# The discovery documents each localcloud service is held to, by service name.
DOCUMENTS: dict[str, tuple[str, ...]] = {
    "run": ("run.v2", "run.v1"),
    "scheduler": ("cloudscheduler.v1",),
    "secretmanager": ("secretmanager.v1",),
    "logging": ("logging.v2",),
    "bigquery": ("bigquery.v2",),
    "storage": ("storage.v1",),
    "cloudbuild": ("cloudbuild.v1",),
    "artifactregistry": ("artifactregistry.v1",),
    "iam": ("iam.v1",),
    "resourcemanager": ("cloudresourcemanager.v3", "cloudresourcemanager.v1"),
    "monitoring": ("monitoring.v3",),
}

# The routes that are no method of a Google discovery document, and why: the one exempt list.
EXEMPT: dict[str, str] = {
    "oauth2": "the OAuth 2.0 token endpoint (POST oauth2.googleapis.com/token): no discovery document",
    "cloudact": "the CloudAct API (docs/cloudact-api.md): not Google's",
    "supabase": "the Supabase Management API: not Google's",
    # Artifact Registry's registry hosts (<location>-docker.pkg.dev): the Docker Registry HTTP API V2 is
    # the OCI distribution spec, which no discovery document describes (artifactregistry.v1 is the REST
    # API on artifactregistry.googleapis.com, judged above).
    "docker-registry": "the Docker Registry HTTP API V2 (OCI distribution spec): no discovery document",
    "_localcloud": "localcloud's admin API (plain HTTP under /_localcloud/, never proxied)",
    "hooks": "localcloud's webhook receiver (https://hooks.cloudact.local/<name>): not Google's",
}

# Google's JSON transcoding names the request's body field in an unknown-name path ('job.template');
# most methods' body is the resource, named after its type (Job -> 'job'), a *Request body is the
# whole request ('*': no prefix). The exceptions, from the APIs' protos:
BODY_FIELDS: dict[str, str] = {
    "bigquery.jobs.query": "query_request",
    "bigquery.tabledata.insertAll": "rows",
}

_VERSION_PREFIX = re.compile(r"^Google\w*?V\d+(?:alpha\d*|beta\d*)?(?=[A-Z])")
_INT = re.compile(r"^-?\d+$")
_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)$")
_DURATION = re.compile(r"^-?\d+(?:\.\d{1,9})?s$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")
_DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
_FLOATS = ("NaN", "Infinity", "-Infinity")


def documents_dir() -> Path:
    import googleapiclient

    return Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"


@dataclass
class Method:
    api: str  # "run.v2"
    id: str  # "run.projects.locations.jobs.get"
    http_method: str
    template: str  # "/v2/projects/{projectsId}/locations/{locationsId}/jobs/{jobsId}"
    request: str | None  # schema id of the body
    response: str | None  # schema id of the answer
    regex: re.Pattern[str] = field(repr=False)
    literal: int = 0  # characters outside {} (the more, the more specific)
    query: frozenset[str] = (
        frozenset()
    )  # its query parameters ("pageSize", "formatOptions.useInt64Timestamp")


class Document:
    """One discovery document: its methods (matched by HTTP method and path) and schemas."""

    def __init__(self, api: str, data: dict[str, Any]):
        self.api = api
        self.name = data["name"]
        self.schemas: dict[str, Any] = data.get("schemas", {})
        self.system_params = frozenset(data.get("parameters", {}))  # alt, fields, prettyPrint, ...
        self.methods: list[Method] = []
        prefix = "/" + data.get("servicePath", "")
        for m in _walk(data):
            template = prefix + _flat_path(m)
            query = frozenset(k for k, v in m.get("parameters", {}).items() if v["location"] == "query")
            request = (m.get("request") or {}).get("$ref")
            response = (m.get("response") or {}).get("$ref")
            self._add(m["id"], m["httpMethod"], template, request, response, query)
            # Media: uploads go to the upload path (its body is the media, not the resource; a resumable
            # session's chunks are PUT to it with `upload_id`), downloads to `/download/...`.
            simple = m.get("mediaUpload", {}).get("protocols", {}).get("simple", {}).get("path")
            if simple:
                self._add(m["id"], m["httpMethod"], simple, None, response, query)
                self._add(m["id"], "PUT", simple, None, response, query | {"upload_id"})
            if m.get("useMediaDownloadService"):
                self._add(m["id"], m["httpMethod"], "/download" + template, None, response, query)

    def _add(
        self, id: str, http_method: str, template: str, request: str | None, response: str | None, query
    ) -> None:
        regex, literal = _template_regex(template), len(re.sub(r"\{[^}]*\}", "", template))
        method = Method(
            self.api, id, http_method, template, request, response, regex, literal, frozenset(query)
        )
        self.methods.append(method)

    def match(self, http_method: str, path: str) -> Method | None:
        found = [m for m in self.methods if m.http_method == http_method and m.regex.fullmatch(path)]
        return max(found, key=lambda m: m.literal) if found else None

    def body_field(self, method: Method) -> str:
        if method.id in BODY_FIELDS:
            return BODY_FIELDS[method.id]
        if method.request is None or method.request.endswith("Request"):
            return ""
        return _snake(_VERSION_PREFIX.sub("", method.request))

    def schema_for_type_url(self, type_url: str) -> dict[str, Any] | None:
        """The schema of an Any's @type ("type.googleapis.com/google.cloud.run.v2.Job"), if the
        document has it."""
        full = type_url.rpartition("/")[2]
        candidate = "".join(p[:1].upper() + p[1:] for p in full.split("."))
        if candidate in self.schemas:
            return self.schemas[candidate]
        # Documents that name schemas by the message alone (cloudbuild.v1's BuildOperationMetadata).
        return self.schemas.get(full.rpartition(".")[2])


def _walk(res: dict[str, Any]):
    yield from res.get("methods", {}).values()
    for sub in res.get("resources", {}).values():
        yield from _walk(sub)


def _flat_path(m: dict[str, Any]) -> str:
    """The flatPath; its last `{x}` spans segments when the `{+name}` pattern does (metric types have "/")."""
    flat, plus = m.get("flatPath") or m["path"], re.search(r"\{\+(\w+)\}$", m["path"])
    if plus and m.get("parameters", {}).get(plus.group(1), {}).get("pattern", "").endswith("/.*$"):
        return re.sub(r"\{(\w+)\}$", r"{+\1}", flat)
    return flat


def _template_regex(template: str) -> re.Pattern[str]:
    out = []
    for part in re.split(r"(\{[^}]*\})", template):
        if part.startswith("{+"):
            out.append(r".+")
        elif part.startswith("{"):
            out.append(r"[^/]+")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out))


@cache
def document(api: str) -> Document:
    return Document(api, json.loads((documents_dir() / f"{api}.json").read_text()))


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


# ---- validation -------------------------------------------------------------------------------------


class _Walker:
    """Walks a JSON value along a schema. For a request (`strict=False`) it only collects the names the
    schema lacks, with Google's path (proto field names, `[i]` for list items, `[i].value` for map
    values); for a response (`strict=True`) every key must be the schema's (JSON name) and every value
    of the schema's type, format and enum, with a JSON path."""

    def __init__(self, doc: Document, strict: bool):
        self.doc = doc
        self.strict = strict
        self.problems: list[tuple[str, str, str]] = []  # (path, unknown name or "", problem)

    def walk(self, schema: dict[str, Any] | None, value: Any, path: str) -> None:
        if schema is None:
            return
        ref = schema.get("$ref")
        if ref is not None:
            resolved = self.doc.schemas.get(ref)
            if resolved is None:
                return
            schema = resolved
        kind = schema.get("type")
        if kind == "any":
            if isinstance(value, dict) and isinstance(value.get("@type"), str):
                typed = self.doc.schema_for_type_url(value["@type"])
                if typed is not None:
                    self._object(typed, {k: v for k, v in value.items() if k != "@type"}, path)
            return
        if kind == "object" or (kind is None and "properties" in schema):
            extra = schema.get("additionalProperties") or {}
            if isinstance(value, dict) and not schema.get("properties") and extra.get("type") == "any":
                schema = {"type": "any"}  # an Any: {"@type": ..., fields of that type}
                self.walk(schema, value, path)
            elif isinstance(value, dict):
                self._object(schema, value, path)
            elif self.strict:
                self._bad(path, f"expected an object, got {_short(value)}")
            return
        if kind == "array":
            if isinstance(value, list):
                for i, item in enumerate(value):
                    self.walk(schema.get("items"), item, f"{path}[{i}]")
            elif self.strict:
                self._bad(path, f"expected an array, got {_short(value)}")
            return
        if self.strict:
            self._scalar(schema, kind, value, path)

    def _object(self, schema: dict[str, Any], value: dict[str, Any], path: str) -> None:
        props: dict[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for i, (key, item) in enumerate(value.items()):
            name = key if key in props or self.strict else _camel(key)
            if name in props:
                self.walk(props[name], item, self._join(path, name))
            elif extra is not None:
                self.walk(extra, item, f"{path}[{i}].value" if not self.strict else f"{path}[{key!r}]")
            else:
                self.problems.append((path, key, "unknown"))

    def _scalar(self, schema: dict[str, Any], kind: str | None, value: Any, path: str) -> None:
        fmt = schema.get("format")
        if value is None:
            self._bad(path, "null (proto3 JSON leaves a default value out)")
        elif kind == "string":
            if not isinstance(value, str):
                self._bad(path, f"expected a string ({fmt or 'string'}), got {_short(value)}")
            elif fmt in ("int64", "uint64") and not _INT.match(value):
                self._bad(path, f"expected an {fmt} as a decimal string, got {_short(value)}")
            elif fmt in ("google-datetime", "date-time") and not _DATETIME.match(value):
                self._bad(path, f"expected an RFC 3339 timestamp, got {_short(value)}")
            elif fmt == "google-duration" and not _DURATION.match(value):
                self._bad(path, f'expected a duration such as "3.5s", got {_short(value)}')
            elif fmt == "byte" and not _BASE64.match(value):
                self._bad(path, f"expected base64 bytes, got {_short(value)}")
            elif fmt == "date" and not _DATE.match(value):
                self._bad(path, f"expected a date YYYY-MM-DD, got {_short(value)}")
            elif "enum" in schema and value not in schema["enum"]:
                self._bad(path, f"{value!r} is not one of the enum {schema['enum']}")
        elif kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                self._bad(path, f"expected an integer ({fmt}), got {_short(value)}")
        elif kind == "number":
            if isinstance(value, bool) or not (isinstance(value, int | float) or value in _FLOATS):
                self._bad(path, f"expected a number ({fmt}), got {_short(value)}")
        elif kind == "boolean" and not isinstance(value, bool):
            self._bad(path, f"expected a boolean, got {_short(value)}")

    def _join(self, path: str, name: str) -> str:
        part = name if self.strict else _snake(name)
        return f"{path}.{part}" if path else part

    def _bad(self, path: str, problem: str) -> None:
        self.problems.append((path, "", problem))


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def unknown_names(doc: Document, method: Method, body: Any) -> list[tuple[str, str]]:
    """(path, name) of each field of a request body that the method's request schema lacks, with the
    path as Google words it ("job.template", "" at the top of a `*` body)."""
    if method.request is None or not isinstance(body, dict):
        return []
    walker = _Walker(doc, strict=False)
    walker.walk({"$ref": method.request}, body, doc.body_field(method))
    return [(path, name) for path, name, _ in walker.problems]


def unknown_query_parameters(doc: Document, method: Method, names: list[str]) -> list[str]:
    """The query parameters that neither the method nor the API's system parameters have (Google
    takes `$alt` for `alt`, and proto field names for JSON names)."""
    known = method.query | doc.system_params
    return [
        name
        for name in names
        if name not in known and name.removeprefix("$") not in known and _camel(name) not in known
    ]


def unknown_parameter_message(name: str) -> str:
    return (
        f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query parameter. '
        f"Field '{name}' could not be found in request message."
    )


def unknown_name_message(path: str, name: str) -> str:
    where = f" at '{path}'" if path else ""
    return f'Invalid JSON payload received. Unknown name "{name}"{where}: Cannot find field.'


def response_problems(doc: Document, method: Method, body: Any) -> list[tuple[str, str]]:
    """(JSON path, problem) for each way a response body departs from the method's response schema."""
    if method.response is None:
        if body not in ({}, None):
            return [("response", f"the method answers Empty, got {_short(body)}")]
        return []
    walker = _Walker(doc, strict=True)
    walker.walk({"$ref": method.response}, body, "response")
    return [
        (f"{path}.{name}" if name else path, "a key the schema lacks" if name else problem)
        for path, name, problem in walker.problems
    ]


# ---- the hook in the proxy ------------------------------------------------------------------------


def find_method(service: str, http_method: str, path: str) -> tuple[Document, Method] | None:
    for api in DOCUMENTS.get(service, ()):
        doc = document(api)
        method = doc.match(http_method, path)
        if method is not None:
            return doc, method
    return None


class Conformance:
    """What the proxy calls for each request to a service: refuse unknown request fields, then hand
    the request to the service, then check its answer (violations go to `log_file`, if any)."""

    def __init__(self, log_file: str | Path | None = None, cloud: Any = None):
        self.log_file = Path(log_file) if log_file else None
        self.cloud = cloud
        self._lock = threading.Lock()
        self.available = _available()

    @classmethod
    def from_env(cls, cloud: Any = None) -> Conformance:
        return cls(os.environ.get(LOG_ENV) or None, cloud)

    def handle(self, service: Service, request: Request) -> Response:
        if not self.available or service.name not in DOCUMENTS:
            return service.handle(request)
        found = find_method(service.name, request.method, request.path)
        if found is None:  # a segment with an escaped "/" (a Cloud Storage object name) matches raw
            raw = request.environ.get("RAW_URI", "").partition("?")[0]
            found = find_method(service.name, request.method, raw) if raw.startswith("/") else None
        response = None
        if found is not None:
            refusal = self.refuse(service, request, *found)
            if refusal is not None:
                return refusal
            if self.cloud is not None:  # IAM: refuse a caller without the permission, serve policy methods
                response = iam_enforce.intercept(self.cloud, service, request, found[1])
        if response is None:
            response = service.handle(request)
        if self.log_file is not None:
            try:
                self.observe(service, request, response, found)
            except Exception:  # the judge must never break the service it watches
                log.exception("conformance check of %s %s failed", request.method, request.path)
        return response

    def refuse(self, service: Service, request: Request, doc: Document, method: Method) -> Response | None:
        unknown = [("", name) for name in unknown_query_parameters(doc, method, list(request.args))]
        messages = [unknown_parameter_message(name) for _, name in unknown]
        if method.request is not None:
            raw = request.get_data(cache=True)
            try:
                body = json.loads(raw) if raw.strip() else None
            except ValueError:
                body = None  # the service words a body that is not JSON
            for path, name in unknown_names(doc, method, body):
                unknown.append((path, name))
                messages.append(unknown_name_message(path, name))
        if not unknown:
            return None
        if self.cloud is not None:
            try:  # Google authenticates before it reads the body: a bad token stays a 401
                self.cloud.authenticate(request)
            except Unauthenticated:
                return None
        extra: dict[str, Any] = {
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [
                        {"field": path, "description": msg}
                        for (path, _), msg in zip(unknown, messages, strict=True)
                    ],
                }
            ]
        }
        if service.name == "bigquery":  # BigQuery's errors carry its `errors` list as well
            extra = {"errors": [{"message": m, "domain": "global", "reason": "invalid"} for m in messages]}
        return google_error(400, "\n".join(messages), "INVALID_ARGUMENT", **extra)

    def observe(
        self, service: Service, request: Request, response: Response, found: tuple[Document, Method] | None
    ) -> None:
        status = response.status_code
        where = f"{request.method} {request.host}{request.path}"
        if found is None:
            if status != 404:
                self.record(
                    service.name,
                    "",
                    where,
                    status,
                    "route",
                    "no method of the documents "
                    f"{list(DOCUMENTS[service.name])} has this HTTP method and path",
                )
            return
        doc, method = found
        if not 200 <= status < 300 or response.mimetype != "application/json":
            return
        data = response.get_data()
        body = json.loads(data) if data.strip() else None
        for path, problem in response_problems(doc, method, body):
            self.record(service.name, method.id, where, status, path, problem)

    def record(self, service: str, method: str, where: str, status: int, path: str, problem: str) -> None:
        line = {
            "service": service,
            "method": method,
            "request": where,
            "status": status,
            "at": path,
            "problem": problem,
        }
        assert self.log_file is not None
        with self._lock, self.log_file.open("a") as f:
            f.write(json.dumps(line) + "\n")


@cache
def _available() -> bool:
    try:
        documents_dir()
    except ImportError:
        log.warning(
            "google-api-python-client is not installed: localcloud checks no request or "
            "response against Google's discovery documents"
        )
        return False
    return True


# ---- the routes localcloud serves, and the coverage figure -----------------------------------------


def service_routes(service: Service) -> list[tuple[str, str]]:
    """(HTTP method, path template with `{name}` segments) of each route a service answers: its
    `routes()` when it declares them, else its `_routes` table of (method, regex, handler)."""
    declared = getattr(service, "routes", None)
    if callable(declared):
        return list(declared())
    table = getattr(service, "_routes", None)
    if table is None:
        return []
    return [(method, regex_template(pattern.pattern)) for method, pattern, _ in table]


def regex_template(pattern: str) -> str:
    """`/v2/projects/(?P<project>[^/]+)/jobs$` -> `/v2/projects/{project}/jobs`."""
    text = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern.removeprefix("^").removesuffix("$"))
    return text.replace("\\", "")


def sample_path(template: str) -> str:
    """A concrete path for a route template, each `{name}` a plausible id."""
    return re.sub(r"\{(\w+)\}", lambda m: f"sample-{m.group(1)}", template)


def route_methods(cloud: Any) -> tuple[dict[str, set[str]], list[str]]:
    """Per document, the ids of the methods the services' routes are; and each route that is no
    method of its service's documents (nor exempt), as "service: METHOD template"."""
    emulated: dict[str, set[str]] = {api: set() for apis in DOCUMENTS.values() for api in apis}
    strays = []
    for svc in cloud.services:
        if svc.name in EXEMPT:
            continue
        routes = service_routes(svc)
        if svc.name not in DOCUMENTS:
            strays.append(f"{svc.name}: a service with no discovery document in DOCUMENTS, nor in EXEMPT")
            continue
        if not routes:
            strays.append(f"{svc.name}: lists no routes (declare routes() or a _routes table)")
        for http_method, template in routes:
            found = find_method(svc.name, http_method, sample_path(template))
            if found is None:
                strays.append(f"{svc.name}: {http_method} {template}")
            else:
                emulated[found[0].api].add(found[1].id)
        for method_id in policy_methods(svc):  # served for the service by localcloud/iam_enforce.py
            emulated[method_id[0]].add(method_id[1])
    return emulated, strays


def policy_methods(service: Service) -> list[tuple[str, str]]:
    """(document, method id) of each getIamPolicy/setIamPolicy/testIamPermissions the service maps in
    its `permissions`: IAM serves them (localcloud/iam_enforce.py)."""
    out = []
    for method_id in getattr(service, "permissions", {}):
        if method_id.rsplit(".", 1)[1] not in iam_enforce.POLICY_VERBS:
            continue
        for api in DOCUMENTS.get(service.name, ()):
            if any(m.id == method_id for m in document(api).methods):
                out.append((api, method_id))
    return out


def coverage(cloud: Any) -> list[tuple[str, int, int]]:
    emulated, _ = route_methods(cloud)
    return [(api, len(ids), len(document(api).methods)) for api, ids in emulated.items()]


def main(argv: list[str] | None = None) -> int:
    import argparse
    import shutil
    import tempfile

    from localcloud.server import LocalCloud

    parser = argparse.ArgumentParser(prog="python -m localcloud.conformance", description=__doc__)
    parser.add_argument("--coverage", action="store_true", help="methods emulated per API document")
    parser.add_argument("--methods", action="store_true", help="also list the emulated methods")
    args = parser.parse_args(argv)
    if not args.coverage:
        parser.print_help()
        return 2
    root = Path(tempfile.mkdtemp(prefix="localcloud-coverage-"))
    try:
        cloud = LocalCloud(root / "state", 0)  # constructed, never started: only its route tables
        try:
            emulated, strays = route_methods(cloud)
        finally:
            cloud.server.server_close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    total_e = total_n = 0
    for api, ids in emulated.items():
        n = len(document(api).methods)
        total_e, total_n = total_e + len(ids), total_n + n
        print(f"{api:20} {len(ids):3} of {n:3} methods")
        if args.methods:
            for method_id in sorted(ids):
                print(f"    {method_id}")
    print(f"{'all':20} {total_e:3} of {total_n:3} methods")
    for stray in strays:
        print(f"not a method of its document: {stray}")
    return 1 if strays else 0


if __name__ == "__main__":
    raise SystemExit(main())
