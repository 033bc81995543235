"""The tracker: each notification about a porting order (webhook or poll, in any order, any number
of times) becomes the order's recorded facts, an event on the bus for each real change, and a
notice to a person, in words, when the order needs one (docs/orders.md).

A duplicate is dropped by its event id; a late or repeated fact is refused by the store because it
is not newer than the one held (portdocs.orders). Only a write that changed something publishes,
so neither path makes a second event or a second notice.

At least once: the event id is marked seen only after the announcements, and each write records
the notification that made it. A worker that dies between a write and its announcement leaves
the notification on its queue; its next delivery finds the change made by that same notification
and announces it then, with the same event ids (a notice may then come twice).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from portdocs.errors import PermanentError
from portdocs.ledger import Ledger, LedgerEntry
from portdocs.notices import Notices
from portdocs.observability import correlate, count, count_by, logger
from portdocs.order_events import OrderEvents
from portdocs.orders import OrderRecord, Orders, current_documents, document_type_of
from portdocs.porting_status import (
    FINAL_STATUSES,
    Comment,
    DocumentReview,
    EventType,
    Fact,
    OrderStatus,
    PortingEvent,
    Requirements,
    ReviewStatus,
    Split,
    StatusChange,
)
from portdocs.retrying import Deadline
from portdocs.timestamps import parse_utc_iso

# Telnyx's clock and ours agree to seconds; a fact dated further ahead than this is refused, or it
# would shut out every real fact of its kind for that order until its time came.
MAX_AHEAD_SECONDS = 24 * 3600


def _not_ahead(facts: list[Fact], now: float) -> list[Fact]:
    for fact in facts:
        if parse_utc_iso(fact.at) > now + MAX_AHEAD_SECONDS:
            raise PermanentError(f"a fact dated {fact.at}, more than a day ahead of now")
    return facts


@dataclass
class Tracker:
    orders: Orders
    ledger: Ledger
    events: OrderEvents
    notices: Notices
    # One record at a time: notifications are small, and a batch's records often name one order.
    record_concurrency: int = 1

    def bind(self, lambda_context: Any) -> None:
        """Nothing is held per invocation."""

    def handle_message(self, body: str, message_id: str, deadline: Deadline) -> None:
        try:
            event = PortingEvent.from_message(json.loads(body))
        except (ValueError, RecursionError, PermanentError) as error:
            # Only the receiver and the poller send here, and both validate: a message that does
            # not parse will never parse. Dropped, said and counted, never sent round to the DLQ.
            count("NotificationsRefused")
            logger.warning("notification refused", extra={"reason": str(error)[:300]})
            return
        correlate(f"porting-event:{event.id}")
        # A snapshot's id is new every time: only Telnyx's events can repeat.
        repeatable = event.event_type != EventType.ORDER_SNAPSHOT
        if repeatable and self.orders.seen(event.id):
            count("NotificationsDuplicate")
            return
        try:
            facts = _not_ahead(event.facts(), time.time())
        except PermanentError as error:
            count("NotificationsRefused")
            logger.warning(
                "notification refused", extra={"event_type": event.event_type, "reason": str(error)}
            )
            if repeatable:  # refused once, refused again: its repeats need not be read
                self.orders.mark_seen(event.id)
            return
        if not facts:
            count("NotificationsIgnored")
            logger.info(
                "notification of a type portdocs does not follow", extra={"event_type": event.event_type}
            )
        for fact in facts:
            self.apply(fact, by=event.id)
        if repeatable:
            self.orders.mark_seen(event.id)
        count("NotificationsApplied")

    def apply(self, fact: Fact, by: str) -> None:
        """`by`: the notification's id, which names what it wrote and what it announces."""
        if isinstance(fact, StatusChange):
            self._status(fact, by)
        elif isinstance(fact, Comment):
            self._comment(fact, by)
        elif isinstance(fact, Split):
            self._split(fact, by)
        elif isinstance(fact, Requirements):
            self._requirements(fact)
        else:
            self._review(fact, by)

    def _status(self, change: StatusChange, by: str) -> None:
        before = self.orders.apply_status(change, by)
        if before is None:
            count("NotificationsStale")
            return
        if before.status == change.value and before.details == change.details:
            return
        logger.info(
            "porting order status changed",
            extra={"porting_order_id": change.porting_order_id, "status": str(change.value)},
        )
        count_by("OrdersEnteringStatus", "status", str(change.value))
        order = self._order(change.porting_order_id)
        self.events.status_changed(order, previous=before.status, by=by)
        if change.value == OrderStatus.EXCEPTION:
            self._needs_action(order, "is in exception", by)

    def _comment(self, comment: Comment, by: str) -> None:
        if self.orders.apply_comment(comment, by) is None:
            count("NotificationsStale")
            return
        order = self._order(comment.porting_order_id)
        if comment.from_telnyx_staff and order.status not in FINAL_STATUSES:
            self._needs_action(order, "has a new comment from Telnyx's staff", by)

    def _split(self, split: Split, by: str) -> None:
        new_part, new_number = self.orders.apply_split(
            split, follow_part=self._order(split.from_order).following, by=by
        )
        if not new_number:
            count("NotificationsStale")
        if not new_part:
            return  # one more number of a part already announced
        parent, part = self._order(split.from_order), self._order(split.to_order)
        self.events.split(parent, part, by)
        self._needs_action(
            part, f"was split from porting order {split.from_order}; complete this part on its own", by
        )

    def _requirements(self, requirements: Requirements) -> None:
        if self.orders.apply_requirements(requirements) is None:
            count("NotificationsStale")

    def _review(self, review: DocumentReview, by: str) -> None:
        entry = self._document(review)
        if entry is None:
            count("ReviewsOfUnknownDocuments")
            return
        # Recorded by this very notification already: its worker may have died before announcing.
        recorded_by_it = entry.review_event == by
        changed_status = recorded_by_it or entry.review_status != review.status
        if not changed_status and entry.review_reason == review.reason:
            return  # read again, unchanged: no write (a pending review is read every poll)
        if not recorded_by_it and not self.ledger.record_review(
            entry.document_id, str(review.status), review.reason, review.at, by
        ):
            count("NotificationsStale")
            return
        if not changed_status or review.status == ReviewStatus.PENDING:
            return
        order = self._order(review.porting_order_id)
        self.events.document_reviewed(order, entry, review, by)
        if review.status == ReviewStatus.DENIED:
            self._needs_action(
                order, f"had its {document_type_of(entry) or 'document'} denied by Telnyx's review", by
            )

    def _document(self, review: DocumentReview) -> LedgerEntry | None:
        return next(
            (
                entry
                for entry in self.ledger.documents_of_porting_order(review.porting_order_id)
                if entry.telnyx_document_id == review.telnyx_document_id
            ),
            None,
        )

    def _needs_action(self, order: OrderRecord, why: str, by: str) -> None:
        if not order.following:
            # Not an order portdocs attached documents to (another team's, or one that has ended):
            # recorded and published, but no one here is told to act on it.
            count("ActionsOnUnfollowedOrders")
            return
        denied = [
            entry
            for entry in current_documents(self.ledger.documents_of_porting_order(order.porting_order_id))
            if entry.review_status == ReviewStatus.DENIED
        ]
        self.events.needs_action(order, why, denied, by)
        self.notices.needs_action(order, why, denied)
        count("OrdersNeedingAction")

    def _order(self, porting_order_id: str) -> OrderRecord:
        return self.orders.get(porting_order_id) or OrderRecord(porting_order_id)
