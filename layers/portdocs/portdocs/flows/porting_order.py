"""The porting-order flow (Telnyx's v2 API): the file is streamed to the documents service, then
made the order's LOA or invoice, or linked as one of its additional documents.

An order's LOA and invoice are set by an idempotent PATCH. Linking an additional document is not
idempotent, but an order lists its additional documents: the list is read before every link, so
a link whose answer was lost, or made by a worker that died, is found instead of made twice
(concurrent deliveries of one document are kept apart by the idempotency store). Should the list
not show a link whose answer was lost (a list that lags), the repeat is marked a possible
duplicate, as in the draft flow: the doubt is kept on the ledger (`send_unconfirmed`), so a later
delivery knows it too."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar

from portdocs.documents import Association, Document, DocumentUpload, PortingOrderTarget, check_size
from portdocs.errors import AmbiguousError, PermanentError
from portdocs.flows.flow import UNCONFIRMED_SENDS
from portdocs.order_check import OrderCheck
from portdocs.retrying import Deadline, note_retry, with_retries
from portdocs.telnyx_porting import PortingApi
from portdocs.telnyx_v2 import PortingOrdersApi

if TYPE_CHECKING:
    from portdocs.file_check import CheckedFile
    from portdocs.flows import FlowParts

# Telnyx's documents service: what it accepts, checked before a byte is sent.
DOCUMENTS_SERVICE_MAX_BYTES = 20 * 1024 * 1024
DOCUMENTS_SERVICE_NAME_MAX = 512
DOCUMENTS_SERVICE_CONTENT_TYPES = frozenset(
    {
        "application/pdf",
        "image/png",
        "image/jpeg",
        "text/csv",
        "text/plain",
        "application/json",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
)


class PortingOrderFlow:
    UPLOAD_FIELD: ClassVar[str] = "telnyx_document_id"

    def __init__(self, parts: FlowParts) -> None:
        self._api = PortingOrdersApi(parts.http)
        self._ledger = parts.ledger
        self._orders = OrderCheck(PortingApi(parts.http))

    @staticmethod
    def check_fits(file_name: str, size: int, content_type: str) -> None:
        check_size(size, DOCUMENTS_SERVICE_MAX_BYTES)
        if content_type not in DOCUMENTS_SERVICE_CONTENT_TYPES:
            raise PermanentError(
                f"Telnyx's documents service (porting orders) does not accept {content_type}"
            )
        name = file_name.replace(" ", "")  # Telnyx removes spaces itself
        if len(name) > DOCUMENTS_SERVICE_NAME_MAX or not name.isprintable():
            raise PermanentError(
                "Telnyx's documents service takes file names of up to "
                f"{DOCUMENTS_SERVICE_NAME_MAX} printable characters"
            )

    def check_target(self, target: PortingOrderTarget, deadline: Deadline) -> None:
        self._orders.check(target.porting_order_id, deadline)

    def upload(self, document: Document, checked: CheckedFile, deadline: Deadline) -> DocumentUpload:
        # Taken before the upload starts: Telnyx's 30 minutes cannot have begun earlier.
        started = time.time()
        with checked.path.open("rb") as body:
            telnyx_document_id = self._api.upload_document(
                checked.file_name, body, checked.size, checked.content_type, deadline
            )
        return DocumentUpload(telnyx_document_id, uploaded_at=started)

    def confirm_still_there(self, upload: DocumentUpload, deadline: Deadline) -> None:
        """An upload older than Telnyx keeps what nothing links is asked about: it may have been
        linked after all (by a worker that died before it could say so)."""
        if upload.outlived(time.time()):
            self._api.check_document(upload.telnyx_document_id, deadline)

    def check_association(self, upload: DocumentUpload, uploaded_by_us: bool) -> None:
        """A documents-service id: nothing to fetch, Telnyx checks it is its own."""

    def attach(
        self,
        target: PortingOrderTarget,
        upload: DocumentUpload,
        description: str,
        document_id: str,
        unconfirmed_before: bool,
        deadline: Deadline,
    ) -> Association:
        if target.is_order_document:
            with_retries(
                lambda: self._api.set_order_document(target, upload.telnyx_document_id, deadline),
                deadline,
                on_retry=note_retry,
            )
            # Idempotent: setting it again cannot make a second copy.
            return Association(upload.telnyx_document_id)
        return self._link_additional(
            target, upload.telnyx_document_id, document_id, unconfirmed_before, deadline
        )

    def _link_additional(
        self,
        target: PortingOrderTarget,
        telnyx_document_id: str,
        document_id: str,
        unconfirmed_before: bool,
        deadline: Deadline,
    ) -> Association:
        links_that_may_exist = 1 if unconfirmed_before else 0

        def link() -> None:
            nonlocal links_that_may_exist
            if self._api.is_additional_document(target, telnyx_document_id, deadline):
                return
            try:
                self._api.link_additional_document(target, telnyx_document_id, deadline)
            except AmbiguousError:
                links_that_may_exist += 1
                self._ledger.note_send(document_id, UNCONFIRMED_SENDS)
                raise
            links_that_may_exist += 1

        with_retries(link, deadline, on_retry=note_retry)
        return Association(telnyx_document_id, possible_duplicate=links_that_may_exist > 1)
