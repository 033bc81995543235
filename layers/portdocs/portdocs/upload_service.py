"""The uploader's service: intake object -> validated -> uploaded to Telnyx -> association queued."""

from __future__ import annotations

import time
from typing import Any

from portdocs.association_queue import AssociationQueue
from portdocs.config import Settings
from portdocs.documents import (
    SNIFF_BYTES,
    Document,
    IntakeKey,
    PortingOrderTarget,
    SourceObject,
    Target,
    Upload,
    check_content_type,
    check_fits_target,
    check_size,
    file_name_of,
    is_folder_placeholder,
)
from portdocs.errors import MissingObjectError, PermanentError, UploadGoneError
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
            target: Target | None = IntakeKey.parse(item.source.key).target
        except PermanentError as error:
            self._outcomes.reject(Attempt.of(item.source, None), str(error))
            return
        attempt = Attempt.of(item.source, target)
        with self._outcomes.settling(attempt):
            self._check_bucket(item.source)
            current = self._intake.current(item.source)
            self._send(attempt, item, current, deadline, latest_version_wins=True)

    def _process_upload_request(self, item: IntakeObject, target: Target, deadline: Deadline) -> None:
        """An upload request names a key (and perhaps a version): which object that is becomes
        known from S3; until then a transient failure writes no ledger row, since there is no
        document yet, and a missing object is rejected as this request."""
        resolved: ObjectInfo | None = None
        gone = False
        with self._outcomes.settling(Attempt.of(item.source, target), record_failures=False):
            self._check_bucket(item.source)
            try:
                resolved = self._intake.describe(item.source)
            except MissingObjectError:
                if not item.newer_version_wins:
                    raise
                gone = True  # replaced or deleted: the key's latest version says which
        if resolved is None and not gone:  # rejected as this request
            return
        # A request that names the object keeps the identity it names (a retry finds its own row).
        attempt = Attempt.of(item.source if item.names_version or resolved is None else resolved.source, target)
        with self._outcomes.settling(attempt):
            found = self._intake.current(item.source) if item.newer_version_wins else resolved
            self._send(attempt, item, found, deadline, latest_version_wins=not item.version_pinned_on_purpose)

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
            version_pinned=not latest_version_wins,
        )
        if entry.state.is_terminal:
            self._outcomes.duplicate(attempt, entry)
            return
        pinned = not latest_version_wins
        if self._outcomes.end_unless_latest(attempt, found, SENT, version_pinned=pinned):
            return
        assert found is not None
        document = Document(source=attempt.source, target=attempt.target, description=description, size=found.size)
        # A fresh upload after Telnyx deleted the last one is new work, not a repeat of the old.
        identity = {"document_id": document.document_id, **({"reupload": entry.reuploads} if entry.reuploads else {})}
        try:
            self._upload_once(identity=identity, document=document, uploaded=entry.upload, deadline=deadline)
        except MissingObjectError:
            # Deleted or replaced between the look at the key and the read of the file.
            current = self._intake.current(attempt.source)
            if not self._outcomes.end_unless_latest(attempt, current, SENT, version_pinned=pinned):
                raise

    def _upload(
        self, identity: dict[str, Any], document: Document, uploaded: Upload | None, deadline: Deadline
    ) -> dict[str, Any]:
        """Uploads once per intake object; the ledger checkpoint makes a crash after the upload
        resend the same upload instead of uploading (and later associating) a second copy, unless
        Telnyx will have deleted it by now (porting orders' documents go unless linked)."""
        upload = uploaded
        if uploaded is not None and not self._still_on_telnyx(uploaded, deadline):
            # As the associator would have: a late association of the deleted upload is then
            # recognised, and the fresh upload counts towards the limit.
            self._ledger.forget_upload(document.document_id, uploaded)
            upload = None
        if upload is None:
            check_size(document.size, self._settings.max_document_bytes)
            head = self._intake.read_head(document.source, SNIFF_BYTES)
            content_type = check_content_type(head, self._settings.allowed_content_types)
            check_fits_target(document.target, document.file_name, document.size, content_type)
            upload = with_retries(
                lambda: self._transfer(document, content_type, deadline), deadline, on_retry=note_retry
            )
            if not self._ledger.mark_uploaded(document.document_id, upload, content_type):
                # A racing delivery ended the document meanwhile (a newer version, a deletion):
                # its word stands, and nothing is handed to the associator.
                self._outcomes.bring_tag_up_to_date(Attempt(document.document_id, document.source, document.target))
                return {**identity, **upload.as_fields()}
            count("DocumentsUploaded")
            # The Location is a bearer link to the file (Telnyx's form makes it public-read): the
            # ledger keeps it, the logs name the file only.
            logger.info("document uploaded", extra={"file_name": document.file_name, "content_type": content_type})
        # Tagged before the hand-off: the associator's "associated" must be the last word.
        self._outcomes.uploaded(Attempt(document.document_id, document.source, document.target))
        self._queue.send(self._association(document, upload))
        return {**identity, **upload.as_fields()}

    def _still_on_telnyx(self, upload: Upload, deadline: Deadline) -> bool:
        """A documents-service upload older than Telnyx keeps what nothing links is asked about:
        it may have been linked after all, by an association already under way."""
        if not upload.outlived(time.time()):
            return True
        try:
            self._telnyx.check_document(str(upload.telnyx_document_id), deadline)
        except UploadGoneError:
            return False
        return True

    def _transfer(self, document: Document, content_type: str, deadline: Deadline) -> Upload:
        if isinstance(document.target, PortingOrderTarget):
            # Taken before the upload starts: Telnyx's 30 minutes cannot have begun earlier.
            started = time.time()
            with self._intake.open(document.source) as body:
                telnyx_document_id = self._telnyx.upload_document(
                    document.file_name, body, document.size, content_type, deadline
                )
            return Upload(telnyx_document_id=telnyx_document_id, uploaded_at=started)
        # Each attempt asks for a fresh form: a retry may be curing an expired or refused one.
        form = self._telnyx.request_upload_form(content_type, deadline)
        self._check_association_would_be_accepted(document, form)
        with self._intake.open(document.source) as body:
            location = self._telnyx.upload(form, document.file_name, body, document.size, content_type, deadline)
        return Upload(location_url=location)

    def _check_association_would_be_accepted(self, document: Document, form: UploadForm) -> None:
        """The association message is checked against its schema before the file is sent, with the
        URL the files service will answer: a document the associator would refuse (a file name too
        long for a URL, say) is rejected now, not stranded as `uploaded`."""
        predicted = self._association(document, Upload(location_url=form.location_for(document.file_name)))
        try:
            self._queue.check(predicted)
        except PermanentError as error:
            raise PermanentError(f"the file cannot be associated as named: {error}") from None

    @staticmethod
    def _association(document: Document, upload: Upload) -> AssociationRequest:
        return AssociationRequest(
            target=document.target, description=document.description, upload=upload, source=document.source
        )
