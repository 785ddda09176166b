# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cloud Storage JSON API v1: the build bucket and the source upload, through the one client.

Uploads as google-cloud-storage sends them: a media upload (`uploadType=media`, the object's bytes
as the body) up to MEDIA_LIMIT, else a resumable one (`uploadType=resumable`: a POST with the
object's metadata answers with the session URI in `Location`; PUTs of CHUNK bytes with
`Content-Range` answer 308 until the last, which returns the object). Each upload names a new object
with `ifGenerationMatch=0` (create only), so no attempt can overwrite anything. After a lost answer
the object is looked for (module_utils/verbs.py: a create is never resent blindly) and adopted when
it holds as many bytes as were sent; a chunk of a resumable upload is safe to resend.
"""

from __future__ import annotations

from urllib.parse import quote

from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError, error_message

BASE = "https://storage.googleapis.com/storage/v1"
UPLOAD = "https://storage.googleapis.com/upload/storage/v1"
MEDIA_LIMIT = 8 * 1024 * 1024  # google-cloud-storage's multipart/resumable threshold
CHUNK = 8 * 1024 * 1024  # a multiple of 256 KiB, as the resumable protocol requires


def bucket_url(bucket):
    return "%s/b/%s" % (BASE, quote(bucket, safe=""))


def get_bucket(api, bucket):
    """The Bucket resource, or None when it does not exist."""
    return api.request("GET", bucket_url(bucket), "Cloud Storage bucket %s" % bucket, allow_missing=True)


def create_bucket(api, project, bucket, location):
    """buckets.insert: a bucket in `location` with uniform bucket-level access."""
    body = {
        "name": bucket,
        "location": location.upper(),
        "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": True}},
    }
    return api.request(
        "POST",
        "%s/b" % BASE,
        "Cloud Storage bucket %s" % bucket,
        params={"project": project},
        json=body,
        look=lambda _lost: get_bucket(api, bucket),  # a name is global: ours if it is there now
    )


def upload(api, bucket, name, data, content_type="application/gzip", media_limit=MEDIA_LIMIT, chunk=CHUNK):
    """Upload `data` (bytes) as gs://bucket/name; the Object resource (name, generation, size)."""
    what = "Cloud Storage object gs://%s/%s" % (bucket, name)
    url = "%s/b/%s/o" % (UPLOAD, quote(bucket, safe=""))
    params = {"name": name, "ifGenerationMatch": "0"}

    def uploaded(_lost):
        found = api.request(
            "GET", "%s/o/%s" % (bucket_url(bucket), quote(name, safe="")), what, allow_missing=True
        )
        return found if found and int(found.get("size") or -1) == len(data) else None

    if len(data) <= media_limit:
        return api.request(
            "POST",
            url,
            what,
            params=dict(params, uploadType="media"),
            data=data,
            headers={"Content-Type": content_type},
            look=uploaded,
        )
    # Starting a session stores nothing: a lost answer leaves at most an unused session behind.
    start = api.send(
        "POST",
        url,
        what,
        params=dict(params, uploadType="resumable"),
        json={"name": name, "contentType": content_type},
        headers={"X-Upload-Content-Type": content_type, "X-Upload-Content-Length": str(len(data))},
        idempotent=True,
    )
    if start.status_code >= 300 or not start.headers.get("Location"):
        raise ApiError(
            "%s: resumable upload not started: %s" % (what, error_message(start)[0]), start.status_code
        )
    session = start.headers["Location"]
    offset, stalls = 0, 0
    while True:
        piece = data[offset : offset + chunk]
        end = offset + len(piece) - 1
        reply = api.send(
            "PUT",
            session,
            what,
            data=piece,
            headers={"Content-Range": "bytes %d-%d/%d" % (offset, end, len(data))},
        )
        if reply.status_code == 308:  # resume incomplete: the Range header says what it has
            got = reply.headers.get("Range", "")
            moved = int(got.rsplit("-", 1)[1]) + 1 if got else 0
            stalls = stalls + 1 if moved <= offset else 0
            if stalls > 3:
                raise ApiError("%s: the resumable upload makes no progress at byte %d" % (what, offset))
            offset = moved
            continue
        if reply.status_code >= 300:
            message, reason = error_message(reply)
            raise ApiError("%s: %s" % (what, message), reply.status_code, reason)
        return reply.json()
