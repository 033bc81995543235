"""The sweeper: on a schedule, finds documents left open (received, uploaded, failed) longer than
STUCK_AFTER_SECONDS, counts them (StuckDocuments, which an alarm watches) and puts each back
through the pipeline where that is safe and has not been done too often, recording it on the
ledger (`sweeps`, `swept_at`).

It also publishes the document events a worker left in the ledger's outbox (portdocs.events).

Never a second association: a document whose association may already have been sent (its outcome
unknown) is left to a person; everything re-driven goes through the same idempotent, ledger-checked
steps as any delivery. A document whose file was replaced or deleted meanwhile is ended as
superseded or withdrawn instead, as the pipeline itself would.
"""

from __future__ import annotations

import enum
import itertools
import time
from collections import Counter

from portdocs.documents import State
from portdocs.errors import PermanentError, PortdocsError
from portdocs.intake import IntakeStore
from portdocs.ledger import Ledger, LedgerEntry, event_time, ledger_time
from portdocs.lifecycle import Attempt, Lifecycle
from portdocs.observability import correlate, count, logger, metrics
from portdocs.resend import Resender, resend_of
from portdocs.urls import without_url_paths

MAX_SWEEPS = 3
# Longer than any invocation (the functions' timeouts are at most 300 s): an event younger than
# this may still be on its way from the worker that wrote it.
OUTBOX_GRACE_SECONDS = 600
# A sweep's share of its 5 minutes for events (each a read, a put and a write): a larger backlog,
# a bus that refused for long, is worked through over the next sweeps, oldest first.
MAX_EVENTS_PER_SWEEP = 500


class Swept(enum.StrEnum):
    """What a sweep did with one stuck document (the keys of its summary)."""

    # It moved on since it was listed, or there was nothing to send.
    FINISHED = "finished"
    # Its file was replaced or deleted: superseded or withdrawn, as the pipeline would.
    ENDED = "ended"
    # Not safe to re-drive, or re-driven too often: a person looks (DocumentsLeftStuck).
    LEFT = "left"
    REDRIVEN = "redriven"
    ERRORS = "errors"


def reason_to_leave(entry: LedgerEntry) -> str | None:
    """Why this open document must not be re-driven automatically, or None if it may."""
    if entry.send_unconfirmed:
        return (
            "an association may already have been sent (outcome unknown): "
            "check the draft, then portdocs retry"
        )
    if entry.state is State.FAILED:
        # Its message is not lost: SQS delivers it again, or it waits in the dead-letter queue
        # (alarmed) for its cause to be fixed and a redrive.
        return (
            "its message is on its queue or in the dead-letter queue: "
            "fix the cause in last_error, then redrive"
        )
    if entry.sweeps >= MAX_SWEEPS:
        return f"it was re-driven {MAX_SWEEPS} times already: portdocs status shows its last error"
    if entry.target is None:
        return "the message named no document"
    return None


class Sweeper:
    def __init__(
        self,
        ledger: Ledger,
        intake: IntakeStore,
        lifecycle: Lifecycle,
        resender: Resender,
        stuck_after_seconds: int,
    ) -> None:
        self._ledger = ledger
        self._intake = intake
        self._lifecycle = lifecycle
        self._resender = resender
        self._stuck_after_seconds = stuck_after_seconds

    def sweep(self) -> dict[str, int]:
        before = time.time() - self._stuck_after_seconds
        stuck = self._ledger.open_since(before)
        metrics.add_metric(name="StuckDocuments", unit="Count", value=len(stuck))
        swept: Counter[Swept] = Counter()
        for document_id in stuck:
            correlate(document_id)
            try:
                swept[self._sweep_one(document_id, before)] += 1
            except Exception as error:  # one odd row must not stop the sweep of the others
                logger.warning(
                    "could not sweep this document; the next sweep tries again",
                    extra={"error": without_url_paths(f"{type(error).__name__}: {error}")},
                )
                swept[Swept.ERRORS] += 1
        summary = {"stuck": len(stuck), **{str(kind): number for kind, number in swept.items()}}
        if republished := self._publish_left_events():
            summary["events_republished"] = republished
        logger.info("sweep done", extra={"sweep": summary})
        return summary

    def _publish_left_events(self) -> int:
        """Events a worker left in the outbox (it died after the ledger write, or the bus refused),
        published with their own ids; OUTBOX_GRACE_SECONDS leaves a live worker its own."""
        republished = 0
        try:
            left = self._ledger.unpublished(before=event_time(time.time() - OUTBOX_GRACE_SECONDS))
            for entry in itertools.islice(left, MAX_EVENTS_PER_SWEEP):
                correlate(entry.document_id)
                try:
                    published = self._lifecycle.announce_pending(entry)
                except PortdocsError as error:  # one entry must not stop the others
                    logger.warning("could not publish a left event", extra={"error": str(error)})
                    continue
                if published:
                    count("EventsRepublished")
                    republished += 1
        except PortdocsError as error:
            logger.warning("could not read the events left unpublished", extra={"error": str(error)})
        return republished

    def _sweep_one(self, document_id: str, before: float) -> Swept:
        # The index is eventually consistent and a sweep takes a while: judge the entry as it is now.
        entry = self._ledger.find(document_id)
        if entry is None or entry.state.is_terminal or not entry.updated_at < ledger_time(before):
            return Swept.FINISHED
        why = reason_to_leave(entry)
        if why is not None:
            return _left_for_a_person(document_id, why)
        if entry.source is not None and not entry.version_pinned:
            attempt = Attempt(document_id, entry.source, entry.target)
            if self._lifecycle.end_unless_latest(
                attempt, self._intake.current(entry.source), "put through again"
            ):
                return Swept.ENDED
        return self._redrive(entry, before)

    def _redrive(self, entry: LedgerEntry, before: float) -> Swept:
        try:
            # Its version, pinned only if a person pinned it: the latest version still wins.
            resend = resend_of(entry, pinned_on_purpose=entry.version_pinned)
        except PermanentError as error:
            return _left_for_a_person(entry.document_id, str(error))
        if resend is None or not self._ledger.note_sweep(
            entry.document_id, entry.updated_at, before, MAX_SWEEPS
        ):
            return Swept.FINISHED  # nothing to send, or it moved on since it was read
        try:
            self._resender.send(resend)
        except PortdocsError as error:
            logger.warning(
                "could not re-drive the stuck document", extra={"error": without_url_paths(str(error))}
            )
            return Swept.ERRORS
        logger.info(
            "stuck document put through again",
            extra={"document_id": entry.document_id, "queue": str(resend.queue)},
        )
        count("DocumentsSwept")
        return Swept.REDRIVEN


def _left_for_a_person(document_id: str, why: str) -> Swept:
    logger.warning("stuck document left for a person", extra={"document_id": document_id, "reason": why})
    count("DocumentsLeftStuck")
    return Swept.LEFT
