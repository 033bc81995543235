"""Porting order events on EventBridge (schemas/porting-order-event.schema.json), beside the
document events: what Telnyx said about an order, once per real change (portdocs.tracker)."""

from __future__ import annotations

import time
from typing import Any

from portdocs import shapes
from portdocs.events import EventBus
from portdocs.ledger import LedgerEntry
from portdocs.notices import denied_step
from portdocs.orders import OrderRecord, document_type_of
from portdocs.porting_status import DocumentReview, ReviewStatus, advice_for
from portdocs.timestamps import utc_iso

STATUS_CHANGED = "Porting Order Status Changed"
NEEDS_ACTION = "Porting Order Needs Action"
SPLIT = "Porting Order Split"
REVIEWED = {ReviewStatus.VERIFIED: "Document Verified", ReviewStatus.DENIED: "Document Denied"}


class OrderEvents:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    def status_changed(self, order: OrderRecord, previous: str | None) -> None:
        self._put(STATUS_CHANGED, order, {"previous_status": previous} if previous else {})

    def needs_action(self, order: OrderRecord, why: str, denied: list[LedgerEntry]) -> None:
        todo = [f"{d.code}: {advice_for(d.code)}" for d in order.details]
        todo += [denied_step(order.porting_order_id, entry) for entry in denied]
        self._put(NEEDS_ACTION, order, {"why": why, "what_to_do": todo})

    def split(self, parent: OrderRecord, part: OrderRecord) -> None:
        self._put(
            SPLIT, part, {"split_from": parent.porting_order_id, "phone_numbers": list(part.split_numbers)}
        )

    def document_reviewed(self, order: OrderRecord, entry: LedgerEntry, review: DocumentReview) -> None:
        document = {
            "document_id": entry.document_id,
            "telnyx_document_id": review.telnyx_document_id,
            "review_status": str(review.status),
            **({"review_reason": review.reason} if review.reason else {}),
            **({"document_type": str(kind)} if (kind := document_type_of(entry)) else {}),
        }
        self._put(REVIEWED[review.status], order, {"document": document})

    def _put(self, detail_type: str, order: OrderRecord, extra: dict[str, Any]) -> None:
        self._bus.put(detail_type, lambda: detail_of(order, extra))


def detail_of(order: OrderRecord, extra: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "porting_order_id": order.porting_order_id,
        "occurred_at": utc_iso(time.time() if now is None else now, timespec="milliseconds"),
    }
    optional = {
        "status": order.status,
        "status_details": [d.as_dict() for d in order.details] or None,
        "customer_reference": order.customer_reference,
        "support_key": order.support_key,
        "requirements_met": order.requirements_met,
        "unmet_requirements": list(order.unmet_requirements) or None,
        "latest_comment": {"body": order.comment, "by": order.comment_by, "at": order.comment_at}
        if order.comment
        else None,
    }
    detail.update({name: value for name, value in optional.items() if value is not None})
    detail.update({name: value for name, value in extra.items() if value is not None})
    return shapes.validate(detail, shapes.PORTING_ORDER_EVENT_SCHEMA)
