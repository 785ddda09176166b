"""Every method localcloud serves for a Google API names the IAM permission Google checks for it, and
every such permission is one the role catalogue knows."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from localcloud import iam_roles
from localcloud.conformance import DOCUMENTS, EXEMPT, find_method, policy_methods, sample_path, service_routes
from localcloud.iam import mode_from_env
from localcloud.server import LocalCloud
from tests.conftest import localcloud_state_dir

# The predefined roles the toolkit and its tests rely on (issue 12), all in the catalogue.
NEEDED_ROLES = """owner editor viewer run.admin run.developer run.invoker run.viewer run.jobsExecutor
run.jobsExecutorWithOverrides secretmanager.secretAccessor secretmanager.admin secretmanager.viewer
bigquery.admin bigquery.dataEditor bigquery.dataViewer bigquery.dataOwner bigquery.jobUser bigquery.user
iam.serviceAccountUser iam.serviceAccountAdmin iam.serviceAccountTokenCreator
resourcemanager.projectIamAdmin cloudscheduler.admin cloudscheduler.viewer logging.viewer
logging.logWriter cloudbuild.builds.editor cloudbuild.builds.builder storage.admin storage.objectAdmin
storage.objectViewer artifactregistry.reader artifactregistry.writer artifactregistry.admin""".split()


@pytest.fixture(scope="module")
def cloud():
    root = localcloud_state_dir()
    built = LocalCloud(root / "state", 0)  # constructed, never started: only its route tables
    try:
        yield built
    finally:
        built.server.server_close()
        shutil.rmtree(root, ignore_errors=True)


def served_methods(cloud) -> dict[str, set[str]]:
    """Per service, the ids of the discovery methods its routes (and IAM's policy methods) are."""
    out: dict[str, set[str]] = {}
    for svc in cloud.services:
        if svc.name in EXEMPT:
            continue
        ids = out.setdefault(svc.name, set())
        for http_method, template in service_routes(svc):
            found = find_method(svc.name, http_method, sample_path(template))
            assert found is not None, (
                f"{svc.name}: {http_method} {template} is no method of {DOCUMENTS[svc.name]}"
            )
            ids.add(found[1].id)
        ids.update(method_id for _, method_id in policy_methods(svc))
    return out


def test_every_route_of_every_google_api_has_its_permission_mapped(cloud):
    served = served_methods(cloud)
    assert {"run", "scheduler", "secretmanager", "logging", "bigquery", "iam", "resourcemanager"} <= set(
        served
    )
    missing = [
        f"{name}: {method_id}"
        for name, ids in sorted(served.items())
        for method_id in sorted(ids)
        if method_id not in getattr(cloud.service(name), "permissions", {})
    ]
    assert not missing, (
        "routes with no IAM permission mapped (add them to the service's `permissions`):\n"
        + ("\n".join(missing))
    )


def test_every_mapped_permission_is_known_to_the_role_catalogue(cloud):
    unknown = [
        f"{svc.name}: {method_id} -> {permission}"
        for svc in cloud.services
        for method_id, permission in getattr(svc, "permissions", {}).items()
        if permission and permission not in iam_roles.PERMISSIONS
    ]
    assert not unknown, "permissions no role in localcloud/iam_roles.py holds:\n" + "\n".join(unknown)


def test_the_policy_methods_iam_serves_are_the_documents_methods(cloud):
    ids = {method_id for svc in cloud.services for _, method_id in policy_methods(svc)}
    assert {
        "run.projects.locations.jobs.getIamPolicy",
        "run.projects.locations.jobs.setIamPolicy",
        "run.projects.locations.jobs.testIamPermissions",
        "secretmanager.projects.secrets.getIamPolicy",
        "secretmanager.projects.secrets.setIamPolicy",
        "iam.projects.serviceAccounts.setIamPolicy",
        "cloudresourcemanager.projects.getIamPolicy",
        "cloudresourcemanager.projects.setIamPolicy",
        "cloudresourcemanager.projects.testIamPermissions",
    } <= ids


def test_the_role_catalogue_has_every_role_used_here_and_the_basic_roles_differ_as_on_google():
    assert [r for r in NEEDED_ROLES if f"roles/{r}" not in iam_roles.ROLES] == []
    owner, editor, viewer = (iam_roles.permissions_of(f"roles/{r}") for r in ("owner", "editor", "viewer"))
    assert viewer < editor < owner
    assert "run.jobs.setIamPolicy" in owner - editor
    assert "secretmanager.versions.access" in owner - editor
    assert "iam.serviceAccounts.actAs" in editor
    assert "bigquery.tables.getData" not in viewer and "run.jobs.get" in viewer
    assert iam_roles.permissions_of("roles/run.invoker") == {"run.jobs.run", "run.routes.invoke"}
    assert iam_roles.permissions_of("roles/secretmanager.secretAccessor") == {"secretmanager.versions.access"}
    assert iam_roles.roles_granting("run.jobs.runWithOverrides")[0] == "roles/run.jobsExecutorWithOverrides"


def test_the_switch_is_enforce_or_off_and_enforce_by_default(monkeypatch):
    monkeypatch.delenv("LOCALCLOUD_IAM", raising=False)
    assert mode_from_env() == "enforce"
    monkeypatch.setenv("LOCALCLOUD_IAM", "enforce")
    assert mode_from_env() == "enforce"
    monkeypatch.setenv("LOCALCLOUD_IAM", "strict")
    with pytest.raises(ValueError, match="LOCALCLOUD_IAM='strict' is not valid: use one of enforce, off"):
        mode_from_env()


def test_a_bad_switch_value_stops_the_server_at_start_with_one_line_and_writes_no_state(tmp_path):
    env = {**os.environ, "LOCALCLOUD_IAM": "strict"}
    proc = subprocess.run(
        [sys.executable, "-m", "localcloud", "serve", "--state-dir", str(tmp_path / "state")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "LOCALCLOUD_IAM='strict' is not valid: use one of enforce, off" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "state" / "keys").exists() and not (tmp_path / "state" / "iam").exists()
