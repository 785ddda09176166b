"""cloudact-daily-quota-reset: create today's usage-quota rows for every organization (00:00 UTC).

POST /api/v1/admin/quota/reset-daily. The endpoint is idempotent for a day, so a retry after a
timeout cannot double-count. Ends with `Daily quota reset complete for N orgs`.
"""

import sys

from jobs import runtime

ENDPOINT = "/api/v1/admin/quota/reset-daily"
HTTP = runtime.HttpSettings(read_timeout=300, deadline=720)  # task timeout 15m


def run(args, ctx: runtime.Context) -> str:
    processed = runtime.post_counted(
        ctx, "orgs_processed", "daily quota reset", "created %s, skipped %s", "orgs_created", "orgs_skipped"
    )
    return f"Daily quota reset complete for {processed} orgs"


def main(argv: list[str] | None = None) -> int:
    parser = runtime.parser("Create today's usage-quota rows for every organization.")
    return runtime.main(parser, run, argv, endpoint=ENDPOINT, http=HTTP)


if __name__ == "__main__":
    sys.exit(main())
