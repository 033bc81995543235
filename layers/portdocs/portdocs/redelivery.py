"""Hands a record back to its queue without spending one of its receives.

A record that was not worked on (too little time left in the batch, or Telnyx asked every caller
to wait longer than the invocation has) did nothing wrong: reporting it as a batch item failure
would count a receive against it, and after a long outage a healthy document would reach the
dead-letter queue only because it shared batches with slow ones. Instead a copy goes back on the
queue (delayed by the wait Telnyx asked for, up to SQS's 15 minutes) and the original is
acknowledged. Duplicates are harmless: every step is keyed on the document, not the message.
A record deferred MAX_DEFERRALS times fails normally, so nothing circles for ever.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from portdocs.observability import count, logger
from portdocs.urls import without_url_paths

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

DEFERRALS_ATTRIBUTE = "portdocs-deferrals"
MAX_DEFERRALS = 10
MAX_DELAY_SECONDS = 900  # SQS's DelaySeconds limit
SQS_MAX_ATTRIBUTES = 10


class Redelivery:
    def __init__(self, sqs_client: SQSClient) -> None:
        self._sqs = sqs_client
        self._queue_urls: dict[str, str] = {}

    def defer(self, record: dict[str, Any], delay_seconds: float) -> bool:
        """True when a copy is queued and the original may be acknowledged."""
        attributes = record.get("messageAttributes") or {}
        deferrals = _deferrals(attributes)
        if deferrals >= MAX_DEFERRALS:
            logger.warning("record deferred too often; failing it instead", extra={"deferrals": deferrals})
            return False
        kept: dict[str, MessageAttributeValueTypeDef] = {
            name: {"DataType": value["dataType"], "StringValue": value["stringValue"]}
            for name, value in attributes.items()
            if name != DEFERRALS_ATTRIBUTE and value.get("stringValue") is not None
        }
        kept = dict(list(kept.items())[: SQS_MAX_ATTRIBUTES - 1])
        kept[DEFERRALS_ATTRIBUTE] = {"DataType": "Number", "StringValue": str(deferrals + 1)}
        delay = min(MAX_DELAY_SECONDS, max(0, math.ceil(delay_seconds)))
        try:
            self._sqs.send_message(
                QueueUrl=self._queue_url(record["eventSourceARN"]),
                MessageBody=record["body"],
                DelaySeconds=delay,
                MessageAttributes=kept,
            )
        except (ClientError, BotoCoreError, KeyError) as error:
            said = without_url_paths(str(error))
            logger.warning("could not hand the record back; failing it instead", extra={"error": said})
            return False
        count("RecordsDeferred")
        logger.info("record handed back to its queue for later", extra={"delay_seconds": delay})
        return True

    def _queue_url(self, queue_arn: str) -> str:
        if queue_arn not in self._queue_urls:
            _, _, _, _, account, name = queue_arn.split(":", 5)
            self._queue_urls[queue_arn] = self._sqs.get_queue_url(
                QueueName=name, QueueOwnerAWSAccountId=account
            )["QueueUrl"]
        return self._queue_urls[queue_arn]


def _deferrals(attributes: dict[str, Any]) -> int:
    try:
        return int((attributes.get(DEFERRALS_ATTRIBUTE) or {}).get("stringValue") or 0)
    except ValueError:
        return 0
