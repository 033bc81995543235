"""What Telnyx says about a porting order once its documents are attached: its status and the
exception codes, staff comments, splits, unmet requirements and the review of each document.

Pure rules: a Telnyx notification (a signed webhook, or an item of `GET /v2/porting/events`) and
portdocs' own poll of an order both become one `PortingEvent`, and each event becomes the facts
it states. Every fact carries the moment Telnyx gave it, so a store can refuse one older than what
it holds: notifications come duplicated, late and out of order, and webhook and poll must agree in
any order. Text from Telnyx (comments, descriptions) is made safe to show here, once.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from portdocs import shapes
from portdocs.documents import DocumentType, PortingOrderTarget
from portdocs.errors import PermanentError


class OrderStatus(StrEnum):
    DRAFT = "draft"
    IN_PROCESS = "in-process"
    SUBMITTED = "submitted"
    EXCEPTION = "exception"
    FOC_DATE_CONFIRMED = "foc-date-confirmed"
    PORTED = "ported"
    CANCEL_PENDING = "cancel-pending"
    CANCELLED = "cancelled"


# Nothing more will happen to an order in these: it is no longer polled.
FINAL_STATUSES = frozenset({OrderStatus.PORTED, OrderStatus.CANCELLED})


class ReviewStatus(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    DENIED = "denied"


class EventType(StrEnum):
    STATUS_CHANGED = "porting_order.status_changed"
    NEW_COMMENT = "porting_order.new_comment"
    SPLIT = "porting_order.split"
    # portdocs' own poll of an order: its status, unmet requirements and documents' reviews.
    ORDER_SNAPSHOT = "portdocs.order_snapshot"


# A comment's user_type when Telnyx's staff wrote it; "user" comments are the account's own people's,
# "system" ones automatic.
STAFF_USER_TYPE = "admin"
# Bounds on what is kept of Telnyx's text: a comment is for a person to read, not an archive.
COMMENT_MAX = 2000
DESCRIPTION_MAX = 500
_CODE = re.compile(r"[A-Z0-9_]{1,64}")
_SHOWN_CONTROLS = {"\n", "\t"}


def printable(text: Any, limit: int) -> str:
    """Telnyx's text as portdocs keeps and shows it: control, format and bidirectional-override
    characters (which could rewrite a terminal line or hide text in a notice) are dropped, and
    the length is bounded. Markup stays as literal text: nothing portdocs writes renders it."""
    kept = "".join(
        ch for ch in str(text) if ch in _SHOWN_CONTROLS or unicodedata.category(ch) not in ("Cc", "Cf")
    )
    return kept if len(kept) <= limit else kept[: limit - 1] + "…"


def moment(text: Any) -> str:
    """Telnyx's time as portdocs compares it: UTC, microseconds, so that strings sort as moments
    do whatever precision and zone Telnyx wrote."""
    if not isinstance(text, str):
        raise PermanentError("a notification time is missing")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            raise PermanentError(f"{text[:40]!r} has no time zone")
        return parsed.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    except (ValueError, OverflowError):  # OverflowError: a time at the calendar's edge, in UTC
        raise PermanentError(f"{text[:40]!r} is not an ISO 8601 time portdocs can keep") from None


@dataclass(frozen=True)
class Detail:
    code: str
    description: str

    @classmethod
    def of(cls, raw: Any) -> Detail:
        item = raw if isinstance(raw, dict) else {}
        code = str(item.get("code", "OTHER"))
        return cls(
            code=code if _CODE.fullmatch(code) else "OTHER",
            description=printable(item.get("description") or "", DESCRIPTION_MAX),
        )

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "description": self.description}


@dataclass(frozen=True)
class StatusChange:
    porting_order_id: str
    value: OrderStatus
    details: tuple[Detail, ...]
    at: str
    customer_reference: str | None = None
    support_key: str | None = None


@dataclass(frozen=True)
class Comment:
    porting_order_id: str
    comment_id: str
    body: str
    user_type: str
    at: str

    @property
    def from_telnyx_staff(self) -> bool:
        return self.user_type == STAFF_USER_TYPE


@dataclass(frozen=True)
class Split:
    from_order: str
    to_order: str
    phone_numbers: tuple[str, ...]
    at: str


@dataclass(frozen=True)
class Requirements:
    porting_order_id: str
    met: bool
    unmet: tuple[str, ...]
    at: str


@dataclass(frozen=True)
class DocumentReview:
    porting_order_id: str
    telnyx_document_id: str
    status: ReviewStatus
    reason: str | None
    at: str


Fact = StatusChange | Comment | Split | Requirements | DocumentReview


@dataclass(frozen=True)
class PortingEvent:
    """One notification as the notifications queue carries it (schemas/porting-notification)."""

    id: str
    event_type: str
    occurred_at: str
    porting_order_id: str | None
    payload: dict[str, Any]
    received_via: str

    @classmethod
    def from_telnyx(cls, raw: Any, received_via: str) -> PortingEvent:
        """A webhook body (`{"data": {...}, "meta": {...}}`) or an item of the porting events API;
        raises PermanentError, saying what is wrong, for anything else."""
        data = raw.get("data", raw) if isinstance(raw, dict) else None
        if not isinstance(data, dict):
            raise PermanentError("a notification must be a JSON object")
        return cls.from_message(
            {
                "id": data.get("id"),
                "event_type": data.get("event_type"),
                "occurred_at": data.get("occurred_at") or data.get("created_at"),
                "porting_order_id": data.get("porting_order_id") or _order_of(data.get("payload")),
                # Some event types carry no payload (porting_order.loa_updated's is null).
                "payload": data.get("payload") or {},
                "received_via": received_via,
            }
        )

    @classmethod
    def from_message(cls, message: Any) -> PortingEvent:
        checked = shapes.validate(_without_nulls(message), shapes.PORTING_NOTIFICATION_SCHEMA)
        return cls(
            id=checked["id"],
            event_type=checked["event_type"],
            occurred_at=moment(checked["occurred_at"]),
            porting_order_id=checked.get("porting_order_id"),
            payload=checked["payload"],
            received_via=checked["received_via"],
        )

    def as_message(self) -> dict[str, Any]:
        message = {
            "id": self.id,
            "event_type": self.event_type,
            "occurred_at": self.occurred_at,
            "payload": self.payload,
            "received_via": self.received_via,
        }
        return message | ({"porting_order_id": self.porting_order_id} if self.porting_order_id else {})

    def facts(self) -> list[Fact]:
        """What the event states; [] for an event type portdocs does not follow (acknowledged,
        counted and ignored)."""
        read = _READERS.get(self.event_type)
        return read(self) if read else []

    def order_id(self, *candidates: Any) -> str:
        for candidate in (*candidates, self.porting_order_id):
            if isinstance(candidate, str) and shapes.is_valid_id(candidate):
                return candidate
        raise PermanentError(f"{self.event_type} names no valid porting order id")


def _status_change(event: PortingEvent) -> list[Fact]:
    payload = event.payload
    status = _object(payload.get("status"))
    try:
        value = OrderStatus(str(status.get("value")))
    except ValueError:
        raise PermanentError(f"unknown porting order status {str(status.get('value'))[:40]!r}") from None
    details = _list(status.get("details"))
    return [
        StatusChange(
            porting_order_id=event.order_id(payload.get("id")),
            value=value,
            details=tuple(Detail.of(d) for d in details[:50]),
            # The order's own updated_at orders its changes; the event's time only if it has none.
            at=moment(payload.get("updated_at") or event.occurred_at),
            customer_reference=_optional_text(payload.get("customer_reference")),
            support_key=_optional_text(payload.get("support_key")),
        )
    ]


def _comment(event: PortingEvent) -> list[Fact]:
    comment = event.payload.get("comment")
    if not isinstance(comment, dict) or not isinstance(comment.get("body"), str):
        raise PermanentError("porting_order.new_comment carries no comment body")
    return [
        Comment(
            porting_order_id=event.order_id(event.payload.get("porting_order_id")),
            comment_id=printable(comment.get("id") or event.id, 128),
            body=printable(comment["body"], COMMENT_MAX),
            user_type=printable(comment.get("user_type") or "unknown", 16),
            at=moment(comment.get("inserted_at") or event.occurred_at),
        )
    ]


def _split(event: PortingEvent) -> list[Fact]:
    payload = event.payload
    parts = [_object(payload.get(side)) for side in ("from", "to")]
    numbers = _list(payload.get("porting_phone_numbers"))
    named = tuple(
        printable(n.get("phone_number") or n.get("id"), 64)
        for n in numbers[:1000]
        if isinstance(n, dict) and (n.get("phone_number") or n.get("id"))
    )
    from_order, to_order = (event.order_id(part.get("id")) for part in parts)
    if from_order == to_order:
        raise PermanentError("porting_order.split names the same order on both sides")
    return [Split(from_order, to_order, named, event.occurred_at)]


def _snapshot(event: PortingEvent) -> list[Fact]:
    """portdocs' poll: the order's status (ordered by its own updated_at, like a webhook's), its
    requirements and its documents' reviews (ordered by the moment they were read)."""
    payload = event.payload
    order_id = event.order_id()
    facts: list[Fact] = []
    if isinstance(payload.get("order"), dict) and "status" in payload["order"]:
        facts += _status_change(
            PortingEvent(
                event.id, EventType.STATUS_CHANGED, event.occurred_at, order_id, payload["order"], "poll"
            )
        )
    if "requirements_met" in payload:
        unmet = tuple(printable(name, 200) for name in payload.get("unmet_requirements") or ())
        facts.append(Requirements(order_id, bool(payload["requirements_met"]), unmet, event.occurred_at))
    for document in payload.get("documents") or ():
        facts.append(_review(order_id, document, event.occurred_at))
    return facts


def _review(order_id: str, document: Any, at: str) -> DocumentReview:
    try:
        status = ReviewStatus(str(document.get("status")))
    except (ValueError, AttributeError):
        raise PermanentError("a document review carries no known status") from None
    document_id = document.get("id")
    if not isinstance(document_id, str) or not shapes.is_valid_id(document_id):
        raise PermanentError("a document review names no valid document id")
    reason = document.get("reason")
    return DocumentReview(
        order_id, document_id, status, printable(reason, DESCRIPTION_MAX) if reason else None, at
    )


_READERS: dict[str, Callable[[PortingEvent], list[Fact]]] = {
    EventType.STATUS_CHANGED: _status_change,
    EventType.NEW_COMMENT: _comment,
    EventType.SPLIT: _split,
    EventType.ORDER_SNAPSHOT: _snapshot,
}


def _order_of(payload: Any) -> str | None:
    if isinstance(payload, dict):
        for name in ("porting_order_id", "id"):
            if isinstance(payload.get(name), str):
                return str(payload[name])
    return None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _optional_text(value: Any) -> str | None:
    return printable(value, 200) if isinstance(value, str) and value else None


def _without_nulls(message: Any) -> Any:
    return {k: v for k, v in message.items() if v is not None} if isinstance(message, dict) else message


# What a person does about each exception code (Telnyx's 21, GET /v2/porting_orders/exception_types).
# A code not listed gets the general advice; the description Telnyx wrote is always shown beside it.
_ADVICE = {
    "ENTITY_NAME_MISMATCH": "correct the end user's name on the order to match the losing carrier's "
    "account, and drop an LOA with that name",
    "AUTH_PERSON_MISMATCH": "drop an LOA signed by the person authorised on the losing carrier's account",
    "ACCOUNT_NUMBER_MISMATCH": "correct the account number on the order; drop the latest invoice "
    "that shows it",
    "BTN_ATN_MISMATCH": "correct the billing telephone number on the order to the losing carrier's",
    "LOCATION_MISMATCH": "correct the service address on the order to the losing carrier's",
    "POSTAL_CODE_MISMATCH": "correct the service address's postal code on the order",
    "PASSCODE_PIN_INVALID": "ask the end user for the account PIN and correct it on the order",
    "FOC_EXPIRED": "choose a new FOC date on the order and resubmit it",
    "FOC_REJECTED": "choose another FOC date on the order and resubmit it",
    "PORTING_ORDER_SPLIT_REQUIRED": "split the order as Telnyx's comment asks, then complete each part",
}
GENERAL_ADVICE = "read Telnyx's description and latest comment, correct the order, and resubmit it"


def advice_for(code: str) -> str:
    return _ADVICE.get(code, GENERAL_ADVICE)


def drop_folder(porting_order_id: str, document_type: DocumentType) -> str:
    """Where a corrected document goes: dropped there, it replaces the order's current one."""
    return PortingOrderTarget(porting_order_id, document_type).intake_key("")
