"""The associator's service: association request -> validated -> attached to the draft sub-request."""

from __future__ import annotations

from typing import Any

from portdocs.config import Settings
from portdocs.documents import State, association_document_id, check_url_allowed
from portdocs.errors import PermanentError
from portdocs.idempotency import Idempotency
from portdocs.ledger import Ledger
from portdocs.messages import AssociationRequest, parse_association_message
from portdocs.observability import count, logger
from portdocs.outcomes import Attempt, Outcomes, note_retry
from portdocs.retrying import Deadline, with_retries
from portdocs.telnyx import TelnyxClient


class AssociationService:
    def __init__(
        self,
        settings: Settings,
        telnyx: TelnyxClient,
        ledger: Ledger,
        outcomes: Outcomes,
        idempotency: Idempotency,
    ) -> None:
        self._settings = settings
        self._telnyx = telnyx
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
            self._outcomes.reject_message(message_id, error)
            return
        attempt = Attempt(
            source=request.source,
            target=request.target,
            fixed_id=None if request.source else association_document_id(request.target, request.url),
        )
        with self._outcomes.settling(attempt):
            check_url_allowed(request.url, self._settings.allowed_upload_hosts)
            entry = self._ledger.open(attempt.document_id, request.target, request.source, request.description)
            if entry.state.is_terminal:
                logger.info("duplicate delivery of a finished document", extra={"state": str(entry.state)})
                return
            result = self._associate_once(
                association={
                    "draft_port_request_id": request.target.draft_port_request_id,
                    "draft_sub_request_id": request.target.draft_sub_request_id,
                    "document_type": str(request.target.document_type),
                    "url": request.url,
                },
                request=request,
                deadline=deadline,
            )
            self._ledger.mark_associated(attempt.document_id, result["telnyx_document_id"])
            count("DocumentsAssociated")
            logger.info("document associated", extra={"telnyx_document_id": result["telnyx_document_id"]})
            self._outcomes.tag(request.source, State.ASSOCIATED)

    def _associate(
        self, association: dict[str, str], request: AssociationRequest, deadline: Deadline
    ) -> dict[str, str]:
        telnyx_document_id = with_retries(
            lambda: self._telnyx.associate(request, deadline), deadline, on_retry=note_retry
        )
        return {"telnyx_document_id": telnyx_document_id}
