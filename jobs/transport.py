"""The job scripts' HTTP transport, on the standard library (http.client + ssl) for a fast start.

`requests` costs 120-290 ms of imports before a job's first call; this module costs what http.client
and ssl cost (~40 ms), and it keeps what the jobs used from requests:

- Proxies from the environment, as requests reads them: HTTPS_PROXY / HTTP_PROXY (either case;
  `http://[user:password@]host:port`) and NO_PROXY (comma-separated hosts, domain suffixes,
  `.domain`, `host:port`, IP addresses, CIDR ranges, or `*`). HTTPS goes through a CONNECT tunnel.
- TLS verification against REQUESTS_CA_BUNDLE, else SSL_CERT_FILE, else the system's CAs.
- Connect and read timeouts apart; keep-alive connections reused per host, a stale one replaced.
- No redirects followed (the caller decides), no cookies, no auth beyond the caller's headers.

Failures are `TransportError` with a one-line reason and whether the request may have reached the
server (`may_have_applied`), which is what the retry policy in `runtime.HttpClient` needs.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import select
import socket
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit


class TransportError(Exception):
    """A request that got no HTTP answer: `reason` is one line, `may_have_applied` says if it was sent."""

    def __init__(self, reason: str, may_have_applied: bool, *, transient: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.may_have_applied = may_have_applied
        self.transient = transient


class _NotSent(Exception):
    """The connection broke while the request was being written: the server did not get it."""


class Response:
    """An HTTP answer, read in full: status, reason, headers (case-insensitive), body bytes."""

    def __init__(self, status: int, reason: str, headers: http.client.HTTPMessage, content: bytes):
        self.status_code = status
        self.reason = reason
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The decoded JSON body; ValueError when it is not JSON."""
        return json.loads(self.content)

    def __repr__(self) -> str:
        return f"<Response {self.status_code}>"


def _env(name: str, environ: Mapping[str, str]) -> str:
    """A proxy variable in either case, lower case first (as curl and requests read them)."""
    return (environ.get(name.lower()) or environ.get(name.upper()) or "").strip()


def proxy_for(scheme: str, host: str, port: int, environ: Mapping[str, str] | None = None) -> str | None:
    """The proxy URL a request to scheme://host:port goes through, or None (direct, or NO_PROXY)."""
    environ = os.environ if environ is None else environ
    proxy = _env(f"{scheme}_proxy", environ) or _env("all_proxy", environ)
    if not proxy or bypass_proxy(host, port, _env("no_proxy", environ)):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def bypass_proxy(host: str, port: int, no_proxy: str) -> bool:
    """Whether NO_PROXY exempts host:port: `*`, a host or domain suffix, `host:port`, an IP or CIDR."""
    host = host.strip("[]").lower().rstrip(".")
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry:  # CIDR: only IP literals can match
            if _in_network(host, entry):
                return True
            continue
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        name = name.strip("[]").lstrip("*").lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _in_network(host: str, cidr: str) -> bool:
    import ipaddress  # only NO_PROXY with a CIDR range needs it

    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def ssl_context(environ: Mapping[str, str] | None = None) -> ssl.SSLContext:
    """Verifying TLS: REQUESTS_CA_BUNDLE, else SSL_CERT_FILE, else the system's CAs."""
    environ = os.environ if environ is None else environ
    bundle = (environ.get("REQUESTS_CA_BUNDLE") or environ.get("SSL_CERT_FILE") or "").strip()
    if not bundle:
        return ssl.create_default_context()
    try:
        if os.path.isdir(bundle):
            return ssl.create_default_context(capath=bundle)
        return ssl.create_default_context(cafile=bundle)
    except (OSError, ssl.SSLError) as exc:
        raise TransportError(
            f"cannot load the CA bundle {bundle} (REQUESTS_CA_BUNDLE / SSL_CERT_FILE): {exc}",
            False,
            transient=False,
        ) from None


class Transport:
    """Requests over reused keep-alive connections, one per scheme://host:port."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self.environ = os.environ if environ is None else environ
        self._context: ssl.SSLContext | None = None
        # Per host: the connection, and for a plain HTTP proxy the headers it wants (then the
        # request line carries the absolute URL); None when direct or tunnelled.
        self._connections: dict[tuple[str, str, int], tuple[http.client.HTTPConnection, dict | None]] = {}
        self.connections_opened = 0  # for tests and benchmarks

    def close(self) -> None:
        for conn, _ in self._connections.values():
            conn.close()
        self._connections.clear()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: tuple[float, float] = (10.0, 300.0),
    ) -> Response:
        """One request, its answer read in full; TransportError when no answer came."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise TransportError(f"not an http(s) URL: {url!r}", False, transient=False)
        host = parts.hostname
        port = parts.port or (443 if scheme == "https" else 80)
        key = (scheme, host, port)
        send_headers = {"Host": host if port in (80, 443) else f"{host}:{port}", **(headers or {})}
        while True:
            kept = self._connections.get(key)
            if kept is not None and _stale(kept[0]):
                self._drop(key)
                kept = None
            if kept is None:
                self._connections[key] = self._connect(scheme, host, port, timeout[0])
            conn, plain_proxy = self._connections[key]
            if plain_proxy is None:
                target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            else:
                target = url
                send_headers.update(plain_proxy)
            try:
                return self._exchange(key, conn, method, target, send_headers, body, timeout[1])
            except _NotSent:
                if kept is None:
                    closed = "the server closed the connection before the request was sent"
                    raise TransportError(f"connection error: {closed}", False) from None
                # A kept-alive connection the server closed just as we reused it: the request never
                # left, so it goes once more on a new connection, whatever the method.

    def _exchange(self, key, conn, method, target, headers, body, read_timeout: float) -> Response:
        conn.sock.settimeout(read_timeout)
        sent = False
        try:
            # request() adds Content-Length (0 for a body-less POST) and keeps our Host header.
            conn.request(method, target, body=body, headers=headers)
            sent = True
            answer = conn.getresponse()
            content = answer.read()
        except TimeoutError:
            self._drop(key)
            raise TransportError(f"no answer within the {read_timeout:.1f}s read timeout", True) from None
        except (OSError, http.client.HTTPException) as exc:
            self._drop(key)
            if not sent and isinstance(exc, BrokenPipeError | ConnectionResetError):
                raise _NotSent from None
            raise TransportError(f"connection error: {_describe(exc)}", True) from None
        if answer.will_close:
            self._drop(key)
        return Response(answer.status, answer.reason, answer.headers, content)

    def _drop(self, key: tuple[str, str, int]) -> None:
        kept = self._connections.pop(key, None)
        if kept is not None:
            kept[0].close()

    def _connect(
        self, scheme: str, host: str, port: int, connect_timeout: float
    ) -> tuple[http.client.HTTPConnection, dict | None]:
        """A connected connection, and the plain HTTP proxy's headers when it goes through one."""
        proxy = proxy_for(scheme, host, port, self.environ)
        proxy_headers: dict[str, str] = {}
        if proxy:
            p = urlsplit(proxy)
            if p.scheme.lower() != "http" or not p.hostname:
                raise TransportError(
                    f"proxy {p.scheme}://{p.hostname}:{p.port} is not supported: use an http:// proxy URL",
                    False,
                    transient=False,
                )
            if p.username is not None:
                credentials = f"{unquote(p.username)}:{unquote(p.password or '')}".encode()
                proxy_headers["Proxy-Authorization"] = "Basic " + base64.b64encode(credentials).decode()
            where = f"proxy {p.hostname}:{p.port or 80}"
            connect_host, connect_port = p.hostname, p.port or 80
        else:
            where = f"{host}:{port}"
            connect_host, connect_port = host, port
        if scheme == "https":
            if self._context is None:
                self._context = ssl_context(self.environ)
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                connect_host, connect_port, timeout=connect_timeout, context=self._context
            )
            if proxy:
                conn.set_tunnel(host, port, headers=proxy_headers)
        else:
            conn = http.client.HTTPConnection(connect_host, connect_port, timeout=connect_timeout)
        try:
            conn.connect()
        except TimeoutError:
            conn.close()
            raise TransportError(f"connect timeout after {connect_timeout:.1f}s ({where})", False) from None
        except ssl.SSLError as exc:  # certificate verification failures included
            conn.close()
            raise TransportError(f"TLS error with {host}: {_describe(exc)}", False) from None
        except OSError as exc:
            conn.close()
            # http.client raises OSError("Tunnel connection failed: 502 ...") when the proxy refuses.
            raise TransportError(f"cannot connect to {where}: {_describe(exc)}", False) from None
        self.connections_opened += 1
        return conn, (proxy_headers if proxy and scheme == "http" else None)


def _stale(conn: http.client.HTTPConnection) -> bool:
    """A kept-alive connection the server closed (or wrote to) while idle: readable before we ask."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return f"name resolution failed: {exc.strerror or exc}"
    if isinstance(exc, OSError) and exc.strerror and not str(exc).startswith("Tunnel"):
        return exc.strerror
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
