"""The IAM permission Google checks for each discovery method localcloud's services serve (data).

Each Service subclass declares `permissions` (method id -> permission; `""`: any authenticated
caller, as `testIamPermissions`); the ones for the services that predate IAM live here so that their
modules carry one line each. From each API's access-control page (e.g.
https://cloud.google.com/run/docs/reference/iam/permissions,
https://cloud.google.com/secret-manager/docs/access-control,
https://cloud.google.com/scheduler/docs/reference/iam/permissions,
https://cloud.google.com/bigquery/docs/access-control).
"""

from __future__ import annotations

_V2 = "run.projects.locations"
RUN: dict[str, str] = {
    f"{_V2}.jobs.create": "run.jobs.create",
    f"{_V2}.jobs.get": "run.jobs.get",
    f"{_V2}.jobs.list": "run.jobs.list",
    f"{_V2}.jobs.patch": "run.jobs.update",
    f"{_V2}.jobs.delete": "run.jobs.delete",
    f"{_V2}.jobs.run": "run.jobs.run",  # with overrides also run.jobs.runWithOverrides (iam_enforce)
    f"{_V2}.jobs.getIamPolicy": "run.jobs.getIamPolicy",
    f"{_V2}.jobs.setIamPolicy": "run.jobs.setIamPolicy",
    f"{_V2}.jobs.testIamPermissions": "",
    f"{_V2}.jobs.executions.get": "run.executions.get",
    f"{_V2}.jobs.executions.list": "run.executions.list",
    f"{_V2}.jobs.executions.delete": "run.executions.delete",
    f"{_V2}.jobs.executions.cancel": "run.executions.cancel",
    f"{_V2}.jobs.executions.tasks.get": "run.tasks.get",
    f"{_V2}.jobs.executions.tasks.list": "run.tasks.list",
    f"{_V2}.operations.get": "run.operations.get",
    f"{_V2}.operations.list": "run.operations.list",
    f"{_V2}.operations.delete": "run.operations.delete",
    f"{_V2}.operations.wait": "run.operations.get",
    f"{_V2}.services.get": "run.services.get",
    f"{_V2}.services.list": "run.services.list",
    # v1 (Knative), as gcloud speaks it; its projects.locations.jobs IAM methods are gcloud's too
    "run.namespaces.jobs.create": "run.jobs.create",
    "run.namespaces.jobs.get": "run.jobs.get",
    "run.namespaces.jobs.list": "run.jobs.list",
    "run.namespaces.jobs.replaceJob": "run.jobs.update",
    "run.namespaces.jobs.delete": "run.jobs.delete",
    "run.namespaces.jobs.run": "run.jobs.run",
    "run.namespaces.executions.get": "run.executions.get",
    "run.namespaces.executions.list": "run.executions.list",
    "run.namespaces.executions.delete": "run.executions.delete",
    "run.namespaces.executions.cancel": "run.executions.cancel",
    "run.namespaces.tasks.get": "run.tasks.get",
    "run.namespaces.tasks.list": "run.tasks.list",
}

_S = "cloudscheduler.projects.locations"
SCHEDULER: dict[str, str] = {
    f"{_S}.get": "cloudscheduler.locations.get",
    f"{_S}.list": "cloudscheduler.locations.list",
    f"{_S}.jobs.create": "cloudscheduler.jobs.create",
    f"{_S}.jobs.get": "cloudscheduler.jobs.get",
    f"{_S}.jobs.list": "cloudscheduler.jobs.list",
    f"{_S}.jobs.patch": "cloudscheduler.jobs.update",
    f"{_S}.jobs.delete": "cloudscheduler.jobs.delete",
    f"{_S}.jobs.pause": "cloudscheduler.jobs.pause",
    f"{_S}.jobs.resume": "cloudscheduler.jobs.enable",
    f"{_S}.jobs.run": "cloudscheduler.jobs.run",
}

_SM = "secretmanager.projects.secrets"
SECRET_MANAGER: dict[str, str] = {
    f"{_SM}.create": "secretmanager.secrets.create",
    f"{_SM}.get": "secretmanager.secrets.get",
    f"{_SM}.list": "secretmanager.secrets.list",
    f"{_SM}.patch": "secretmanager.secrets.update",
    f"{_SM}.delete": "secretmanager.secrets.delete",
    f"{_SM}.addVersion": "secretmanager.versions.add",
    f"{_SM}.getIamPolicy": "secretmanager.secrets.getIamPolicy",
    f"{_SM}.setIamPolicy": "secretmanager.secrets.setIamPolicy",
    f"{_SM}.testIamPermissions": "",
    f"{_SM}.versions.get": "secretmanager.versions.get",
    f"{_SM}.versions.list": "secretmanager.versions.list",
    f"{_SM}.versions.access": "secretmanager.versions.access",
    f"{_SM}.versions.enable": "secretmanager.versions.enable",
    f"{_SM}.versions.disable": "secretmanager.versions.disable",
    f"{_SM}.versions.destroy": "secretmanager.versions.destroy",
}

LOGGING: dict[str, str] = {
    "logging.entries.list": "logging.logEntries.list",
    "logging.entries.write": "logging.logEntries.create",
}

# BigQuery: listing datasets needs bigquery.datasets.get on the project here (Google lists the ones
# the caller may see); reading or cancelling a job needs bigquery.jobs.create on the project here
# (Google lets a job's creator read their own jobs, others need bigquery.jobs.get/update).
BIGQUERY: dict[str, str] = {
    "bigquery.datasets.list": "bigquery.datasets.get",
    "bigquery.datasets.get": "bigquery.datasets.get",
    "bigquery.datasets.insert": "bigquery.datasets.create",
    "bigquery.datasets.patch": "bigquery.datasets.update",
    "bigquery.datasets.update": "bigquery.datasets.update",
    "bigquery.datasets.delete": "bigquery.datasets.delete",
    "bigquery.tables.list": "bigquery.tables.list",
    "bigquery.tables.get": "bigquery.tables.get",
    "bigquery.tables.insert": "bigquery.tables.create",
    "bigquery.tables.patch": "bigquery.tables.update",
    "bigquery.tables.update": "bigquery.tables.update",
    "bigquery.tables.delete": "bigquery.tables.delete",
    "bigquery.tabledata.list": "bigquery.tables.getData",
    "bigquery.tabledata.insertAll": "bigquery.tables.updateData",
    "bigquery.jobs.insert": "bigquery.jobs.create",
    "bigquery.jobs.query": "bigquery.jobs.create",
    "bigquery.jobs.get": "bigquery.jobs.create",
    "bigquery.jobs.getQueryResults": "bigquery.jobs.create",
    "bigquery.jobs.cancel": "bigquery.jobs.create",
}

# Cloud Monitoring (https://cloud.google.com/monitoring/access-control): project-level only.
_M = "monitoring.projects"
MONITORING: dict[str, str] = {
    f"{_M}.alertPolicies.create": "monitoring.alertPolicies.create",
    f"{_M}.alertPolicies.get": "monitoring.alertPolicies.get",
    f"{_M}.alertPolicies.list": "monitoring.alertPolicies.list",
    f"{_M}.alertPolicies.patch": "monitoring.alertPolicies.update",
    f"{_M}.alertPolicies.delete": "monitoring.alertPolicies.delete",
    f"{_M}.notificationChannels.create": "monitoring.notificationChannels.create",
    f"{_M}.notificationChannels.get": "monitoring.notificationChannels.get",
    f"{_M}.notificationChannels.list": "monitoring.notificationChannels.list",
    f"{_M}.notificationChannels.patch": "monitoring.notificationChannels.update",
    f"{_M}.notificationChannels.delete": "monitoring.notificationChannels.delete",
    f"{_M}.notificationChannelDescriptors.get": "monitoring.notificationChannelDescriptors.get",
    f"{_M}.notificationChannelDescriptors.list": "monitoring.notificationChannelDescriptors.list",
    f"{_M}.metricDescriptors.create": "monitoring.metricDescriptors.create",
    f"{_M}.metricDescriptors.get": "monitoring.metricDescriptors.get",
    f"{_M}.metricDescriptors.list": "monitoring.metricDescriptors.list",
    f"{_M}.metricDescriptors.delete": "monitoring.metricDescriptors.delete",
    f"{_M}.monitoredResourceDescriptors.get": "monitoring.monitoredResourceDescriptors.get",
    f"{_M}.monitoredResourceDescriptors.list": "monitoring.monitoredResourceDescriptors.list",
    f"{_M}.timeSeries.create": "monitoring.timeSeries.create",
    f"{_M}.timeSeries.list": "monitoring.timeSeries.list",
    f"{_M}.alerts.get": "monitoring.alerts.get",
    f"{_M}.alerts.list": "monitoring.alerts.list",
}
