"""The admin API (plain HTTP on the proxy's port, loopback only): health, env, clock, faults, requests,
reset, and each service's own `/_localcloud/<service>/...` (see localcloud/README.md, "Admin API")."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from localcloud.clock import parse_duration, parse_time
from localcloud.service import json_response

if TYPE_CHECKING:
    from localcloud.server import LocalCloud


def handle(cloud: LocalCloud, request: Request) -> Response:
    parts = request.path.removeprefix("/_localcloud/").split("/", 1)
    name, subpath = parts[0], parts[1] if len(parts) > 1 else ""
    method = request.method
    try:
        if name == "health" and method == "GET":
            return json_response(
                {
                    "ready": cloud.ready.is_set(),
                    "pid": os.getpid(),
                    "proxy_url": cloud.proxy_url,
                    "services": [s.name for s in cloud.services],
                    "hosts": cloud.hosts(),
                },
                status=200 if cloud.ready.is_set() else 503,
            )
        if name == "env" and method == "GET":
            return json_response(cloud.client_env())
        if name == "clock":
            if method == "GET":
                return json_response(cloud.clock.describe())
            if method == "POST":
                body = _json_body(request)
                if not isinstance(body, dict) or len(set(body) & {"set", "advance"}) != 1:
                    raise ValueError('clock: expected {"set": "<RFC 3339 time>"} or {"advance": "<n>s"}')
                if "set" in body:
                    cloud.clock.set(parse_time(body["set"]))
                else:
                    cloud.clock.advance(parse_duration(body["advance"]))
                cloud.clock_changed()
                return json_response(cloud.clock.describe())
        if name == "faults" and not subpath:
            if method == "GET":
                return json_response({"faults": cloud.faults.list(), "fired": cloud.faults.fired()})
            if method == "POST":
                fault = cloud.faults.add(_json_body(request))
                return json_response({"id": fault.id}, status=201)
            if method == "DELETE":
                return json_response({"cleared": cloud.faults.clear()})
        if name == "requests" and not subpath:
            if method == "GET":
                return json_response(cloud.counter.summary())
            if method == "DELETE":
                cloud.counter.reset()
                cloud.request_log.reset()
                return json_response({})
        if name == "requests" and subpath == "log" and method == "GET":
            after = request.args.get("after", "0")
            if not after.isdigit():
                raise ValueError(f"requests/log after {after!r}: expected a request seq, an integer >= 0")
            return json_response(cloud.request_log.read(int(after)))
        if name == "reset" and method == "POST":
            cloud.reset()
            return json_response({"reset": [s.name for s in cloud.services]})
        if name in cloud.service_names():
            return cloud.service(name).handle_admin(request, subpath)
    except ValueError as e:
        return json_response({"error": str(e)}, status=400)
    return json_response(
        {
            "error": f"no admin endpoint {method} {request.path}; see health, env, clock, faults, "
            f"requests, reset, or /_localcloud/<service>/... with a service of {cloud.service_names()}"
        },
        status=404,
    )


def _json_body(request: Request) -> Any:
    data = request.get_data()
    if not data:
        return {}
    try:
        return json.loads(data)
    except ValueError:
        raise ValueError(f"request body is not JSON: {data[:80]!r}") from None
