"""localcloud's webhook receiver: `https://hooks.cloudact.local/<name>[/...]` keeps every request it gets,
per name, for tests and operators to read (Cloud Monitoring's webhook channels deliver here; any client
of the proxy may post). Not a Google API: no authentication, every method answers 200 `{}`.

What is kept of a request (`GET /_localcloud/hooks/<name>`, also `<state>/hooks/<name>.jsonl`): `seq`,
`time` (the emulated clock), `method`, `path`, `query` (the raw query string with the values of
`auth_token`, `token` and `key` replaced by `sha256:<first 16 hex digits of their SHA-256>`), `headers`
(lower-case names; `Authorization` and `Cookie` kept only as `sha256:<16 hex>` of their value, so a test
can check a secret without it being stored), `body` (the JSON value, else the text), `body_bytes`.
The newest 1,000 requests per name are kept. `DELETE /_localcloud/hooks[/<name>]` forgets them;
`GET /_localcloud/hooks` answers `{"names": {<name>: <count>}}`. To make the receiver fail, arm a fault on
its host (`POST /_localcloud/faults {"host": "hooks.cloudact.local", "path": "/<name>", "status": 503}`).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from typing import Any
from urllib.parse import parse_qsl, urlencode

from werkzeug.wrappers import Request, Response

from localcloud.clock import rfc3339
from localcloud.service import Service, json_response

HOST = "hooks.cloudact.local"
KEEP = 1000
SECRET_PARAMS = ("auth_token", "token", "key")
SECRET_HEADERS = ("authorization", "cookie", "proxy-authorization")
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


def secret_hash(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:16]


class HooksService(Service):
    name = "hooks"
    hosts = (HOST,)

    def __init__(self, cloud):
        super().__init__(cloud)
        self._lock = threading.Lock()
        self._received: dict[str, list[dict[str, Any]]] = {}
        self._seq = 0

    def start(self) -> None:
        with self._lock:
            for path in sorted(self.state_dir.glob("*.jsonl")):
                lines = path.read_text().splitlines()[-KEEP:]
                self._received[path.stem] = [json.loads(line) for line in lines if line.strip()]
            self._seq = max((e["seq"] for items in self._received.values() for e in items), default=0)

    def reset(self) -> None:
        with self._lock:
            self._received.clear()
            for path in self.state_dir.glob("*.jsonl"):
                path.unlink()

    def handle(self, request: Request) -> Response:
        name = request.path.strip("/").split("/", 1)[0]
        if not _NAME.match(name):
            return json_response({"error": "post to https://hooks.cloudact.local/<name>"}, status=404)
        raw = request.get_data()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        query = [
            (k, secret_hash(v) if k in SECRET_PARAMS else v)
            for k, v in parse_qsl(request.query_string.decode("latin-1"), keep_blank_values=True)
        ]
        headers = {
            k.lower(): secret_hash(v) if k.lower() in SECRET_HEADERS else v
            for k, v in request.headers.items()
        }
        with self._lock:
            self._seq += 1
            entry = {
                "seq": self._seq,
                "time": rfc3339(self.cloud.now()),
                "method": request.method,
                "path": request.path,
                "query": urlencode(query),
                "headers": headers,
                "body": body,
                "body_bytes": len(raw),
            }
            items = self._received.setdefault(name, [])
            items.append(entry)
            del items[:-KEEP]
            with (self.state_dir / f"{name}.jsonl").open("a") as f:
                f.write(json.dumps(entry) + "\n")
        return json_response({})

    def handle_admin(self, request: Request, subpath: str) -> Response:
        name = subpath.strip("/")
        with self._lock:
            if request.method == "GET" and not name:
                return json_response(
                    {"names": {n: len(items) for n, items in sorted(self._received.items())}}
                )
            if request.method == "GET" and _NAME.match(name):
                return json_response({"requests": list(self._received.get(name, []))})
            if request.method == "DELETE":
                names = [name] if name else list(self._received)
                for item in names:
                    self._received.pop(item, None)
                    (self.state_dir / f"{item}.jsonl").unlink(missing_ok=True)
                return json_response({"cleared": names})
        return super().handle_admin(request, subpath)
