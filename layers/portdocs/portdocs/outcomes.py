"""Where a record's fate is decided and made visible: the single retry-or-reject decision.

Permanent errors reject the document (ledger, object tag, metric) and the record is done;
transient and configuration errors leave the document `failed` and re-raise, so the record is
reported as a batch item failure and SQS delivers it again (in the end to the DLQ).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from portdocs.documents import DraftTarget, SourceObject, State, document_id
from portdocs.errors import ConfigurationError, PermanentError, PortdocsError, TransientError
from portdocs.intake import IntakeStore
from portdocs.ledger import Ledger
from portdocs.observability import count, logger


@dataclass
class Attempt:
    """What is known of the document so far; the service fills it in as it learns more, and the
    ledger id follows: the intake object (and its target once known), or a fixed id for
    documents without an intake object."""

    source: SourceObject | None = None
    target: DraftTarget | None = None
    fixed_id: str | None = None

    @property
    def document_id(self) -> str:
        if self.fixed_id:
            return self.fixed_id
        assert self.source is not None, "an attempt names an intake object or has a fixed id"
        return document_id(self.source, self.target)

    def learn(self, source: SourceObject | None = None, target: DraftTarget | None = None) -> None:
        self.source = source or self.source
        self.target = target or self.target
        logger.set_correlation_id(self.document_id)


class Outcomes:
    def __init__(self, ledger: Ledger, intake: IntakeStore, intake_bucket: str) -> None:
        self._ledger = ledger
        self._intake = intake
        self._intake_bucket = intake_bucket

    @contextmanager
    def settling(self, attempt: Attempt) -> Iterator[Attempt]:
        logger.set_correlation_id(attempt.document_id)
        try:
            yield attempt
        except PermanentError as error:
            self.reject(attempt, str(error))
        except (TransientError, ConfigurationError) as error:
            kind = "configuration" if isinstance(error, ConfigurationError) else "transient"
            logger.warning(
                "document kept for retry",
                extra={"document_id": attempt.document_id, "fault": kind, "error": str(error)},
            )
            count("DocumentsFailed")
            self._ledger.mark_failed(attempt.document_id, f"{kind}: {error}", attempt.target, attempt.source)
            self.tag(attempt.source, State.FAILED)
            raise
        except IdempotencyAlreadyInProgressError:
            # Another invocation holds this document right now (a concurrent duplicate): let SQS
            # deliver this record again later, when the other one has finished.
            logger.info("a concurrent delivery is handling this document; will retry")
            raise
        except Exception:
            logger.exception("unexpected error; the record will be retried", extra={"document_id": attempt.document_id})
            raise

    def reject(self, attempt: Attempt, reason: str) -> None:
        logger.warning("document rejected", extra={"document_id": attempt.document_id, "reason": reason})
        count("DocumentsRejected")
        self._ledger.mark_rejected(attempt.document_id, reason, attempt.target, attempt.source)
        self.tag(attempt.source, State.REJECTED, reason)

    def reject_message(self, message_id: str, error: PermanentError) -> None:
        """A message too malformed to name a document is still recorded, under its message id."""
        self.reject(Attempt(fixed_id=f"sqs-message:{message_id}"), str(error))

    def tag(self, source: SourceObject | None, state: State, reason: str | None = None) -> None:
        """Best effort: the ledger is the record of truth, the tag a convenience on the object."""
        if source is None or source.bucket != self._intake_bucket:
            return
        try:
            self._intake.tag(source, str(state), reason)
        except PortdocsError as error:
            logger.warning("could not tag the intake object", extra={"error": str(error)})


def note_retry(error: TransientError, wait: float) -> None:
    count("DocumentsRetried")
    logger.info("transient fault, retrying", extra={"error": str(error), "wait_seconds": round(wait, 2)})
