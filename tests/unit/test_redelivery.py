"""The delays of a failing record's hand-backs (portdocs.redelivery): growing, capped, spread."""

from __future__ import annotations

import random

from portdocs.config import DEFAULT_BACKOFF_BASE_SECONDS
from portdocs.flows.flow import UNCONFIRMED_SENDS
from portdocs.redelivery import MAX_DELAY_SECONDS, OUTAGE_SPAN_SECONDS, backoff_delay


def test_hand_back_delays_grow_from_a_minute_to_sqs_longest_and_stay_there():
    draw = random.Random(7)
    for backoffs, minutes in enumerate([1, 2, 4, 8, 15, 15, 15, 15]):
        delays = [backoff_delay(DEFAULT_BACKOFF_BASE_SECONDS, backoffs, draw) for _ in range(200)]
        assert 0.75 * minutes * 60 <= min(delays) and max(delays) <= minutes * 60 <= MAX_DELAY_SECONDS
        assert max(delays) - min(delays) > 0.15 * minutes * 60  # spread: a fleet does not return in step


def test_an_hour_of_outage_never_reaches_a_person_and_a_lasting_one_does():
    """The figures the docs promise (docs/flows.md, When Telnyx is down), worked through with the
    shortest and the longest delays each step can draw."""

    def tries_within(seconds: float, shortest: bool) -> list[float]:
        moments, now, backoffs = [0.0], 0.0, 0
        while True:
            step = backoff_delay(DEFAULT_BACKOFF_BASE_SECONDS, backoffs, FixedDraw(shortest))
            if now + step > seconds:
                return moments
            now, backoffs = now + step, backoffs + 1
            moments.append(now)

    outage = 3600
    for shortest in (True, False):
        during = tries_within(outage, shortest)
        first_after = tries_within(outage + MAX_DELAY_SECONDS, shortest)[len(during)]
        # The try that goes through comes within 15 minutes of the end, before a person is asked.
        assert first_after - during[0] <= outage + MAX_DELAY_SECONDS < UNCONFIRMED_SENDS.span_seconds
    # A Telnyx that keeps failing: by the span, enough unknown outcomes to ask a person, and
    # not one a minute for ever; a record rides out longer than that before spending receives.
    at_the_span = tries_within(UNCONFIRMED_SENDS.span_seconds, shortest=True)
    assert UNCONFIRMED_SENDS.count <= len(at_the_span) <= 13
    assert UNCONFIRMED_SENDS.span_seconds < OUTAGE_SPAN_SECONDS


class FixedDraw(random.Random):
    def __init__(self, shortest: bool) -> None:
        super().__init__()
        self.shortest = shortest

    def uniform(self, a: float, b: float) -> float:
        return a if self.shortest else b
