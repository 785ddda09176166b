"""cloudact-manual-org-sync-all: sync every active organization's dataset with the current schema.

Release step 3 (after bootstrap). POST /api/v1/admin/org-sync-all with `{}`, or
`{"org_slugs": [...]}` for the orgs named by `--org-slug`. Fails (exit 1) when any org failed,
naming them. Ends with `Synced N org datasets`.
"""

import sys

from jobs import runtime

ENDPOINT = "/api/v1/admin/org-sync-all"
# One long synchronous call: the task timeout is 60m.
HTTP = runtime.HttpSettings(read_timeout=3000, deadline=3300)


def run(args, ctx: runtime.Context) -> None:
    body = {"org_slugs": sorted(set(args.org_slugs))} if args.org_slugs else {}
    # A schema sync only adds what is missing, so repeating it after a timeout is safe.
    data = runtime.obj(ctx.api().post(ctx.endpoint, body, idempotent=True), f"POST {ctx.endpoint}")
    synced = runtime.integer(data, "orgs_synced")
    processed = data.get("orgs_processed", "?")
    failed = runtime.org_errors(data.get("failed_orgs") or [])
    runtime.log.info("%s orgs processed: %s", processed, data.get("message", ""))
    runtime.log.info("Synced %d org datasets", synced)
    if failed:
        raise runtime.JobFailed(f"{len(failed)} of {processed} orgs failed to sync: {', '.join(failed)}")
    if data.get("orgs_failed") or data.get("success") is not True:
        count = data.get("orgs_failed", 0)
        raise runtime.JobFailed(
            f"org sync reported failure ({count} orgs failed): {data.get('message') or data}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = runtime.parser("Sync every active organization's dataset with the current schema.")
    parser.add_argument(
        "--org-slug",
        dest="org_slugs",
        action="append",
        type=runtime.org_slug,
        metavar="SLUG",
        help="only this organization (repeatable); default: all active organizations",
    )
    return runtime.main(parser, run, argv, endpoint=ENDPOINT, http=HTTP)


if __name__ == "__main__":
    sys.exit(main())
