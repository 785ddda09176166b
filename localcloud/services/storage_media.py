"""Cloud Storage's bytes: the object data files, checksums, multipart/related bodies, Content-Range and
Range headers, and the error body of the JSON API (which has `errors[]` and no `status`)."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import google_crc32c
from werkzeug.wrappers import Response

from localcloud.service import json_response

_CONTENT_RANGE = re.compile(r"^bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class StorageError(Exception):
    """A JSON API error: HTTP code, message, and the `reason` of its errors[] entry."""

    def __init__(self, code: int, message: str, reason: str):
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason

    def response(self) -> Response:
        return json_response(
            {
                "error": {
                    "code": self.code,
                    "message": self.message,
                    "errors": [{"message": self.message, "domain": "global", "reason": self.reason}],
                }
            },
            status=self.code,
        )


def invalid(message: str) -> StorageError:
    return StorageError(400, message, "invalid")


def checksums(data: bytes) -> dict[str, str]:
    """md5Hash and crc32c as the JSON API gives them: base64 of the digest (crc32c big-endian)."""
    crc = google_crc32c.value(data).to_bytes(4, "big")
    return {
        "md5Hash": base64.b64encode(hashlib.md5(data).digest()).decode(),  # noqa: S324 - the API's own hash
        "crc32c": base64.b64encode(crc).decode(),
    }


def check_given_checksums(metadata: dict[str, Any], data: bytes) -> None:
    """Refuse an upload whose metadata names a crc32c or md5Hash the data does not have."""
    actual = checksums(data)
    for field, label in (("crc32c", "CRC32C"), ("md5Hash", "MD5")):
        given = metadata.get(field)
        if given and given != actual[field]:
            raise invalid(f'Provided {label} "{given}" doesn\'t match calculated {label} "{actual[field]}".')


def parse_multipart(content_type: str, body: bytes) -> tuple[bytes, str, bytes]:
    """(metadata JSON, media content type, media) of a multipart/related upload body."""
    # gcloud's apitools quotes the boundary with ' and ends lines with LF; Google's clients use CRLF.
    match = re.search(r"""boundary=(?:"([^"]+)"|'([^']+)'|([^\s;]+))""", content_type)
    if not content_type.lower().startswith("multipart/related") or not match:
        raise invalid(
            f"Invalid multipart request: Content-Type {content_type!r} is not multipart/related "
            "with a boundary."
        )
    delimiter = b"--" + next(g for g in match.groups() if g).encode()
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n").removeprefix(b"\n")
        crlf, lf = chunk.find(b"\r\n\r\n"), chunk.find(b"\n\n")
        if crlf < 0 and lf < 0:
            raise invalid("Invalid multipart request: a part has no header block.")
        split, width = (crlf, 4) if crlf >= 0 and (lf < 0 or crlf <= lf) else (lf, 2)
        head, content = chunk[:split], chunk[split + width :]
        headers = {}
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        content = content[:-2] if content.endswith(b"\r\n") else content.removesuffix(b"\n")
        parts.append((headers, content))
    if len(parts) != 2:
        raise invalid(
            f"Invalid multipart request with {len(parts)} parts: expected the metadata and the media."
        )
    (_, metadata), (media_headers, media) = parts
    return metadata, media_headers.get("content-type", ""), media


def content_range(header: str | None) -> tuple[int | None, int | None, int | None]:
    """(first, last, total) of a resumable chunk's Content-Range; None where it says `*`."""
    if header is None:
        return None, None, None
    match = _CONTENT_RANGE.match(header.strip())
    if not match:
        raise invalid(f"Invalid Content-Range {header!r}: expected bytes <first>-<last>/<total or *>.")
    first, last, total = match.groups()
    return (
        int(first) if first is not None else None,
        int(last) if last is not None else None,
        int(total) if total != "*" else None,
    )


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The (start, end inclusive) a download's Range header asks for; None for the whole object."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise StorageError(416, "The requested range cannot be satisfied.", "requestedRangeNotSatisfiable")
    return start, end
