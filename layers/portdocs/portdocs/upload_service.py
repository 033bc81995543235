"""The uploader's service: intake object -> validated -> uploaded to Telnyx -> association queued."""

from __future__ import annotations

from typing import Any

from portdocs.association_queue import AssociationQueue
from portdocs.config import Settings
from portdocs.documents import (
    SNIFF_BYTES,
    Document,
    DraftTarget,
    IntakeKey,
    SourceObject,
    check_content_type,
    check_size,
    file_name_of,
    is_folder_placeholder,
)
from portdocs.errors import MissingObjectError, PermanentError
from portdocs.idempotency import Idempotency
from portdocs.intake import IntakeStore, ObjectInfo
from portdocs.ledger import Ledger
from portdocs.messages import AssociationRequest, IntakeObject, parse_intake_message
from portdocs.observability import count, logger
from portdocs.outcomes import Attempt, Outcomes, note_retry
from portdocs.retrying import Deadline, with_retries
from portdocs.shapes import shorten_description
from portdocs.telnyx import TelnyxClient, UploadForm

SENT = "sent to Telnyx"


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
        self.record_concurrency = settings.record_concurrency
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
        if item.target is not None:
            self._process_upload_request(item, item.target, deadline)
        elif is_folder_placeholder(item.source.key, item.size or 0):
            logger.info("ignoring a folder placeholder", extra={"key": item.source.key})
        else:
            self._process_notification(item, deadline)

    def _process_notification(self, item: IntakeObject, deadline: Deadline) -> None:
        """An S3 event names the exact object: its identity and target are known before any call."""
        try:
            target: DraftTarget | None = IntakeKey.parse(item.source.key).target
        except PermanentError as error:
            self._outcomes.reject(Attempt.of(item.source, None), str(error))
            return
        attempt = Attempt.of(item.source, target)
        with self._outcomes.settling(attempt):
            self._check_bucket(item.source)
            current = self._intake.current(item.source)
            self._send(attempt, item, current, deadline, latest_version_wins=True)

    def _process_upload_request(self, item: IntakeObject, target: DraftTarget, deadline: Deadline) -> None:
        """An upload request names a key (and perhaps a version): which object that is becomes
        known from S3; until then a transient failure writes no ledger row, since there is no
        document yet, and a missing object is rejected as this request."""
        resolved: ObjectInfo | None = None
        with self._outcomes.settling(Attempt.of(item.source, target), record_failures=False):
            self._check_bucket(item.source)
            resolved = self._intake.describe(item.source)
        if resolved is None:  # rejected as this request
            return
        # A request that pins the object keeps the identity it names (a retry finds its own row).
        attempt = Attempt.of(item.source if item.version_pinned_on_purpose else resolved.source, target)
        with self._outcomes.settling(attempt):
            self._send(attempt, item, resolved, deadline, latest_version_wins=not item.version_pinned_on_purpose)

    def _check_bucket(self, source: SourceObject) -> None:
        if source.bucket != self._settings.intake_bucket:
            raise PermanentError(f"bucket {source.bucket!r} is not the intake bucket {self._settings.intake_bucket!r}")

    def _send(
        self,
        attempt: Attempt,
        item: IntakeObject,
        found: ObjectInfo | None,
        deadline: Deadline,
        latest_version_wins: bool,
    ) -> None:
        assert attempt.source is not None and attempt.target is not None
        description = shorten_description(
            item.description or (found.description if found else None) or file_name_of(item.source.key)
        )
        entry = self._ledger.open(
            attempt.document_id,
            attempt.target,
            attempt.source,
            description,
            # Once pinned on purpose (a request naming the version, `portdocs retry`), a late
            # redelivery of the original S3 event does not unpin it.
            **({} if latest_version_wins else {"version_pinned": True}),
        )
        if entry.state.is_terminal:
            self._outcomes.duplicate(attempt, entry)
            return
        pinned = not latest_version_wins
        if self._outcomes.end_unless_latest(attempt, found, SENT, version_pinned=pinned):
            return
        assert found is not None
        document = Document(source=attempt.source, target=attempt.target, description=description, size=found.size)
        try:
            self._upload_once(
                identity={"document_id": document.document_id},
                document=document,
                uploaded_url=entry.location_url,
                deadline=deadline,
            )
        except MissingObjectError:
            # Deleted or replaced between the look at the key and the read of the file.
            current = self._intake.current(attempt.source)
            if not self._outcomes.end_unless_latest(attempt, current, SENT, version_pinned=pinned):
                raise

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
            if not self._ledger.mark_uploaded(document.document_id, url, content_type):
                # A racing delivery ended the document meanwhile (a newer version, a deletion):
                # its word stands, and nothing is handed to the associator.
                self._outcomes.bring_tag_up_to_date(Attempt(document.document_id, document.source, document.target))
                return {**identity, "url": url}
            count("DocumentsUploaded")
            # The Location is a bearer link to the file (Telnyx's form makes it public-read): the
            # ledger keeps it, the logs name the file only.
            logger.info("document uploaded", extra={"file_name": document.file_name, "content_type": content_type})
        # Tagged before the hand-off: the associator's "associated" must be the last word.
        self._outcomes.uploaded(Attempt(document.document_id, document.source, document.target))
        self._queue.send(self._association(document, url))
        return {**identity, "url": url}

    def _transfer(self, document: Document, content_type: str, deadline: Deadline) -> str:
        # Each attempt asks for a fresh form: a retry may be curing an expired or refused one.
        form = self._telnyx.request_upload_form(content_type, deadline)
        self._check_association_would_be_accepted(document, form)
        with self._intake.open(document.source) as body:
            return self._telnyx.upload(form, document.file_name, body, document.size, content_type, deadline)

    def _check_association_would_be_accepted(self, document: Document, form: UploadForm) -> None:
        """The association message is checked against its schema before the file is sent, with the
        URL the files service will answer: a document the associator would refuse (a file name too
        long for a URL, say) is rejected now, not stranded as `uploaded`."""
        predicted = self._association(document, form.location_for(document.file_name))
        try:
            self._queue.check(predicted)
        except PermanentError as error:
            raise PermanentError(f"the file cannot be associated as named: {error}") from None

    @staticmethod
    def _association(document: Document, url: str) -> AssociationRequest:
        return AssociationRequest(
            target=document.target, description=document.description, url=url, source=document.source
        )
