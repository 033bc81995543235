"""The sweeper: on a schedule, finds documents left open (received, uploaded, failed) longer than
STUCK_AFTER_SECONDS, counts them (StuckDocuments, which an alarm watches) and puts each back
through the pipeline where that is safe and has not been done too often, recording it on the
ledger (`sweeps`, `swept_at`).

Never a second association: a document whose association may already have been sent (its outcome
unknown) is left to a person; everything re-driven goes through the same idempotent, ledger-checked
steps as any delivery. A document whose file was replaced or deleted meanwhile is ended as
superseded or withdrawn instead, as the pipeline itself would.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from portdocs.documents import State, names_a_target, target_of, without_url_paths
from portdocs.errors import PermanentError, PortdocsError
from portdocs.intake import IntakeStore
from portdocs.ledger import Ledger, LedgerEntry, iso_time
from portdocs.observability import correlate, count, logger, metrics
from portdocs.outcomes import Attempt, Outcomes
from portdocs.resend import Resender, resend_of

MAX_SWEEPS = 3


def reason_to_leave(item: dict[str, Any]) -> str | None:
    """Why this open document must not be re-driven automatically, or None if it may."""
    if item.get("send_unconfirmed"):
        return "an association may already have been sent (outcome unknown): check the draft, then portdocs retry"
    if item.get("state") == str(State.FAILED):
        # Its message is not lost: SQS delivers it again, or it waits in the dead-letter queue
        # (alarmed) for its cause to be fixed and a redrive.
        return "its message is on its queue or in the dead-letter queue: fix the cause in last_error, then redrive"
    if int(item.get("sweeps", 0)) >= MAX_SWEEPS:
        return f"it was re-driven {MAX_SWEEPS} times already: portdocs status shows its last error"
    if not names_a_target(item):
        return "the message named no document"
    return None


def is_older(item: dict[str, Any], before: float) -> bool:
    return str(item.get("updated_at", "")) < iso_time(before)


class Sweeper:
    def __init__(
        self,
        ledger: Ledger,
        intake: IntakeStore,
        outcomes: Outcomes,
        resender: Resender,
        stuck_after_seconds: int,
    ) -> None:
        self._ledger = ledger
        self._intake = intake
        self._outcomes = outcomes
        self._resender = resender
        self._stuck_after_seconds = stuck_after_seconds

    def sweep(self) -> dict[str, int]:
        before = time.time() - self._stuck_after_seconds
        stuck = self._ledger.open_since(before)
        metrics.add_metric(name="StuckDocuments", unit="Count", value=len(stuck))
        outcomes: Counter[str] = Counter()
        for document_id in stuck:
            correlate(document_id)
            try:
                outcomes[self._sweep_one(document_id, before)] += 1
            except Exception as error:  # one odd row must not stop the sweep of the others
                logger.warning(
                    "could not sweep this document; the next sweep tries again",
                    extra={"error": without_url_paths(f"{type(error).__name__}: {error}")},
                )
                outcomes["errors"] += 1
        summary = {"stuck": len(stuck), **outcomes}
        logger.info("sweep done", extra={"sweep": summary})
        return summary

    def _sweep_one(self, document_id: str, before: float) -> str:
        # The index is eventually consistent and a sweep takes a while: judge the item as it is now.
        item = self._ledger.item(document_id)
        if item is None or State(item["state"]).is_terminal or not is_older(item, before):
            return "finished"
        why = reason_to_leave(item)
        if why is not None:
            return _left_for_a_person(document_id, why)
        entry = LedgerEntry.from_item(item)
        if entry.source is not None and not entry.version_pinned:
            attempt = Attempt(document_id, entry.source, target_of(item))
            if self._outcomes.end_unless_latest(attempt, self._intake.current(entry.source), "put through again"):
                return "ended"
        try:
            # Its version, pinned only if a person pinned it: the latest version still wins.
            resend = resend_of(item, pinned_on_purpose=entry.version_pinned)
        except PermanentError as error:
            return _left_for_a_person(document_id, str(error))
        if resend is None or not self._ledger.note_sweep(document_id, item["updated_at"], before, MAX_SWEEPS):
            return "finished"  # nothing to send, or it moved on since it was read
        try:
            self._resender.send(resend)
        except PortdocsError as error:
            logger.warning("could not re-drive the stuck document", extra={"error": without_url_paths(str(error))})
            return "errors"
        logger.info("stuck document put through again", extra={"document_id": document_id, "queue": str(resend.queue)})
        count("DocumentsSwept")
        return "redriven"


def _left_for_a_person(document_id: str, why: str) -> str:
    logger.warning("stuck document left for a person", extra={"document_id": document_id, "reason": why})
    count("DocumentsLeftStuck")
    return "left"
