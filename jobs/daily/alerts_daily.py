"""cloudact-daily-alerts: evaluate cost and budget alert rules for every organization (08:00 UTC).

POST /api/v1/admin/alerts/process-all. `--org-slug` limits it to one organization, `--dry-run`
evaluates without sending notifications. Ends with `Processed alerts for N orgs`.

Notifications make the call not idempotent: after a read timeout (or a 500/502/504) it is not
repeated, and per-org errors are logged as errors without failing the task, since a Cloud Run
retry would notify the orgs that succeeded a second time. The task fails when the API says the
run failed.
"""

import sys

from jobs import runtime

ENDPOINT = "/api/v1/admin/alerts/process-all"
HTTP = runtime.HttpSettings(read_timeout=900, deadline=1500)  # task timeout 30m
ALERT_TYPES = (
    "cost_threshold",
    "absolute_threshold",
    "budget_percent",
    "budget_forecast",
    "hierarchy_budget",
    "anomaly_percent_change",
    "anomaly_std_deviation",
)


def request_body(org_slug: str | None, alert_types: list[str] | None, dry_run: bool) -> dict:
    body: dict = {
        "alert_types": list(alert_types or ALERT_TYPES),
        "send_notifications": not dry_run,
        "dry_run": dry_run,
    }
    if org_slug:
        body["org_slug"] = org_slug
    return body


def run(args, ctx: runtime.Context) -> str:
    body = request_body(args.org_slug, args.alert_types, args.dry_run)
    if args.dry_run:
        runtime.log.info("dry run: alerts are evaluated, no notification is sent")
    try:
        data = ctx.api().post(ctx.endpoint, body, idempotent=args.dry_run)
    except runtime.HttpError as exc:
        if exc.status == 404 and args.org_slug:
            raise runtime.ConfigError(f"--org-slug {args.org_slug!r}: no such organization ({exc})") from None
        raise
    data = runtime.obj(data, f"POST {ctx.endpoint}")
    processed = runtime.integer(data, "orgs_processed")
    runtime.log.info(
        "%s alerts triggered, %s notifications sent, %s errors: %s",
        data.get("alerts_triggered", "?"),
        data.get("notifications_sent", "?"),
        data.get("errors", "?"),
        data.get("message", ""),
    )
    for failed in runtime.org_errors(data.get("org_errors") or []):
        runtime.log.error("alerts failed for org %s", failed)
    if data.get("success") is not True:
        raise runtime.JobFailed(f"alert processing reported failure: {data.get('message') or data}")
    return f"Processed alerts for {processed} orgs" + (" (dry run)" if args.dry_run else "")


def main(argv: list[str] | None = None) -> int:
    parser = runtime.parser("Evaluate cost and budget alert rules for every organization.")
    parser.add_argument("--org-slug", type=runtime.org_slug, metavar="SLUG", help="only this organization")
    parser.add_argument(
        "--alert-type",
        dest="alert_types",
        action="append",
        choices=ALERT_TYPES,
        metavar="TYPE",
        help=f"only this alert type (repeatable); default: all of {', '.join(ALERT_TYPES)}",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="evaluate the rules without sending notifications"
    )
    return runtime.main(parser, run, argv, endpoint=ENDPOINT, http=HTTP)


if __name__ == "__main__":
    sys.exit(main())
