"""Document events on EventBridge: one per terminal change of a document's state, for upstream
systems and people to subscribe to (docs/operations.md).

The detail follows schemas/document-event.schema.json. It names the document, its target and
intake object, the state and reason, and Telnyx's document id; never a credential, and never the
Location URL, which is a bearer link to the uploaded file and stays in the ledger.

At least once, with a stable id: a terminal change is written to the ledger together with its
event's id and moment (the outbox, portdocs.ledger), the event is built from that item, and the
outbox is emptied once the bus has it. A worker that dies in between, or a bus that refuses,
leaves it for the next delivery of the document or for the sweeper, which publish the same event
again, same `event_id`: subscribers dedupe on it. A failure to publish never fails or repeats the
document's work.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from portdocs import shapes
from portdocs.documents import SourceObject, State, Target
from portdocs.errors import PermanentError
from portdocs.observability import count, logger
from portdocs.timestamps import utc_iso
from portdocs.urls import without_url_paths

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

    from portdocs.ledger import LedgerEntry

SOURCE = "portdocs"
DETAIL_TYPES = {
    State.ASSOCIATED: "Document Associated",
    State.REJECTED: "Document Rejected",
    State.SUPERSEDED: "Document Superseded",
    State.WITHDRAWN: "Document Withdrawn",
    State.FAILED: "Document Failed",
}


@dataclass(frozen=True)
class DocumentChange:
    document_id: str
    state: State
    target: Target | None = None
    source: SourceObject | None = None
    reason: str | None = None
    telnyx_document_id: str | None = None
    possible_duplicate: bool = False
    possibly_attached: bool = False
    content_type: str | None = None
    converted_from: str | None = None
    # A terminal change's come from its outbox (`of`); a failed one's are its own, made now.
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    occurred_at: str | None = None

    @classmethod
    def of(cls, entry: LedgerEntry) -> DocumentChange:
        """The event of the entry's last terminal change, as often as it is published."""
        return cls(
            document_id=entry.document_id,
            state=entry.state,
            target=entry.target,
            source=entry.source,
            reason=entry.reason,
            telnyx_document_id=entry.telnyx_document_id,
            possible_duplicate=entry.possible_duplicate,
            possibly_attached=entry.possibly_attached,
            content_type=entry.content_type,
            converted_from=entry.converted_from,
            event_id=entry.event_id or uuid.uuid4().hex,
            occurred_at=entry.event_at,
        )

    def detail(self, now: float | None = None) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "event_id": self.event_id,
            "document_id": self.document_id,
            "state": str(self.state),
            "occurred_at": self.occurred_at
            or utc_iso(time.time() if now is None else now, timespec="milliseconds"),
        }
        if self.target is not None:
            detail["target"] = self.target.as_message()
        if self.source is not None:
            detail["source"] = self.source.as_message()
        optional = {
            "reason": self.reason,
            "telnyx_document_id": self.telnyx_document_id,
            "possible_duplicate": self.possible_duplicate or None,
            "possibly_attached": self.possibly_attached or None,
            "content_type": self.content_type,
            "converted_from": self.converted_from,
        }
        detail.update({name: value for name, value in optional.items() if value is not None})
        return shapes.validate(detail, shapes.DOCUMENT_EVENT_SCHEMA)


class EventBus:
    """Puts portdocs' events on the stack's bus, best effort (see above)."""

    def __init__(self, events_client: EventBridgeClient, bus_name: str) -> None:
        self._client = events_client
        self._bus_name = bus_name

    def put(self, detail_type: str, detail: Callable[[], dict[str, Any]]) -> bool:
        """True once the bus has it. `detail` is made here, so that a detail that fails its schema
        is counted like a refused put, never raised into the work that is already done."""
        try:
            entry: PutEventsRequestEntryTypeDef = {
                "Source": SOURCE,
                "DetailType": detail_type,
                "Detail": json.dumps(detail()),
                "EventBusName": self._bus_name,
            }
            answer = self._client.put_events(Entries=[entry])
            if answer.get("FailedEntryCount"):
                raise RuntimeError(answer["Entries"][0].get("ErrorCode") or "the event was not accepted")
        except (ClientError, BotoCoreError, RuntimeError, PermanentError) as error:
            count("EventsNotPublished")
            logger.warning(
                "could not publish the event; the table has the change",
                extra={
                    "detail_type": detail_type,
                    "error": without_url_paths(f"{type(error).__name__}: {error}"),
                },
            )
            return False
        count("EventsPublished")
        return True


class DocumentEvents:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    def publish(self, change: DocumentChange) -> bool:
        return self._bus.put(DETAIL_TYPES[change.state], change.detail)
