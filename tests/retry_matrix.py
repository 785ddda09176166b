"""One retry matrix for every entry point that calls an HTTP API: the cases, and the servers that play them.

A case is one misbehaviour of the server on the first attempt of the call under test, and what any
client of ours must then do, whatever its runtime (a job script, an Ansible module, a toolkit CLI):

    id                     first attempt                          expected
    retry-after-seconds    429, Retry-After: 1                    retried, >= 0.9 s later, then done
    retry-after-date       429, Retry-After: <HTTP date, +2 s>    retried, >= 0.9 s later, then done
    unavailable            503                                    retried, then done
    connection-reset       the work done, then a TCP RST          retried, then done (idempotent call)
    reset-after-send       the work done, then a TCP RST          not retried: "may have been applied"
    read-timeout           the work done, the answer HOLD s late  not retried: "may have been applied"

The last two are for a call that is not idempotent; the reset is retried only for one that is. In
the three, the server did the work and the answer was lost: the case a client must not repeat.
The gap is measured server-side, between the arrivals of the two attempts: a lower bound that only
honouring Retry-After meets (a client's test backoff is far shorter). An entry point (test module)
brings: how it is run, which of its requests is the call under test (`matches`), the normal answers
of every call it makes, and whether that call is idempotent; `applies(case, idempotent)` says which
cases it runs.

The servers: `Fault(case, matches).handler(answer)` is a pytest-httpserver handler that plays the
case on the first matching request, `answer`s every request, and records when each matching one
arrived; `Front` is a raw-socket TCP front that relays to that server (terminating TLS when given a
context) and, for a reset case, resets with SO_LINGER 0 the connection of the first matching
request instead of relaying its answer; `ConnectProxy` is an HTTPS CONNECT proxy that
tunnels named hosts to local ports, for clients whose endpoint is fixed (Google's API hosts).
Use a threaded HTTPServer, so a held answer does not hold the other requests.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate

from werkzeug.wrappers import Request, Response

HOLD = 2.5  # seconds a read-timeout case holds its answer; a client under test times out sooner
MAY_HAVE_APPLIED = "may have been applied"


@dataclass(frozen=True)
class Case:
    id: str
    call: str  # "any", "idempotent" or "non-idempotent": the kind of call the case is for
    status: int | None = None  # the first answer's status (None: no answer, see `fault`)
    retry_after: str | None = None  # "1" (seconds) or "date+2" (an HTTP date that many seconds ahead)
    fault: str | None = None  # "reset" (TCP RST after the request was read) or "read-timeout"
    retried: bool = True  # expected: the call is sent again, and the entry point succeeds
    min_gap: float = 0.0  # expected: seconds between the two arrivals, at least
    error: str = ""  # expected in the output when not retried

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        if self.retry_after.startswith("date+"):
            return {"Retry-After": formatdate(time.time() + int(self.retry_after[5:]), usegmt=True)}
        return {"Retry-After": self.retry_after}


CASES = [
    Case("retry-after-seconds", "any", status=429, retry_after="1", min_gap=0.9),
    # An HTTP date has whole seconds: "+2" asks for more than 1 s and at most 2 s.
    Case("retry-after-date", "any", status=429, retry_after="date+2", min_gap=0.9),
    Case("unavailable", "any", status=503),
    Case("connection-reset", "idempotent", fault="reset"),
    Case("reset-after-send", "non-idempotent", fault="reset", retried=False, error=MAY_HAVE_APPLIED),
    Case("read-timeout", "non-idempotent", fault="read-timeout", retried=False, error=MAY_HAVE_APPLIED),
]


def applies(case: Case, idempotent: bool) -> bool:
    """Whether `case` is for a call of this kind."""
    return case.call == "any" or (case.call == "idempotent") == idempotent


# A request as both servers see it: method, path (no query) and body.
Matcher = Callable[[str, str, bytes], bool]


@dataclass
class Fault:
    """One case played on the first request `matches` accepts; `arrivals` records every such request."""

    case: Case
    matches: Matcher
    arrivals: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _reset_done: bool = False

    def should_reset(self, method: str, path: str, body: bytes) -> bool:
        """For `Front`, once its answer is in: lose it (reset) when this is the call's first attempt."""
        if self.case.fault != "reset" or not self.matches(method, path, body):
            return False
        with self._lock:
            first, self._reset_done = not self._reset_done, True
        return first

    def handler(self, answer: Callable[[Request], Response]) -> Callable[[Request], Response]:
        """A pytest-httpserver handler: `answer`, but the case's answer to the call's first attempt."""

        def handle(request: Request) -> Response:
            first = False
            if self.matches(request.method, request.path, request.get_data()):
                with self._lock:
                    self.arrivals.append(time.monotonic())
                    first = len(self.arrivals) == 1
            if first and self.case.status is not None:
                error = {"error": {"code": self.case.status, "message": f"retry matrix: {self.case.id}"}}
                return Response(
                    json.dumps(error), self.case.status, self.case.headers(), mimetype="application/json"
                )
            response = answer(request)  # the work is done...
            if first and self.case.fault == "read-timeout":
                time.sleep(HOLD)  # ...but its answer comes too late
            return response

        return handle

    def gap(self) -> float:
        return self.arrivals[1] - self.arrivals[0] if len(self.arrivals) > 1 else 0.0


# --------------------------------------------------------------------------- raw-socket servers


class _Server:
    """A listening socket on loopback and a thread per accepted connection; a context manager."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._closing = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while not self._closing:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve_quietly, args=(conn,), daemon=True).start()

    def _serve_quietly(self, conn: socket.socket) -> None:
        try:
            self.serve(conn)
        except (OSError, ValueError):  # a client or backend that went away
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError


def _read_head(sock: socket.socket, buf: bytes) -> tuple[bytes, bytes] | None:
    """(head without its blank line, what followed it) of the next message; None at end of stream."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return None


def _read_body(sock: socket.socket, rest: bytes, length: int) -> tuple[bytes, bytes]:
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the stream ended inside a body")
        rest += chunk
    return rest[:length], rest[length:]


def reset(conn: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel answers with a TCP RST instead of a FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


class Front(_Server):
    """A TCP front to a local HTTP server that loses the answer of the request `should_reset` picks.

    It relays each request of a connection (head and Content-Length body) to the backend and reads
    the answer; then it either sends the answer on (keep-alive kept) or, when `should_reset` says
    so, resets the client's connection. With `ssl_context` it terminates TLS, and the backend
    speaks plain HTTP.
    """

    def __init__(
        self,
        backend_port: int,
        should_reset: Matcher = lambda *_: False,
        ssl_context: ssl.SSLContext | None = None,
    ):
        super().__init__()
        self.backend_port = backend_port
        self.should_reset = should_reset
        self.ssl_context = ssl_context
        self.url = f"http://127.0.0.1:{self.port}"

    def serve(self, conn: socket.socket) -> None:
        if self.ssl_context is not None:
            conn = self.ssl_context.wrap_socket(conn, server_side=True)
        with socket.create_connection(("127.0.0.1", self.backend_port)) as backend:
            buf, answers = b"", b""
            while True:
                got = _read_head(conn, buf)
                if got is None:
                    return
                head, rest = got
                body, buf = _read_body(conn, rest, _content_length(head) or 0)
                method, path = (part.decode() for part in head.split(b" ", 2)[:2])
                backend.sendall(head + b"\r\n\r\n" + body)
                answer = _read_head(backend, answers)
                if answer is None:
                    return
                answer_head, answer_rest = answer
                length = _content_length(answer_head)
                if length is None:  # no length: the answer runs to the end of the stream
                    conn.sendall(answer_head + b"\r\n\r\n" + answer_rest)
                    while chunk := backend.recv(65536):
                        conn.sendall(chunk)
                    return
                answer_body, answers = _read_body(backend, answer_rest, length)
                if self.should_reset(method, path.split("?")[0], body):
                    reset(conn)  # the server did the work; its answer is lost
                    return
                conn.sendall(answer_head + b"\r\n\r\n" + answer_body)


class ConnectProxy(_Server):
    """An HTTPS proxy for CONNECT to the hosts of `routes` ("host:port" -> a local port); others get 502.

    The client's TLS goes through the tunnel untouched, so it verifies the certificate of the host it
    asked for: the local server behind the route must present one (e.g. a `Front` with a trustme cert).
    """

    def __init__(self, routes: dict[str, int]):
        super().__init__()
        self.routes = routes
        self.url = f"http://127.0.0.1:{self.port}"
        self.tunnels: list[str] = []

    def serve(self, conn: socket.socket) -> None:
        got = _read_head(conn, b"")
        if got is None:
            return
        head, early = got
        parts = head.split(b"\r\n", 1)[0].decode().split(" ")
        target = parts[1] if len(parts) == 3 and parts[0] == "CONNECT" else ""
        if target not in self.routes:
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        self.tunnels.append(target)
        with socket.create_connection(("127.0.0.1", self.routes[target])) as upstream:
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if early:
                upstream.sendall(early)
            pump = threading.Thread(target=_pump, args=(upstream, conn), daemon=True)
            pump.start()
            _pump(conn, upstream)
            pump.join(5)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
