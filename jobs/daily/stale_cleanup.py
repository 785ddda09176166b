"""cloudact-daily-stale-cleanup: fix stale concurrent-run counters (02:00 UTC).

POST /api/v1/admin/quota/cleanup-stale (idempotent: it resets counters to their true value).
Ends with `Cleaned up N stale concurrent counters`.
"""

import sys

from jobs import runtime

ENDPOINT = "/api/v1/admin/quota/cleanup-stale"
HTTP = runtime.HttpSettings(read_timeout=240, deadline=480)  # task timeout 10m


def run(args, ctx: runtime.Context) -> str:
    # The contract: orgs_created counts the counters fixed.
    fixed = runtime.post_counted(
        ctx, "orgs_created", "stale counter cleanup", "checked %s orgs", "orgs_processed"
    )
    return f"Cleaned up {fixed} stale concurrent counters"


def main(argv: list[str] | None = None) -> int:
    parser = runtime.parser("Fix stale concurrent-run counters of every organization.")
    return runtime.main(parser, run, argv, endpoint=ENDPOINT, http=HTTP)


if __name__ == "__main__":
    sys.exit(main())
