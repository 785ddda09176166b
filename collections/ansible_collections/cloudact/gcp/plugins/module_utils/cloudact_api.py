# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CloudAct API as the release's validation and the doctor read it (docs/cloudact-api.md).

- `GET /health` (no credentials): ok when it answers 200 with `status: healthy`;
- `GET /api/v1/admin/bootstrap/status` with the root key (header `X-CA-Root-Key`), read from Secret
  Manager (`versions/latest:access`) by the caller's Google credentials: the key is returned to the
  caller only, who censors it from every output.

The calls go through the collection's one client (module_utils/client.py: its retry rule; a GET is
resent after a transient answer); the CloudAct API gets no Google token. A call that fails is an
answer ({ok: false, error}), not an exception, so a caller can report every check.
"""

from __future__ import annotations

import base64

from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError, error_message
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

SECRET_URL = "https://secretmanager.googleapis.com/v1/projects/%s/secrets/%s/versions/latest:access"  # noqa: S105
HEALTH = "/health"
BOOTSTRAP_STATUS = "/api/v1/admin/bootstrap/status"
TIMEOUT = 15.0


def base_url(api_url):
    """The API's base URL without its trailing slash; InputError for anything but an http(s) URL."""
    text = str(api_url or "")
    if not text.startswith(("https://", "http://")):
        raise InputError("api_url %r: expected an https:// URL (e.g. https://api.cloudact.ai)" % text)
    return text.rstrip("/")


def read_key(api, project, secret):
    """The root key: the latest version of Secret Manager secret `secret` of `project`, stripped."""
    body = api.request("GET", SECRET_URL % (project, secret), "secret %s" % secret)
    return base64.b64decode(body["payload"]["data"]).decode("utf-8").strip()


def call(api, url, timeout=TIMEOUT, headers=None):
    """{ok, status_code, body?, error?} of a CloudAct API GET, under the client's retry rule."""
    try:
        response = api.send(
            "GET", url, "the CloudAct API", headers=headers, authorized=False, deadline=timeout
        )
    except ApiError as exc:
        return {"ok": False, "status_code": 0, "error": str(exc)}
    out = {"status_code": response.status_code, "ok": response.status_code == 200}
    try:
        out["body"] = response.json()
    except ValueError:
        out["body"] = {}
    if not out["ok"]:
        out["error"] = error_message(response)[0]
    return out


def health(api, base, timeout=TIMEOUT):
    """The /health answer; ok only when it says `healthy`."""
    out = call(api, base + HEALTH, timeout)
    status = (out.get("body") or {}).get("status")
    if out["ok"] and status != "healthy":
        out.update(ok=False, error="status %r" % status)
    return out


def root_key_headers(key):
    return {"X-CA-Root-Key": key, "Content-Type": "application/json"}


def bootstrap_status(api, base, project, secret, timeout=TIMEOUT):
    """(answer, key): the bootstrap status read with the root key of `secret`, and the key (None when it
    could not be read), for the caller to censor. answer: {ok, status_code, status?, body?, error?}."""
    try:
        key = read_key(api, project, secret)
    except (ApiError, KeyError, ValueError) as exc:
        return {"ok": False, "status_code": 0, "error": "root key: %s" % exc}, None
    out = call(api, base + BOOTSTRAP_STATUS, timeout, root_key_headers(key))
    if out["ok"]:
        out["status"] = (out.get("body") or {}).get("status", "")
    return out, key
