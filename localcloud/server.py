"""localcloud's core: the HTTPS CONNECT proxy, the admin API and the running Cloud services use.

One TCP listener on 127.0.0.1. `CONNECT host:443` to an emulated host gets 200, then TLS is
terminated with a leaf certificate for that host and each HTTP/1.1 request inside the tunnel is
handed to the service answering for the host (as a werkzeug Request). Plain-HTTP requests are
the admin API under /_localcloud/. Nothing is ever forwarded off this machine.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
from datetime import datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import _SocketWriter  # type: ignore[attr-defined]
from typing import Any
from urllib.parse import unquote_to_bytes

from werkzeug.wrappers import Request, Response

from localcloud import admin, config, projects
from localcloud.auth import Auth
from localcloud.clock import Clock, rfc3339
from localcloud.conformance import Conformance
from localcloud.faults import Fault, Faults, RequestCounter
from localcloud.iam import BadSetting, Iam, mode_from_env
from localcloud.requestlog import RequestLog
from localcloud.service import STATUS_NAMES, Service, Unauthenticated, google_error, json_response
from localcloud.services import SERVICES
from localcloud.tls import CertStore

log = logging.getLogger("localcloud")

MAX_BODY = 64 * 1024 * 1024  # refuse absurd bodies instead of reading them into memory


class ListenError(RuntimeError):
    """The listener could not bind its port."""


class LocalCloud:
    """The running emulated cloud: what services see as `Cloud` (see localcloud/service.py)."""

    def __init__(self, state_dir: Path, port: int = 0, service_specs: list[str] | None = None):
        iam_mode = mode_from_env()  # LOCALCLOUD_IAM, refused (ValueError) before anything is written
        self.state_dir = Path(state_dir).resolve()
        self.files = config.StateFiles(self.state_dir)
        self.project = config.PROJECT
        self.region = config.REGION
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.tls = CertStore(self.files.ca_cert, self.files.ca_key)
        self.ca_file = self.files.ca_cert
        self.auth = Auth(self.files.keys, self.state_dir / "auth", self.project, projects.IDS)
        self.key_files = projects.issue_keys(self.auth, self.files.keys)  # {project: operator key}
        self.key_file = self.files.key_file
        self.iam = Iam(self.state_dir, self.auth, iam_mode)  # accounts and policies (localcloud/iam.py)
        self.clock = Clock(self.state_dir / "clock.json")
        self.faults = Faults()
        self.counter = RequestCounter()
        self.request_log = RequestLog()  # GET /_localcloud/requests/log
        self.conformance = Conformance.from_env(self)  # Google's discovery documents judge each call
        self.ready = threading.Event()
        # Bind before the services are built: they may need proxy_url (executions get it in their env).
        try:
            self.server = ProxyServer(("127.0.0.1", port), ProxyHandler, self)
        except OSError as e:
            raise ListenError(f"localcloud cannot listen on 127.0.0.1:{port}: {e}") from e
        self.port = self.server.server_address[1]
        self.proxy_url = f"http://127.0.0.1:{self.port}"
        self.services: list[Service] = []
        self.start_seconds: dict[str, float] = {}  # per service, for the startup benchmark
        self._by_name: dict[str, Service] = {}
        self._by_host: dict[str, Service] = {}
        self._host_patterns: list[tuple[re.Pattern[str], Service]] = []  # Service.host_pattern
        for spec in SERVICES if service_specs is None else service_specs:
            module_name, _, class_name = spec.partition(":")
            cls = getattr(importlib.import_module(f"localcloud.services.{module_name}"), class_name)
            self.register(cls(self))

    def register(self, svc: Service) -> None:
        """Add a constructed service (before start()); its name and hosts must be free."""
        if not svc.name or svc.name in self._by_name:
            raise RuntimeError(f"service {type(svc).__name__}: name {svc.name!r} is empty or already taken")
        for host in svc.hosts:
            if host.lower() in self._by_host:
                raise RuntimeError(
                    f"service {svc.name}: host {host} already served by {self._by_host[host.lower()].name}"
                )
        for host in svc.hosts:
            self._by_host[host.lower()] = svc
        if svc.host_pattern:
            self._host_patterns.append((re.compile(svc.host_pattern), svc))
        self.services.append(svc)
        self._by_name[svc.name] = svc

    # ---- Cloud protocol ------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def authenticate(self, request: Request) -> str:
        host = request.environ.get("localcloud.host") or request.host.split(":")[0]
        return self.auth.authenticate(request.headers.get("Authorization"), host)

    def mint_token(self, principal: str) -> str:
        return self.auth.mint(principal)

    def secret_value(self, secret: str, version: str = "latest", project: str | None = None) -> bytes | None:
        return self.service("secretmanager").value(secret, version, project)  # type: ignore[attr-defined]

    def service(self, name: str) -> Service:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(
                f"no localcloud service named {name!r}; running: {sorted(self._by_name)}"
            ) from None

    def service_for_host(self, host: str) -> Service | None:
        host = host.lower()
        found = self._by_host.get(host)
        if found is None:
            found = next((svc for pattern, svc in self._host_patterns if pattern.fullmatch(host)), None)
        return found

    def shell_env(self) -> dict[str, str]:
        """What `localcloud env` prints: point a shell's clients at this cloud."""
        ca = str(self.ca_file)
        return {
            "HTTPS_PROXY": self.proxy_url,
            "NO_PROXY": config.NO_PROXY,
            "REQUESTS_CA_BUNDLE": ca,
            "SSL_CERT_FILE": ca,
            "GCP_SERVICE_ACCOUNT_FILE": str(self.key_file),
        }

    def client_env(self, project: str | None = None) -> dict[str, str]:
        key = str(self.key_files.get(project or self.project, self.key_file))
        return {**self.shell_env(), "GCP_SERVICE_ACCOUNT_FILE": key, "GOOGLE_APPLICATION_CREDENTIALS": key}

    # ---- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        started = time.monotonic()
        running: list[Service] = []
        try:
            for svc in self.services:
                t0 = time.monotonic()
                svc.start()
                running.append(svc)
                self.start_seconds[svc.name] = round(time.monotonic() - t0, 3)
        except BaseException:
            # Stop what did start (database servers, threads) so a failed start leaves no process behind.
            self._stop_services(running)
            self.server.server_close()
            raise
        _write_json(self.files.client_env, self.shell_env())
        _write_json(self.files.keys_index, {p: str(k) for p, k in self.key_files.items()})
        self.files.port.write_text(f"{self.port}\n")
        self._thread = threading.Thread(
            target=self.server.serve_forever, args=(0.1,), name="localcloud-proxy", daemon=True
        )
        self._thread.start()
        self.ready.set()
        log.info(
            "localcloud ready on %s (%d services, %.2fs)",
            self.proxy_url,
            len(self.services),
            time.monotonic() - started,
        )

    def stop(self) -> None:
        self.ready.clear()
        self.server.shutdown()
        self._stop_services(self.services)
        self.server.server_close()

    @staticmethod
    def _stop_services(services: list[Service]) -> None:
        for svc in reversed(services):
            try:
                svc.stop()
            except Exception:
                log.exception("stopping service %s failed", svc.name)

    def reset(self) -> None:
        """Forget every service's state in place (keys and CA stay, so clients keep working)."""
        for svc in self.services:
            svc.reset()
        self.faults.clear()
        self.counter.reset()
        self.request_log.reset()
        self.clock.reset()

    # ---- admin API -----------------------------------------------------------------------------------

    def handle_admin(self, request: Request) -> Response:
        return admin.handle(self, request)

    def hosts(self) -> list[str]:
        return sorted(self._by_host)

    def service_names(self) -> list[str]:
        return sorted(self._by_name)

    def clock_changed(self) -> None:
        """Tell every service the emulated clock was set or advanced."""
        for svc in self.services:
            svc.clock_changed()


def _injected(fault: Fault, host: str) -> Response:
    """A fault's answer: Google's error body for its status, with its Retry-After."""
    assert fault.status is not None
    resp = google_error(
        fault.status,
        f"localcloud: injected fault {fault.id} ({fault.status} for {host}{fault.path})",
        STATUS_NAMES.get(fault.status, "UNKNOWN"),
    )
    if fault.retry_after is not None:
        resp.headers["Retry-After"] = str(fault.retry_after)
    return resp


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


class ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, handler, cloud: LocalCloud):
        self.cloud = cloud
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # Skip HTTPServer.server_bind's getfqdn(), which can stall on a machine without DNS.
        import socketserver

        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address) -> None:
        log.warning("connection from %s failed:\n%s", client_address, traceback.format_exc().rstrip())


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ProxyServer
    timeout = 120  # idle keep-alive connections are closed after this many seconds
    server_version = "localcloud"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.tunnel_host: str | None = None
        self.tunnel_port = 443

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self.tunnel_host is not None:
                self.connection.close()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    # ---- CONNECT -------------------------------------------------------------------------------------

    def do_CONNECT(self) -> None:
        cloud = self.server.cloud
        host, _, port = self.path.rpartition(":")
        host = host.strip("[]").lower()
        if self.tunnel_host is not None:
            self._plain(400, "localcloud: CONNECT inside a tunnel is not supported\n")
            return
        if not host or not port.isdigit():
            self._plain(400, f"localcloud: bad CONNECT target {self.path!r}: expected host:port\n")
            return
        if cloud.service_for_host(host) is None:
            self._plain(
                502, f"localcloud: no emulated service for host {host}; nothing leaves this machine\n"
            )
            return
        self.send_response_only(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        try:
            tls = cloud.tls.context_for(host).wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError) as e:
            # Most often a client that does not trust the CA: say which file it should trust.
            log.warning("TLS handshake for %s failed (%s); clients must trust %s", host, e, cloud.ca_file)
            self.close_connection = True
            return
        tls.settimeout(self.timeout)
        self.connection = self.request = tls
        self.rfile = tls.makefile("rb", self.rbufsize)
        self.wfile = _SocketWriter(tls)
        self.tunnel_host = host
        self.tunnel_port = int(port)
        self.close_connection = False

    # ---- requests ------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        if self.tunnel_host is None:
            self._admin()
            return
        cloud = self.server.cloud
        target = self.path
        if target.startswith(("https://", "http://")):  # absolute-form inside the tunnel
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        path = target.partition("?")[0]
        host = self.tunnel_host
        try:
            body = self._read_body()
        except ValueError as e:
            self.close_connection = True
            self._send(Response(f"localcloud: {e}\n", status=400, mimetype="text/plain"))
            return
        cloud.counter.count(host, self.command, path)
        entry = cloud.request_log.add(
            time=rfc3339(cloud.now()),
            host=host,
            method=self.command,
            path=path,
            query=target.partition("?")[2],
            body=body,
            content_type=self.headers.get("Content-Type"),
        )
        taken = cloud.faults.take(host, self.command, path, entry["seq"])
        fault, hit = taken if taken is not None else (None, None)
        if fault is not None:
            cloud.request_log.update(entry, fault=fault.id)
        if fault is not None and not fault.applied:  # strikes before the service sees the request
            if self._strike(fault, host, path, entry):
                return
        environ = self._environ(target, body, host)
        request = Request(environ)
        service = cloud.service_for_host(host)
        assert service is not None  # checked at CONNECT
        try:
            response = cloud.conformance.handle(service, request)
        except Unauthenticated as e:
            response = google_error(401, str(e), "UNAUTHENTICATED")
            response.headers["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/"'
        except Exception as e:
            log.exception("%s failed on %s %s", service.name, self.command, target)
            response = google_error(
                500, f"localcloud: internal error in {service.name}: {type(e).__name__}: {e}"
            )
        if fault is not None and hit is not None and fault.applied:  # the work is done: now strike
            cloud.faults.answered(fault, hit, response.status_code)
            log.info(
                "fault %d: %s %s%s applied (%d), now striking",
                fault.id,
                self.command,
                host,
                path,
                response.status_code,
            )
            if self._strike(fault, host, path, entry):
                return
        self._send(response, environ, entry)

    def _strike(self, fault: Fault, host: str, path: str, entry: dict) -> bool:
        """Delay, then drop the connection or answer the fault's status; False when only delayed
        (the request, or the service's answer, then goes on)."""
        if fault.delay:
            time.sleep(fault.delay)
        if fault.drop:
            log.info("fault %d: dropping %s %s%s", fault.id, self.command, host, path)
            self.close_connection = True
            self.connection.close()
            return True
        if fault.status is not None:
            self._send(_injected(fault, host), None, entry)
            return True
        return False

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def _admin(self) -> None:
        cloud = self.server.cloud
        if not self.path.startswith("/_localcloud/"):
            self.close_connection = True
            if self.path.startswith(("http://", "https://")):
                msg = (
                    f"localcloud: plain-HTTP proxying of {self.path} is refused; localcloud is an HTTPS "
                    "CONNECT proxy for the emulated Google hosts and nothing leaves this machine\n"
                )
            else:
                msg = (
                    f"localcloud: {self.path} is not an admin path; the admin API lives under /_localcloud/\n"
                )
            self._send(Response(msg, status=400, mimetype="text/plain"))
            return
        try:
            body = self._read_body()
        except ValueError as e:
            self.close_connection = True
            self._send(Response(f"localcloud: {e}\n", status=400, mimetype="text/plain"))
            return
        environ = self._environ(self.path, body, "127.0.0.1", scheme="http")
        try:
            response = cloud.handle_admin(Request(environ))
        except Exception as e:
            log.exception("admin %s %s failed", self.command, self.path)
            response = json_response({"error": f"localcloud admin: {type(e).__name__}: {e}"}, status=500)
        self._send(response, environ)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            total = 0
            while True:
                line = self.rfile.readline(65537)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise ValueError(f"bad chunk size line {line[:40]!r}") from None
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers, ignored
                    break
                total += size
                if total > MAX_BODY:
                    raise ValueError(f"request body larger than {MAX_BODY} bytes")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        if not length.strip().isdigit() or int(length) > MAX_BODY:
            raise ValueError(f"bad Content-Length {length!r}: expected 0..{MAX_BODY}")
        return self.rfile.read(int(length))

    def _environ(self, target: str, body: bytes, host: str, scheme: str = "https") -> dict[str, Any]:
        path, _, query = target.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "REQUEST_URI": target,
            "RAW_URI": target,
            "SERVER_NAME": host,
            "SERVER_PORT": str(self.tunnel_port if scheme == "https" else self.server.server_port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": str(self.client_address[1]),
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scheme,
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "localcloud.host": host,
        }
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_LENGTH", "TRANSFER_ENCODING", "PROXY_AUTHORIZATION"):
                continue
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
                continue
            key = "HTTP_" + key
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        environ.setdefault("HTTP_HOST", host)
        return environ

    def _send(
        self, response: Response, environ: dict[str, Any] | None = None, entry: dict | None = None
    ) -> None:
        """Write the response; `entry` (the request's log entry) records the status sent."""
        if environ is None:
            environ = {"REQUEST_METHOD": self.command, "SERVER_PROTOCOL": "HTTP/1.1"}
        head_length = len(response.get_data()) if self.command == "HEAD" else None
        app_iter, status, headers = response.get_wsgi_response(environ)
        try:
            body = b"".join(app_iter)
        finally:
            if hasattr(app_iter, "close"):
                app_iter.close()
        code = int(status.split(" ", 1)[0])
        if entry is not None:
            self.server.cloud.request_log.update(entry, status=code)
        self.send_response_only(code)  # standard reason phrase ("Bad Gateway")
        seen_date = False
        for name, value in headers:
            lname = name.lower()
            if lname in ("content-length", "transfer-encoding", "connection"):
                continue
            seen_date = seen_date or lname == "date"
            self.send_header(name, value)
        if not seen_date:
            # The emulated clock, as a real API's Date is its own clock (status reads "now" from it).
            self.send_header("Date", formatdate(self.server.cloud.now().timestamp(), usegmt=True))
        if code not in (204, 304) and not 100 <= code < 200:
            self.send_header("Content-Length", str(len(body) if head_length is None else head_length))
        if self.close_connection:
            self.send_header("Connection", "close")
        # Head and body in one write: separate small writes meet Nagle + delayed ACK (~40 ms each).
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD" and code not in (204, 304):
            self._headers_buffer.append(body)
        data = b"".join(self._headers_buffer)
        self._headers_buffer = []
        self.wfile.write(data)
        self.wfile.flush()

    def _plain(self, code: int, text: str) -> None:
        self.close_connection = True
        self._send(Response(text, status=code, mimetype="text/plain"))


def serve(state_dir: Path, port: int = 0, ready_file: Path | None = None) -> int:
    """Run localcloud in the foreground until SIGTERM or SIGINT; returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lock = config.lock_state_dir(state_dir)
    if lock is None:
        log.error(
            "localcloud already serves %s (pid %s): one server per state directory",
            state_dir,
            config.lock_holder(state_dir) or "unknown",
        )
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    started = time.monotonic()
    try:
        cloud = LocalCloud(state_dir, port)
        cloud.start()
    except (ListenError, BadSetting) as e:
        log.error("%s", e)
        return 1
    except Exception:
        log.exception("localcloud failed to start")
        return 1
    if ready_file is not None:
        _write_json(
            Path(ready_file),
            {
                "pid": os.getpid(),
                "port": cloud.port,
                "proxy_url": cloud.proxy_url,
                "seconds": round(time.monotonic() - started, 3),
                "service_start_seconds": cloud.start_seconds,
            },
        )
    stop.wait()
    log.info("localcloud stopping")
    cloud.stop()
    lock.close()
    return 0
