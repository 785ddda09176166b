"""The projects localcloud hosts: `cloudact-local` (ENV=local) and copies of the real environments'
projects, `cloudact-testing-1` (test, stage) and `cloudact-prod`, for `REHEARSE=1` (the unchanged
inventory against localcloud's copy of its project).

Each project has its own issued key (`<state>/keys/`, listed in `<state>/keys.json`), its secrets
under its environment's names, the API's Cloud Run service with its `*.run.app` URL served by the
emulated CloudAct API of that environment, and its own state wherever state is keyed by project
(Cloud Run, Scheduler, Secret Manager, BigQuery, Logging, IAM). With IAM off, a principal acts only
in its own project; with `LOCALCLOUD_IAM=enforce` its bindings decide (localcloud/iam.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from localcloud.config import KEY_FILE_NAME, PROJECT

if TYPE_CHECKING:
    from localcloud.auth import Auth


def _run_app_host(service: str, project: str) -> str:
    """`<service>-<hash>-uc.a.run.app`, as Cloud Run names a service's URL (a fixed hash per project)."""
    digest = base64.b32encode(hashlib.sha256(f"{project}/{service}".encode()).digest()).decode().lower()
    return f"{service}-{digest[:10]}-uc.a.run.app"


@dataclass(frozen=True)
class HostedProject:
    project: str
    envs: tuple[str, ...]  # the inventories this project stands in for
    environment: str  # the ENVIRONMENT word: local, staging, production
    secret_suffix: str  # ca-root-api-key-<suffix>; the org datasets are <org>_<suffix>
    supabase_suffix: str  # supabase-access-token-<suffix>
    api_service: str  # the API's Cloud Run service
    api_host: str  # the host of that service's `uri`
    api_hosts: tuple[str, ...] = ()  # more hosts the environment's API answers on
    key_file_name: str = ""

    @property
    def api_uri(self) -> str:
        return f"https://{self.api_host}"

    @property
    def hosts(self) -> tuple[str, ...]:
        return (*self.api_hosts, self.api_host)

    @property
    def root_key_secret(self) -> str:
        return f"ca-root-api-key-{self.secret_suffix}"

    @property
    def supabase_secret(self) -> str:
        return f"supabase-access-token-{self.supabase_suffix}"

    @property
    def alerts_webhook_secret(self) -> str:
        """The secret holding the URL (with its token) of the environment's alert webhook: the local
        inventory's notification channel (cloudact_alert_channels) into localcloud's receiver."""
        return f"cloudact-alerts-webhook-{self.secret_suffix}"

    @property
    def service_account(self) -> str:
        """The account of the key localcloud issues for the project: its owner (roles/owner), not the
        jobs' runtime account (`cloudact-jobs@`, which only a converge creates)."""
        return f"cloudact-operator@{self.project}.iam.gserviceaccount.com"

    @property
    def number(self) -> str:
        """The project number (12 digits, fixed per project ID), as Google gives every project one."""
        digest = int(hashlib.sha256(f"project-number/{self.project}".encode()).hexdigest(), 16)
        return str(10**11 + digest % (9 * 10**11))

    @property
    def compute_account(self) -> str:
        """Compute Engine's default account: what a Cloud Run job without a serviceAccount runs as."""
        return f"{self.number}-compute@developer.gserviceaccount.com"

    @property
    def key_file(self) -> str:
        return self.key_file_name or f"cloudact-operator-{self.project}.json"


PROJECTS: tuple[HostedProject, ...] = (
    # The local one exactly as before: its key file, its API hosts and its service URL are relied on.
    HostedProject(
        PROJECT,
        ("local",),
        "local",
        "local",
        "local",
        "cloudact-api-service-local",
        "cloudact-api-service-local-uc.a.run.app",
        ("api.cloudact.local",),
        KEY_FILE_NAME,
    ),
    HostedProject(
        "cloudact-testing-1",
        ("test", "stage"),
        "staging",
        "test",
        "stage",
        "cloudact-api-service-test",
        _run_app_host("cloudact-api-service-test", "cloudact-testing-1"),
    ),
    HostedProject(
        "cloudact-prod",
        ("prod",),
        "production",
        "prod",
        "prod",
        "cloudact-api-service-prod",
        _run_app_host("cloudact-api-service-prod", "cloudact-prod"),
        ("api.cloudact.ai",),
    ),
)
BY_ID = {p.project: p for p in PROJECTS}
IDS = tuple(BY_ID)
BY_NUMBER = {p.number: p for p in PROJECTS}


def project_id(project: str) -> str:
    """A hosted project's ID for its ID or its number (anything else unchanged)."""
    hosted = BY_NUMBER.get(project)
    return hosted.project if hosted else project


def project_of(principal: str) -> str:
    """The project of a service account (`name@<project>.iam.gserviceaccount.com`, or a hosted
    project's `<number>-compute@developer.gserviceaccount.com`), else ''."""
    name, _, domain = principal.rpartition("@")
    suffix = ".iam.gserviceaccount.com"
    if domain == "developer.gserviceaccount.com" and name.endswith("-compute"):
        hosted = BY_NUMBER.get(name.removesuffix("-compute"))
        return hosted.project if hosted else ""
    return domain.removesuffix(suffix) if domain.endswith(suffix) else ""


def access_error(project: str, principal: str | None = None) -> str:
    """Why `principal` may not act in `project` ('' when it may): the project is not hosted, or the
    principal is another project's (localcloud has no IAM: an account acts in its own project only)."""
    if project not in BY_ID:
        return f"Permission denied on resource project {project} (localcloud serves only {', '.join(IDS)})."
    if principal is not None and project_of(principal) != project:
        return (
            f"Permission denied on resource project {project}: {principal} belongs to "
            f"{project_of(principal) or 'no project'} (localcloud: an account acts in its own project only)."
        )
    return ""


def issue_keys(auth: Auth, keys_dir: Path) -> dict[str, Path]:
    """Each hosted project's key file, issued (once, at the first start that lacks it, or whose key is
    not the operator's) under keys_dir."""
    found = {}
    for hosted in PROJECTS:
        path = keys_dir / hosted.key_file
        if not path.exists() or json.loads(path.read_text()).get("client_email") != hosted.service_account:
            auth.issue_key(hosted.service_account, path)
        found[hosted.project] = path
    return found
