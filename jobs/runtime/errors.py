"""Exit codes and the exceptions that choose them."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


class ConfigError(Exception):
    """Bad configuration or usage: exit 2, one line naming the variable or flag."""


class JobFailed(Exception):
    """The job did not do its work: exit 1 so Cloud Run retries the task."""


class HttpError(JobFailed):
    """A final HTTP failure (a non-retryable status, or retries exhausted).

    `may_have_applied`: the request of a call that is not idempotent was sent and its answer lost
    (a read timeout, a broken connection, 500/502/504), so the server may have carried it out.
    """

    def __init__(
        self, message: str, status: int | None = None, detail: str = "", *, may_have_applied: bool = False
    ):
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.may_have_applied = may_have_applied


def first_line(exc: BaseException | str) -> str:
    """The first line of an error's text (at most 300 characters), else its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
