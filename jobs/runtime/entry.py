"""The entry point of every script: arguments, logging, the work, its summary line, the exit code."""

from __future__ import annotations

import argparse
import logging
import os
import re
from collections.abc import Callable

from jobs.runtime.config import HttpSettings
from jobs.runtime.context import Context, load_context
from jobs.runtime.errors import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, ConfigError, JobFailed
from jobs.runtime.logs import log, setup_logging
from jobs.runtime.redaction import SECRET_ENV, add_secret

_ORG_SLUG = re.compile(r"[a-z0-9][a-z0-9_]{1,99}")


def org_slug(value: str) -> str:
    """argparse type for `--org-slug`: lowercase letters, digits and underscores."""
    if not _ORG_SLUG.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an org slug; use 2-100 lowercase letters, digits and underscores"
        )
    return value


def parser(description: str, epilog: str = "") -> argparse.ArgumentParser:
    """An ArgumentParser whose help text names the exit codes and the environment."""
    epilog = (epilog + "\n\n" if epilog else "") + (
        "Environment: GCP_PROJECT_ID, ENVIRONMENT, API_SERVICE_URL, CA_ROOT_API_KEY (or\n"
        "CA_ROOT_API_KEY_SECRET), API_ENDPOINT_PATH, HTTP_TIMEOUT_SECONDS, HTTP_MAX_ATTEMPTS,\n"
        "HTTP_DEADLINE_SECONDS (see jobs/runtime/__init__.py).\n"
        "Exit codes: 0 done, 1 failed (Cloud Run retries), 2 bad configuration or usage."
    )
    return argparse.ArgumentParser(
        description=description, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def run_job(
    arg_parser: argparse.ArgumentParser,
    work: Callable[[argparse.Namespace], str | None],
    argv: list[str] | None = None,
    *,
    logger: logging.Logger = log,
    failed: str = "job failed",
) -> int:
    """Parse arguments, set up logging, run `work(args)`, log its summary; the exit code.

    The entry point of every script, also those that do not call the CloudAct API (`main` adds that
    configuration). `work` reads and validates its own configuration, raising ConfigError (exit 2) or
    JobFailed (exit 1); errors are logged on `logger`, a failure as `<failed>: <reason>`.
    """
    try:
        args = arg_parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return exc.code if isinstance(exc.code, int) else EXIT_CONFIG
    for name in SECRET_ENV:
        add_secret((os.environ.get(name) or "").strip())
    try:
        setup_logging()
        summary = work(args)
    except ConfigError as exc:
        logger.error("configuration error: %s", exc)
        return EXIT_CONFIG
    except JobFailed as exc:
        logger.error("%s: %s", failed, exc)
        return EXIT_FAILED
    except KeyboardInterrupt:
        logger.error("interrupted")
        return 130
    except Exception:
        logger.exception("%s with an unexpected error", failed)
        return EXIT_FAILED
    if summary:
        logger.info("%s", summary)
    return EXIT_OK


def main(
    arg_parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace, Context], str | None],
    argv: list[str] | None = None,
    *,
    endpoint: str,
    http: HttpSettings | None = None,
) -> int:
    """`run_job` for a CloudAct API job: `run(args, ctx)` with the validated API configuration."""
    return run_job(arg_parser, lambda args: run(args, load_context(endpoint, http)), argv)
