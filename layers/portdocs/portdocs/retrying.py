"""Retries of transient faults inside one invocation, bounded by the Lambda's remaining time.

tenacity rather than urllib3's Retry: a retried unit here spans several requests (a fresh upload
form, then the upload), must stop before the invocation times out, and must honour Telnyx's
x-ratelimit-reset as well as Retry-After; urllib3 retries single requests and knows neither.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_not_exception_type,
    wait_random_exponential,
)

from portdocs.errors import AmbiguousError, DeferredError, TransientError
from portdocs.observability import count, logger
from portdocs.urls import without_url_paths

T = TypeVar("T")

MAX_ATTEMPTS = 5
# Backoff as Telnyx's own SDK does it: 0.5 s growing to 8 s, with full jitter.
BACKOFF = wait_random_exponential(multiplier=0.5, max=8)
# Time kept back for recording the outcome once retries are given up: one ledger write and one
# tag write, each within botocore's connect and read timeouts (portdocs.aws.CLIENT_CONFIG).
RESERVE_SECONDS = 6.0
# A read timeout shorter than this would fail healthy calls for want of time, not of service.
MIN_READ_TIMEOUT = 1.0
# What one record needs at the least: a few AWS calls and one Telnyx round trip. A record that
# would start with less is handed back untouched instead of being cut off halfway.
MIN_RECORD_SECONDS = 10.0
# Without a Lambda context (direct calls), give a retried unit this long.
DEFAULT_BUDGET_SECONDS = 60.0


@dataclass(frozen=True)
class Deadline:
    """The moment by which retries must have given up (monotonic clock)."""

    at: float

    @classmethod
    def from_context(cls, context: Any | None) -> Deadline:
        if context is None or not hasattr(context, "get_remaining_time_in_millis"):
            return cls(time.monotonic() + DEFAULT_BUDGET_SECONDS)
        remaining = context.get_remaining_time_in_millis() / 1000 - RESERVE_SECONDS
        return cls(time.monotonic() + max(0.0, remaining))

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def cap(self, timeout: tuple[float, float]) -> tuple[float, float]:
        """A (connect, read) timeout that gives up by the deadline: a hanging server then ends
        as a transient failure this invocation can still record, not as a Lambda timeout."""
        connect, read = timeout
        self.ensure(MIN_READ_TIMEOUT, "call")
        left = self.remaining()
        return min(connect, left / 2), max(MIN_READ_TIMEOUT, min(read, left - min(connect, left / 2)))

    def ensure(self, seconds: float, work: str) -> None:
        """Refuses to start `work` that could not finish by the deadline."""
        if self.remaining() < seconds:
            raise DeferredError(f"not enough time left in this invocation to {work}", retry_after=0.0)


def wait_for(retry_state: RetryCallState) -> float:
    """The server's word (Retry-After / x-ratelimit-reset) when it gave one, else jittered backoff."""
    error = retry_state.outcome.exception() if retry_state.outcome else None
    backoff = BACKOFF(retry_state)
    if isinstance(error, TransientError) and error.retry_after is not None:
        # A little jitter on top keeps a fleet of functions from retrying in lockstep.
        return error.retry_after + backoff / 4
    return backoff


def with_retries(
    unit: Callable[[], T],
    deadline: Deadline,
    on_retry: Callable[[TransientError, float], None] = lambda error, wait: None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Runs `unit`, retrying TransientError (but not AmbiguousError) until it succeeds,
    MAX_ATTEMPTS is reached or the next wait would pass the deadline; then the last
    TransientError is raised."""

    def give_up(retry_state: RetryCallState) -> bool:
        return (
            retry_state.attempt_number >= MAX_ATTEMPTS or retry_state.upcoming_sleep >= deadline.remaining()
        )

    def outlasted(retry_state: RetryCallState) -> None:
        """Telnyx asked for a wait this invocation cannot afford: hand the record back for later
        rather than spend a receive on a call that is known to be refused."""
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if (
            isinstance(error, TransientError)
            and error.retry_after is not None
            and retry_state.upcoming_sleep >= deadline.remaining()
        ):
            raise DeferredError(str(error), retry_after=error.retry_after) from error
        raise error if error else RuntimeError("retries ended without an outcome")

    def before_sleep(retry_state: RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(error, TransientError):
            on_retry(error, retry_state.upcoming_sleep)

    retrying = Retrying(
        # An unknown outcome is never tried again in the same invocation: the record goes back to
        # its queue with a growing delay (portdocs.redelivery), so an outage is ridden out over
        # time, not spent in seconds.
        retry=retry_if_exception_type(TransientError)
        & retry_if_not_exception_type((DeferredError, AmbiguousError)),
        wait=wait_for,
        stop=give_up,
        before_sleep=before_sleep,
        sleep=sleep,
        retry_error_callback=outlasted,
    )
    return retrying(unit)


def note_retry(error: TransientError, wait: float) -> None:
    count("DocumentsRetried")
    said = without_url_paths(str(error))
    logger.info("transient fault, retrying", extra={"error": said, "wait_seconds": round(wait, 2)})
