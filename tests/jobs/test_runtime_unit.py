"""Pure functions of the job runtime, as data (no I/O)."""

from __future__ import annotations

import importlib.util
from datetime import date
from email.utils import formatdate
from pathlib import Path

import pytest

from jobs import runtime
from jobs.runtime import ConfigError, http

ROOT = Path(runtime.__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("0", 0.0), ("7", 7.0), (" 12 ", 12.0), ("-3", None), ("soon", None)],
)
def test_parse_retry_after_seconds(value, expected):
    assert runtime.parse_retry_after(value) == expected


def test_parse_retry_after_http_date():
    now = 1_800_000_000.0
    assert runtime.parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30)
    assert runtime.parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0


def test_waits_are_full_jitter_under_the_cap_unless_the_answer_said_retry_after():
    """The sleep generator HttpClient gives api-core's retry_target (no request is made here)."""
    settings = runtime.HttpSettings(backoff=0.5, backoff_max=5.0)
    client = runtime.HttpClient("http://127.0.0.1:9", settings=settings)
    runs = []
    for _ in range(100):
        call = http._Call(client, "GET", "/", None, True, None, True)
        call.deadline = float("inf")
        waits = call.waits()
        call.last = http._Retryable("503")
        runs.append([next(waits) for _ in range(8)])
        call.last = http._Retryable("429", 429, retry_after=7.0)
        assert next(waits) == 7.0
    for k in range(8):
        ceiling = min(5.0, 0.5 * 2**k)
        drawn = [run[k] for run in runs]
        assert all(0 <= w <= ceiling for w in drawn)
        assert max(drawn) > ceiling / 2  # spread over the range, not a constant


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('key s3cr3t/k+y"x here', "key [REDACTED] here"),
        ('{"detail": "bad key s3cr3t/k+y\\"x"}', '{"detail": "bad key [REDACTED]"}'),
        ("url ?k=s3cr3t%2Fk%2By%22x end", "url ?k=[REDACTED] end"),
        ("Authorization: Bearer eyJhbGciOi.J9.x-y_z", "Authorization: Bearer [REDACTED]"),
        ("token ya29.a0AfB_byC-123", "token [REDACTED]"),
        ("nothing secret", "nothing secret"),
    ],
)
def test_redactor(text, expected):
    redact = runtime.Redactor()
    redact.add('s3cr3t/k+y"x')
    assert redact(text) == expected


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("ca-root-api-key-local", "projects/p1-x/secrets/ca-root-api-key-local/versions/latest"),
        ("projects/other/secrets/k", "projects/other/secrets/k/versions/latest"),
        ("projects/other/secrets/k/versions/3", "projects/other/secrets/k/versions/3"),
    ],
)
def test_secret_version_name(ref, expected):
    assert runtime.secret_version_name(ref, "p1-x") == expected


@pytest.mark.parametrize("ref", ["", "a b", "projects/p/secrets", "projects/p/secrets/k/versions/", "x/y"])
def test_secret_version_name_rejects(ref):
    with pytest.raises(ConfigError, match="CA_ROOT_API_KEY_SECRET="):
        runtime.secret_version_name(ref, "p1-x")


def test_production_defaults_the_api_url_and_others_require_it():
    assert runtime.api_url({"ENVIRONMENT": "production"}) == "https://api.cloudact.ai"
    assert (
        runtime.api_url({"ENVIRONMENT": "staging", "API_SERVICE_URL": "https://a.run.app/"})
        == "https://a.run.app"
    )
    with pytest.raises(ConfigError, match="API_SERVICE_URL is not set"):
        runtime.api_url({"ENVIRONMENT": "staging"})


def test_http_settings_from_env_override_the_script_defaults():
    defaults = runtime.HttpSettings(read_timeout=900, deadline=1500)
    settings = runtime.HttpSettings.from_env(
        defaults, {"HTTP_MAX_ATTEMPTS": "2", "HTTP_TIMEOUT_SECONDS": "1.5"}
    )
    assert (settings.max_attempts, settings.read_timeout, settings.deadline) == (2, 1.5, 1500)


def load_monthly():
    spec = importlib.util.spec_from_file_location(
        "quota_reset_monthly", f"{ROOT}/jobs/monthly/quota_reset_monthly.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("today", "force", "due"),
    [
        (date(2026, 3, 1), False, True),
        (date(2026, 3, 2), False, False),
        (date(2026, 2, 28), False, False),
        (date(2026, 3, 31), False, False),
        (date(2026, 3, 15), True, True),
    ],
)
def test_monthly_reset_is_due_only_on_the_1st_unless_forced(today, force, due):
    assert load_monthly().due(today, force) is due
