"""Porting order events on EventBridge (schemas/porting-order-event.schema.json), beside the
document events: what Telnyx said about an order, once per real change (portdocs.tracker)."""

from __future__ import annotations

import time
import uuid
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
EVENT_ID_NAMESPACE = uuid.UUID("5b0c2f1e-7d7a-4c1e-9a55-2f6d1c0b9e41")


class OrderEvents:
    """Each event's id is made from the notification that caused it (`by`) and what it is about, so
    an announcement made again after a worker died carries the id it had (portdocs.tracker)."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    def status_changed(self, order: OrderRecord, previous: str | None, by: str) -> None:
        extra = {"previous_status": previous} if previous else {}
        self._put(STATUS_CHANGED, order, extra, (by, order.status))

    def needs_action(self, order: OrderRecord, why: str, denied: list[LedgerEntry], by: str) -> None:
        todo = [f"{d.code}: {advice_for(d.code)}" for d in order.details]
        todo += [denied_step(order.porting_order_id, entry) for entry in denied]
        self._put(NEEDS_ACTION, order, {"why": why, "what_to_do": todo}, (by, why))

    def split(self, parent: OrderRecord, part: OrderRecord, by: str) -> None:
        extra = {"split_from": parent.porting_order_id, "phone_numbers": list(part.split_numbers)}
        self._put(SPLIT, part, extra, (by,))

    def document_reviewed(
        self, order: OrderRecord, entry: LedgerEntry, review: DocumentReview, by: str
    ) -> None:
        document = {
            "document_id": entry.document_id,
            "telnyx_document_id": review.telnyx_document_id,
            "review_status": str(review.status),
            **({"review_reason": review.reason} if review.reason else {}),
            **({"document_type": str(kind)} if (kind := document_type_of(entry)) else {}),
        }
        self._put(REVIEWED[review.status], order, {"document": document}, (by, review.telnyx_document_id))

    def _put(
        self, detail_type: str, order: OrderRecord, extra: dict[str, Any], about: tuple[str | None, ...]
    ) -> None:
        event_id = stable_event_id(detail_type, order.porting_order_id, *about)
        self._bus.put(detail_type, lambda: detail_of(order, extra, event_id))


def stable_event_id(*parts: str | None) -> str:
    """The same parts, the same id: 32 hex digits, as a document event's."""
    return uuid.uuid5(EVENT_ID_NAMESPACE, "\x1f".join(part or "" for part in parts)).hex


def detail_of(
    order: OrderRecord, extra: dict[str, Any], event_id: str, now: float | None = None
) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "event_id": event_id,
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
