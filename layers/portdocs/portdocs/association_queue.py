"""Association queue adapter: the uploader's hand-off to the associator."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from portdocs import aws
from portdocs.messages import AssociationRequest
from portdocs.shapes import ASSOCIATION_REQUEST_SCHEMA, validate

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class AssociationQueue:
    def __init__(self, sqs_client: SQSClient, queue_url: str) -> None:
        self._sqs = sqs_client
        self._queue_url = queue_url

    @staticmethod
    def check(request: AssociationRequest) -> dict[str, Any]:
        """The message exactly as the associator will validate it: never send what it would refuse."""
        return validate(request.to_message(), ASSOCIATION_REQUEST_SCHEMA)

    def send(self, request: AssociationRequest) -> None:
        message = self.check(request)
        try:
            self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=json.dumps(message))
        except (ClientError, BotoCoreError) as error:
            raise aws.translate(error, "sending the association request") from None
