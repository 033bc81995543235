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
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from portdocs.errors import PermanentError, PortdocsError
from portdocs.ledger import Ledger
from portdocs.notifications_queue import NotificationsQueue
from portdocs.observability import count, logger
from portdocs.orders import Orders, current_documents
from portdocs.porting_status import EventType, PortingEvent, ReviewStatus, moment
from portdocs.retrying import Deadline
from portdocs.telnyx_porting import PortingApi
from portdocs.timestamps import parse_utc_iso, utc_iso

T = TypeVar("T")
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
        """Both parts, each whatever happens to the other; a part that failed fails the run after
        the other had its turn (the poller's alarm counts failed runs)."""
        try:
            events = self.poll_events(deadline)
        except PortdocsError as error:
            logger.error("porting events not read", extra={"error": str(error)})
            count("PollEventsFailed")
            self.poll_orders(deadline)
            raise
        return {"events": events, "orders": self.poll_orders(deadline)}

    def poll_events(self, deadline: Deadline) -> int:
        since = moment(self.orders.cursor() or utc_iso(time.time() - FIRST_LOOKBACK_SECONDS))
        read: list[PortingEvent] = []
        page, pages = 1, 1
        while page <= min(pages, MAX_EVENT_PAGES):
            items, pages = self.api.events_since(since, page, deadline)
            events = [event for item in items if (event := _event_of(item)) is not None]
            self.queue.send(events)
            read += events
            page += 1
        self.orders.move_cursor(_next_cursor(since, read, all_read=page > pages))
        count("PollEventsRead")
        return len(read)

    def poll_orders(self, deadline: Deadline) -> int:
        """One order that cannot be read (deleted on Telnyx, a fault) is counted and passed over
        until the next run: it never holds up the others."""
        polled = 0
        for porting_order_id in self.orders.following(ORDERS_PER_RUN):
            if deadline.remaining() < MIN_SECONDS_PER_ORDER:
                break
            try:
                self.queue.send([self.snapshot(porting_order_id, deadline)])
                polled += 1
            except PermanentError as error:
                # Telnyx refuses to show it (404: deleted, or not this account's): nothing more
                # will come of polling it.
                count("OrdersNoLongerReadable")
                logger.warning(
                    "porting order not readable; no longer polled",
                    extra={"porting_order_id": porting_order_id, "error": str(error)},
                )
                self.orders.unfollow(porting_order_id)
                continue
            except PortdocsError as error:
                count("OrdersNotPolled")
                logger.warning(
                    "porting order not polled this time",
                    extra={"porting_order_id": porting_order_id, "error": str(error)},
                )
            self.orders.polled(porting_order_id, moment(utc_iso(time.time(), timespec="milliseconds")))
        return polled

    def snapshot(self, porting_order_id: str, deadline: Deadline) -> PortingEvent:
        """The order as Telnyx shows it now. Raises PermanentError only when the order itself
        cannot be read; a document or requirements list that cannot be is left out this time."""
        read_at = moment(utc_iso(time.time(), timespec="milliseconds"))
        order = self.api.order(porting_order_id, deadline)
        payload: dict[str, Any] = {"order": order}
        met = bool(order.get("requirements_met"))
        unmet = [] if met else _or_none(lambda: self.api.unmet_requirements(porting_order_id, deadline))
        if unmet is not None:
            payload |= {"requirements_met": met, "unmet_requirements": unmet}
        documents = current_documents(self.ledger.documents_of_porting_order(porting_order_id))
        reviews = [
            _review_of(document)
            for entry in documents
            if entry.telnyx_document_id and entry.review_status not in REVIEWED
            if (document := _or_none(partial(self.api.document, entry.telnyx_document_id, deadline)))
        ]
        return PortingEvent(
            id=f"snapshot:{porting_order_id}:{read_at}",
            event_type=EventType.ORDER_SNAPSHOT,
            occurred_at=read_at,
            porting_order_id=porting_order_id,
            payload=payload | {"documents": reviews},
            received_via="poll",
        )


def _or_none(read: Callable[[], T]) -> T | None:
    """A part of an order's snapshot Telnyx will not show (a document it deleted): left out, said."""
    try:
        return read()
    except PermanentError as error:
        count("SnapshotPartsUnreadable")
        logger.warning("part of a porting order not readable", extra={"error": str(error)})
        return None


def _next_cursor(since: str, read: list[PortingEvent], all_read: bool) -> str:
    """Where the next poll starts: the newest event read, less the overlap, never before `since`.
    With pages left unread (a backlog over MAX_EVENT_PAGES) it moves only if the pages came oldest
    first, so the unread ones are newer: Telnyx does not document the order of this list, and a
    cursor moved past unread events would lose them for good."""
    if not read:
        return since
    times = [event.occurred_at for event in read]
    if not all_read and times != sorted(times):
        count("PollBacklogUnordered")
        return since
    trailing = moment(utc_iso(parse_utc_iso(max(times)) - CURSOR_OVERLAP_SECONDS, timespec="milliseconds"))
    return max(since, trailing)


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
