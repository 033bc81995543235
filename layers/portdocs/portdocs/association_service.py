"""The associator's service: association request -> validated -> attached to the draft sub-request."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from portdocs.config import Settings
from portdocs.documents import (
    association_document_id,
    check_url_allowed,
    claimed_document_id,
    document_id,
)
from portdocs.errors import AmbiguousError, AttentionError, ConfigurationError, PermanentError, PortdocsError
from portdocs.idempotency import Idempotency
from portdocs.intake import IntakeStore
from portdocs.ledger import Ledger, LedgerEntry
from portdocs.messages import AssociationRequest, claim_of, parse_association_message
from portdocs.observability import count, logger
from portdocs.outcomes import Attempt, Outcomes, note_retry
from portdocs.retrying import Deadline, with_retries
from portdocs.telnyx import TelnyxClient

# After an unknown outcome the association is posted again (a missing LOA blocks a port), but not
# for ever: a Telnyx that records and then fails every time would otherwise collect a copy per try.
MAX_UNCONFIRMED_SENDS = 5


class AssociationService:
    def __init__(
        self,
        settings: Settings,
        telnyx: TelnyxClient,
        intake: IntakeStore,
        ledger: Ledger,
        outcomes: Outcomes,
        idempotency: Idempotency,
    ) -> None:
        self._settings = settings
        self.record_concurrency = settings.record_concurrency
        self._telnyx = telnyx
        self._intake = intake
        self._ledger = ledger
        self._outcomes = outcomes
        self._idempotency = idempotency
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
        uploaded = self._uploaded_entry(request)
        if request.source and uploaded is None:
            # Anyone allowed to send here could name a pending intake object with a URL of their
            # own; only the ledger can vouch that this object was uploaded to this URL.
            logger.warning("the message's source is not confirmed by the ledger; handled as a plain association")
            count("UnconfirmedSources")
            request = replace(request, source=None)
        attempt = (
            Attempt.of(request.source, request.target)
            if request.source
            else Attempt(association_document_id(request.target, request.url), target=request.target)
        )
        with self._outcomes.settling(attempt):
            self._check_url(request, uploaded is not None)
            entry = self._ledger.open(
                attempt.document_id,
                request.target,
                request.source,
                request.description,
                **({} if request.source else {"location_url": request.url}),
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
            result = self._associate_once(
                association={**request.target.as_message(), "url": request.url},
                request=request,
                document_id=attempt.document_id,
                unconfirmed_before=entry.send_unconfirmed,
                deadline=deadline,
            )
            self._outcomes.associated(attempt, result["telnyx_document_id"], bool(result.get("possible_duplicate")))

    def _uploaded_entry(self, request: AssociationRequest) -> LedgerEntry | None:
        if request.source is None:
            return None
        entry = self._ledger.find(document_id(request.source, request.target))
        return entry if entry is not None and entry.location_url == request.url else None

    def _reject_unreadable(self, body: str, message_id: str, error: PermanentError) -> None:
        """An unreadable message that names a document the ledger confirms (its source uploaded
        to its URL) rejects that document; anything else is recorded under the message id."""
        claim = claim_of(body)
        entry = self._ledger.find(claimed_document_id(claim.source, claim.target_fields)) if claim else None
        if claim is None or entry is None or entry.location_url != claim.url:
            self._outcomes.reject_message(message_id, error)
            return
        count("MessagesRejected")
        self._outcomes.reject(Attempt(entry.document_id, entry.source), str(error))

    def _check_url(self, request: AssociationRequest, uploaded_by_us: bool) -> None:
        try:
            check_url_allowed(request.url, self._settings.allowed_upload_hosts)
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
