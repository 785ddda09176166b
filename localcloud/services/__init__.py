"""The emulated APIs. The core constructs each class listed here, in order, at start.

Each entry is "module:Class" under localcloud.services; add yours when its module exists.
"""

SERVICES: list[str] = [
    "oauth2:OAuth2",
    "iam_v1:IamService",
    "resourcemanager:ResourceManagerService",
    "secretmanager:SecretManager",
    "logging_v2:Logging",
    "bigquery:BigQueryService",
    "supabase:SupabaseService",
    "cloudact_api:CloudActApiService",
    "hooks:HooksService",
    "monitoring:MonitoringService",  # before Cloud Run: executions write its job metrics
    "run:RunService",
    "storage:StorageService",
    "artifactregistry:ArtifactRegistryService",
    "artifactregistry_docker:DockerRegistryService",
    "cloudbuild:CloudBuildService",
    "scheduler:SchedulerService",
]
