"""A document's lifecycle: every state change goes through here, and a record's fate is decided
here (the single retry-or-reject decision).

Permanent errors reject the document (ledger, then object tag, metric) and the record is done;
transient and configuration errors leave the document `failed` and re-raise, so the record is
reported as a batch item failure and SQS delivers it again (in the end to the DLQ).

The ledger is the record of truth and the object tag follows it: a tag is written only after the
conditional ledger write it reports succeeded, and a duplicate delivery of a finished document
brings the tag up to the ledger's state (a worker killed between the two leaves it behind).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from portdocs import delivery
from portdocs.documents import (
    Association,
    PortingOrderTarget,
    SourceObject,
    State,
    Target,
    Upload,
    document_id,
)
from portdocs.errors import (
    AttentionError,
    ConfigurationError,
    DeferredError,
    PermanentError,
    PortdocsError,
    TransientError,
    UploadGoneError,
)
from portdocs.events import DocumentChange, DocumentEvents
from portdocs.intake import CHECK_TAG, REASON_TAG, STATUS_TAG, IntakeStore, ObjectInfo, same_revision
from portdocs.ledger import Ledger, LedgerEntry
from portdocs.observability import correlate, count, logger
from portdocs.urls import without_url_paths

if TYPE_CHECKING:
    from portdocs.file_check import CheckedFile
    from portdocs.orders import Orders

# The other delivery's in-progress lock ends with its invocation (at most the function's timeout,
# 120 s): a few hand-backs of this length outlast it well within redelivery's limit of 10.
CONCURRENT_DUPLICATE_DELAY_SECONDS = 30.0
POSSIBLE_DUPLICATE = "possible duplicate"
POSSIBLY_ATTACHED = "possibly attached"


@dataclass(frozen=True)
class Attempt:
    """One document being worked on. Its ledger id is fixed when the attempt is made, from what
    is known up front, and never changes while it runs."""

    document_id: str
    source: SourceObject | None = None
    target: Target | None = None

    @classmethod
    def of(cls, source: SourceObject, target: Target | None) -> Attempt:
        return cls(document_id(source, target), source, target)


class Lifecycle:
    """The one owner of a document's state changes. Every terminal change is written to the ledger
    first, with its event in the outbox; the object tag and the event (portdocs.events) follow. A
    duplicate delivery finds the change made and brings the tag up to date, and publishes the event
    only if it is still in the outbox (its worker died, or the bus refused it)."""

    def __init__(
        self,
        ledger: Ledger,
        intake: IntakeStore,
        intake_bucket: str,
        events: DocumentEvents,
        orders: Orders,
    ) -> None:
        self._ledger = ledger
        self._intake = intake
        self._intake_bucket = intake_bucket
        self._events = events
        # The porting orders the tracker follows once a document of theirs is attached.
        self._orders = orders

    @contextmanager
    def settling(self, attempt: Attempt, record_failures: bool = True) -> Iterator[Attempt]:
        """`record_failures=False` for steps that come before the document is known (resolving an
        upload request's version): a failure there is logged and retried, but writes no row."""
        correlate(attempt.document_id)
        try:
            yield attempt
        except PermanentError as error:
            self.reject(attempt, str(error), error.possibly_attached)
        except DeferredError as error:
            # Handed back untouched (portdocs.redelivery): not a fault, and not worth a write.
            said = without_url_paths(str(error))
            logger.info("document deferred", extra={"document_id": attempt.document_id, "reason": said})
            raise
        except (TransientError, ConfigurationError) as error:
            kind = "transient"
            if isinstance(error, ConfigurationError):
                kind = "needs attention" if isinstance(error, AttentionError) else "configuration"
            said = without_url_paths(str(error))
            logger.warning(
                "document kept for retry",
                extra={"document_id": attempt.document_id, "fault": kind, "error": said},
            )
            count("DocumentsFailed")
            reason = f"{kind}: {said}"
            failed = record_failures and self._ledger.mark_failed(
                attempt.document_id, reason, attempt.target, attempt.source
            )
            if failed:
                self._tag(attempt.source, {STATUS_TAG: str(State.FAILED)})
                if delivery.is_last_receive():  # next stop: the dead-letter queue, where a person redrives it
                    self._publish_failed(attempt, reason)
            raise
        except IdempotencyAlreadyInProgressError:
            # Another record holds this document right now (a duplicate in the same batch, or in
            # another invocation): hand this one back for a little later, without spending a
            # receive on it. By then the other has finished and this one ends as a duplicate.
            logger.info("a concurrent delivery is handling this document; handed back for later")
            count("ConcurrentDuplicates")
            raise DeferredError(
                "a concurrent delivery is handling this document", CONCURRENT_DUPLICATE_DELAY_SECONDS
            ) from None
        except Exception:
            logger.exception(
                "unexpected error; the record will be retried", extra={"document_id": attempt.document_id}
            )
            raise

    def reject(self, attempt: Attempt, reason: str, possibly_attached: bool = False) -> None:
        self.close(attempt, State.REJECTED, reason, possibly_attached)

    def close(self, attempt: Attempt, state: State, reason: str, possibly_attached: bool = False) -> None:
        """Ends the document (rejected, superseded, withdrawn); the tag says what the ledger says.
        A document that may be on Telnyx all the same says so, for a person to check."""
        reason = without_url_paths(reason)
        if possibly_attached:
            reason += (
                "; an earlier attempt's outcome was unknown, so it may be attached on Telnyx: check the draft"
            )
            count("PossibleDuplicates")
        # A rejection is the document's own fault and worth a warning; the others are expected.
        log = logger.warning if state is State.REJECTED else logger.info
        log(f"document {state}", extra={"document_id": attempt.document_id, "reason": reason})
        count(f"Documents{str(state).capitalize()}")
        ended = self._ledger.close(
            attempt.document_id, state, reason, attempt.target, attempt.source, possibly_attached
        )
        if ended is None:
            self.bring_tag_up_to_date(attempt)
            return
        self._tag(attempt.source, tags_for(state, reason, possibly_attached=possibly_attached))
        self._announce(ended)

    def end_unless_latest(
        self,
        attempt: Attempt,
        current: ObjectInfo | None,
        step: str,
        version_pinned: bool = False,
        possibly_attached: bool = False,
    ) -> bool:
        """The latest version of a key is what a person means, up to the moment the document is
        `step` (sent, attached): ends it withdrawn if the key was deleted, or superseded if it
        holds a newer object (unless this version was pinned on purpose). True if it ended."""
        assert attempt.source is not None
        if current is None:
            self.close(
                attempt, State.WITHDRAWN, f"the file was deleted before it was {step}", possibly_attached
            )
            return True
        if not version_pinned and not same_revision(current.source, attempt.source):
            reason = (
                f"a newer version of this file arrived before this one was {step}; "
                f"the newest is {step} instead"
            )
            self.close(attempt, State.SUPERSEDED, reason, possibly_attached)
            return True
        return False

    def associated(self, attempt: Attempt, association: Association) -> None:
        telnyx_document_id, possible_duplicate = (
            association.telnyx_document_id,
            association.possible_duplicate,
        )
        self._follow(attempt.target)
        ended = self._ledger.mark_associated(attempt.document_id, telnyx_document_id, possible_duplicate)
        if ended is None:
            self.bring_tag_up_to_date(attempt)
            return
        count("DocumentsAssociated")
        if possible_duplicate:
            count("PossibleDuplicates")
            logger.warning(
                "document associated, possibly twice: an earlier attempt's outcome was unknown",
                extra={"telnyx_document_id": telnyx_document_id},
            )
        else:
            logger.info("document associated", extra={"telnyx_document_id": telnyx_document_id})
        self._tag(attempt.source, tags_for(State.ASSOCIATED, possible_duplicate=possible_duplicate))
        self._announce(ended)

    def _follow(self, target: Target | None) -> None:
        """Before the ledger write, so that a duplicate delivery of a document whose worker died
        after it still starts following its order. Best effort: the document is attached whatever
        happens here; an order not followed is still recorded from Telnyx's notifications, only
        not polled (`OrdersNotFollowed` counts it)."""
        if not isinstance(target, PortingOrderTarget):
            return
        try:
            self._orders.follow(target.porting_order_id)
        except PortdocsError as error:
            count("OrdersNotFollowed")
            logger.warning("could not start following the porting order", extra={"error": str(error)})

    def open(
        self,
        attempt: Attempt,
        description: str | None,
        upload: Upload | None = None,
        version_pinned: bool = False,
    ) -> LedgerEntry:
        """Records an attempt on the document (`received`, unless it is further along) and returns
        where it stands; a terminal state means the caller holds a duplicate."""
        return self._ledger.open(
            attempt.document_id, attempt.target, attempt.source, description, upload, version_pinned
        )

    def uploaded(self, attempt: Attempt, upload: Upload, checked: CheckedFile) -> bool:
        """False when a racing delivery ended the document meanwhile (a newer version, a deletion):
        its word stands, and nothing is to be handed to the associator."""
        if not self._ledger.mark_uploaded(
            attempt.document_id, upload, checked.content_type, checked.converted_from, checked.received_sha256
        ):
            self.bring_tag_up_to_date(attempt)
            return False
        count("DocumentsUploaded")
        return True

    def tag_uploaded(self, attempt: Attempt) -> None:
        """Before the hand-off to the associator: its "associated" must be the last word."""
        self._tag(attempt.source, {STATUS_TAG: str(State.UPLOADED)})

    def back_to_received(self, attempt: Attempt, gone: UploadGoneError) -> LedgerEntry | None:
        """Telnyx deleted the unlinked upload: the document waits for a fresh one. None when a
        racing delivery already did this, or finished the document."""
        return self._ledger.forget_upload(attempt.document_id, gone.telnyx_document_id)

    def duplicate(self, attempt: Attempt, entry: LedgerEntry) -> None:
        logger.info("duplicate delivery of a finished document", extra={"state": str(entry.state)})
        self._catch_up(attempt, entry)

    def bring_tag_up_to_date(self, attempt: Attempt) -> None:
        entry = self._ledger.find(attempt.document_id)
        if entry is not None:
            self._catch_up(attempt, entry)

    def _catch_up(self, attempt: Attempt, entry: LedgerEntry) -> None:
        """What a worker killed after the ledger write left undone: the tag, and the event."""
        self._tag(attempt.source, tags_of(entry))
        if entry.event_pending:
            logger.info("the document's event was never published; publishing it now")
            self._announce(entry)

    def announce_pending(self, listed: LedgerEntry) -> bool:
        """The sweeper's part: an event left in the outbox, as the index listed it. The item is read
        again first (the index lags): only the event still in its outbox is published, never one a
        later change replaced. True once it is on the bus."""
        entry = self._ledger.find(listed.document_id)
        if entry is None or not entry.event_pending or entry.event_id != listed.event_id:
            return False
        return self._announce(entry)

    def _announce(self, ended: LedgerEntry) -> bool:
        """Publishes the ended entry's event from its outbox, then empties the outbox."""
        if not ended.state.is_terminal:
            return False  # reopened by a person since (portdocs retry): its next end has its own
        if not self._events.publish(DocumentChange.of(ended)):
            return False  # left in the outbox, for the next delivery or the sweeper
        assert ended.event_id is not None
        try:
            self._ledger.event_published(ended.document_id, ended.event_id)
        except PortdocsError as error:
            # Published all the same: it may be published again, with the same id.
            logger.warning("could not empty the event's outbox", extra={"error": str(error)})
        return True

    def reject_message(self, message_id: str, error: PermanentError) -> None:
        """A message too malformed to name a document is still recorded, under its message id."""
        count("MessagesRejected")
        self.reject(Attempt(f"sqs-message:{message_id}"), str(error))

    def _publish_failed(self, attempt: Attempt, reason: str) -> None:
        """Not a terminal change, so not from the outbox: one event per last receive."""
        self._events.publish(
            DocumentChange(attempt.document_id, State.FAILED, attempt.target, attempt.source, reason)
        )

    def _tag(self, source: SourceObject | None, tags: dict[str, str]) -> None:
        """Best effort: the ledger is the record of truth, the tag a convenience on the object."""
        if source is None or source.bucket != self._intake_bucket:
            return
        try:
            self._intake.tag(source, tags)
        except PortdocsError as error:
            logger.warning("could not tag the intake object", extra={"error": without_url_paths(str(error))})


def tags_for(
    state: State, reason: str | None = None, possible_duplicate: bool = False, possibly_attached: bool = False
) -> dict[str, str]:
    tags = {STATUS_TAG: str(state)}
    if reason:
        tags[REASON_TAG] = reason
    if possible_duplicate:
        tags[CHECK_TAG] = POSSIBLE_DUPLICATE
    elif possibly_attached:
        tags[CHECK_TAG] = POSSIBLY_ATTACHED
    return tags


def tags_of(entry: LedgerEntry) -> dict[str, str]:
    return tags_for(entry.state, entry.reason, entry.possible_duplicate, entry.possibly_attached)
