"""jobs.transport, the standard-library HTTP transport of the job scripts, against real local servers.

Proxy selection, keep-alive reuse, a stale connection replaced, a plain HTTP proxy, a refused
CONNECT, timeouts and a bad CA bundle. (The CONNECT tunnel with TLS is exercised end to end by the
scripts through localcloud's proxy, in test_localcloud.py.)
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from jobs.transport import Transport, TransportError, bypass_proxy, proxy_for


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypass"),
    [
        ("api.cloudact.local", 443, "", False),
        ("localhost", 8080, "localhost,127.0.0.1", True),
        ("127.0.0.1", 80, "localhost, 127.0.0.1", True),
        ("a.b.example.com", 443, "example.com", True),
        ("a.b.example.com", 443, ".example.com", True),
        ("a.b.example.com", 443, "*.example.com", True),
        ("notexample.com", 443, "example.com", False),
        ("example.com", 443, "example.com:8443", False),
        ("example.com", 8443, "example.com:8443", True),
        ("10.1.2.3", 443, "10.0.0.0/8", True),
        ("11.1.2.3", 443, "10.0.0.0/8", False),
        ("host.with.dot.", 443, "dot", True),
        ("anything", 1, "*", True),
        ("[::1]", 443, "::1", True),
    ],
)
def test_no_proxy_matching(host, port, no_proxy, bypass):
    assert bypass_proxy(host, port, no_proxy) is bypass


def test_proxy_comes_from_either_case_and_no_proxy_exempts():
    env = {"https_proxy": "http://127.0.0.1:3128", "NO_PROXY": "localhost"}
    assert proxy_for("https", "api.cloudact.local", 443, env) == "http://127.0.0.1:3128"
    assert proxy_for("https", "localhost", 443, env) is None
    assert proxy_for("http", "api.cloudact.local", 80, env) is None  # no HTTP_PROXY set
    assert proxy_for("http", "x", 80, {"HTTP_PROXY": "127.0.0.1:3128"}) == "http://127.0.0.1:3128"
    assert proxy_for("https", "x", 443, {"ALL_PROXY": "http://p:1"}) == "http://p:1"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

    def do_GET(self):
        self.server.seen.append((self.requestline, dict(self.headers), self.client_address[1]))
        body = self.server.body
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.server.close_after_each:
            self.close_connection = True

    do_POST = do_GET

    def log_message(self, *args):
        pass


@contextmanager
def server(body: bytes = b'{"ok": true}', close_after_each: bool = False) -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.seen, httpd.body, httpd.close_after_each = [], body, close_after_each
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def url(httpd: ThreadingHTTPServer, path: str = "/x") -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}{path}"


def test_keep_alive_connection_is_reused():
    transport = Transport({})
    with server() as httpd:
        answers = [transport.request("GET", url(httpd)) for _ in range(3)]
        transport.close()
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].json() == {"ok": True}
    assert transport.connections_opened == 1
    assert len({client_port for _, _, client_port in httpd.seen}) == 1


def test_a_connection_the_server_closed_while_idle_is_replaced_not_failed():
    transport = Transport({})
    with server(close_after_each=True) as httpd:
        first = transport.request("GET", url(httpd))
        time.sleep(0.2)  # the server's close reaches us, as after an idle timeout
        second = transport.request("POST", url(httpd), body=b"{}")
        transport.close()
    assert (first.status_code, second.status_code) == (200, 200)
    assert transport.connections_opened == 2
    assert httpd.seen[1][1]["Content-Length"] == "2"


def test_a_plain_http_proxy_gets_the_absolute_url_and_its_credentials():
    with server() as proxy:
        env = {"http_proxy": f"http://ops:s%40cret@127.0.0.1:{proxy.server_address[1]}"}
        answer = Transport(env).request("GET", "http://api.example.test:8080/v1/thing?a=1")
    assert answer.status_code == 200
    requestline, headers, _ = proxy.seen[0]
    assert requestline == "GET http://api.example.test:8080/v1/thing?a=1 HTTP/1.1"
    assert headers["Host"] == "api.example.test:8080"
    assert headers["Proxy-Authorization"] == "Basic b3BzOnNAY3JldA=="  # ops:s@cret


def test_a_refused_tunnel_is_a_connect_failure_that_was_not_applied():
    class Refuser(BaseHTTPRequestHandler):
        def do_CONNECT(self):
            self.send_error(502, "unknown host")

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Refuser)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        env = {"HTTPS_PROXY": f"http://127.0.0.1:{httpd.server_address[1]}"}
        with pytest.raises(TransportError) as caught:
            Transport(env).request("GET", "https://api.example.test/x", timeout=(5, 5))
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
    assert "cannot connect to proxy 127.0.0.1" in caught.value.reason
    assert "502" in caught.value.reason
    assert caught.value.may_have_applied is False and caught.value.transient


def test_a_refused_connection_was_not_applied():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    with pytest.raises(TransportError) as caught:
        Transport({}).request("GET", f"http://127.0.0.1:{port}/x")
    assert caught.value.reason == f"cannot connect to 127.0.0.1:{port}: Connection refused"
    assert caught.value.may_have_applied is False


def test_a_silent_server_is_a_read_timeout_that_may_have_applied():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(TransportError) as caught:
            Transport({}).request("POST", f"http://127.0.0.1:{port}/x", body=b"{}", timeout=(2, 0.3))
    assert caught.value.reason == "no answer within the 0.3s read timeout"
    assert caught.value.may_have_applied is True


def test_a_missing_ca_bundle_is_named_and_final(tmp_path):
    missing = tmp_path / "no-such-ca.pem"
    with pytest.raises(TransportError) as caught:
        Transport({"REQUESTS_CA_BUNDLE": str(missing)}).request("GET", "https://127.0.0.1:9/x")
    assert str(missing) in caught.value.reason and "REQUESTS_CA_BUNDLE" in caught.value.reason
    assert caught.value.transient is False


def test_not_an_http_url_is_refused():
    with pytest.raises(TransportError, match="not an http"):
        Transport({}).request("GET", "ftp://example.test/x")
