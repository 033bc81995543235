"""The message that puts a ledger document through the pipeline again, repeating its last step:
the association when the file is on Telnyx already (the ledger vouches for the source), else the
upload, pinned to its version. One definition for `portdocs retry` (a person), the sweeper (a
schedule) and the associator (a porting-order document Telnyx deleted before it was linked)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from portdocs import aws
from portdocs.ledger import LedgerEntry
from portdocs.shapes import ASSOCIATION_REQUEST_SCHEMA, UPLOAD_REQUEST_SCHEMA, validate

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class Queue(StrEnum):
    INTAKE = "intake"
    ASSOCIATION = "association"


@dataclass(frozen=True)
class Resend:
    queue: Queue
    body: dict[str, Any]


def resend_of(entry: LedgerEntry, pinned_on_purpose: bool = True) -> Resend | None:
    """None when the entry names no document to send (a malformed message's row). Raises
    PermanentError if what the ledger recorded no longer fits the published schemas.

    An upload names the exact version (or ETag), so that it is the same document. With
    `pinned_on_purpose` a newer version no longer supersedes it: right for a person's retry;
    the pipeline's own resends (the sweeper, a fresh upload) pin only what a person pinned, so
    that the latest version still wins."""
    if entry.target is None:
        return None
    target_fields = entry.target.as_message()
    source = entry.source.as_message() if entry.source else None
    if entry.upload is not None:
        message: dict[str, Any] = {
            **target_fields,
            "description": entry.description or "",
            **entry.upload.as_fields(),
        }
        if source:
            message["source"] = source
        return Resend(Queue.ASSOCIATION, validate(message, ASSOCIATION_REQUEST_SCHEMA))
    if not source:
        return None
    request: dict[str, Any] = {**source, **target_fields}
    if not pinned_on_purpose and ("version_id" in request or "etag" in request):
        request["newer_version_wins"] = True
    if entry.description:
        request["description"] = entry.description
    return Resend(Queue.INTAKE, validate(request, UPLOAD_REQUEST_SCHEMA))


class Resender:
    """Sends a Resend to its queue."""

    def __init__(self, sqs_client: SQSClient, queue_urls: dict[Queue, str]) -> None:
        self._sqs = sqs_client
        self._queue_urls = queue_urls

    def send(self, resend: Resend) -> None:
        try:
            self._sqs.send_message(
                QueueUrl=self._queue_urls[resend.queue], MessageBody=json.dumps(resend.body)
            )
        except (ClientError, BotoCoreError) as error:
            raise aws.translate(error, f"sending to the {resend.queue} queue") from None
