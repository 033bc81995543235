"""Telnyx's v2 API for porting orders: its documents service (upload, look up) and an order's own
LOA and invoice and additional documents."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import requests
from requests_toolbelt import MultipartEncoder

from portdocs import shapes
from portdocs.documents import PortingOrderTarget
from portdocs.errors import PermanentError, TransientError, UploadGoneError
from portdocs.intake import ByteStream
from portdocs.observability import logger
from portdocs.retrying import Deadline
from portdocs.telnyx_http import UPLOAD_TIMEOUT, ApiCall, Auth, SizedReader, TelnyxHttp

# One page of an order's additional documents; Telnyx's lists are paginated.
ADDITIONAL_DOCUMENTS_PAGE_SIZE = 250


class PortingOrdersApi:
    def __init__(self, http: TelnyxHttp) -> None:
        self._http = http

    def upload_document(
        self, file_name: str, body: ByteStream, size: int, content_type: str, deadline: Deadline
    ) -> str:
        """Streams the file to the documents service; returns its document id. Safe to repeat after
        an unknown outcome: a copy nothing links to is deleted by Telnyx within 30 minutes."""
        reader = SizedReader(body, size, deadline)
        encoder = MultipartEncoder(fields=[("file", (file_name, reader, content_type))])
        call = ApiCall(
            "POST",
            "/v2/documents",
            multipart=encoder,
            auth=Auth.API_KEY,
            timeout=UPLOAD_TIMEOUT,
            names_a_resource=False,
        )
        response = self._http.send(call, deadline)
        try:
            document = response.json()["data"]
            telnyx_document_id = document["id"]
            status, scan = str(document.get("status")), str(document.get("av_scan_status"))
            received = document.get("sha256")
        except (ValueError, KeyError, TypeError):
            raise TransientError("Telnyx's documents service answered without a document") from None
        _refuse_if_denied(status, scan)
        if not isinstance(telnyx_document_id, str) or not shapes.is_valid_id(telnyx_document_id):
            raise TransientError("Telnyx's documents service answered with an unusable document id")
        if received is not None and received != reader.sha256.hexdigest():
            # Not what was sent: a copy nothing links is deleted by Telnyx; send the file again.
            raise TransientError(
                "Telnyx's documents service holds other bytes than were sent (sha256 differs)"
            )
        return telnyx_document_id

    def set_order_document(
        self, target: PortingOrderTarget, telnyx_document_id: str, deadline: Deadline
    ) -> None:
        """Makes the document the order's LOA or invoice, replacing the one it had (the newest
        version of the file is what a person means): an idempotent PATCH. Raises UploadGoneError
        when Telnyx no longer has the document."""
        kind = str(target.document_type)
        call = ApiCall(
            "PATCH",
            f"/v2/porting_orders/{target.porting_order_id}",
            json={"documents": {kind: telnyx_document_id}},
            auth=Auth.API_KEY,
            on_refusal=self._refusal_about(telnyx_document_id, deadline),
        )
        response = self._http.send(call, deadline)
        with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
            if response.json()["data"]["documents"][kind] != telnyx_document_id:
                # Linked, then replaced by a later write (a newer version, a person): setting it
                # again would undo that write. The link happened; say what the order holds.
                logger.warning(
                    f"the order's {kind} was replaced by another document right after this link",
                    extra={"porting_order_id": target.porting_order_id},
                )

    def link_additional_document(
        self, target: PortingOrderTarget, telnyx_document_id: str, deadline: Deadline
    ) -> None:
        """Links the document as one of the order's additional documents: not idempotent. Raises
        UploadGoneError when Telnyx no longer has the document, AmbiguousError when it may have
        been linked although the call failed."""
        link = {"document_id": telnyx_document_id, "document_type": str(target.document_type)}
        call = ApiCall(
            "POST",
            f"/v2/porting_orders/{target.porting_order_id}/additional_documents",
            json={"additional_documents": [link]},
            auth=Auth.API_KEY,
            repeatable=False,
            on_refusal=self._refusal_about(telnyx_document_id, deadline),
        )
        self._http.send(call, deadline)

    def is_additional_document(
        self, target: PortingOrderTarget, telnyx_document_id: str, deadline: Deadline
    ) -> bool:
        """Whether the order lists the document among its additional documents of that type: how an
        unknown outcome of the (non-idempotent) link is settled instead of guessed."""
        page = 1
        while True:
            listed, pages = self._additional_documents(target, page, deadline)
            if telnyx_document_id in listed:
                return True
            if page >= pages:
                return False
            page += 1

    def _additional_documents(
        self, target: PortingOrderTarget, page: int, deadline: Deadline
    ) -> tuple[list[str], int]:
        """One page of the order's additional documents of the target's type, and the page count."""
        call = ApiCall(
            "GET",
            f"/v2/porting_orders/{target.porting_order_id}/additional_documents",
            params={
                "filter[document_type]": str(target.document_type),
                "page[number]": str(page),
                "page[size]": str(ADDITIONAL_DOCUMENTS_PAGE_SIZE),
            },
            auth=Auth.API_KEY,
        )
        response = self._http.send(call, deadline)
        try:
            answer = response.json()
            listed = [str(record["document_id"]) for record in answer["data"]]
            pages = int((answer.get("meta") or {}).get("total_pages") or 1)
        except (ValueError, KeyError, TypeError):
            raise TransientError(
                "Telnyx listed the order's additional documents in an unusable form"
            ) from None
        return listed, pages

    def check_document(self, telnyx_document_id: str, deadline: Deadline) -> None:
        """Whether the documents service still has the document, fit to be linked: raises
        UploadGoneError if it was deleted (404), PermanentError if it was denied or found infected,
        TransientError while its antivirus scan is still running; returns if it is there (linked
        or not). `status` is Telnyx's review of the document: `pending` there is a document
        waiting for a person's review, not one missing."""
        call = ApiCall(
            "GET",
            f"/v2/documents/{telnyx_document_id}",
            auth=Auth.API_KEY,
            on_refusal=lambda response: _gone_if_not_found(response, telnyx_document_id),
        )
        response = self._http.send(call, deadline)
        try:
            document = response.json()["data"]
            status, scan = str(document.get("status")), str(document.get("av_scan_status"))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise TransientError("Telnyx described the document in an unusable form") from None
        _refuse_if_denied(status, scan)
        if scan == "pending_scan":
            raise TransientError("Telnyx's documents service is still scanning the document")

    def _refusal_about(
        self, telnyx_document_id: str, deadline: Deadline
    ) -> Callable[[requests.Response], None]:
        def check(response: requests.Response) -> None:
            # A refused link may be about the document (gone, denied, still being scanned) rather
            # than the order: the documents service says which.
            if response.status_code in (404, 422):
                self.check_document(telnyx_document_id, deadline)

        return check


def _gone_if_not_found(response: requests.Response, telnyx_document_id: str) -> None:
    if response.status_code == 404:
        raise UploadGoneError(
            "Telnyx no longer has the uploaded document (the documents service deletes what is not "
            "linked within 30 minutes)",
            telnyx_document_id,
        )


def _refuse_if_denied(status: str, scan: str) -> None:
    """A document the documents service denied, or whose scan found it infected, is never linkable."""
    if status == "denied" or scan == "infected":
        raise PermanentError(
            f"Telnyx's documents service refused the file (status {status[:20]}, antivirus scan {scan[:20]})"
        )
