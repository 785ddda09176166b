"""localcloud's core through its proxy: TLS per host, auth (token endpoint, self-signed JWTs), faults."""

from __future__ import annotations

import importlib
import json
import socket
import ssl
import stat
import time
import uuid

import google.auth
import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.api_core import exceptions
from google.auth import jwt as google_jwt
from google.auth.transport.requests import AuthorizedSession, Request
from google.cloud import secretmanager
from google.oauth2 import service_account

from localcloud.client import LocalCloudError
from localcloud.services import SERVICES

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
SM = "https://secretmanager.googleapis.com"
SECRETS = f"{SM}/v1/projects/cloudact-local/secrets"


def key_info(localcloud) -> dict:
    return json.loads(localcloud.key_file.read_text())


def proxied(localcloud) -> requests.Session:
    """A plain requests session through the proxy, trusting localcloud's CA, with no credentials."""
    s = requests.Session()
    s.trust_env = False
    s.proxies = {"https": localcloud.proxy_url}
    s.verify = str(localcloud.ca_file)
    return s


def sign(claims: dict, private_key, kid: str) -> str:
    return jwt.encode(claims, private_key, algorithm="RS256", headers={"kid": kid})


def test_issued_key_is_a_real_service_account_key(localcloud):
    info = key_info(localcloud)
    assert stat.S_IMODE(localcloud.key_file.stat().st_mode) == 0o600
    assert info["type"] == "service_account"
    assert info["project_id"] == "cloudact-local"
    assert info["client_email"] == "cloudact-operator@cloudact-local.iam.gserviceaccount.com"
    assert info["token_uri"] == "https://oauth2.googleapis.com/token"
    for field in (
        "private_key_id",
        "client_id",
        "auth_uri",
        "auth_provider_x509_cert_url",
        "client_x509_cert_url",
    ):
        assert info[field]
    assert info["universe_domain"] == "googleapis.com"
    key = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048


def test_token_endpoint_grants_a_token_that_the_apis_accept(localcloud_env):
    creds = service_account.Credentials.from_service_account_file(str(localcloud_env.key_file), scopes=SCOPES)
    creds.refresh(Request())
    assert creds.token and creds.valid
    assert 3000 < (creds.expiry - creds.expiry.utcnow()).total_seconds() <= 3600
    with AuthorizedSession(creds) as session:
        resp = session.get(SECRETS)
    assert resp.status_code == 200, resp.text
    # The default credentials (GOOGLE_APPLICATION_CREDENTIALS) resolve to the same issued key.
    default, project = google.auth.default(scopes=SCOPES)
    assert project == "cloudact-local"
    assert default.service_account_email == "cloudact-operator@cloudact-local.iam.gserviceaccount.com"


def test_token_endpoint_refuses_an_assertion_from_a_key_it_did_not_issue(localcloud):
    info = key_info(localcloud)
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {
        "iss": info["client_email"],
        "scope": SCOPES[0],
        "aud": "https://oauth2.googleapis.com/token",
        "iat": now,
        "exp": now + 3600,
    }
    resp = proxied(localcloud).post(
        "https://oauth2.googleapis.com/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": sign(claims, foreign, info["private_key_id"]),  # the real kid, the wrong key
        },
    )
    assert resp.status_code == 400
    body = resp.json()
    assert body["error"] == "invalid_grant"
    assert "signature" in body["error_description"]


def test_a_jwt_signed_with_the_wrong_key_gets_401(localcloud):
    info = key_info(localcloud)
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {
        "iss": info["client_email"],
        "sub": info["client_email"],
        "aud": f"{SM}/",
        "iat": now,
        "exp": now + 600,
    }
    for kid in (info["private_key_id"], "0" * 40):
        resp = proxied(localcloud).get(
            SECRETS, headers={"Authorization": f"Bearer {sign(claims, foreign, kid)}"}
        )
        assert resp.status_code == 401
        assert resp.json()["error"]["status"] == "UNAUTHENTICATED"


def test_self_signed_jwts_are_verified(localcloud):
    info = key_info(localcloud)
    key = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
    now = int(time.time())
    base = {"iss": info["client_email"], "sub": info["client_email"], "iat": now, "exp": now + 600}
    session = proxied(localcloud)

    def status(claims: dict) -> int:
        token = sign(claims, key, info["private_key_id"])
        return session.get(SECRETS, headers={"Authorization": f"Bearer {token}"}).status_code

    assert status({**base, "aud": f"{SM}/"}) == 200
    assert status({**base, "scope": SCOPES[0]}) == 200
    assert status({**base, "aud": "https://run.googleapis.com/"}) == 401  # another API's audience
    assert status({**base, "aud": f"{SM}/", "iat": now - 7200, "exp": now - 3600}) == 401  # expired
    assert status({**base, "aud": f"{SM}/", "exp": now + 7200}) == 401  # longer than an hour
    # google-auth's own self-signed JWT credentials (what GAPIC clients send).
    creds = google_jwt.Credentials.from_service_account_file(str(localcloud.key_file), audience=f"{SM}/")
    creds.refresh(Request())
    token = creds.token.decode() if isinstance(creds.token, bytes) else creds.token
    assert session.get(SECRETS, headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer ya29.not-a-token-localcloud-issued"},
        {"Authorization": "Basic dXNlcjpwdw=="},
    ],
    ids=["no-token", "unknown-token", "not-bearer"],
)
def test_requests_without_a_valid_token_get_401_unauthenticated(localcloud, headers):
    resp = proxied(localcloud).get(SECRETS, headers=headers)
    assert resp.status_code == 401
    error = resp.json()["error"]
    assert error["code"] == 401 and error["status"] == "UNAUTHENTICATED"
    assert "authentication credential" in error["message"]


def test_an_unknown_host_is_refused_with_502(localcloud):
    with pytest.raises(requests.exceptions.ProxyError, match="502"):
        proxied(localcloud).get("https://example.com/")
    # The refusal says why, in the CONNECT response body.
    port = int(localcloud.proxy_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"CONNECT www.example.com:443 HTTP/1.1\r\nHost: www.example.com:443\r\n\r\n")
        reply = b""
        while b"machine" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 502")
    assert b"no emulated service for host www.example.com; nothing leaves this machine" in reply


def test_plain_http_outside_the_admin_api_gets_400(localcloud):
    resp = requests.get(f"{localcloud.proxy_url}/v1/projects", timeout=10)
    assert resp.status_code == 400
    assert "/_localcloud/" in resp.text
    # An http:// URL through the proxy (absolute form) is refused too: nothing is forwarded.
    resp = requests.get("http://example.com/", proxies={"http": localcloud.proxy_url}, timeout=10)
    assert resp.status_code == 400
    assert "nothing leaves this machine" in resp.text


def test_tls_is_terminated_with_a_certificate_for_the_requested_host(localcloud):
    port = int(localcloud.proxy_url.rsplit(":", 1)[1])
    ctx = ssl.create_default_context(cafile=str(localcloud.ca_file))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(
            b"CONNECT logging.googleapis.com:443 HTTP/1.1\r\nHost: logging.googleapis.com:443\r\n\r\n"
        )
        assert raw.recv(4096).startswith(b"HTTP/1.1 200")
        with ctx.wrap_socket(raw, server_hostname="logging.googleapis.com") as tls:
            cert = tls.getpeercert()
            assert ("DNS", "logging.googleapis.com") in cert["subjectAltName"]
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_an_injected_503_is_seen_by_a_client_and_counted(localcloud, localcloud_env):
    admin = localcloud.admin
    secret_id = f"fault-{uuid.uuid4().hex[:8]}"
    client = secretmanager.SecretManagerServiceClient(transport="rest")
    secret = client.create_secret(
        parent="projects/cloudact-local", secret_id=secret_id, secret={"replication": {"automatic": {}}}
    )
    client.add_secret_version(parent=secret.name, payload={"data": b"v1"})
    path = f"/v1/projects/cloudact-local/secrets/{secret_id}/versions/*"
    admin.reset_requests()
    admin.fault("secretmanager.googleapis.com", path, count=1, status=503, retry_after=0)
    # get_secret_version has no retry policy: the client raises the 503 as ServiceUnavailable.
    with pytest.raises(exceptions.ServiceUnavailable, match="injected fault"):
        client.get_secret_version(name=f"{secret.name}/versions/1")
    assert admin.faults() == []  # consumed
    # access_secret_version retries UNAVAILABLE by default: one 503, then success.
    admin.fault("secretmanager.googleapis.com", path, count=1, status=503, retry_after=0)
    assert client.access_secret_version(name=f"{secret.name}/versions/latest").payload.data == b"v1"
    counted = {
        (r["method"], r["path"]): r["count"]
        for r in admin.requests()["requests"]
        if r["host"] == "secretmanager.googleapis.com"
    }
    assert counted[("GET", f"/v1/projects/cloudact-local/secrets/{secret_id}/versions/1")] == 1
    assert counted[("GET", f"/v1/projects/cloudact-local/secrets/{secret_id}/versions/latest:access")] == 2


def test_faults_carry_retry_after_drop_the_connection_and_match_the_method(localcloud, localcloud_env):
    admin = localcloud.admin
    creds, _ = google.auth.default(scopes=SCOPES)
    with AuthorizedSession(creds) as session:
        session.get(SECRETS).raise_for_status()  # token fetched before faults are armed
        admin.fault(
            "secretmanager.googleapis.com", "/v1/projects/*/secrets", status=429, retry_after=7, method="GET"
        )
        resp = session.get(SECRETS)
        assert resp.status_code == 429 and resp.headers["Retry-After"] == "7"
        assert resp.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
        admin.fault("secretmanager.googleapis.com", "/v1/projects/*/secrets", method="POST")
        assert session.get(SECRETS).status_code == 200  # a POST-only fault leaves GET alone
        admin.clear_faults()
        admin.fault("secretmanager.googleapis.com", "/v1/projects/*/secrets", method="GET", drop=True)
        with pytest.raises(requests.exceptions.ConnectionError):
            session.get(SECRETS)
        assert session.get(SECRETS).status_code == 200  # dropped once, then served again


def test_bad_fault_and_clock_input_is_refused_naming_the_value(localcloud):
    admin = localcloud.admin
    with pytest.raises(LocalCloudError, match="fault count 0"):
        admin.call("POST", "faults", {"host": "run.googleapis.com", "count": 0})
    with pytest.raises(LocalCloudError, match="unknown fault field"):
        admin.call("POST", "faults", {"host": "run.googleapis.com", "stauts": 500})
    with pytest.raises(LocalCloudError, match="bad duration 'soon'"):
        admin.advance("soon")
    with pytest.raises(LocalCloudError, match="bad time 'tomorrow'"):
        admin.set_time("tomorrow")
    assert admin.faults() == []


def test_chunked_request_bodies_and_keep_alive(localcloud, localcloud_env):
    creds, _ = google.auth.default(scopes=SCOPES)
    creds.refresh(Request())
    marker = uuid.uuid4().hex
    body = json.dumps(
        {
            "logName": "projects/cloudact-local/logs/chunked-test",
            "entries": [{"textPayload": f"chunked {marker}"}],
        }
    ).encode()
    session = proxied(localcloud)
    session.headers["Authorization"] = f"Bearer {creds.token}"
    resp = session.post(
        "https://logging.googleapis.com/v2/entries:write",
        data=iter([body[:10], body[10:]]),  # a generator body: requests sends it chunked
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 200, resp.text
    for _ in range(3):  # same session, same tunnel
        listed = session.post(
            "https://logging.googleapis.com/v2/entries:list",
            json={"resourceNames": ["projects/cloudact-local"], "filter": f'textPayload:"{marker}"'},
        )
        assert [e["textPayload"] for e in listed.json()["entries"]] == [f"chunked {marker}"]


def test_health_env_and_unknown_admin_paths(localcloud):
    health = localcloud.admin.health()
    assert health["ready"] is True
    assert health["pid"] == localcloud.pid and health["proxy_url"] == localcloud.proxy_url
    # Every service localcloud.services.SERVICES lists, in that order, and the hosts they declare.
    classes = [
        getattr(importlib.import_module(f"localcloud.services.{module}"), name)
        for module, _, name in (spec.partition(":") for spec in SERVICES)
    ]
    assert health["services"] == [cls.name for cls in classes]
    declared = {host.lower() for cls in classes for host in getattr(cls, "hosts", ())}
    assert health["hosts"] == sorted(health["hosts"]) and declared <= set(health["hosts"])
    assert {"oauth2.googleapis.com", "run.googleapis.com", "api.cloudact.local"} <= declared
    env = localcloud.admin.env()
    assert env["HTTPS_PROXY"] == localcloud.proxy_url
    assert env["GOOGLE_APPLICATION_CREDENTIALS"] == str(localcloud.key_file)
    assert env == localcloud.client_env
    with pytest.raises(LocalCloudError, match="no admin endpoint"):
        localcloud.admin.call("GET", "nope")
