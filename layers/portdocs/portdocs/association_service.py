"""The associator's service: association request -> validated -> attached to its target (a draft
sub-request, or a porting order)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from portdocs.config import Settings
from portdocs.documents import (
    PortingOrderTarget,
    State,
    Upload,
    association_document_id,
    check_url_allowed,
    claimed_document_id,
    document_id,
)
from portdocs.errors import (
    AmbiguousError,
    AttentionError,
    ConfigurationError,
    PermanentError,
    PortdocsError,
    UploadGoneError,
)
from portdocs.idempotency import Idempotency
from portdocs.intake import IntakeStore
from portdocs.ledger import Ledger, LedgerEntry
from portdocs.messages import AssociationRequest, claim_of, parse_association_message
from portdocs.observability import count, logger
from portdocs.outcomes import Attempt, Outcomes, note_retry
from portdocs.resend import Resender, resend_of
from portdocs.retrying import Deadline, with_retries
from portdocs.telnyx import TelnyxClient

# After an unknown outcome the association is posted again (a missing LOA blocks a port), but not
# for ever: a Telnyx that records and then fails every time would otherwise collect a copy per try.
MAX_UNCONFIRMED_SENDS = 5
# Fresh uploads of one document after Telnyx deleted the last before it was linked: more than this
# means documents wait on the association queue longer than Telnyx keeps them, which a person fixes.
MAX_REUPLOADS = 3


class AssociationService:
    def __init__(
        self,
        settings: Settings,
        telnyx: TelnyxClient,
        intake: IntakeStore,
        ledger: Ledger,
        outcomes: Outcomes,
        idempotency: Idempotency,
        resender: Resender,
    ) -> None:
        self._settings = settings
        self.record_concurrency = settings.record_concurrency
        self._telnyx = telnyx
        self._intake = intake
        self._ledger = ledger
        self._outcomes = outcomes
        self._idempotency = idempotency
        self._resender = resender
        # Only the Telnyx call is inside: its cached result (the document id) is what a
        # redelivery needs to finish the bookkeeping without associating a second time.
        self._associate_once = idempotency.once(self._associate, key_argument="association")

    def bind(self, lambda_context: Any) -> None:
        self._idempotency.bind(lambda_context)

    def handle_message(self, body: str, message_id: str, deadline: Deadline) -> None:
        try:
            request = parse_association_message(body)
        except PermanentError as error:
            self._reject_unreadable(body, message_id, error)
            return
        entry_of_source = self._ledger.find(document_id(request.source, request.target)) if request.source else None
        uploaded = _confirmed(entry_of_source, request)
        if entry_of_source is not None and request.upload.telnyx_document_id in entry_of_source.expired_uploads:
            # A late or repeated copy of the association of an upload Telnyx deleted: the document
            # went back for a fresh upload, whose own association is under way or done.
            self._stale_association(entry_of_source)
            return
        if request.source and uploaded is None:
            # Anyone allowed to send here could name a pending intake object with a URL of their
            # own; only the ledger can vouch that this object was uploaded to this URL.
            logger.warning("the message's source is not confirmed by the ledger; handled as a plain association")
            count("UnconfirmedSources")
            request = replace(request, source=None)
        attempt = (
            Attempt.of(request.source, request.target)
            if request.source
            else Attempt(association_document_id(request.target, request.upload), target=request.target)
        )
        with self._outcomes.settling(attempt):
            self._check_url(request, uploaded is not None)
            entry = self._ledger.open(
                attempt.document_id,
                request.target,
                request.source,
                request.description,
                upload=None if request.source else request.upload,
            )
            if entry.state.is_terminal:
                self._outcomes.duplicate(attempt, entry)
                return
            if (
                request.source
                and not entry.version_pinned
                and self._outcomes.end_unless_latest(
                    attempt,
                    self._intake.current(request.source),
                    "attached on Telnyx",
                    possibly_attached=entry.send_unconfirmed,
                )
            ):
                return
            # The ledger's word on when the file was uploaded, where it vouches for the upload.
            upload = uploaded.upload if uploaded is not None and uploaded.upload else request.upload
            try:
                if upload.outlived(time.time()):
                    # Older than Telnyx keeps what nothing links, unless it was linked after all
                    # (by a worker that died before it could say so): ask before uploading again.
                    self._telnyx.check_document(str(upload.telnyx_document_id), deadline)
                result = self._associate_once(
                    association={**request.target.as_message(), **_upload_key(upload)},
                    request=request,
                    document_id=attempt.document_id,
                    unconfirmed_before=entry.send_unconfirmed,
                    deadline=deadline,
                )
            except UploadGoneError as gone:
                self._upload_again(attempt, entry, upload, str(gone))
                return
            self._outcomes.associated(attempt, result["telnyx_document_id"], bool(result.get("possible_duplicate")))

    def _stale_association(self, entry: LedgerEntry) -> None:
        count("StaleAssociations")
        if entry.state is not State.RECEIVED or entry.source is None:
            logger.info("association of an upload Telnyx deleted, since uploaded again: nothing to do")
            return
        # Still waiting for its fresh upload: the request may have been lost with a worker that
        # died after the ledger was told. Asking again is safe: the uploader does each upload once.
        resend = resend_of(self._ledger.item(entry.document_id) or {}, pinned_on_purpose=entry.version_pinned)
        if resend is not None:
            logger.info("association of an upload Telnyx deleted: the fresh upload is asked for again")
            self._resender.send(resend)

    def _upload_again(self, attempt: Attempt, entry: LedgerEntry, upload: Upload, why: str) -> None:
        """Telnyx deleted (or is about to delete) the unlinked document: the intake object goes back
        to the uploader for a fresh upload, the same version. Without an intake object of ours
        there is nothing to upload again."""
        if attempt.source is None:
            raise PermanentError(f"{why}: upload the file again and send a new association request")
        fresh_uploads = entry.reuploads - entry.reuploads_at_retry
        if fresh_uploads >= MAX_REUPLOADS:
            raise AttentionError(
                f"{why}, after {fresh_uploads} fresh uploads: documents wait on the association queue longer "
                "than Telnyx keeps them; find out why, then `portdocs retry` it"
            )
        forgotten = self._ledger.forget_upload(attempt.document_id, upload)
        if forgotten is None:
            logger.info("another delivery already sent this document back for a fresh upload")
            return
        resend = resend_of(forgotten, pinned_on_purpose=entry.version_pinned)
        if resend is None:
            raise PermanentError(f"{why}, and the ledger names no intake object to upload again")
        logger.info("document sent back for a fresh upload", extra={"document_id": attempt.document_id, "reason": why})
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
        if claim is None or entry is None or entry.upload is None or entry.upload.reference != claim.upload_reference:
            self._outcomes.reject_message(message_id, error)
            return
        count("MessagesRejected")
        self._outcomes.reject(Attempt(entry.document_id, entry.source), str(error))

    def _check_url(self, request: AssociationRequest, uploaded_by_us: bool) -> None:
        if request.upload.location_url is None:
            return  # a documents-service id: nothing to fetch, Telnyx checks it is its own
        try:
            check_url_allowed(request.upload.location_url, self._settings.allowed_upload_hosts)
        except PermanentError as error:
            if uploaded_by_us:
                # The uploader accepted this host: the allow-list changed since, not the document.
                raise ConfigurationError(f"ALLOWED_UPLOAD_HOSTS no longer allows the uploaded file: {error}") from None
            raise

    def _associate(
        self,
        association: dict[str, str],
        request: AssociationRequest,
        document_id: str,
        unconfirmed_before: bool,
        deadline: Deadline,
    ) -> dict[str, Any]:
        if isinstance(request.target, PortingOrderTarget):
            telnyx_document_id = str(request.upload.telnyx_document_id)
            return self._attach(request.target, telnyx_document_id, document_id, unconfirmed_before, deadline)
        return self._associate_with_draft(request, document_id, unconfirmed_before, deadline)

    def _attach(
        self,
        target: PortingOrderTarget,
        telnyx_document_id: str,
        document_id: str,
        unconfirmed_before: bool,
        deadline: Deadline,
    ) -> dict[str, Any]:
        """An order's LOA and invoice are set by an idempotent PATCH. Linking an additional document
        is not idempotent, but an order lists its additional documents: the list is read before
        every link, so a link whose answer was lost, or made by a worker that died, is found
        instead of made twice (concurrent deliveries of one document are kept apart by the
        idempotency store). Should the list not show a link whose answer was lost (a list that
        lags), the repeat is marked a possible duplicate, as in the draft flow: the doubt is kept
        on the ledger (`send_unconfirmed`), so a later delivery knows it too."""
        links_that_may_exist = 1 if unconfirmed_before else 0

        def link() -> str:
            nonlocal links_that_may_exist
            if target.is_order_document:
                return self._telnyx.attach(target, telnyx_document_id, deadline)
            if self._telnyx.is_additional_document(target, telnyx_document_id, deadline):
                return telnyx_document_id
            try:
                linked = self._telnyx.attach(target, telnyx_document_id, deadline)
            except AmbiguousError:
                links_that_may_exist += 1
                self._ledger.note_send(document_id, MAX_UNCONFIRMED_SENDS)
                raise
            links_that_may_exist += 1
            return linked

        linked = with_retries(link, deadline, on_retry=note_retry)
        return {"telnyx_document_id": linked, "possible_duplicate": links_that_may_exist > 1}

    def _associate_with_draft(
        self, request: AssociationRequest, document_id: str, unconfirmed_before: bool, deadline: Deadline
    ) -> dict[str, Any]:
        """Telnyx's association POST is not idempotent and Telnyx offers no way to list a draft's
        documents, so an unknown outcome cannot be checked: the intent is recorded before each
        POST, and a success after an unknown outcome is marked as a possible duplicate (a missing
        LOA blocks a port; a duplicate is harmless and a person can remove it)."""
        ambiguous = unconfirmed_before

        def post() -> str:
            nonlocal ambiguous
            if not self._ledger.note_send(document_id, MAX_UNCONFIRMED_SENDS):
                ambiguous = True
                raise AttentionError(
                    f"{MAX_UNCONFIRMED_SENDS} association attempts ended without a known outcome: Telnyx may hold "
                    "this document, perhaps more than once. Check the draft port request; if it is missing, "
                    "`portdocs retry` it"
                )
            try:
                return self._telnyx.associate(request, deadline)
            except AmbiguousError:
                ambiguous = True
                raise

        try:
            telnyx_document_id = with_retries(post, deadline, on_retry=note_retry)
        except PermanentError as error:
            if not ambiguous:
                self._ledger.clear_send(document_id)
                raise
            raise PermanentError(str(error), possibly_attached=True) from None
        except PortdocsError:
            if not ambiguous:
                self._ledger.clear_send(document_id)
            raise
        return {"telnyx_document_id": telnyx_document_id, "possible_duplicate": ambiguous}


def _confirmed(entry: LedgerEntry | None, request: AssociationRequest) -> LedgerEntry | None:
    """The ledger's item of the request's source, if it vouches that this very file was uploaded
    for it; None otherwise."""
    if entry is None or entry.upload is None or entry.upload.reference != request.upload.reference:
        return None
    return entry


def _upload_key(upload: Upload) -> dict[str, str]:
    """What makes two association requests the same one: the target and the uploaded file."""
    if upload.location_url is not None:
        return {"url": upload.location_url}
    return {"telnyx_document_id": str(upload.telnyx_document_id)}
