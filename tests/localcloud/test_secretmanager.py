"""Secret Manager v1 on localcloud through google-cloud-secret-manager (transport="rest") and the proxy."""

from __future__ import annotations

import base64
import uuid

import google.auth
import google_crc32c
import pytest
from google.api_core import exceptions
from google.auth.transport.requests import AuthorizedSession
from google.cloud import secretmanager

PARENT = "projects/cloudact-local"
SM = "https://secretmanager.googleapis.com/v1"


@pytest.fixture
def client(localcloud_env):
    return secretmanager.SecretManagerServiceClient(transport="rest")


@pytest.fixture
def session(localcloud_env):
    creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    with AuthorizedSession(creds) as s:
        yield s


def new_secret(client, **extra) -> secretmanager.Secret:
    return client.create_secret(
        parent=PARENT,
        secret_id=f"t-{uuid.uuid4().hex[:10]}",
        secret={"replication": {"automatic": {}}, **extra},
    )


def test_create_add_access_list_delete(client):
    secret = new_secret(client, labels={"team": "cloudact"})
    assert secret.name.startswith(f"{PARENT}/secrets/t-")
    assert secret.labels["team"] == "cloudact" and secret.etag and secret.create_time
    assert client.get_secret(name=secret.name) == secret

    v1 = client.add_secret_version(
        parent=secret.name, payload={"data": b"one", "data_crc32c": google_crc32c.value(b"one")}
    )
    v2 = client.add_secret_version(parent=secret.name, payload={"data": b"two"})
    assert v1.name == f"{secret.name}/versions/1" and v2.name == f"{secret.name}/versions/2"
    assert v1.state == secretmanager.SecretVersion.State.ENABLED
    assert v1.client_specified_payload_checksum and not v2.client_specified_payload_checksum

    latest = client.access_secret_version(name=f"{secret.name}/versions/latest")
    assert latest.name == v2.name  # latest is resolved to its number
    assert latest.payload.data == b"two"
    assert latest.payload.data_crc32c == google_crc32c.value(b"two")
    assert client.access_secret_version(name=v1.name).payload.data == b"one"

    assert [v.name for v in client.list_secret_versions(parent=secret.name)] == [v2.name, v1.name]
    assert secret.name in [s.name for s in client.list_secrets(parent=PARENT)]

    client.delete_secret(name=secret.name)
    with pytest.raises(exceptions.NotFound, match=r"Secret \[.*\] not found"):
        client.get_secret(name=secret.name)
    with pytest.raises(exceptions.NotFound):
        client.access_secret_version(name=f"{secret.name}/versions/latest")


def test_errors_have_google_classes_and_bodies(client, session):
    secret = new_secret(client)
    # Over REST the class follows the HTTP status: 409 is Conflict (AlreadyExists over gRPC).
    with pytest.raises(exceptions.Conflict, match="already exists") as conflict:
        client.create_secret(
            parent=PARENT, secret_id=secret.name.rsplit("/", 1)[1], secret={"replication": {"automatic": {}}}
        )
    assert conflict.value.code == 409
    with pytest.raises(exceptions.NotFound, match=r"Secret Version \[.*/versions/9\] not found"):
        client.get_secret_version(name=f"{secret.name}/versions/9")
    with pytest.raises(exceptions.NotFound, match="not found or has no versions"):
        client.access_secret_version(name=f"{secret.name}/versions/latest")
    with pytest.raises(exceptions.BadRequest, match="secretId"):
        client.create_secret(parent=PARENT, secret_id="bad id!", secret={"replication": {"automatic": {}}})
    with pytest.raises(exceptions.BadRequest, match="replication is required"):
        client.create_secret(parent=PARENT, secret_id=f"t-{uuid.uuid4().hex[:8]}", secret={})
    with pytest.raises(exceptions.Forbidden, match=r"secretmanager\.secrets\.get"):
        client.get_secret(name="projects/someone-else/secrets/x")
    resp = session.get(f"{SM}/{secret.name}/versions/9")
    assert resp.status_code == 404
    assert resp.json() == {
        "error": {
            "code": 404,
            "message": f"Secret Version [{secret.name}/versions/9] not found.",
            "status": "NOT_FOUND",
        }
    }


def test_crc32c_is_checked_and_payload_size_limited(client, session):
    secret = new_secret(client)
    with pytest.raises(exceptions.BadRequest, match="Checksum mismatch"):
        client.add_secret_version(parent=secret.name, payload={"data": b"abc", "data_crc32c": 12345})
    big = base64.b64encode(b"x" * (64 * 1024 + 1)).decode()
    resp = session.post(f"{SM}/{secret.name}:addVersion", json={"payload": {"data": big}})
    assert resp.status_code == 400 and "65536" in resp.json()["error"]["message"]
    resp = session.post(f"{SM}/{secret.name}:addVersion", json={"payload": {"data": "%%%"}})
    assert resp.status_code == 400 and "base64" in resp.json()["error"]["message"]
    assert list(client.list_secret_versions(parent=secret.name)) == []


def test_disable_enable_destroy_and_latest_enabled(client):
    secret = new_secret(client)
    for value in (b"a", b"b", b"c"):
        client.add_secret_version(parent=secret.name, payload={"data": value})
    v3 = f"{secret.name}/versions/3"
    disabled = client.disable_secret_version(name=v3)
    assert disabled.state == secretmanager.SecretVersion.State.DISABLED
    with pytest.raises(exceptions.BadRequest, match="DISABLED state"):
        client.access_secret_version(name=v3)
    assert client.access_secret_version(name=f"{secret.name}/versions/latest").payload.data == b"b"
    assert client.enable_secret_version(name=v3).state == secretmanager.SecretVersion.State.ENABLED
    assert client.access_secret_version(name=f"{secret.name}/versions/latest").payload.data == b"c"
    destroyed = client.destroy_secret_version(name=v3)
    assert destroyed.state == secretmanager.SecretVersion.State.DESTROYED and destroyed.destroy_time
    with pytest.raises(exceptions.BadRequest, match="DESTROYED state"):
        client.enable_secret_version(name=v3)
    assert client.access_secret_version(name=f"{secret.name}/versions/latest").payload.data == b"b"
    enabled = client.list_secret_versions(request={"parent": secret.name, "filter": "state:ENABLED"})
    assert [v.name.rsplit("/", 1)[1] for v in enabled] == ["2", "1"]


def test_list_pages(client, session):
    secret = new_secret(client)
    for i in range(5):
        client.add_secret_version(parent=secret.name, payload={"data": str(i).encode()})
    pages = client.list_secret_versions(request={"parent": secret.name, "page_size": 2}).pages
    assert [[v.name.rsplit("/", 1)[1] for v in page.versions] for page in pages] == [
        ["5", "4"],
        ["3", "2"],
        ["1"],
    ]
    first = session.get(f"{SM}/{secret.name}/versions", params={"pageSize": 2}).json()
    assert first["totalSize"] == 5 and first["nextPageToken"]
    bad = session.get(f"{SM}/{secret.name}/versions", params={"pageToken": "garbage!"})
    assert bad.status_code == 400


def test_labels_patch_and_etag(client):
    secret = new_secret(client, labels={"a": "1"})
    updated = client.update_secret(
        secret={"name": secret.name, "labels": {"a": "2", "b": "x"}}, update_mask={"paths": ["labels"]}
    )
    assert dict(updated.labels) == {"a": "2", "b": "x"} and updated.etag != secret.etag
    with pytest.raises(exceptions.Conflict, match="etag"):
        client.delete_secret(request={"name": secret.name, "etag": secret.etag})
    client.delete_secret(request={"name": secret.name, "etag": updated.etag})


def test_local_secrets_are_seeded_with_random_values(client):
    for secret_id in ("ca-root-api-key-local", "supabase-access-token-local"):
        value = client.access_secret_version(
            name=f"{PARENT}/secrets/{secret_id}/versions/latest"
        ).payload.data
        assert len(value) >= 32
