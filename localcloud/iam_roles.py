"""The predefined IAM roles localcloud knows, with their permissions (data).

From Google's IAM roles reference (https://cloud.google.com/iam/docs/roles-permissions), limited to
the permissions of the APIs localcloud emulates or is about to (Cloud Run, Scheduler, Secret Manager,
Logging, BigQuery, IAM, Resource Manager, Cloud Storage, Cloud Build, Artifact Registry, Monitoring): a
role here holds exactly the permissions of `PERMISSIONS` that Google's role of that name holds.

The basic roles are derived, and approximate Google's:
- `roles/owner`: every permission of `PERMISSIONS`.
- `roles/editor`: every permission except the `*.setIamPolicy` ones, `secretmanager.versions.access`,
  the token-minting ones (`iam.serviceAccounts.getAccessToken`, `signBlob`, `signJwt`,
  `getOpenIdToken`, `implicitDelegation`) and `resourcemanager.projects.setIamPolicy` (Google's editor
  lacks them too; it has thousands of other permissions localcloud does not model).
- `roles/viewer`: every `.get`, `.list` and `.getIamPolicy` permission except
  `secretmanager.versions.access` and `bigquery.tables.getData` (Google's viewer reads table data
  only through a dataset's `projectReaders` access entry, which localcloud honours).
"""

from __future__ import annotations

_RUN_JOB_READ = ("run.jobs.get", "run.jobs.list", "run.jobs.getIamPolicy")
_RUN_EXEC_READ = ("run.executions.get", "run.executions.list", "run.tasks.get", "run.tasks.list")
_RUN_READ = (
    *_RUN_JOB_READ,
    *_RUN_EXEC_READ,
    "run.services.get",
    "run.services.list",
    "run.services.getIamPolicy",
    "run.operations.get",
    "run.operations.list",
    "run.locations.list",
    "run.revisions.get",
    "run.revisions.list",
    "run.configurations.get",
    "run.configurations.list",
    "run.routes.get",
    "run.routes.list",
)
_RUN_WRITE = (
    "run.jobs.create",
    "run.jobs.update",
    "run.jobs.delete",
    "run.jobs.run",
    "run.jobs.runWithOverrides",
    "run.executions.delete",
    "run.executions.cancel",
    "run.operations.delete",
    "run.services.create",
    "run.services.update",
    "run.services.delete",
    "run.revisions.delete",
    "run.routes.invoke",
)
_RUN_IAM = ("run.jobs.setIamPolicy", "run.services.setIamPolicy")

_SM_READ = (
    "secretmanager.secrets.get",
    "secretmanager.secrets.list",
    "secretmanager.secrets.getIamPolicy",
    "secretmanager.versions.get",
    "secretmanager.versions.list",
    "secretmanager.locations.get",
    "secretmanager.locations.list",
)
_SM_ALL = (
    *_SM_READ,
    "secretmanager.secrets.create",
    "secretmanager.secrets.update",
    "secretmanager.secrets.delete",
    "secretmanager.secrets.setIamPolicy",
    "secretmanager.versions.add",
    "secretmanager.versions.enable",
    "secretmanager.versions.disable",
    "secretmanager.versions.destroy",
    "secretmanager.versions.access",
)

_BQ_DATA_VIEW = (
    "bigquery.datasets.get",
    "bigquery.datasets.getIamPolicy",
    "bigquery.tables.get",
    "bigquery.tables.getData",
    "bigquery.tables.getIamPolicy",
    "bigquery.tables.list",
    "bigquery.tables.export",
    "bigquery.routines.get",
    "bigquery.routines.list",
    "bigquery.models.getData",
    "bigquery.models.getMetadata",
    "bigquery.models.list",
)
_BQ_DATA_EDIT = (
    *_BQ_DATA_VIEW,
    "bigquery.datasets.create",
    "bigquery.tables.create",
    "bigquery.tables.delete",
    "bigquery.tables.update",
    "bigquery.tables.updateData",
    "bigquery.routines.create",
    "bigquery.routines.delete",
    "bigquery.routines.update",
    "bigquery.models.create",
    "bigquery.models.delete",
    "bigquery.models.updateData",
    "bigquery.models.updateMetadata",
)
_BQ_DATA_OWN = (
    *_BQ_DATA_EDIT,
    "bigquery.datasets.update",
    "bigquery.datasets.delete",
    "bigquery.datasets.setIamPolicy",
    "bigquery.tables.setIamPolicy",
)
_BQ_ALL = (
    *_BQ_DATA_OWN,
    "bigquery.jobs.create",
    "bigquery.jobs.get",
    "bigquery.jobs.list",
    "bigquery.jobs.update",
)

_SA_READ = ("iam.serviceAccounts.get", "iam.serviceAccounts.list")
_SA_ADMIN = (
    *_SA_READ,
    "iam.serviceAccounts.create",
    "iam.serviceAccounts.delete",
    "iam.serviceAccounts.update",
    "iam.serviceAccounts.disable",
    "iam.serviceAccounts.enable",
    "iam.serviceAccounts.undelete",
    "iam.serviceAccounts.getIamPolicy",
    "iam.serviceAccounts.setIamPolicy",
)
_SA_TOKENS = (
    "iam.serviceAccounts.getAccessToken",
    "iam.serviceAccounts.getOpenIdToken",
    "iam.serviceAccounts.implicitDelegation",
    "iam.serviceAccounts.signBlob",
    "iam.serviceAccounts.signJwt",
)
_SA_KEYS = (
    "iam.serviceAccountKeys.create",
    "iam.serviceAccountKeys.delete",
    "iam.serviceAccountKeys.get",
    "iam.serviceAccountKeys.list",
)
_PROJECT_READ = ("resourcemanager.projects.get", "resourcemanager.projects.list")

_SCHED_READ = (
    "cloudscheduler.jobs.get",
    "cloudscheduler.jobs.list",
    "cloudscheduler.locations.get",
    "cloudscheduler.locations.list",
)
_SCHED_ALL = (
    *_SCHED_READ,
    "cloudscheduler.jobs.create",
    "cloudscheduler.jobs.update",
    "cloudscheduler.jobs.delete",
    "cloudscheduler.jobs.enable",
    "cloudscheduler.jobs.pause",
    "cloudscheduler.jobs.run",
    "cloudscheduler.jobs.fullAccessor",
)

_LOG_READ = (
    "logging.logEntries.list",
    "logging.logs.list",
    "logging.logServices.list",
    "logging.logServiceIndexes.list",
    "logging.buckets.get",
    "logging.buckets.list",
)
_LOG_WRITE = ("logging.logEntries.create", "logging.logEntries.route")

_STORAGE_OBJECT_VIEW = (
    "storage.objects.get",
    "storage.objects.list",
    "storage.folders.get",
    "storage.folders.list",
    "storage.managedFolders.get",
    "storage.managedFolders.list",
)
_STORAGE_OBJECT_ALL = (
    *_STORAGE_OBJECT_VIEW,
    "storage.objects.create",
    "storage.objects.delete",
    "storage.objects.update",
    "storage.objects.getIamPolicy",
    "storage.objects.setIamPolicy",
    "storage.multipartUploads.create",
    "storage.multipartUploads.abort",
    "storage.multipartUploads.list",
    "storage.multipartUploads.listParts",
    "storage.folders.create",
    "storage.folders.delete",
    "storage.managedFolders.create",
    "storage.managedFolders.delete",
)
_STORAGE_ALL = (
    *_STORAGE_OBJECT_ALL,
    "storage.buckets.create",
    "storage.buckets.delete",
    "storage.buckets.get",
    "storage.buckets.list",
    "storage.buckets.update",
    "storage.buckets.getIamPolicy",
    "storage.buckets.setIamPolicy",
)

_BUILD_EDIT = (
    "cloudbuild.builds.create",
    "cloudbuild.builds.get",
    "cloudbuild.builds.list",
    "cloudbuild.builds.update",
    "cloudbuild.operations.get",
    "cloudbuild.operations.list",
)

_AR_READ = (
    "artifactregistry.repositories.get",
    "artifactregistry.repositories.list",
    "artifactregistry.repositories.downloadArtifacts",
    "artifactregistry.repositories.getIamPolicy",
    "artifactregistry.dockerimages.get",
    "artifactregistry.dockerimages.list",
    "artifactregistry.files.get",
    "artifactregistry.files.list",
    "artifactregistry.packages.get",
    "artifactregistry.packages.list",
    "artifactregistry.tags.get",
    "artifactregistry.tags.list",
    "artifactregistry.versions.get",
    "artifactregistry.versions.list",
    "artifactregistry.locations.get",
    "artifactregistry.locations.list",
)
_AR_WRITE = (
    *_AR_READ,
    "artifactregistry.repositories.uploadArtifacts",
    "artifactregistry.tags.create",
    "artifactregistry.tags.update",
)
_AR_ALL = (
    *_AR_WRITE,
    "artifactregistry.repositories.create",
    "artifactregistry.repositories.update",
    "artifactregistry.repositories.delete",
    "artifactregistry.repositories.deleteArtifacts",
    "artifactregistry.repositories.setIamPolicy",
    "artifactregistry.packages.delete",
    "artifactregistry.tags.delete",
    "artifactregistry.versions.delete",
)

_MON_POLICY_READ = ("monitoring.alertPolicies.get", "monitoring.alertPolicies.list")
_MON_POLICY_ALL = (
    *_MON_POLICY_READ,
    "monitoring.alertPolicies.create",
    "monitoring.alertPolicies.update",
    "monitoring.alertPolicies.delete",
)
_MON_CHANNEL_READ = (
    "monitoring.notificationChannels.get",
    "monitoring.notificationChannels.list",
    "monitoring.notificationChannelDescriptors.get",
    "monitoring.notificationChannelDescriptors.list",
)
_MON_CHANNEL_ALL = (
    *_MON_CHANNEL_READ,
    "monitoring.notificationChannels.create",
    "monitoring.notificationChannels.update",
    "monitoring.notificationChannels.delete",
    "monitoring.notificationChannels.getVerificationCode",
    "monitoring.notificationChannels.sendVerificationCode",
    "monitoring.notificationChannels.verify",
)
_MON_METRIC_WRITE = (
    "monitoring.metricDescriptors.create",
    "monitoring.metricDescriptors.get",
    "monitoring.metricDescriptors.list",
    "monitoring.monitoredResourceDescriptors.get",
    "monitoring.monitoredResourceDescriptors.list",
    "monitoring.timeSeries.create",
)
_MON_READ = (
    *_MON_POLICY_READ,
    *_MON_CHANNEL_READ,
    "monitoring.metricDescriptors.get",
    "monitoring.metricDescriptors.list",
    "monitoring.monitoredResourceDescriptors.get",
    "monitoring.monitoredResourceDescriptors.list",
    "monitoring.timeSeries.list",
    "monitoring.alerts.get",
    "monitoring.alerts.list",
)
_MON_ALL = (
    *_MON_READ,
    *_MON_POLICY_ALL,
    *_MON_CHANNEL_ALL,
    *_MON_METRIC_WRITE,
    "monitoring.metricDescriptors.delete",
)

_ROLES: dict[str, tuple[str, ...]] = {
    "roles/run.admin": (*_RUN_READ, *_RUN_WRITE, *_RUN_IAM, *_PROJECT_READ),
    "roles/run.developer": (*_RUN_READ, *_RUN_WRITE, *_PROJECT_READ),
    "roles/run.viewer": (*_RUN_READ, *_PROJECT_READ),
    "roles/run.invoker": ("run.jobs.run", "run.routes.invoke"),
    "roles/run.jobsExecutor": ("run.jobs.run", "run.jobs.get", *_RUN_EXEC_READ, "run.executions.cancel"),
    "roles/run.jobsExecutorWithOverrides": (
        "run.jobs.run",
        "run.jobs.runWithOverrides",
        "run.jobs.get",
        *_RUN_EXEC_READ,
        "run.executions.cancel",
    ),
    "roles/secretmanager.secretAccessor": ("secretmanager.versions.access",),
    "roles/secretmanager.admin": (*_SM_ALL, *_PROJECT_READ),
    "roles/secretmanager.viewer": (*_SM_READ, *_PROJECT_READ),
    "roles/bigquery.admin": (*_BQ_ALL, *_PROJECT_READ),
    "roles/bigquery.dataEditor": (*_BQ_DATA_EDIT, *_PROJECT_READ),
    "roles/bigquery.dataViewer": (*_BQ_DATA_VIEW, *_PROJECT_READ),
    "roles/bigquery.dataOwner": (*_BQ_DATA_OWN, *_PROJECT_READ),
    "roles/bigquery.jobUser": ("bigquery.jobs.create", *_PROJECT_READ),
    "roles/bigquery.user": (
        "bigquery.jobs.create",
        "bigquery.jobs.list",
        "bigquery.datasets.create",
        "bigquery.datasets.get",
        "bigquery.datasets.getIamPolicy",
        "bigquery.models.list",
        "bigquery.routines.list",
        "bigquery.tables.list",
        *_PROJECT_READ,
    ),
    "roles/iam.serviceAccountUser": ("iam.serviceAccounts.actAs", *_SA_READ, *_PROJECT_READ),
    "roles/iam.serviceAccountAdmin": (*_SA_ADMIN, *_PROJECT_READ),
    "roles/iam.serviceAccountTokenCreator": (*_SA_TOKENS, *_SA_READ, *_PROJECT_READ),
    "roles/resourcemanager.projectIamAdmin": (
        "resourcemanager.projects.get",
        "resourcemanager.projects.getIamPolicy",
        "resourcemanager.projects.setIamPolicy",
    ),
    "roles/cloudscheduler.admin": (*_SCHED_ALL, *_PROJECT_READ),
    "roles/cloudscheduler.viewer": (*_SCHED_READ, *_PROJECT_READ),
    "roles/logging.viewer": (*_LOG_READ, *_PROJECT_READ),
    "roles/logging.logWriter": _LOG_WRITE,
    "roles/cloudbuild.builds.editor": (*_BUILD_EDIT, *_PROJECT_READ),
    "roles/cloudbuild.builds.builder": (
        *_BUILD_EDIT,
        *_AR_WRITE,
        *_STORAGE_OBJECT_ALL,
        "storage.buckets.get",
        "storage.buckets.list",
        "storage.buckets.create",
        *_LOG_WRITE,
        *_PROJECT_READ,
    ),
    "roles/storage.admin": (*_STORAGE_ALL, *_PROJECT_READ),
    "roles/storage.objectAdmin": _STORAGE_OBJECT_ALL,
    "roles/storage.objectViewer": _STORAGE_OBJECT_VIEW,
    "roles/artifactregistry.reader": _AR_READ,
    "roles/artifactregistry.writer": _AR_WRITE,
    "roles/artifactregistry.admin": _AR_ALL,
    "roles/monitoring.viewer": (*_MON_READ, *_PROJECT_READ),
    "roles/monitoring.editor": (*_MON_ALL, *_PROJECT_READ),
    "roles/monitoring.admin": (*_MON_ALL, *_PROJECT_READ),
    "roles/monitoring.alertPolicyViewer": _MON_POLICY_READ,
    "roles/monitoring.alertPolicyEditor": _MON_POLICY_ALL,
    "roles/monitoring.notificationChannelViewer": _MON_CHANNEL_READ,
    "roles/monitoring.notificationChannelEditor": _MON_CHANNEL_ALL,
    "roles/monitoring.metricWriter": _MON_METRIC_WRITE,
}

# Every permission localcloud knows: what the roles above hold, plus the ones only the basic roles
# (and custom roles) grant.
PERMISSIONS: frozenset[str] = frozenset(p for perms in _ROLES.values() for p in perms) | frozenset(
    (
        *_SA_ADMIN,
        *_SA_TOKENS,
        *_SA_KEYS,
        "iam.serviceAccounts.actAs",
        "resourcemanager.projects.getIamPolicy",
        "resourcemanager.projects.setIamPolicy",
        "resourcemanager.projects.update",
        "resourcemanager.projects.delete",
    )
)

_NOT_EDITOR = {
    "secretmanager.versions.access",
    "resourcemanager.projects.setIamPolicy",
    *_SA_TOKENS,
}
_NOT_VIEWER = {"secretmanager.versions.access", "bigquery.tables.getData"}

ROLES: dict[str, frozenset[str]] = {
    "roles/owner": PERMISSIONS,
    "roles/editor": frozenset(
        p for p in PERMISSIONS if not p.endswith(".setIamPolicy") and p not in _NOT_EDITOR
    ),
    "roles/viewer": frozenset(
        p
        for p in PERMISSIONS
        if p.rsplit(".", 1)[1] in ("get", "list", "getIamPolicy") and p not in _NOT_VIEWER
    ),
    **{role: frozenset(perms) for role, perms in _ROLES.items()},
}

# The basic roles' titles, as `specialGroup` access entries of BigQuery name their holders.
BASIC = {"roles/owner": "projectOwner", "roles/editor": "projectEditor", "roles/viewer": "projectViewer"}


def permissions_of(role: str) -> frozenset[str]:
    """The permissions a role grants (empty for a role localcloud does not know)."""
    return ROLES.get(role, frozenset())


def roles_granting(permission: str) -> list[str]:
    """The predefined roles that grant a permission, narrowest first (for messages and hints)."""
    return sorted((r for r, perms in ROLES.items() if permission in perms), key=lambda r: len(ROLES[r]))
