"""The CA clients trust and a TLS server context per emulated host name."""

from __future__ import annotations

import os
import ssl
import threading
from pathlib import Path

import trustme


class CertStore:
    """A CA generated at first start (persisted), and per-host leaf certificates issued on demand."""

    def __init__(self, cert_file: Path, key_file: Path):
        self.cert_file = cert_file
        if cert_file.exists() and key_file.exists():
            self.ca = trustme.CA.from_pem(cert_file.read_bytes(), key_file.read_bytes())
        else:
            self.ca = trustme.CA(
                organization_name="localcloud", organization_unit_name="emulated Google cloud"
            )
            cert_file.parent.mkdir(parents=True, exist_ok=True)
            _write_private(key_file, self.ca.private_key_pem.bytes())
            cert_file.write_bytes(self.ca.cert_pem.bytes())
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def context_for(self, host: str) -> ssl.SSLContext:
        with self._lock:
            ctx = self._contexts.get(host)
            if ctx is None:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                # HTTP/1.1 only: a client offering h2 via ALPN falls back to http/1.1.
                ctx.set_alpn_protocols(["http/1.1"])
                self.ca.issue_cert(host).configure_cert(ctx)
                self._contexts[host] = ctx
            return ctx


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
