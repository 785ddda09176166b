"""Configuration from the environment: validated values, and a bad one named in one line (exit 2)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

from jobs.runtime.errors import ConfigError

PRODUCTION_API_URL = "https://api.cloudact.ai"
ENVIRONMENTS = ("local", "development", "staging", "production")


def env_str(name: str, environ: Mapping[str, str] | None = None) -> str:
    """A variable's value with surrounding whitespace removed ("" when unset)."""
    return (os.environ if environ is None else environ).get(name, "").strip()


def require_env(name: str, environ: Mapping[str, str] | None = None, hint: str = "") -> str:
    value = env_str(name, environ)
    if not value:
        raise ConfigError(f"{name} is not set{': ' + hint if hint else ''}")
    return value


def env_number(
    name: str,
    default: float,
    environ: Mapping[str, str] | None = None,
    *,
    integer: bool = False,
    minimum: float = 0.0,
) -> float:
    """A positive number from the environment; a bad value names the variable and what is valid."""
    raw = env_str(name, environ)
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = None
    if value is None or value != value or value <= minimum or value == float("inf"):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name}={raw!r} is not valid; use {kind} greater than {minimum:g}")
    return value


def api_url(environ: Mapping[str, str] | None = None) -> str:
    """API_SERVICE_URL validated (https, or http only to a loopback host), without a trailing slash."""
    environment = environment_name(environ)
    raw = env_str("API_SERVICE_URL", environ)
    if not raw:
        if environment == "production":
            return PRODUCTION_API_URL
        raise ConfigError(
            f"API_SERVICE_URL is not set; it is required when ENVIRONMENT is {environment or 'unset'!r} "
            f"(only production defaults to {PRODUCTION_API_URL})"
        )
    return validate_url("API_SERVICE_URL", raw)


def validate_url(name: str, raw: str) -> str:
    """An absolute http(s) base URL; plain http only to loopback so a key never crosses a network in clear."""
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name}={raw!r} is not a valid URL; expected https://host[:port][/base-path]")
    if parts.query or parts.fragment or parts.username or parts.password or " " in raw:
        raise ConfigError(f"{name}={raw!r} is not valid; a base URL has no credentials, query or fragment")
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise ConfigError(f"{name}={raw!r} is not valid: plain http is allowed only to localhost; use https")
    return raw.rstrip("/")


def environment_name(environ: Mapping[str, str] | None = None) -> str:
    value = env_str("ENVIRONMENT", environ)
    if value and value not in ENVIRONMENTS:
        raise ConfigError(f"ENVIRONMENT={value!r} is not valid; use one of {', '.join(ENVIRONMENTS)}")
    return value


def endpoint_path(default: str, environ: Mapping[str, str] | None = None) -> str:
    """API_ENDPOINT_PATH (set per job from the catalog) or the script's default."""
    value = env_str("API_ENDPOINT_PATH", environ) or default
    if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", value):
        raise ConfigError(f"API_ENDPOINT_PATH={value!r} is not valid; expected a path like {default}")
    return value


class HttpSettings(NamedTuple):
    """Timeouts and the retry budget; from HTTP_* variables over the script's defaults."""

    connect_timeout: float = 10.0
    read_timeout: float = 300.0
    max_attempts: int = 5
    deadline: float = 900.0
    backoff: float = 1.0
    backoff_max: float = 30.0

    @classmethod
    def from_env(cls, defaults: HttpSettings | None = None, environ: Mapping[str, str] | None = None):
        d = defaults or cls()
        return cls(
            connect_timeout=env_number("HTTP_CONNECT_TIMEOUT_SECONDS", d.connect_timeout, environ),
            read_timeout=env_number("HTTP_TIMEOUT_SECONDS", d.read_timeout, environ),
            max_attempts=int(env_number("HTTP_MAX_ATTEMPTS", d.max_attempts, environ, integer=True)),
            deadline=env_number("HTTP_DEADLINE_SECONDS", d.deadline, environ),
            backoff=env_number("HTTP_BACKOFF_SECONDS", d.backoff, environ),
            backoff_max=env_number("HTTP_BACKOFF_MAX_SECONDS", d.backoff_max, environ),
        )
