from __future__ import annotations

import time

import pytest

from portdocs.errors import DeferredError, PermanentError, TransientError
from portdocs.retrying import MAX_ATTEMPTS, MIN_RECORD_SECONDS, Deadline, with_retries


class Flaky:
    def __init__(self, *outcomes: Exception | str) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def run(unit: Flaky, seconds: float = 100.0) -> tuple[object, list[float]]:
    slept: list[float] = []
    try:
        result: object = with_retries(unit, Deadline(at=time.monotonic() + seconds), sleep=slept.append)
    except Exception as error:
        result = error
    return result, slept


def test_success_after_transient_faults():
    result, slept = run(Flaky(TransientError("503"), TransientError("timeout"), "ok"))
    assert result == "ok" and len(slept) == 2


def test_server_supplied_wait_is_honoured():
    _, slept = run(Flaky(TransientError("429", retry_after=7.0), "ok"))
    assert 7.0 <= slept[0] <= 7.0 + 8 / 4


def test_backoff_without_a_hint_is_jittered_and_bounded():
    _, slept = run(Flaky(*[TransientError("503")] * (MAX_ATTEMPTS - 1), "ok"))
    assert len(slept) == MAX_ATTEMPTS - 1
    assert all(0 <= wait <= 8 for wait in slept)


def test_gives_up_after_max_attempts_with_the_last_error():
    unit = Flaky(*[TransientError(f"503 #{i}") for i in range(10)])
    result, _ = run(unit)
    assert isinstance(result, TransientError) and str(result) == f"503 #{MAX_ATTEMPTS - 1}"
    assert unit.calls == MAX_ATTEMPTS


def test_never_sleeps_past_the_deadline():
    unit = Flaky(TransientError("429", retry_after=30.0), "ok")
    result, slept = run(unit, seconds=10.0)
    assert isinstance(result, TransientError) and slept == [] and unit.calls == 1


@pytest.mark.parametrize("error", [PermanentError("422"), ValueError("bug")])
def test_other_errors_are_not_retried(error):
    unit = Flaky(error, "ok")
    result, slept = run(unit)
    assert result is error and slept == [] and unit.calls == 1


def test_deadline_from_a_lambda_context_keeps_a_reserve():
    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 20_000

    assert 13.0 < Deadline.from_context(Context()).remaining() <= 14.0


def test_http_timeouts_connect_included_end_by_the_deadline():
    assert Deadline(at=time.monotonic() + 1000).cap((5.0, 30.0)) == (5.0, 30.0)
    connect, read = Deadline(at=time.monotonic() + 6).cap((5.0, 30.0))
    assert connect <= 3.0 and 5.0 < connect + read <= 6.0
    connect, read = Deadline(at=time.monotonic() + 1.5).cap((5.0, 30.0))
    assert read == 1.0 and connect <= 0.75


def test_no_call_is_started_that_cannot_end_by_the_deadline():
    with pytest.raises(DeferredError):
        Deadline(at=time.monotonic() + 0.5).cap((5.0, 30.0))
    with pytest.raises(DeferredError, match="start another record"):
        Deadline(at=time.monotonic() + 3).ensure(MIN_RECORD_SECONDS, "start another record")


def test_a_wait_longer_than_the_invocation_defers_the_record_instead_of_sleeping():
    unit = Flaky(TransientError("429", retry_after=120.0), "ok")
    slept: list[float] = []
    with pytest.raises(DeferredError) as deferred:
        with_retries(unit, Deadline(at=time.monotonic() + 30), sleep=slept.append)
    assert deferred.value.retry_after == 120.0 and slept == [] and unit.calls == 1
