"""cloudact-manual-bootstrap: create or sync the CloudAct BigQuery meta dataset and tables.

Release step 2 (after migrate). "Smart": read GET <base>/status; not bootstrapped (or no tables)
-> POST <base>; a 409 there (already bootstrapped) -> sync; bootstrapped -> POST <base>/sync,
then read the status again to count the tables. `--force-fresh` goes straight to the bootstrap
call, `--force-sync` straight to sync. <base> is API_ENDPOINT_PATH (default /api/v1/admin/bootstrap).
Both calls create only what is missing, so they are safe to repeat after a timeout.
Ends with `Bootstrap completed: N tables synced`.
"""

import sys

from jobs import runtime

ENDPOINT = "/api/v1/admin/bootstrap"
HTTP = runtime.HttpSettings(read_timeout=900, deadline=1500)  # task timeout 30m
BOOTSTRAP_BODY = {"force_recreate_dataset": False, "force_recreate_tables": False}
SYNC_BODY = {"sync_missing_tables": True, "sync_missing_columns": True}


def status(ctx: runtime.Context) -> dict:
    data = runtime.obj(ctx.api().get(f"{ctx.endpoint}/status"), f"GET {ctx.endpoint}/status")
    if data.get("status") not in ("SYNCED", "OUT_OF_SYNC", "NOT_BOOTSTRAPPED"):
        raise runtime.JobFailed(f"GET {ctx.endpoint}/status: unknown status {data.get('status')!r}")
    return data


def bootstrap(ctx: runtime.Context) -> int | None:
    """Tables in the new dataset; None when it already exists (409), so the caller syncs."""
    try:
        data = ctx.api().post(ctx.endpoint, BOOTSTRAP_BODY, idempotent=True)
    except runtime.HttpError as exc:
        if exc.status != 409:
            raise
        runtime.log.info("already bootstrapped (409): syncing instead")
        return None
    data = runtime.obj(data, f"POST {ctx.endpoint}")
    if data.get("status") != "SUCCESS":
        raise runtime.JobFailed(f"bootstrap failed: {data.get('message') or data}")
    created = runtime.strings(data, "tables_created")
    runtime.log.info(
        "bootstrap: dataset %s, %d tables created, %d existed: %s",
        "created" if data.get("dataset_created") else "existed",
        len(created),
        len(runtime.strings(data, "tables_existed")),
        data.get("message", ""),
    )
    validation = data.get("schema_validation") or {}
    for warning in validation.get("warnings") or []:
        runtime.log.warning("schema validation: %s", warning)
    if validation.get("valid") is False:
        raise runtime.JobFailed(f"bootstrap schema validation failed: {validation.get('errors')}")
    return runtime.integer(data, "total_tables")


def sync(ctx: runtime.Context) -> int:
    """Tables in the dataset after the sync, from a fresh status read."""
    path = f"{ctx.endpoint}/sync"
    data = runtime.obj(ctx.api().post(path, SYNC_BODY, idempotent=True), f"POST {path}")
    created = runtime.strings(data, "tables_created")
    columns = data.get("columns_added") or {}
    runtime.log.info(
        "sync: %d tables created, columns added to %d tables: %s",
        len(created),
        len(columns),
        data.get("message", ""),
    )
    errors = data.get("errors") or []
    if errors:
        raise runtime.JobFailed(f"sync reported {len(errors)} errors: {'; '.join(map(str, errors))}")
    after = status(ctx)
    missing = runtime.strings(after, "tables_missing")
    if missing:
        raise runtime.JobFailed(f"after sync {len(missing)} tables are still missing: {', '.join(missing)}")
    return len(runtime.strings(after, "tables_existing"))


def run(args, ctx: runtime.Context) -> str:
    if args.force_sync:
        tables = sync(ctx)
    elif args.force_fresh:
        tables = bootstrap(ctx)
        if tables is None:
            tables = sync(ctx)
    else:
        current = status(ctx)
        runtime.log.info("status %s: %s", current["status"], current.get("message", ""))
        fresh = (
            current["status"] == "NOT_BOOTSTRAPPED"
            or not current.get("dataset_exists", True)
            or not runtime.strings(current, "tables_existing")
        )
        tables = bootstrap(ctx) if fresh else None
        if tables is None:
            tables = sync(ctx)
    return f"Bootstrap completed: {tables} tables synced"


def main(argv: list[str] | None = None) -> int:
    parser = runtime.parser("Create or sync the CloudAct BigQuery meta dataset and tables.")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--force-fresh", action="store_true", help="skip detection: run the bootstrap call")
    mode.add_argument("--force-sync", action="store_true", help="skip detection: run the sync call")
    return runtime.main(parser, run, argv, endpoint=ENDPOINT, http=HTTP)


if __name__ == "__main__":
    sys.exit(main())
