"""The shared runtime of the job scripts: configuration, logging, one HTTP client, exit codes.

A script is a few lines on top of it::

    def run(args, ctx: runtime.Context) -> str:
        data = ctx.api().post(ctx.endpoint, idempotent=True)
        return f"Done for {runtime.integer(data, 'orgs_processed')} orgs"

    def main(argv=None) -> int:
        return runtime.main(parser(), run, argv, endpoint=ENDPOINT)

A job that does not call the CloudAct API (quota cleanup, migrate) uses `runtime.run_job` with its
own configuration instead; the same exit codes, logging and redaction apply.

Exit codes: 0 success; 1 the job failed (Cloud Run retries the task); 2 bad configuration or
usage, reported in one line that names the variable or flag. Configuration is read in `main`,
never at import. HTTP goes through requests with google.api_core's retry loop (see
jobs/runtime/http.py); google.auth's credential discovery loads only when the root key comes from
Secret Manager, and only quota_cleanup loads BigQuery.

The modules, by concern: errors (exit codes, exceptions), redaction, logs, config (environment,
HttpSettings), http (HttpClient, the retry policy), secret_manager (the root key), context (what a
script's `run` gets), checks (an answer's shape), entry (parser, run_job, main). Every public name
is re-exported here, so scripts use `runtime.<name>`.

Environment:
  GCP_PROJECT_ID              required
  ENVIRONMENT                 local | development | staging | production
  API_SERVICE_URL             CloudAct API base URL; defaults to https://api.cloudact.ai when
                              ENVIRONMENT=production, required otherwise
  API_ENDPOINT_PATH           the endpoint path (the catalog's `endpoint`), else the script's default
  CA_ROOT_API_KEY             the root key, or, when unset:
  CA_ROOT_API_KEY_SECRET      a Secret Manager secret id (in GCP_PROJECT_ID) or full resource name
                              (projects/P/secrets/S[/versions/V]); read with application default
                              credentials
  HTTP_CONNECT_TIMEOUT_SECONDS, HTTP_TIMEOUT_SECONDS (read), per attempt
  HTTP_MAX_ATTEMPTS           attempts of one call, at most
  HTTP_DEADLINE_SECONDS       all attempts and waits of one call
  HTTP_BACKOFF_SECONDS, HTTP_BACKOFF_MAX_SECONDS
                              the first backoff ceiling (doubling per attempt) and its cap; the wait
                              is uniform below it (full jitter) unless Retry-After says otherwise
  HTTPS_PROXY, HTTP_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE, SSL_CERT_FILE)
                              read by requests: proxies and the CA bundle
  LOG_LEVEL                   DEBUG | INFO | WARNING | ERROR (default INFO)
  CLOUD_RUN_JOB, CLOUD_RUN_EXECUTION, CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_ATTEMPT
                              set by Cloud Run: switch the logs to JSON lines for Cloud Logging
"""

from jobs.runtime.checks import integer, obj, org_errors, post_counted, strings
from jobs.runtime.config import (
    ENVIRONMENTS,
    PRODUCTION_API_URL,
    HttpSettings,
    api_url,
    endpoint_path,
    env_number,
    env_str,
    environment_name,
    require_env,
    validate_url,
)
from jobs.runtime.context import ROOT_KEY_HINT, Context, load_context
from jobs.runtime.entry import main, org_slug, parser, run_job
from jobs.runtime.errors import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, ConfigError, HttpError, JobFailed
from jobs.runtime.http import (
    NOT_APPLIED_STATUSES,
    RETRY_STATUSES,
    HttpClient,
    Response,
    error_detail,
    parse_retry_after,
)
from jobs.runtime.logs import CloudRunFormatter, PlainFormatter, log, setup_logging
from jobs.runtime.redaction import SECRET_ENV, Redactor, add_secret, redact
from jobs.runtime.secret_manager import SECRET_MANAGER_URL, access_secret, secret_version_name

__all__ = [
    "ENVIRONMENTS",
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_OK",
    "NOT_APPLIED_STATUSES",
    "PRODUCTION_API_URL",
    "RETRY_STATUSES",
    "ROOT_KEY_HINT",
    "SECRET_ENV",
    "SECRET_MANAGER_URL",
    "CloudRunFormatter",
    "ConfigError",
    "Context",
    "HttpClient",
    "HttpError",
    "HttpSettings",
    "JobFailed",
    "PlainFormatter",
    "Redactor",
    "Response",
    "access_secret",
    "add_secret",
    "api_url",
    "endpoint_path",
    "env_number",
    "env_str",
    "environment_name",
    "error_detail",
    "integer",
    "load_context",
    "log",
    "main",
    "obj",
    "org_errors",
    "org_slug",
    "parse_retry_after",
    "parser",
    "post_counted",
    "redact",
    "require_env",
    "run_job",
    "secret_version_name",
    "setup_logging",
    "strings",
    "validate_url",
]
