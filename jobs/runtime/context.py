"""What a CloudAct API job's `run` gets: the validated configuration and the API client."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from jobs.runtime.config import HttpSettings, api_url, endpoint_path, env_str, environment_name, require_env
from jobs.runtime.errors import ConfigError
from jobs.runtime.http import HttpClient
from jobs.runtime.redaction import add_secret
from jobs.runtime.secret_manager import access_secret, secret_version_name

ROOT_KEY_HINT = "check CA_ROOT_API_KEY, or the secret CA_ROOT_API_KEY_SECRET names, for this environment"


class Context:
    """What a script's `run` gets: the validated configuration and the CloudAct API client."""

    def __init__(
        self,
        project_id: str,
        environment: str,
        api_url: str,
        endpoint: str,
        http: HttpSettings,
        environ: Mapping[str, str],
    ):
        self.project_id = project_id
        self.environment = environment
        self.api_url = api_url
        self.endpoint = endpoint
        self.http = http
        self.environ = environ
        self._root_key: str | None = None
        self._api: HttpClient | None = None

    def __repr__(self) -> str:  # never the key
        return (
            f"Context(project_id={self.project_id!r}, api_url={self.api_url!r}, endpoint={self.endpoint!r})"
        )

    def root_key(self) -> str:
        """CA_ROOT_API_KEY, else the secret CA_ROOT_API_KEY_SECRET names (read once)."""
        if self._root_key is None:
            key = env_str("CA_ROOT_API_KEY", self.environ)
            if key:
                add_secret(key)
                if any(c.isspace() or not c.isprintable() for c in key):
                    raise ConfigError(
                        "CA_ROOT_API_KEY holds whitespace or control characters; a key has none"
                    )
            else:
                ref = env_str("CA_ROOT_API_KEY_SECRET", self.environ)
                if not ref:
                    raise ConfigError(
                        "CA_ROOT_API_KEY is not set (nor CA_ROOT_API_KEY_SECRET to read it from)"
                    )
                key = access_secret(secret_version_name(ref, self.project_id), self.http)
            self._root_key = key
        return self._root_key

    def api(self) -> HttpClient:
        """The CloudAct API client, authenticated with the root key (X-CA-Root-Key)."""
        if self._api is None:
            self._api = HttpClient(
                self.api_url,
                # docs/cloudact-api.md: every admin call carries both, a body-less POST too.
                headers={"X-CA-Root-Key": self.root_key(), "Content-Type": "application/json"},
                settings=self.http,
                name="CloudAct API",
                auth_hint=ROOT_KEY_HINT,
            )
        return self._api


def load_context(
    endpoint: str, http_defaults: HttpSettings | None = None, environ: Mapping[str, str] | None = None
) -> Context:
    """Validate the configuration every API job needs; the key is read when first used."""
    environ = os.environ if environ is None else environ
    project = require_env("GCP_PROJECT_ID", environ, "the GCP project the job runs in")
    if not re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", project):
        raise ConfigError(f"GCP_PROJECT_ID={project!r} is not a valid project id (6-30 of a-z, 0-9, -)")
    return Context(
        project_id=project,
        environment=environment_name(environ),
        api_url=api_url(environ),
        endpoint=endpoint_path(endpoint, environ),
        http=HttpSettings.from_env(http_defaults, environ),
        environ=environ,
    )
