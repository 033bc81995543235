"""Association queue adapter: the uploader's hand-off to the associator."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from portdocs import aws
from portdocs.messages import AssociationRequest


class AssociationQueue:
    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        self._sqs = sqs_client
        self._queue_url = queue_url

    def send(self, request: AssociationRequest) -> None:
        try:
            self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=json.dumps(request.to_message()))
        except (ClientError, BotoCoreError) as error:
            raise aws.translate(error, "sending the association request") from None
