"""cloudact-monthly-quota-reset: reset monthly usage quotas (00:05 UTC on the 1st).

POST /api/v1/admin/quota/reset-monthly, but only on the 1st of the month (UTC) unless `--force`:
a run by hand mid-month says so and does nothing. Ends with
`Monthly quota reset complete for N orgs`.
"""

import sys
from datetime import UTC, date, datetime

from jobs import runtime

ENDPOINT = "/api/v1/admin/quota/reset-monthly"
HTTP = runtime.HttpSettings(read_timeout=300, deadline=720)  # task timeout 15m


def due(today: date, force: bool) -> bool:
    return force or today.day == 1


def run(args, ctx: runtime.Context) -> str:
    today = datetime.now(UTC).date()
    if not due(today, args.force):
        return (
            f"Monthly quota reset skipped: today ({today.isoformat()} UTC) is not the 1st of the month; "
            "use --force to reset anyway"
        )
    if today.day != 1:
        runtime.log.warning("--force: resetting monthly quotas on %s (UTC), not the 1st", today.isoformat())
    processed = runtime.post_counted(
        ctx, "orgs_processed", "monthly quota reset", "reset %s, skipped %s", "orgs_created", "orgs_skipped"
    )
    return f"Monthly quota reset complete for {processed} orgs"


def main(argv: list[str] | None = None) -> int:
    parser = runtime.parser("Reset monthly usage quotas; only on the 1st of the month (UTC) unless --force.")
    parser.add_argument("--force", action="store_true", help="reset even when today (UTC) is not the 1st")
    return runtime.main(parser, run, argv, endpoint=ENDPOINT, http=HTTP)


if __name__ == "__main__":
    sys.exit(main())
