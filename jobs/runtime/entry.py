"""The entry point of every script: arguments, logging, the work, its summary line, the exit code."""

from __future__ import annotations

import argparse
import logging
import os
import re
import time
from collections.abc import Callable

from jobs.runtime import ledger
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
    JobFailed (exit 1); errors are logged on `logger`, a failure as `<failed>: <reason>`. In Cloud Run,
    the job's last line (its summary, or why it failed) also goes to the execution ledger
    (jobs/runtime/ledger.py: best effort, at most 2 s, never changing the exit code).
    """
    started = time.time()
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
        return _ended(EXIT_CONFIG, f"configuration error: {exc}", started)
    except JobFailed as exc:
        logger.error("%s: %s", failed, exc)
        return _ended(EXIT_FAILED, f"{failed}: {exc}", started)
    except KeyboardInterrupt:
        logger.error("interrupted")
        return _ended(130, "interrupted", started)
    except Exception as exc:
        logger.exception("%s with an unexpected error", failed)
        return _ended(EXIT_FAILED, f"{failed} with an unexpected error: {type(exc).__name__}", started)
    if summary:
        logger.info("%s", summary)
    return _ended(EXIT_OK, summary, started)


def _ended(code: int, line: str | None, started: float) -> int:
    """The exit code, once the job's line is in the ledger (or the attempt said it failed)."""
    ledger.record(code, line, started)
    return code


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
