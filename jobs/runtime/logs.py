"""Logging: JSON lines with `severity` for Cloud Logging in Cloud Run, plain lines on a terminal."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from jobs.runtime.errors import ConfigError
from jobs.runtime.redaction import redact

log = logging.getLogger("cloudact.jobs")

_SEVERITY = {"WARNING": "WARNING", "CRITICAL": "CRITICAL", "ERROR": "ERROR", "INFO": "INFO", "DEBUG": "DEBUG"}


class PlainFormatter(logging.Formatter):
    """Readable lines for a terminal: `2026-01-01T00:00:00Z INFO message`."""

    converter = time.gmtime

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%SZ")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class CloudRunFormatter(logging.Formatter):
    """One JSON object a line, the shape Cloud Logging parses (python-logging's structured log).

    The stack trace goes into `message` so that Error Reporting picks it up.
    """

    def __init__(self, environ: Mapping[str, str]):
        super().__init__()
        self.fields: dict[str, Any] = {
            "job": environ.get("CLOUD_RUN_JOB", ""),
            "execution": environ.get("CLOUD_RUN_EXECUTION", ""),
            "task_index": _int_or_none(environ.get("CLOUD_RUN_TASK_INDEX")),
            "attempt": _int_or_none(environ.get("CLOUD_RUN_TASK_ATTEMPT")),
        }

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{''.join(traceback.format_exception(*record.exc_info))}".rstrip()
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelname, "DEFAULT"),
            "message": redact(message),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "logger": record.name,
            **self.fields,
            "logging.googleapis.com/sourceLocation": {
                "file": record.pathname,
                "line": record.lineno,
                "function": record.funcName,
            },
        }
        for key in ("http_attempt", "http_status", "retry_in"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        return json.dumps(entry, ensure_ascii=False)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def setup_logging(environ: Mapping[str, str] | None = None) -> None:
    """JSON lines on stdout in Cloud Run (CLOUD_RUN_JOB set), plain lines on stderr otherwise."""
    environ = os.environ if environ is None else environ
    if environ.get("CLOUD_RUN_JOB"):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(CloudRunFormatter(environ))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(PlainFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    logging.captureWarnings(True)  # library warnings go through the formatter (and its redaction) too
    level = environ.get("LOG_LEVEL", "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        root.setLevel(logging.INFO)
        raise ConfigError(f"LOG_LEVEL={level!r} is not valid; use DEBUG, INFO, WARNING or ERROR")
    root.setLevel(level)
