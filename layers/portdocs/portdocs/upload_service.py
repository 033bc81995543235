"""The uploader's service: intake object -> validated -> uploaded to Telnyx -> association queued."""

from __future__ import annotations

from typing import Any

from portdocs.association_queue import AssociationQueue
from portdocs.config import Settings
from portdocs.documents import (
    SNIFF_BYTES,
    Document,
    IntakeKey,
    State,
    check_content_type,
    check_size,
    file_name_of,
    is_folder_placeholder,
)
from portdocs.errors import PermanentError
from portdocs.idempotency import Idempotency
from portdocs.intake import IntakeStore
from portdocs.ledger import Ledger
from portdocs.messages import AssociationRequest, IntakeObject, parse_intake_message
from portdocs.observability import count, logger
from portdocs.outcomes import Attempt, Outcomes, note_retry
from portdocs.retrying import Deadline, with_retries
from portdocs.telnyx import TelnyxClient


class UploadService:
    def __init__(
        self,
        settings: Settings,
        telnyx: TelnyxClient,
        intake: IntakeStore,
        queue: AssociationQueue,
        ledger: Ledger,
        outcomes: Outcomes,
        idempotency: Idempotency,
    ) -> None:
        self._settings = settings
        self._telnyx = telnyx
        self._intake = intake
        self._queue = queue
        self._ledger = ledger
        self._outcomes = outcomes
        self._idempotency = idempotency
        # Keyed on the intake object's identity (bucket, key, version or ETag), never on the SQS
        # message id: a redelivered S3 event arrives as a new message.
        self._upload_once = idempotency.once(self._upload, key_argument="identity")

    def bind(self, lambda_context: Any) -> None:
        self._idempotency.bind(lambda_context)

    def handle_message(self, body: str, message_id: str, deadline: Deadline) -> None:
        try:
            items = parse_intake_message(body)
        except PermanentError as error:
            self._outcomes.reject_message(message_id, error)
            return
        if not items:
            logger.info("message carries no document (S3 test event or a deletion)")
        for item in items:
            self._process(item, deadline)

    def _process(self, item: IntakeObject, deadline: Deadline) -> None:
        if is_folder_placeholder(item.source.key, item.size or 0):
            logger.info("ignoring a folder placeholder", extra={"key": item.source.key})
            return
        attempt = Attempt(source=item.source, target=item.target)
        with self._outcomes.settling(attempt):
            if item.source.bucket != self._settings.intake_bucket:
                raise PermanentError(
                    f"bucket {item.source.bucket!r} is not the intake bucket {self._settings.intake_bucket!r}"
                )
            info = self._intake.describe(item.source)
            attempt.learn(source=info.source)  # a key outside the layout is rejected as this object
            target = item.target or IntakeKey.parse(info.source.key).target
            attempt.learn(target=target)
            document = Document(
                source=info.source,
                target=target,
                description=item.description or info.description or file_name_of(info.source.key),
                size=info.size,
            )
            entry = self._ledger.open(document.document_id, document.target, document.source, document.description)
            if entry.state.is_terminal:
                logger.info("duplicate delivery of a finished document", extra={"state": str(entry.state)})
                return
            self._upload_once(
                identity={"document_id": document.document_id},
                document=document,
                uploaded_url=entry.location_url,
                deadline=deadline,
            )

    def _upload(
        self, identity: dict[str, str], document: Document, uploaded_url: str | None, deadline: Deadline
    ) -> dict[str, str]:
        """Uploads once per intake object; the ledger checkpoint makes a crash after the upload
        resend the same URL instead of uploading (and later associating) a second copy."""
        url = uploaded_url
        if url is None:
            check_size(document.size, self._settings.max_document_bytes)
            head = self._intake.read_head(document.source, SNIFF_BYTES)
            content_type = check_content_type(head, self._settings.allowed_content_types)
            url = with_retries(lambda: self._transfer(document, content_type, deadline), deadline, on_retry=note_retry)
            self._ledger.mark_uploaded(document.document_id, url, content_type)
            count("DocumentsUploaded")
            logger.info("document uploaded", extra={"location": url, "content_type": content_type})
        # Tagged before the hand-off: the associator's "associated" must be the last word.
        self._outcomes.tag(document.source, State.UPLOADED)
        self._queue.send(
            AssociationRequest(
                target=document.target, description=document.description, url=url, source=document.source
            )
        )
        return {**identity, "url": url}

    def _transfer(self, document: Document, content_type: str, deadline: Deadline) -> str:
        # Each attempt asks for a fresh form: a retry may be curing an expired or refused one.
        form = self._telnyx.request_upload_form(content_type, deadline)
        with self._intake.open(document.source) as body:
            return self._telnyx.upload(form, document.file_name, body, document.size, content_type, deadline)
