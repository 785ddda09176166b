"""The root key from Secret Manager: a secret id or resource name, read over REST with ADC."""

from __future__ import annotations

import re

from jobs.runtime.config import HttpSettings
from jobs.runtime.errors import ConfigError, HttpError, JobFailed, first_line
from jobs.runtime.http import HttpClient, new_session
from jobs.runtime.redaction import add_secret

SECRET_MANAGER_URL = "https://secretmanager.googleapis.com/v1"  # noqa: S105 - a URL, not a password
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"

_SECRET_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
_SECRET_NAME = re.compile(r"projects/([^/]+)/secrets/([A-Za-z0-9_-]{1,255})(?:/versions/([A-Za-z0-9_-]+))?")


def secret_version_name(ref: str, project: str, variable: str = "CA_ROOT_API_KEY_SECRET") -> str:
    """`projects/P/secrets/S/versions/V` from a secret id (in `project`) or a full resource name."""
    if _SECRET_ID.fullmatch(ref):
        return f"projects/{project}/secrets/{ref}/versions/latest"
    match = _SECRET_NAME.fullmatch(ref)
    if not match:
        raise ConfigError(
            f"{variable}={ref!r} is not valid; use a secret id (letters, digits, - and _) "
            "or projects/PROJECT/secrets/SECRET[/versions/VERSION]"
        )
    return f"projects/{match[1]}/secrets/{match[2]}/versions/{match[3] or 'latest'}"


def access_secret(name: str, http: HttpSettings, variable: str = "CA_ROOT_API_KEY_SECRET") -> str:
    """The text of a Secret Manager secret version, read over REST with application default credentials."""
    # Imported here: only this path needs google.auth's credential discovery and token transport.
    import base64
    import binascii

    import google.auth
    import google.auth.exceptions
    from google.auth.transport.requests import Request

    session = new_session()
    try:
        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except google.auth.exceptions.DefaultCredentialsError as exc:
        raise ConfigError(
            f"{variable} is set but no Google credentials were found to read it: {first_line(exc)}"
        ) from None
    try:
        # One token (the job reads one secret, once), fetched over the session the read then uses.
        credentials.refresh(Request(session))
    except google.auth.exceptions.GoogleAuthError as exc:
        raise JobFailed(f"cannot get a Google access token to read {name}: {first_line(exc)}") from None
    add_secret(credentials.token)
    client = HttpClient(
        SECRET_MANAGER_URL,
        headers={"Authorization": f"Bearer {credentials.token}"},
        settings=http,
        session=session,
        name="Secret Manager",
    )
    try:
        data = client.get(f"/{name}:access")
    except HttpError as exc:
        if exc.status in (400, 403, 404):
            raise ConfigError(f"{variable}: cannot read {name}: {exc.status} {exc.detail}".rstrip()) from None
        raise
    try:
        value = base64.b64decode(data["payload"]["data"], validate=True).decode("utf-8")
    except (KeyError, TypeError, ValueError, binascii.Error, UnicodeDecodeError):
        raise JobFailed(f"Secret Manager returned no readable payload for {name}") from None
    # Secrets are often created with `echo`, which leaves a newline that is not part of the key.
    value = value.strip()
    if not value:
        raise ConfigError(f"{variable}: {name} is empty")
    add_secret(value)
    return value
