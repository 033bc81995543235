"""The poller: on a schedule, reads what webhooks may have missed (an account without them, an
outage, a lost delivery) and hands it to the tracker through the same queue, so that webhook and
poll give the same result in any order (docs/orders.md, "Polling").

1. Telnyx's porting events since a stored cursor (`GET /v2/porting/events`, `filter[created_at]
   [gte]`). The cursor trails the newest event read by an overlap: an event that becomes visible
   late is read again, and the tracker drops what it has seen by its id.
2. Each followed order, least recently polled first: its status, unmet requirements, and the
   review of each document portdocs attached that Telnyx has not finished reviewing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from portdocs.errors import PermanentError
from portdocs.ledger import Ledger
from portdocs.notifications_queue import NotificationsQueue
from portdocs.observability import count, logger
from portdocs.orders import Orders, current_documents
from portdocs.porting_status import EventType, PortingEvent, ReviewStatus, moment
from portdocs.retrying import Deadline
from portdocs.telnyx_porting import PortingApi
from portdocs.timestamps import parse_utc_iso, utc_iso

# Telnyx's review of a document ends in one of these; a document still pending is read each poll.
REVIEWED = (ReviewStatus.VERIFIED, ReviewStatus.DENIED)
# The first poll reads this far back; later ones read from the cursor.
FIRST_LOOKBACK_SECONDS = 24 * 3600
CURSOR_OVERLAP_SECONDS = 600
# Bounds on one run; what is left waits for the next (every 10 minutes).
MAX_EVENT_PAGES = 20
ORDERS_PER_RUN = 100
# A call takes at most this long (telnyx_http's timeouts); the run stops starting new work then.
MIN_SECONDS_PER_ORDER = 15.0


@dataclass
class Poller:
    api: PortingApi
    orders: Orders
    ledger: Ledger
    queue: NotificationsQueue

    def poll(self, deadline: Deadline) -> dict[str, int]:
        events = self.poll_events(deadline)
        orders = self.poll_orders(deadline)
        return {"events": events, "orders": orders}

    def poll_events(self, deadline: Deadline) -> int:
        since = self.orders.cursor() or utc_iso(time.time() - FIRST_LOOKBACK_SECONDS, timespec="milliseconds")
        newest, read, page, pages = since, 0, 1, 1
        while page <= min(pages, MAX_EVENT_PAGES):
            items, pages = self.api.events_since(since, page, deadline)
            events = [event for item in items if (event := _event_of(item)) is not None]
            self.queue.send(events)
            read += len(events)
            newest = max([newest, *(e.occurred_at for e in events)])
            page += 1
        trailing = utc_iso(parse_utc_iso(newest) - CURSOR_OVERLAP_SECONDS, timespec="milliseconds")
        self.orders.move_cursor(max(since, trailing))
        count("PollEventsRead")
        return read

    def poll_orders(self, deadline: Deadline) -> int:
        polled = 0
        for porting_order_id in self.orders.following(ORDERS_PER_RUN):
            if deadline.remaining() < MIN_SECONDS_PER_ORDER:
                break
            self.queue.send([self.snapshot(porting_order_id, deadline)])
            self.orders.polled(porting_order_id, utc_iso(time.time(), timespec="milliseconds"))
            polled += 1
        return polled

    def snapshot(self, porting_order_id: str, deadline: Deadline) -> PortingEvent:
        read_at = moment(utc_iso(time.time(), timespec="milliseconds"))
        order = self.api.order(porting_order_id, deadline)
        met = bool(order.get("requirements_met"))
        unmet = [] if met else self.api.unmet_requirements(porting_order_id, deadline)
        reviews = [
            _review_of(self.api.document(entry.telnyx_document_id, deadline))
            for entry in current_documents(self.ledger.documents_of_porting_order(porting_order_id))
            if entry.telnyx_document_id and entry.review_status not in REVIEWED
        ]
        return PortingEvent(
            id=f"snapshot:{porting_order_id}:{read_at}",
            event_type=EventType.ORDER_SNAPSHOT,
            occurred_at=read_at,
            porting_order_id=porting_order_id,
            payload={
                "order": order,
                "requirements_met": met,
                "unmet_requirements": unmet,
                "documents": reviews,
            },
            received_via="poll",
        )


def _event_of(item: Any) -> PortingEvent | None:
    try:
        return PortingEvent.from_telnyx(item, received_via="poll")
    except PermanentError as error:
        count("NotificationsMalformed")
        logger.warning("porting event refused", extra={"reason": str(error)[:300]})
        return None


def _review_of(document: dict[str, Any]) -> dict[str, Any]:
    review = {"id": document.get("id"), "status": document.get("status")}
    reason = document.get("status_reason") or document.get("reason")
    return review | ({"reason": reason} if isinstance(reason, str) and reason else {})
