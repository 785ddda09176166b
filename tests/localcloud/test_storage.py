"""Cloud Storage's JSON API on localcloud through google-cloud-storage and the proxy: buckets, the
three upload kinds (media, multipart, resumable), downloads (alt=media, ranges), lists and errors."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import uuid

import google.auth
import google_crc32c
import pytest
from google.api_core import exceptions
from google.auth.transport.requests import AuthorizedSession
from google.cloud import storage

PROJECT = "cloudact-local"
API = "https://storage.googleapis.com/storage/v1"
UPLOAD = "https://storage.googleapis.com/upload/storage/v1"


@pytest.fixture
def client(localcloud_env):
    return storage.Client(project=PROJECT)


@pytest.fixture
def session(localcloud_env):
    creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    with AuthorizedSession(creds) as s:
        yield s


@pytest.fixture
def bucket(client):
    return client.create_bucket(f"t-{uuid.uuid4().hex[:12]}")


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def test_bucket_create_get_list_and_refusals(client, bucket):
    assert bucket.project_number and bucket.time_created and bucket.storage_class == "STANDARD"
    got = client.get_bucket(bucket.name)
    assert got.name == bucket.name and got.location == "US"
    assert bucket.name in [b.name for b in client.list_buckets(prefix=bucket.name[:6])]
    with pytest.raises(exceptions.Conflict, match="you already own it"):
        client.create_bucket(bucket.name)
    with pytest.raises(exceptions.NotFound, match=r"The specified bucket does not exist\."):
        client.get_bucket(f"absent-{uuid.uuid4().hex[:8]}")
    with pytest.raises(exceptions.BadRequest, match="Invalid bucket name: 'Bad_Name'"):
        client.create_bucket("Bad_Name")


def test_small_upload_is_multipart_and_downloads_with_checksums(client, bucket, localcloud):
    blob = bucket.blob("source/ctx one.tgz")  # a "/" and a space in the name, as gcloud's staging has
    data = b"hello, storage\n" * 10
    blob.upload_from_string(data, content_type="application/gzip")
    assert blob.size == len(data) and blob.generation and blob.content_type == "application/gzip"
    assert blob.md5_hash == b64(hashlib.md5(data).digest())  # noqa: S324
    assert blob.crc32c == b64(google_crc32c.value(data).to_bytes(4, "big"))
    fresh = bucket.get_blob("source/ctx one.tgz")
    assert (fresh.size, fresh.generation, fresh.md5_hash) == (blob.size, blob.generation, blob.md5_hash)
    assert fresh.time_created and fresh.updated
    # Downloaded through the media link and through a blob that never fetched its metadata.
    assert fresh.download_as_bytes(checksum="crc32c") == data
    assert bucket.blob("source/ctx one.tgz").download_as_bytes(checksum="md5") == data
    assert bucket.blob("source/ctx one.tgz").download_as_bytes(start=5, end=9) == data[5:10]


def puts(localcloud) -> int:
    return localcloud.admin.requests()["by_host_method"].get("PUT storage.googleapis.com", 0)


def test_large_or_unsized_uploads_are_resumable(client, bucket, localcloud):
    # google-cloud-storage uploads up to 8 MiB of known size as multipart; more, or a stream of
    # unknown size, goes through a resumable session (chunks PUT to the session URI).
    data = os.urandom(256 * 1024 * 3 + 1234)
    before = puts(localcloud)
    blob = bucket.blob("chunked.bin", chunk_size=256 * 1024)
    blob.upload_from_file(io.BytesIO(data), checksum="crc32c")  # no size: resumable, 4 chunks
    assert blob.size == len(data)
    assert puts(localcloud) - before == 4
    got = bucket.get_blob("chunked.bin")
    assert got.crc32c == b64(google_crc32c.value(data).to_bytes(4, "big"))
    assert got.download_as_bytes() == data

    big = os.urandom(8 * 1024 * 1024 + 10)
    before = puts(localcloud)
    bucket.blob("big.bin").upload_from_file(io.BytesIO(big), size=len(big))
    assert puts(localcloud) - before >= 1
    assert bucket.blob("big.bin").download_as_bytes() == big


def test_resumable_session_by_hand(session, bucket):
    start = session.post(
        f"{UPLOAD}/b/{bucket.name}/o",
        params={"uploadType": "resumable", "name": "by-hand.txt"},
        json={"contentType": "text/plain", "metadata": {"k": "v"}},
    )
    assert start.status_code == 200, start.text
    url = start.headers["Location"]
    assert url.startswith(f"{UPLOAD}/b/{bucket.name}/o?") and "upload_id=" in url
    first = session.put(url, data=b"abcd", headers={"Content-Range": "bytes 0-3/*"})
    assert first.status_code == 308 and first.headers["Range"] == "bytes=0-3"
    status = session.put(url, data=b"", headers={"Content-Range": "bytes */8"})
    assert status.status_code == 308 and status.headers["Range"] == "bytes=0-3"
    done = session.put(url, data=b"efgh", headers={"Content-Range": "bytes 4-7/8"})
    assert done.status_code == 200, done.text
    obj = done.json()
    assert (obj["name"], obj["size"], obj["contentType"], obj["metadata"]) == (
        "by-hand.txt",
        "8",
        "text/plain",
        {"k": "v"},
    )
    again = session.put(url, data=b"x", headers={"Content-Range": "bytes 8-8/9"})
    assert again.status_code == 404


def test_media_upload_list_prefix_and_pages(session, bucket, client):
    for name in ("a/1", "a/2", "a/3", "b/1", "top"):
        r = session.post(
            f"{UPLOAD}/b/{bucket.name}/o",
            params={"uploadType": "media", "name": name},
            data=b'{"json": "content is media, not metadata"}',
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["contentType"] == "application/json"
    assert [b.name for b in client.list_blobs(bucket.name, prefix="a/", max_results=10, page_size=2)] == [
        "a/1",
        "a/2",
        "a/3",
    ]
    page = session.get(f"{API}/b/{bucket.name}/o", params={"delimiter": "/"}).json()
    assert page["prefixes"] == ["a/", "b/"] and [o["name"] for o in page["items"]] == ["top"]
    r = session.get(f"{API}/b/{bucket.name}/o", params={"maxResults": "2"}).json()
    assert len(r["items"]) == 2 and r["nextPageToken"]
    r2 = session.get(f"{API}/b/{bucket.name}/o", params={"maxResults": "2", "pageToken": r["nextPageToken"]})
    assert [o["name"] for o in r2.json()["items"]] == ["a/3", "b/1"]


def test_object_errors_in_googles_words(session, bucket, client):
    r = session.get(f"{API}/b/{bucket.name}/o/nothing-here")
    assert r.status_code == 404
    assert r.json()["error"]["message"] == f"No such object: {bucket.name}/nothing-here"
    assert r.json()["error"]["errors"][0]["reason"] == "notFound"
    r = session.post(f"{API}/b/{bucket.name}/o", params={"name": "x"}, data=b"x")
    assert r.status_code == 400 and "uploadType" in r.json()["error"]["message"]
    bucket.blob("once").upload_from_string(b"1")
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("once").upload_from_string(b"2", if_generation_match=0)
    with pytest.raises(exceptions.BadRequest, match="doesn't match calculated CRC32C"):
        _bad_crc(session, bucket.name)


def _bad_crc(session, bucket: str) -> None:
    body = (
        b"--b\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
        b'{"name": "bad-crc", "crc32c": "AAAAAA=="}\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\ndata\r\n--b--\r\n"
    )
    r = session.post(
        f"{UPLOAD}/b/{bucket}/o",
        params={"uploadType": "multipart"},
        data=body,
        headers={"Content-Type": 'multipart/related; boundary="b"'},
    )
    raise exceptions.from_http_response(r)


def test_another_projects_account_is_refused(localcloud, bucket):
    from google.oauth2 import service_account

    key = json.loads((localcloud.state_dir / "keys.json").read_text())["cloudact-prod"]
    creds = service_account.Credentials.from_service_account_file(
        str(key), scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    other = storage.Client(project="cloudact-prod", credentials=creds)
    with pytest.raises(exceptions.Forbidden, match=r"storage\.buckets\.get"):
        other.get_bucket(bucket.name)
