"""The uploader's service: intake object -> validated -> uploaded to Telnyx -> association queued."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portdocs.association_queue import AssociationQueue
from portdocs.config import Settings
from portdocs.documents import (
    Document,
    IntakeKey,
    SourceObject,
    Target,
    Upload,
    check_size,
    file_name_of,
    is_folder_placeholder,
)
from portdocs.errors import MissingObjectError, PermanentError, TransientError, UploadGoneError
from portdocs.file_check import CheckedFile, check_for_target, local_folder
from portdocs.flows import Flow, Flows
from portdocs.idempotency import Idempotency
from portdocs.intake import IntakeStore, ObjectInfo
from portdocs.lifecycle import Attempt, Lifecycle
from portdocs.messages import AssociationRequest, IntakeObject, parse_intake_message
from portdocs.observability import logger
from portdocs.retrying import Deadline, note_retry, with_retries
from portdocs.shapes import shorten_description

SENT = "sent to Telnyx"


@dataclass(frozen=True)
class Uploaded:
    """The uploader's idempotent step, done: the document and where its file went. Its fields are
    the ones this step has always cached (records already in the idempotency table are read back
    with them): the document, its fresh-upload count, and the upload as messages name it."""

    document_id: str
    reupload: int | None = None
    url: str | None = None
    telnyx_document_id: str | None = None
    uploaded_at: str | None = None

    @classmethod
    def of(cls, document_id: str, reuploads: int, upload: Upload) -> Uploaded:
        return cls(document_id=document_id, reupload=reuploads or None, **upload.as_fields())


class UploadService:
    def __init__(
        self,
        settings: Settings,
        flows: Flows,
        intake: IntakeStore,
        queue: AssociationQueue,
        lifecycle: Lifecycle,
        idempotency: Idempotency,
    ) -> None:
        self._settings = settings
        self.record_concurrency = settings.record_concurrency
        self._flows = flows
        self._intake = intake
        self._queue = queue
        self._lifecycle = lifecycle
        self._idempotency = idempotency
        # Keyed on the intake object's identity (bucket, key, version or ETag), never on the SQS
        # message id: a redelivered S3 event arrives as a new message.
        self._upload_once = idempotency.once(
            self._upload,
            key_argument="identity",
            result=Uploaded,
            name="portdocs.upload_service.UploadService._upload",
        )

    def bind(self, lambda_context: Any) -> None:
        self._idempotency.bind(lambda_context)

    def handle_message(self, body: str, message_id: str, deadline: Deadline) -> None:
        try:
            items = parse_intake_message(body)
        except PermanentError as error:
            self._lifecycle.reject_message(message_id, error)
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
            self._lifecycle.reject(Attempt.of(item.source, None), str(error))
            return
        attempt = Attempt.of(item.source, target)
        with self._lifecycle.settling(attempt):
            self._check_bucket(item.source)
            current = self._intake.current(item.source)
            self._send(attempt, item, current, deadline, latest_version_wins=True)

    def _process_upload_request(self, item: IntakeObject, target: Target, deadline: Deadline) -> None:
        """An upload request names a key (and perhaps a version): which object that is becomes
        known from S3; until then a transient failure writes no ledger row, since there is no
        document yet, and a missing object is rejected as this request."""
        resolved: ObjectInfo | None = None
        gone = False
        with self._lifecycle.settling(Attempt.of(item.source, target), record_failures=False):
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
        attempt = Attempt.of(
            item.source if item.names_version or resolved is None else resolved.source, target
        )
        with self._lifecycle.settling(attempt):
            found = self._intake.current(item.source) if item.newer_version_wins else resolved
            self._send(attempt, item, found, deadline, latest_version_wins=not item.version_pinned_on_purpose)

    def _check_bucket(self, source: SourceObject) -> None:
        if source.bucket != self._settings.intake_bucket:
            raise PermanentError(
                f"bucket {source.bucket!r} is not the intake bucket {self._settings.intake_bucket!r}"
            )

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
        # Once pinned on purpose (a request naming the version, `portdocs retry`), a late
        # redelivery of the original S3 event does not unpin it.
        pinned = not latest_version_wins
        entry = self._lifecycle.open(attempt, description, version_pinned=pinned)
        if entry.state.is_terminal:
            self._lifecycle.duplicate(attempt, entry)
            return
        if self._lifecycle.end_unless_latest(attempt, found, SENT, version_pinned=pinned):
            return
        assert found is not None
        document = Document(
            source=attempt.source, target=attempt.target, description=description, size=found.size
        )
        # A fresh upload after Telnyx deleted the last one is new work, not a repeat of the old.
        identity = {
            "document_id": document.document_id,
            **({"reupload": entry.reuploads} if entry.reuploads else {}),
        }
        try:
            self._upload_once(identity=identity, document=document, uploaded=entry.upload, deadline=deadline)
        except MissingObjectError:
            # Deleted or replaced between the look at the key and the read of the file.
            current = self._intake.current(attempt.source)
            if not self._lifecycle.end_unless_latest(attempt, current, SENT, version_pinned=pinned):
                raise

    def _upload(
        self, identity: dict[str, Any], document: Document, uploaded: Upload | None, deadline: Deadline
    ) -> Uploaded:
        """Uploads once per intake object; the ledger checkpoint makes a crash after the upload
        resend the same upload instead of uploading (and later associating) a second copy, unless
        Telnyx will have deleted it by now (porting orders' documents go unless linked)."""
        attempt = Attempt(document.document_id, document.source, document.target)
        flow = self._flows.of(document.target)
        reuploads = int(identity.get("reupload", 0))
        upload = self._still_on_telnyx(flow, attempt, uploaded, deadline)
        if upload is None:
            checked, upload = self._fresh_upload(flow, document, deadline)
            if not self._lifecycle.uploaded(attempt, upload, checked):
                # A racing delivery ended the document meanwhile: nothing goes to the associator.
                return Uploaded.of(document.document_id, reuploads, upload)
            # The Location is a bearer link to the file (Telnyx's form makes it public-read): the
            # ledger keeps it, the logs name the file only.
            logger.info(
                "document uploaded",
                extra={
                    "file_name": checked.file_name,
                    "content_type": checked.content_type,
                    "converted_from": checked.converted_from,
                },
            )
        self._lifecycle.tag_uploaded(attempt)
        self._queue.send(AssociationRequest.of(document, upload))
        return Uploaded.of(document.document_id, reuploads, upload)

    def _still_on_telnyx(
        self, flow: Flow[Any, Any], attempt: Attempt, uploaded: Upload | None, deadline: Deadline
    ) -> Upload | None:
        """The upload the ledger names, unless Telnyx deleted it: then it is forgotten, as the
        associator would have, so that a late association of it is recognised and the fresh upload
        counts towards the limit."""
        if uploaded is None:
            return None
        try:
            flow.confirm_still_there(uploaded, deadline)
        except UploadGoneError as gone:
            self._lifecycle.back_to_received(attempt, gone)
            return None
        return uploaded

    def _download(self, document: Document, path: Path) -> None:
        try:
            self._intake.download(document.source, path)
        except OSError as error:  # this function's /tmp (full, most likely) or the read: not the file
            raise TransientError(f"cannot copy the file into /tmp to check it: {error.strerror}") from None

    def _fresh_upload(
        self, flow: Flow[Any, Any], document: Document, deadline: Deadline
    ) -> tuple[CheckedFile, Upload]:
        """The file checked (portdocs.file_check) and converted where its target needs another
        format, checked again as its flow's Telnyx service would, then sent from a local copy."""
        check_size(document.size, self._settings.max_document_bytes)
        flow.check_target(document.target, deadline)  # nothing is read or sent for a closed target
        with local_folder() as folder:
            original, converted = Path(folder, "original"), Path(folder, "converted")
            self._download(document, original)  # one read of S3: the type is sniffed from the copy
            checked = check_for_target(
                original,
                converted,
                document.file_name,
                self._settings.allowed_content_types,
                document.target,
                flow.check_fits,
                deadline,
            )
            upload: Upload = with_retries(
                lambda: flow.upload(document, checked, deadline), deadline, on_retry=note_retry
            )
        return checked, upload
