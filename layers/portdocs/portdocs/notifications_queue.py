"""The notifications queue: where the receiver (verified webhooks) and the poller (Telnyx's porting
events, portdocs' own reads of an order) hand notifications to the tracker."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from portdocs import aws
from portdocs.errors import TransientError
from portdocs.porting_status import PortingEvent

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

SQS_BATCH = 10


class NotificationsQueue:
    def __init__(self, sqs_client: SQSClient, queue_url: str) -> None:
        self._sqs = sqs_client
        self._queue_url = queue_url

    def send(self, events: list[PortingEvent]) -> None:
        """Every event is on the queue when this returns; raises a project error if one is not."""
        for start in range(0, len(events), SQS_BATCH):
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {"Id": str(index), "MessageBody": json.dumps(event.as_message())}
                for index, event in enumerate(events[start : start + SQS_BATCH])
            ]
            try:
                answer = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
            except (ClientError, BotoCoreError) as error:
                raise aws.translate(error, "queueing porting notifications") from None
            if answer.get("Failed"):
                raise TransientError(f"queueing porting notifications: {len(answer['Failed'])} refused")
