"""Secrets never printed: every log line and error passes through `redact` before it is written."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

# Variables holding secrets: their values are redacted from every line from the start.
SECRET_ENV = ("CA_ROOT_API_KEY", "SUPABASE_ACCESS_TOKEN")


class Redactor:
    """Removes registered secrets and any bearer token from text that is about to be written.

    A secret is also matched in the forms an error body may echo it in: JSON-escaped and
    percent-encoded.
    """

    MASK = "[REDACTED]"
    _BEARER = re.compile(r"(?i)\b(bearer)(\s+|%20)[A-Za-z0-9._~+/=-]+")
    _GOOGLE_TOKEN = re.compile(r"\bya29\.[A-Za-z0-9._-]+")

    def __init__(self) -> None:
        self._secrets: list[str] = []

    def add(self, secret: str | None) -> None:
        if not secret:
            return
        forms = {secret, json.dumps(secret)[1:-1], quote(secret, safe="")}
        self._secrets = sorted(set(self._secrets) | {f for f in forms if f}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, self.MASK)
        text = self._BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{self.MASK}", text)
        return self._GOOGLE_TOKEN.sub(self.MASK, text)


redact = Redactor()


def add_secret(value: str | None) -> None:
    """Never print `value` (a key or token the job holds), in any log line or error."""
    redact.add(value)
