"""Hands a record back to its queue, for later, without spending one of its receives.

Two kinds of record go back:
- deferred ones (`defer`): not worked on at all (too little time left in the batch, Telnyx asked
  every caller to wait longer than the invocation has, another delivery holds the document). They
  did nothing wrong, and go back after the wait asked for.
- failing ones (`back_off`): Telnyx failed them (5xx, resets, timeouts, an unknown outcome) after
  what one invocation may try. Spending a receive on each would send every document in flight to
  the dead-letter queue within minutes of an outage starting; instead each goes back with a delay
  that grows with every hand-back (1, 2, 4, 8, then 15 minutes, the most SQS allows, each with
  jitter so a fleet does not come back in step; the sandbox shortens the minute) for
  OUTAGE_SPAN_SECONDS. A longer outage spends
  receives as before (visibility timeouts apart), ending in the dead-letter queue where a person
  redrives it.

A copy is a new message: new id, new receive count, and a new retention clock. So every copy
carries the moment its first copy was sent; a record older than MAX_AGE_SECONDS is not handed back
again but sent to its dead-letter queue, saying why, so that the idempotency horizon bounds how
long any message can come back (tests/unit/test_template.py). Duplicates are harmless: every step
is keyed on the document, not the message.
"""

from __future__ import annotations

import json
import math
import random
import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from portdocs.observability import count, logger
from portdocs.urls import without_url_paths

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

FIRST_SENT_ATTRIBUTE = "portdocs-first-sent"  # epoch milliseconds, as SQS's SentTimestamp
BACKOFFS_ATTRIBUTE = "portdocs-backoffs"
FAILING_SINCE_ATTRIBUTE = "portdocs-failing-since"  # epoch milliseconds
DEFERRALS_ATTRIBUTE = "portdocs-deferrals"
# Deferrals taken at the delay asked for, before the delay grows by itself.
FREE_DEFERRALS = 3
DEAD_LETTER_REASON_ATTRIBUTE = "portdocs-dead-letter-reason"
OURS = (
    FIRST_SENT_ATTRIBUTE,
    BACKOFFS_ATTRIBUTE,
    FAILING_SINCE_ATTRIBUTE,
    DEFERRALS_ATTRIBUTE,
    DEAD_LETTER_REASON_ATTRIBUTE,
)
SQS_MAX_ATTRIBUTES = 10
MAX_DELAY_SECONDS = 900  # SQS's DelaySeconds limit
# The longest delay, in steps of the base (config.DEFAULT_BACKOFF_BASE_SECONDS): 15 minutes.
MAX_BACKOFF_STEPS = 15
# Each delay is drawn from the top quarter of its step: spread, yet still growing.
BACKOFF_JITTER = (0.75, 1.0)
# A failing record rides out this long an outage without spending a receive; longer than the
# span after which unknown association outcomes are left to a person (flows/flow.py), so that
# limit, not this one, is what a lasting fault meets first.
OUTAGE_SPAN_SECONDS = 2 * 3600
# A record first sent longer ago than this goes to its dead-letter queue instead of going back:
# with the queue's retention after the last copy and the dead-letter queue's, this bounds how long
# a message can come back (tests/unit/test_template.py checks it against the idempotency horizon).
MAX_AGE_SECONDS = 24 * 3600


class Redelivery:
    def __init__(self, sqs_client: SQSClient, backoff_base_seconds: float) -> None:
        self._sqs = sqs_client
        self._backoff_base = backoff_base_seconds
        self._queue_urls: dict[str, str] = {}
        self._dead_letter_urls: dict[str, str] = {}

    def defer(self, record: dict[str, Any], delay_seconds: float) -> bool:
        """True when the record is queued again (or, too old, on its dead-letter queue) and the
        original may be acknowledged. After a few deferrals in a row the delay grows (1 s, 2 s, 4 s
        ... up to SQS's 15 minutes) whatever was asked: a record deferred with no wait at all (a
        function timeout too short to start it) must not circle hot for a day."""
        deferrals = _number(record.get("messageAttributes") or {}, DEFERRALS_ATTRIBUTE)
        floor = 0.0 if deferrals < FREE_DEFERRALS else float(1 << min(deferrals - FREE_DEFERRALS, 10))
        return self._hand_back(record, max(delay_seconds, floor), {DEFERRALS_ATTRIBUTE: deferrals + 1})

    def back_off(self, record: dict[str, Any], now: float | None = None) -> bool:
        """True when a failing record went back with a growing delay (or, too old, to its
        dead-letter queue); False once it has failed for OUTAGE_SPAN_SECONDS: its receives are
        spent from then on."""
        now = time.time() if now is None else now
        attributes = record.get("messageAttributes") or {}
        backoffs = _number(attributes, BACKOFFS_ATTRIBUTE)
        # Never later than now: a sender's attribute cannot keep a record circling.
        failing_since = min(_number(attributes, FAILING_SINCE_ATTRIBUTE) or int(now * 1000), int(now * 1000))
        if now - failing_since / 1000 >= OUTAGE_SPAN_SECONDS:
            logger.warning("record failing for too long; its receives are spent from now on")
            return False
        delay = backoff_delay(self._backoff_base, backoffs)
        count("RecordsBackedOff")
        return self._hand_back(
            record,
            delay,
            {BACKOFFS_ATTRIBUTE: backoffs + 1, FAILING_SINCE_ATTRIBUTE: failing_since},
            now,
        )

    def _hand_back(
        self, record: dict[str, Any], delay_seconds: float, ours: dict[str, int], now: float | None = None
    ) -> bool:
        now = time.time() if now is None else now
        attributes = record.get("messageAttributes") or {}
        # Never later than SQS says this copy was sent: a sender cannot make a record young again.
        sent = _sent_timestamp(record, now)
        first_sent = min(_number(attributes, FIRST_SENT_ATTRIBUTE) or sent, sent)
        carried = {
            name: _number(attributes, name)
            for name in (BACKOFFS_ATTRIBUTE, FAILING_SINCE_ATTRIBUTE, DEFERRALS_ATTRIBUTE)
        }
        carried = {name: value for name, value in carried.items() if value}
        kept = _kept_attributes(attributes, {FIRST_SENT_ATTRIBUTE: first_sent, **carried, **ours})
        try:
            queue_arn = record["eventSourceARN"]
            age = now - first_sent / 1000
            if age >= MAX_AGE_SECONDS:
                return self._to_dead_letter(record, queue_arn, kept, age)
            delay = min(MAX_DELAY_SECONDS, max(0, math.ceil(delay_seconds)))
            self._sqs.send_message(
                QueueUrl=self._queue_url(queue_arn),
                MessageBody=record["body"],
                DelaySeconds=delay,
                MessageAttributes=kept,
            )
        except (ClientError, BotoCoreError, KeyError, ValueError) as error:
            said = without_url_paths(str(error))
            logger.warning("could not hand the record back; failing it instead", extra={"error": said})
            return False
        count("RecordsDeferred")
        logger.info("record handed back to its queue for later", extra={"delay_seconds": delay})
        return True

    def _to_dead_letter(
        self,
        record: dict[str, Any],
        queue_arn: str,
        kept: dict[str, MessageAttributeValueTypeDef],
        age: float,
    ) -> bool:
        reason = (
            f"handed back for {age / 3600:.0f} hours without finishing (the limit is "
            f"{MAX_AGE_SECONDS // 3600}): its document's last_error in the ledger says why"
        )
        # Without our clocks: a redrive, by any means, is a fresh start a person chose.
        kept = {name: value for name, value in kept.items() if name not in OURS}
        kept[DEAD_LETTER_REASON_ATTRIBUTE] = {"DataType": "String", "StringValue": reason}
        self._sqs.send_message(
            QueueUrl=self._dead_letter_url(queue_arn), MessageBody=record["body"], MessageAttributes=kept
        )
        count("RecordsTooOld")
        logger.warning("record too old to hand back; sent to its dead-letter queue", extra={"reason": reason})
        return True

    def _queue_url(self, queue_arn: str) -> str:
        if queue_arn not in self._queue_urls:
            _, _, _, _, account, name = queue_arn.split(":", 5)
            self._queue_urls[queue_arn] = self._sqs.get_queue_url(
                QueueName=name, QueueOwnerAWSAccountId=account
            )["QueueUrl"]
        return self._queue_urls[queue_arn]

    def _dead_letter_url(self, queue_arn: str) -> str:
        """The queue's own redrive policy names it: one definition, the template's."""
        if queue_arn not in self._dead_letter_urls:
            policy = self._sqs.get_queue_attributes(
                QueueUrl=self._queue_url(queue_arn), AttributeNames=["RedrivePolicy"]
            )["Attributes"]["RedrivePolicy"]
            self._dead_letter_urls[queue_arn] = self._queue_url(json.loads(policy)["deadLetterTargetArn"])
        return self._dead_letter_urls[queue_arn]


def backoff_delay(base_seconds: float, backoffs: int, draw: random.Random | None = None) -> float:
    """The delay of a failing record's next hand-back: base, 2x, 4x, 8x, then 15x the base (15
    minutes on AWS, SQS's most), each drawn from the top quarter of its step."""
    step = base_seconds * min(MAX_BACKOFF_STEPS, 1 << min(backoffs, 4))
    return step * (draw or random).uniform(*BACKOFF_JITTER)


def _kept_attributes(
    attributes: dict[str, Any], ours: dict[str, int]
) -> dict[str, MessageAttributeValueTypeDef]:
    """The sender's string attributes (as many as fit beside ours), then ours."""
    kept: dict[str, MessageAttributeValueTypeDef] = {
        name: {"DataType": value["dataType"], "StringValue": value["stringValue"]}
        for name, value in attributes.items()
        if name not in OURS and value.get("stringValue") is not None
    }
    kept = dict(list(kept.items())[: SQS_MAX_ATTRIBUTES - len(ours) - 1])
    kept.update({name: {"DataType": "Number", "StringValue": str(value)} for name, value in ours.items()})
    return kept


def _number(attributes: dict[str, Any], name: str) -> int:
    try:
        return max(0, int((attributes.get(name) or {}).get("stringValue") or 0))
    except ValueError:
        return 0


def _sent_timestamp(record: dict[str, Any], now: float) -> int:
    """When SQS took the first copy (milliseconds); a record without one is taken as sent now."""
    try:
        return int((record.get("attributes") or {})["SentTimestamp"])
    except (KeyError, ValueError, TypeError):
        return int(now * 1000)
