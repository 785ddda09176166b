# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The doctor's checks of what the jobs call: the API (URL, /health, bootstrap), Supabase, organizations.

The API's calls are module_utils/cloudact_api.py's (`call`, `read_key`), as cloudact.gcp.cloudact_api_info
makes them; the URL from the API's Cloud Run service (module_utils/cloud_run.py `service_urls`), as
preflight finds it.
Supabase: the token in Secret Manager authenticates one read-only query (`"read_only": true`) of the
tracking table, compared with the migrations the inventory's migrations directory holds (the
files the next migrate would see: the image is built from this checkout's tree).
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from pathlib import Path

from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError, error_message
from ansible_collections.cloudact.gcp.plugins.module_utils.cloud_run import service_urls
from ansible_collections.cloudact.gcp.plugins.module_utils.cloudact_api import call, read_key
from ansible_collections.cloudact.gcp.plugins.module_utils.doctor import (
    FAIL,
    OK,
    SKIPPED,
    WARN,
    Context,
    Row,
    Skip,
    first,
    lacks,
)

TIMEOUT = 15.0
SUPABASE_QUERY = "https://api.supabase.com/v1/projects/%s/database/query"
# docs/supabase-management-api.md: the production databases' table
TRACKING_TABLE = "public.schema_migrations"
MIGRATION_FILE = re.compile(r"^\d{2,}_[A-Za-z0-9_.-]+\.sql$")
LEGACY_CHECKSUM_LEN = 16  # docs/supabase-management-api.md: rows of the earlier scripts hold sha256[:16]


def api_url(ctx: Context) -> str:
    """The API's URL: configured, or discovered from its Cloud Run service (Skip when there is none)."""

    def read():
        configured = ctx.facts.get("cloudact_api_url") or ""
        if configured:
            return configured
        service = ctx.facts["cloudact_api_service"]
        try:
            _exists, uri, _urls = service_urls(ctx.cloud(), ctx.project, ctx.region, service)
        except ApiError as exc:
            raise lacks("run.services.get", exc) or exc from None
        if not uri:
            raise Skip("no API URL (see API service)")
        return uri

    return ctx.once("api_url", read)


def check_api_service(ctx: Context) -> Row:
    api = ctx.cloud()
    configured = ctx.facts.get("cloudact_api_url") or ""
    if configured:
        return Row("API service", OK, "cloudact_api_url %s (inventories/%s)" % (configured, ctx.env))
    service = ctx.facts["cloudact_api_service"]
    try:
        exists, uri, _urls = service_urls(api, ctx.project, ctx.region, service)
    except ApiError as exc:
        raise lacks("run.services.get", exc) or exc from None
    where = "%s/%s" % (ctx.project, ctx.region)
    if uri:
        ctx.cache["api_url"] = (uri, None)
        return Row("API service", OK, "Cloud Run service %s in %s: %s" % (service, where, uri))
    found = "Cloud Run service %s %s in %s: bootstrap would create 0 tables" % (
        service,
        "has no URL" if exists else "does not exist",
        where,
    )
    ctx.cache["api_url"] = (None, Skip("no API URL (see API service)"))
    fix = (
        "deploy the API: gcloud run deploy %s --region=%s --project=%s (or set cloudact_api_url in "
        % (
            service,
            ctx.region,
            ctx.project,
        )
        + "inventories/%s/group_vars/all/env.yml)" % ctx.env
    )
    return Row("API service", FAIL, found, fix)


def check_health(ctx: Context) -> Row:
    url = api_url(ctx)
    health = call(ctx.cloud(), url.rstrip("/") + "/health", TIMEOUT)
    body = health.get("body") or {}
    if health["ok"] and body.get("status") == "healthy":
        return Row(
            "API /health",
            OK,
            "healthy (version %s, %s)" % (body.get("version") or "?", body.get("environment") or "?"),
        )
    why = health.get("error") or "status %r" % body.get("status")
    service = ctx.facts["cloudact_api_service"]
    return Row(
        "API /health",
        FAIL,
        "%s/health: %s (bootstrap would create 0 tables)" % (url, why),
        "gcloud run services logs read %s --region=%s --project=%s" % (service, ctx.region, ctx.project),
    )


def secret(ctx: Context, key: str, permission: str = "secretmanager.versions.access") -> str:
    """The value of one of the environment's secrets (cloudact_secrets key), censored from every output."""
    name = ctx.facts["cloudact_secrets"][key]["secret"]

    def read():
        try:
            value = read_key(ctx.cloud(), ctx.project, name)
        except ApiError as exc:
            raise lacks(permission, exc) or exc from None
        except (KeyError, ValueError) as exc:
            raise Skip("secret %s has no readable value (%s)" % (name, type(exc).__name__)) from None
        ctx.secrets.add(value)
        return value

    return ctx.once("secret:" + key, read)


def root_key_headers(ctx: Context) -> dict[str, str]:
    return {"X-CA-Root-Key": secret(ctx, "ca_root_api_key"), "Content-Type": "application/json"}


def check_bootstrap(ctx: Context) -> Row:
    url = api_url(ctx).rstrip("/") + "/api/v1/admin/bootstrap/status"
    boot = call(ctx.cloud(), url, TIMEOUT, root_key_headers(ctx))
    body = boot.get("body") or {}
    name = ctx.facts["cloudact_secrets"]["ca_root_api_key"]["secret"]
    if not boot["ok"]:
        if boot.get("status_code") in (401, 403):
            return Row(
                "bootstrap status",
                FAIL,
                "the API refuses the root key in secret %s: %s" % (name, boot.get("error")),
                "gcloud secrets versions add %s --data-file=<the API's root key> --project=%s"
                % (name, ctx.project),
            )
        return Row("bootstrap status", FAIL, "GET bootstrap/status: %s" % boot.get("error"), "")
    status = body.get("status") or "?"
    if status == "SYNCED":
        return Row("bootstrap status", OK, "SYNCED (%s tables)" % body.get("tables_expected", "?"))
    missing = body.get("tables_missing") or []
    detail = "; missing: %s" % ", ".join(missing) if missing and len(missing) <= 5 else ""
    return Row(
        "bootstrap status",
        FAIL,
        "%s: %s%s (org-sync-all fails until bootstrap has run)" % (status, body.get("message") or "", detail),
        ctx.make("run", "JOB=bootstrap"),
    )


def image_copies(root: Path) -> tuple[str, list[tuple[str, str]]]:
    """(WORKDIR, [(source, target)] of the COPY lines) of the checkout's Dockerfile (dockerfile-parse)."""
    from dockerfile_parse import DockerfileParser

    try:
        with (root / "Dockerfile").open("rb") as handle:
            structure = DockerfileParser(fileobj=handle).structure
    except OSError:
        return "/", []
    workdir, copies = "/", []
    for item in structure:
        if item["instruction"] == "WORKDIR":
            workdir = posixpath.join(workdir, item["value"].strip())
        elif item["instruction"] == "COPY":
            words = [w for w in item["value"].split() if not w.startswith("--")]
            if len(words) == 2:
                copies.append((words[0], posixpath.join(workdir, words[1])))
    return workdir, copies


def migrations_dir(ctx: Context) -> Path:
    """The migrations the next migrate applies: the inventory's directory in the image (relative to
    its WORKDIR), which the Dockerfile's COPY lines map to this checkout's tree (the image is built
    from it); a directory that is no image path is read as it is."""
    given = str(ctx.facts.get("cloudact_migrations_dir") or "")
    root = Path(ctx.root)
    workdir, copies = image_copies(root)
    in_image = posixpath.normpath(posixpath.join(workdir, given))
    for source, target in copies:
        target = posixpath.normpath(target)
        if in_image == target or in_image.startswith(target + "/"):
            return root / source.rstrip("/") / in_image[len(target) :].lstrip("/")
    path = Path(given)
    return path if path.is_absolute() else root / path


def local_migrations(directory: Path) -> dict[str, str]:
    """{file name: sha256 of its text} of the NN_name.sql files, as migrate reads them (text mode)."""
    if not directory.is_dir():
        raise Skip("migrations directory %s does not exist on this machine" % directory)
    return {
        p.name: hashlib.sha256(p.read_text(encoding="utf-8").encode("utf-8")).hexdigest()
        for p in sorted(directory.iterdir())
        if MIGRATION_FILE.fullmatch(p.name) and p.is_file()
    }


def matches(recorded, actual: str):
    if recorded is None or not str(recorded).strip():
        return None
    text = str(recorded).strip().lower()
    return text == actual or (len(text) == LEGACY_CHECKSUM_LEN and actual.startswith(text))


def supabase_rows(ctx: Context):
    """The tracking table's rows (None when it does not exist), through one read-only query."""
    ref = ctx.facts.get("cloudact_supabase_project_ref") or ""
    if not ref:
        raise Skip("cloudact_supabase_project_ref is empty in inventories/%s" % ctx.env)
    token = secret(ctx, "supabase_access_token")
    sql = "SELECT filename, checksum FROM %s ORDER BY filename" % TRACKING_TABLE  # noqa: S608 - a constant
    response = ctx.cloud().send(
        "POST",
        SUPABASE_QUERY % ref,
        "Supabase project %s" % ref,
        json={"query": sql, "read_only": True},
        headers={"Authorization": "Bearer %s" % token},
        authorized=False,
        deadline=TIMEOUT * 2,
    )
    if response.status_code < 300:
        return response.json() or []
    message, _reason = error_message(response)
    if response.status_code == 400 and "42P01" in message:  # undefined_table: never migrated
        return None
    raise ApiError("Supabase project %s: %s" % (ref, message), response.status_code)


def check_supabase(ctx: Context) -> list[Row]:
    name = ctx.facts["cloudact_secrets"]["supabase_access_token"]["secret"]
    ref = ctx.facts.get("cloudact_supabase_project_ref") or ""
    if not ref:
        fix = "set cloudact_supabase_project_ref in inventories/%s/group_vars/all/env.yml" % ctx.env
        return [Row("Supabase token", FAIL, "no Supabase project ref: migrate cannot run", fix)]
    try:
        rows = ctx.once("supabase_rows", lambda: supabase_rows(ctx))
    except ApiError as exc:
        if exc.status in (401, 403):
            return [
                Row(
                    "Supabase token",
                    FAIL,
                    "the token in secret %s (latest version) is refused by project %s: %s"
                    % (name, ref, first(exc).split(": ", 1)[-1]),
                    "gcloud secrets versions add %s --data-file=<a valid Supabase access token> --project=%s"
                    % (name, ctx.project),
                ),
                Row("migrations", "skipped", "the Supabase token is refused"),
            ]
        raise
    token_row = Row("Supabase token", OK, "secret %s authenticates a read-only query of %s" % (name, ref))
    return [token_row, migrations_row(ctx, rows)]


def migrations_row(ctx: Context, rows) -> Row:
    directory = migrations_dir(ctx)
    try:
        files = local_migrations(directory)
    except Skip as why:
        return Row("migrations", "skipped", str(why))
    recorded = {str(r.get("filename")): r.get("checksum") for r in rows or []}
    pending = [n for n in files if n not in recorded]
    drift = [n for n in files if n in recorded and matches(recorded[n], files[n]) is False]
    gone = [n for n in recorded if n not in files]
    where = "%s (%d files)" % (directory, len(files))
    if drift:
        return Row(
            "migrations",
            FAIL,
            "drift: %s changed since applied (%s)" % (", ".join(drift), where),
            "restore them and put the change in a new migration, or %s"
            % ctx.make("run", "JOB=migrate", 'ARGS="--repair"'),
        )
    if pending:
        table = "" if rows is not None else "; no tracking table yet"
        return Row(
            "migrations",
            WARN,
            "%d applied, %d pending: %s%s" % (len(recorded), len(pending), ", ".join(pending), table),
            ctx.make("run", "JOB=migrate"),
        )
    extra = "; recorded but not in %s: %s" % (directory, ", ".join(gone)) if gone else ""
    return Row("migrations", OK, "all %d applied, none pending%s" % (len(files), extra))


PROBES = ("alerts",)  # make doctor PROBE=alerts: the checks that POST, run only on request


def check_organizations(ctx: Context) -> Row:
    """Organizations and alert rules from the API's own answer: the alerts endpoint's dry run.

    A POST to an admin endpoint is a write by the read-only rule (module_utils/verbs.py), dry run or
    not: it runs only on request (PROBE=alerts), once, never resent.
    """
    if "alerts" not in (ctx.options.get("probes") or ()):
        return Row(
            "organizations",
            SKIPPED,
            "the alerts endpoint's dry run is a POST, run only on request",
            ctx.make("doctor", "PROBE=alerts"),
        )
    url = api_url(ctx).rstrip("/") + "/api/v1/admin/alerts/process-all"
    response = ctx.cloud().send(
        "POST",
        url,
        "the CloudAct API",
        json={"dry_run": True, "send_notifications": False},
        headers=root_key_headers(ctx),
        authorized=False,
        once=True,
        deadline=TIMEOUT,
    )
    if response.status_code >= 300:
        return Row("organizations", FAIL, "alerts dry run: %s" % error_message(response)[0], "")
    body = response.json() or {}
    orgs = int(body.get("orgs_processed") or 0)
    if not orgs:
        return Row(
            "organizations",
            WARN,
            "0 organizations: quota reset and alerts do nothing",
            "create an organization in the CloudAct app, then %s" % ctx.make("run", "JOB=org-sync-all"),
        )
    return Row(
        "organizations",
        OK,
        "%d organizations; alerts dry run: %s alerts would trigger, %s errors"
        % (orgs, body.get("alerts_triggered", 0), body.get("errors", 0)),
    )
