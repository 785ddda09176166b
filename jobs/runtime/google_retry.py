"""google-cloud-* clients (BigQuery) under the jobs' retry policy: their own Retry, plus Retry-After.

A Google client library retries with api-core's `Retry` (its predicate, full-jitter backoff, a
deadline), which never reads the `Retry-After` of a 429 or 503. `honouring(retry)` is the same
Retry whose next sleep is the server's Retry-After when the failed answer carried one, through
api-core's own `on_error` hook, which runs before the next delay is drawn, as in jobs/runtime/http.
"""

from __future__ import annotations

import functools
from typing import Any

from google.api_core.retry import Retry, exponential_sleep_generator, retry_target

from jobs.runtime.http import parse_retry_after


def retry_after_of(exc: BaseException) -> float | None:
    """The Retry-After of the answer an api-core exception was made from (seconds), if any."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    return parse_retry_after(headers.get("Retry-After"))


class RetryAfterRetry(Retry):
    """api-core's Retry, whose delay after an answer with Retry-After is that header's."""

    def __call__(self, func, on_error=None):
        if self._on_error is not None:
            on_error = self._on_error

        @functools.wraps(func)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            asked: list[float | None] = [None]

            def failed(exc: Exception) -> None:
                asked[0] = retry_after_of(exc)
                if on_error is not None:
                    on_error(exc)

            def sleeps():
                for backoff in exponential_sleep_generator(self._initial, self._maximum, self._multiplier):
                    wait, asked[0] = asked[0], None
                    yield backoff if wait is None else wait

            return retry_target(
                functools.partial(func, *args, **kwargs),
                self._predicate,
                sleeps(),
                timeout=self._timeout,
                on_error=failed,
            )

        return wrapped


def honouring(retry: Retry) -> RetryAfterRetry:
    """`retry` (a library's default Retry, say) with Retry-After honoured; the rest kept."""
    return RetryAfterRetry(
        predicate=retry._predicate,
        initial=retry._initial,
        maximum=retry._maximum,
        multiplier=retry._multiplier,
        timeout=retry._timeout,
        on_error=retry._on_error,
    )
