"""The runtime's HTTP behaviour, through a script run as a subprocess: retries, timeouts, bad bodies."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from werkzeug.wrappers import Response

RESET = "/api/v1/admin/quota/reset-daily"
ALERTS = "/api/v1/admin/alerts/process-all"
OK = {"success": True, "orgs_processed": 2, "orgs_created": 2, "orgs_skipped": 0, "message": ""}


def test_503_twice_then_200_succeeds_with_two_retries_logged(api, run_job):
    api.expect_oneshot_request(RESET).respond_with_json({"detail": "warming up"}, status=503)
    api.expect_oneshot_request(RESET).respond_with_json({"detail": "warming up"}, status=503)
    api.expect_request(RESET).respond_with_json(OK)
    result = run_job("jobs/daily/quota_reset_daily.py")
    assert result.returncode == 0, result.output
    retries = [line for line in result.stderr.splitlines() if " WARNING " in line]
    assert len(retries) == 2
    assert "attempt 1/4 failed: 503 SERVICE UNAVAILABLE: warming up; retrying in" in retries[0]
    assert "attempt 2/4 failed: 503" in retries[1]
    assert len(api.log) == 3
    assert "Daily quota reset complete for 2 orgs" in result.stderr


@pytest.mark.parametrize("status", [408, 429, 500, 502, 504])
def test_each_transient_status_is_retried(api, run_job, status):
    api.expect_oneshot_request(RESET).respond_with_data("busy", status=status)
    api.expect_request(RESET).respond_with_json(OK)
    result = run_job("jobs/daily/quota_reset_daily.py")
    assert result.returncode == 0, result.output
    assert f"attempt 1/4 failed: {status}" in result.stderr
    assert len(api.log) == 2


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
def test_other_4xx_is_final(api, run_job, status):
    api.expect_request(RESET).respond_with_json({"detail": "nope"}, status=status)
    result = run_job("jobs/daily/quota_reset_daily.py")
    assert result.returncode == 1
    assert f"failed: {status}" in result.stderr
    assert "nope" in result.stderr
    assert len(api.log) == 1


def test_retries_stop_at_max_attempts(api, run_job):
    api.expect_request(RESET).respond_with_json({"detail": "down"}, status=502)
    result = run_job("jobs/daily/quota_reset_daily.py", HTTP_MAX_ATTEMPTS="3")
    assert result.returncode == 1
    assert "failed after 3 attempts" in result.stderr
    assert len(api.log) == 3


def test_retry_after_seconds_is_honoured(api, run_job):
    arrivals = []

    def busy(request):
        arrivals.append(time.monotonic())
        return Response('{"detail": "slow down"}', 429, {"Retry-After": "1"}, content_type="application/json")

    def ok(request):
        arrivals.append(time.monotonic())
        return Response('{"success": true, "orgs_processed": 1}', 200, content_type="application/json")

    api.expect_oneshot_request(RESET).respond_with_handler(busy)
    api.expect_request(RESET).respond_with_handler(ok)
    result = run_job("jobs/daily/quota_reset_daily.py")
    assert result.returncode == 0, result.output
    assert "retrying in 1.0s (Retry-After)" in result.stderr
    # The backoff alone is at most 0.2 s here (HTTP_BACKOFF_MAX_SECONDS): the header made it wait.
    assert arrivals[1] - arrivals[0] >= 0.9


def test_retry_after_http_date_beyond_the_deadline_gives_up_at_once(api, run_job):
    later = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    api.expect_request(RESET).respond_with_response(Response("maintenance", 503, {"Retry-After": later}))
    result = run_job("jobs/daily/quota_reset_daily.py")
    assert result.returncode == 1
    assert "would pass the 8s deadline" in result.stderr
    assert len(api.log) == 1


@pytest.fixture
def silent_server():
    """A socket that accepts connections (the kernel's backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_server_that_never_answers_times_out_within_the_deadline(run_job, silent_server):
    started = time.monotonic()
    result = run_job(
        "jobs/daily/quota_reset_daily.py",
        API_SERVICE_URL=silent_server,
        HTTP_TIMEOUT_SECONDS="0.5",
        HTTP_DEADLINE_SECONDS="2",
        HTTP_MAX_ATTEMPTS="10",
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "no answer within the 0.5s read timeout" in result.stderr
    assert "job failed:" in result.stderr
    # The bound is the 2 s deadline; the margin covers interpreter start on a loaded machine.
    assert elapsed < 2 + 10


def test_not_idempotent_call_is_not_repeated_after_a_read_timeout(run_job, silent_server):
    result = run_job("jobs/daily/alerts_daily.py", API_SERVICE_URL=silent_server, HTTP_TIMEOUT_SECONDS="0.5")
    assert result.returncode == 1
    assert "not retried because the request may have been applied" in result.stderr
    assert "WARNING" not in result.stderr


def test_not_idempotent_call_is_repeated_after_503_but_not_500(api, run_job):
    api.expect_oneshot_request(ALERTS).respond_with_data("", status=503)
    api.expect_oneshot_request(ALERTS).respond_with_data("boom", status=500)
    result = run_job("jobs/daily/alerts_daily.py")
    assert result.returncode == 1
    assert "failed: 500 INTERNAL SERVER ERROR: boom" in result.stderr
    assert len(api.log) == 2


def test_refused_connection_is_retried_then_fails(run_job):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_job("jobs/daily/alerts_daily.py", API_SERVICE_URL=f"http://127.0.0.1:{port}")
    assert result.returncode == 1
    assert "cannot connect" in result.stderr
    assert "failed after 4 attempts" in result.stderr


def test_malformed_json_fails_clearly(api, run_job):
    api.expect_request(RESET).respond_with_data("<html>Bad gateway page</html>", content_type="text/html")
    result = run_job("jobs/daily/quota_reset_daily.py")
    assert result.returncode == 1
    assert (
        "returned 200 with a body that is not JSON (text/html): '<html>Bad gateway page</html>'"
        in result.stderr
    )


def test_truncated_json_fails_clearly(api, run_job):
    api.expect_request(RESET).respond_with_data('{"success": true, "orgs_', content_type="application/json")
    result = run_job("jobs/daily/quota_reset_daily.py")
    assert result.returncode == 1
    assert "a body that is not JSON (application/json)" in result.stderr


def test_redirect_is_not_followed(api, run_job):
    """Following it would send the root key to the host the Location names."""
    api.expect_request(RESET).respond_with_response(
        Response("", 307, {"Location": "https://elsewhere.example/api/v1/admin/quota/reset-daily"})
    )
    result = run_job("jobs/daily/quota_reset_daily.py")
    assert result.returncode == 1
    assert "answered 307, a redirect to https://elsewhere.example/" in result.stderr
    assert len(api.log) == 1


def test_dropped_connection_is_retried_for_an_idempotent_call(api, run_job):
    """A connection closed before any answer (the server read the request): retried, then 200."""
    api.expect_oneshot_request(RESET).respond_with_handler(_drop)
    api.expect_request(RESET).respond_with_json(OK)
    result = run_job("jobs/daily/quota_reset_daily.py")
    assert result.returncode == 0, result.output
    assert "attempt 1/4 failed: connection error" in result.stderr


def _drop(request):
    # werkzeug hands the raw socket to the handler via the environ; closing it drops the connection.
    sock = request.environ.get("werkzeug.socket")
    if sock is None:
        pytest.skip("werkzeug does not expose the socket")
    sock.shutdown(socket.SHUT_RDWR)
    return Response("", 200)
