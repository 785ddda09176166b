"""The scripts honour requests' proxy and CA settings, against real local servers.

HTTPS through a CONNECT proxy with localcloud's CA is exercised end to end in test_localcloud.py;
these cover the other settings: SSL_CERT_FILE alone, an unknown CA, a missing bundle, a plain HTTP
proxy and NO_PROXY, a proxy that refuses the tunnel.
"""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme
from pytest_httpserver import HTTPServer

RESET = "/api/v1/admin/quota/reset-daily"
OK = {"success": True, "orgs_processed": 2, "orgs_created": 2, "orgs_skipped": 0, "message": ""}


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def tls_api(ca):
    """A pytest-httpserver on https://localhost with a certificate of `ca`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    server.api_url = f"https://localhost:{server.port}"
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def ca_file(ca, tmp_path):
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def test_ssl_cert_file_alone_is_the_ca_bundle(tls_api, run_job, ca_file):
    tls_api.expect_request(RESET, method="POST").respond_with_json(OK)
    result = run_job(
        "jobs/daily/quota_reset_daily.py", API_SERVICE_URL=tls_api.api_url, SSL_CERT_FILE=ca_file
    )
    assert result.returncode == 0, result.output
    assert "Daily quota reset complete for 2 orgs" in result.stderr


def test_requests_ca_bundle_wins_over_ssl_cert_file(tls_api, run_job, ca_file):
    tls_api.expect_request(RESET, method="POST").respond_with_json(OK)
    result = run_job(
        "jobs/daily/quota_reset_daily.py",
        API_SERVICE_URL=tls_api.api_url,
        REQUESTS_CA_BUNDLE=ca_file,
        SSL_CERT_FILE="/nonexistent/ca.pem",
    )
    assert result.returncode == 0, result.output


def test_an_unknown_ca_is_a_tls_error_naming_the_host(tls_api, run_job):
    result = run_job("jobs/daily/quota_reset_daily.py", API_SERVICE_URL=tls_api.api_url)
    assert result.returncode == 1
    assert "TLS error with localhost" in result.stderr
    assert "certificate verify failed" in result.stderr
    assert tls_api.log == []  # the handshake failed: no request reached the server


def test_a_missing_ca_bundle_is_named_and_not_retried(tls_api, run_job):
    result = run_job(
        "jobs/daily/quota_reset_daily.py",
        API_SERVICE_URL=tls_api.api_url,
        REQUESTS_CA_BUNDLE="/nonexistent/ca.pem",
    )
    assert result.returncode == 1
    assert "invalid path: /nonexistent/ca.pem (check REQUESTS_CA_BUNDLE / SSL_CERT_FILE)" in result.stderr
    assert "retrying" not in result.stderr


def test_a_plain_http_proxy_gets_the_request_unless_no_proxy_exempts_the_host(api, run_job):
    """The API is http://localhost:9 (nothing listens there); the `api` server plays the proxy."""
    api.expect_request(RESET, method="POST").respond_with_json(OK)
    proxied = run_job(
        "jobs/daily/quota_reset_daily.py", API_SERVICE_URL="http://localhost:9", HTTP_PROXY=api.api_url
    )
    assert proxied.returncode == 0, proxied.output
    request = api.log[0][0]
    assert request.host == "localhost:9"  # the absolute URL of the request line, as a proxy gets it
    assert request.headers["X-CA-Root-Key"]  # sent to the proxy the operator configured, not elsewhere
    direct = run_job(
        "jobs/daily/quota_reset_daily.py",
        API_SERVICE_URL="http://localhost:9",
        HTTP_PROXY=api.api_url,
        NO_PROXY="localhost",
    )
    assert direct.returncode == 1
    assert "cannot connect to localhost:9" in direct.stderr
    assert len(api.log) == 1


class _RefuseTunnel(BaseHTTPRequestHandler):
    def do_CONNECT(self):
        self.send_error(502, "unknown host")

    def log_message(self, *args):
        pass


@pytest.fixture
def refusing_proxy():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RefuseTunnel)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_a_refused_tunnel_names_the_proxy_answer_and_is_retried_as_not_applied(run_job, refusing_proxy):
    result = run_job(
        "jobs/daily/alerts_daily.py",  # not idempotent: retried all the same, the request never left
        API_SERVICE_URL="https://api.cloudact.test",
        HTTPS_PROXY=refusing_proxy,
    )
    assert result.returncode == 1
    assert "cannot connect through the proxy to api.cloudact.test:443" in result.stderr
    assert "502" in result.stderr
    assert "failed after 4 attempts" in result.stderr
