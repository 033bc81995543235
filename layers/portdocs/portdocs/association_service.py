"""The associator's service: association request -> validated -> attached to its target (a draft
sub-request, or a porting order) by the target's flow."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from portdocs.config import Settings
from portdocs.documents import (
    Association,
    State,
    Upload,
    association_document_id,
    claimed_document_id,
    document_id,
)
from portdocs.errors import AttentionError, PermanentError, PortdocsError, UploadGoneError
from portdocs.flows import Flows
from portdocs.idempotency import Idempotency
from portdocs.intake import IntakeStore
from portdocs.ledger import Ledger, LedgerEntry
from portdocs.lifecycle import Attempt, Lifecycle
from portdocs.messages import AssociationRequest, claim_of, parse_association_message
from portdocs.observability import count, logger
from portdocs.resend import Resender, resend_of
from portdocs.retrying import Deadline

# Fresh uploads of one document after Telnyx deleted the last before it was linked: more than this
# means documents wait on the association queue longer than Telnyx keeps them, which a person fixes.
MAX_REUPLOADS = 3


class AssociationService:
    def __init__(
        self,
        settings: Settings,
        flows: Flows,
        intake: IntakeStore,
        ledger: Ledger,
        lifecycle: Lifecycle,
        idempotency: Idempotency,
        resender: Resender,
    ) -> None:
        self.record_concurrency = settings.record_concurrency
        self._flows = flows
        self._intake = intake
        self._ledger = ledger
        self._lifecycle = lifecycle
        self._idempotency = idempotency
        self._resender = resender
        # Only the Telnyx call is inside: its cached result (the document id) is what a
        # redelivery needs to finish the bookkeeping without associating a second time.
        self._associate_once = idempotency.once(
            self._associate,
            key_argument="association",
            result=Association,
            name="portdocs.association_service.AssociationService._associate",
        )

    def bind(self, lambda_context: Any) -> None:
        self._idempotency.bind(lambda_context)

    def handle_message(self, body: str, message_id: str, deadline: Deadline) -> None:
        try:
            request = parse_association_message(body)
        except PermanentError as error:
            self._reject_unreadable(body, message_id, error)
            return
        entry_of_source = (
            self._ledger.find(document_id(request.source, request.target)) if request.source else None
        )
        if entry_of_source is not None and request.upload.expired_among(entry_of_source.expired_uploads):
            # A late or repeated copy of the association of an upload Telnyx deleted: the document
            # went back for a fresh upload, whose own association is under way or done.
            self._stale_association(entry_of_source)
            return
        vouched = _vouching(entry_of_source, request)
        request = _trusted(request, vouched)
        attempt = (
            Attempt.of(request.source, request.target)
            if request.source
            else Attempt(association_document_id(request.target, request.upload), target=request.target)
        )
        with self._lifecycle.settling(attempt):
            self._associate_document(attempt, request, vouched, deadline)

    def _associate_document(
        self, attempt: Attempt, request: AssociationRequest, vouched: LedgerEntry | None, deadline: Deadline
    ) -> None:
        flow = self._flows.of(request.target)
        flow.check_association(request.upload, uploaded_by_us=vouched is not None)
        entry = self._lifecycle.open(
            attempt, request.description, upload=None if request.source else request.upload
        )
        if entry.state.is_terminal:
            self._lifecycle.duplicate(attempt, entry)
            return
        if self._ended_as_not_latest(attempt, entry):
            return
        # The ledger's word on when the file was uploaded, where it vouches for the upload.
        upload = vouched.upload if vouched is not None and vouched.upload else request.upload
        try:
            flow.confirm_still_there(upload, deadline)
            association = self._associate_once(
                association={**request.target.as_message(), **upload.key_fields()},
                request=request,
                upload=upload,
                document_id=attempt.document_id,
                unconfirmed_before=entry.send_unconfirmed,
                deadline=deadline,
            )
        except UploadGoneError as gone:
            self._upload_again(attempt, entry, gone)
            return
        self._lifecycle.associated(attempt, association)

    def _ended_as_not_latest(self, attempt: Attempt, entry: LedgerEntry) -> bool:
        """A file replaced or deleted before it was attached ends superseded or withdrawn, unless
        its version was pinned on purpose."""
        if attempt.source is None or entry.version_pinned:
            return False
        current = self._intake.current(attempt.source)
        return self._lifecycle.end_unless_latest(
            attempt, current, "attached on Telnyx", possibly_attached=entry.send_unconfirmed
        )

    def _associate(
        self,
        association: dict[str, str],
        request: AssociationRequest,
        upload: Upload,
        document_id: str,
        unconfirmed_before: bool,
        deadline: Deadline,
    ) -> Association:
        """`association` (the target and the uploaded file) is what makes two requests the same one."""
        flow = self._flows.of(request.target)
        return flow.attach(
            request.target, upload, request.description, document_id, unconfirmed_before, deadline
        )

    def _stale_association(self, entry: LedgerEntry) -> None:
        count("StaleAssociations")
        if entry.state is not State.RECEIVED or entry.source is None:
            logger.info("association of an upload Telnyx deleted, since uploaded again: nothing to do")
            return
        # Still waiting for its fresh upload: the request may have been lost with a worker that
        # died after the ledger was told. Asking again is safe: the uploader does each upload once.
        resend = resend_of(entry, pinned_on_purpose=entry.version_pinned)
        if resend is not None:
            logger.info("association of an upload Telnyx deleted: the fresh upload is asked for again")
            self._resender.send(resend)

    def _upload_again(self, attempt: Attempt, entry: LedgerEntry, gone: UploadGoneError) -> None:
        """Telnyx deleted (or is about to delete) the unlinked document: the intake object goes back
        to the uploader for a fresh upload, the same version. Without an intake object of ours
        there is nothing to upload again."""
        why = str(gone)
        if attempt.source is None:
            raise PermanentError(f"{why}: upload the file again and send a new association request")
        fresh_uploads = entry.reuploads - entry.reuploads_at_retry
        if fresh_uploads >= MAX_REUPLOADS:
            raise AttentionError(
                f"{why}, after {fresh_uploads} fresh uploads: documents wait on the association queue longer "
                "than Telnyx keeps them; find out why, then `portdocs retry` it"
            )
        forgotten = self._lifecycle.back_to_received(attempt, gone)
        if forgotten is None:
            logger.info("another delivery already sent this document back for a fresh upload")
            return
        resend = resend_of(forgotten, pinned_on_purpose=entry.version_pinned)
        if resend is None:
            raise PermanentError(f"{why}, and the ledger names no intake object to upload again")
        logger.info(
            "document sent back for a fresh upload", extra={"document_id": attempt.document_id, "reason": why}
        )
        count("DocumentsUploadedAgain")
        try:
            self._resender.send(resend)
        except PortdocsError as error:
            # The ledger holds the document as received: the sweeper puts it through again.
            logger.warning(
                "could not send the document back for a fresh upload; the sweeper will",
                extra={"error": str(error)},
            )

    def _reject_unreadable(self, body: str, message_id: str, error: PermanentError) -> None:
        """An unreadable message that names a document the ledger confirms (its source uploaded
        to its URL) rejects that document; anything else is recorded under the message id."""
        claim = claim_of(body)
        entry = self._ledger.find(claimed_document_id(claim.source, claim.target_fields)) if claim else None
        if (
            claim is None
            or entry is None
            or entry.upload is None
            or entry.upload.reference != claim.upload_reference
        ):
            self._lifecycle.reject_message(message_id, error)
            return
        count("MessagesRejected")
        self._lifecycle.reject(Attempt(entry.document_id, entry.source), str(error))


def _vouching(entry: LedgerEntry | None, request: AssociationRequest) -> LedgerEntry | None:
    """The ledger's item of the request's source, if it vouches that this very file was uploaded
    for it; None otherwise."""
    if entry is None or entry.upload is None or entry.upload.reference != request.upload.reference:
        return None
    return entry


def _trusted(request: AssociationRequest, vouched: LedgerEntry | None) -> AssociationRequest:
    """Anyone allowed to send here could name a pending intake object with a URL of their own; only
    the ledger can vouch that this object was uploaded to this URL. An unvouched source is dropped."""
    if request.source and vouched is None:
        logger.warning("the message's source is not confirmed by the ledger; handled as a plain association")
        count("UnconfirmedSources")
        return replace(request, source=None)
    return request
