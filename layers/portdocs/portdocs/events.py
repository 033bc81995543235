"""Document events on EventBridge: one per terminal change of a document's state, for upstream
systems and people to subscribe to (README, "Operating portdocs").

The detail follows schemas/document-event.schema.json. It names the document, its target and
intake object, the state and reason, and Telnyx's document id; never a credential, and never the
Location URL, which is a bearer link to the uploaded file and stays in the ledger.

Publishing is best effort: the ledger already holds the change, so a failure to publish is
counted and logged, and never fails or repeats the document's work.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from portdocs import shapes
from portdocs.documents import SourceObject, State, Target, without_url_paths
from portdocs.errors import PermanentError
from portdocs.observability import count, logger

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

    def detail(self, now: datetime | None = None) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "document_id": self.document_id,
            "state": str(self.state),
            "occurred_at": (now or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
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
        }
        detail.update({name: value for name, value in optional.items() if value is not None})
        return shapes.validate(detail, shapes.DOCUMENT_EVENT_SCHEMA)


class DocumentEvents:
    def __init__(self, events_client: Any, bus_name: str) -> None:
        self._client = events_client
        self._bus_name = bus_name

    def publish(self, change: DocumentChange) -> None:
        try:
            entry = {
                "Source": SOURCE,
                "DetailType": DETAIL_TYPES[change.state],
                "Detail": json.dumps(change.detail()),
                "EventBusName": self._bus_name,
            }
            answer = self._client.put_events(Entries=[entry])
            if answer.get("FailedEntryCount"):
                raise RuntimeError(answer["Entries"][0].get("ErrorCode") or "the event was not accepted")
        except (ClientError, BotoCoreError, RuntimeError, PermanentError) as error:
            count("EventsNotPublished")
            logger.warning(
                "could not publish the document event; the ledger has the change",
                extra={"state": str(change.state), "error": without_url_paths(f"{type(error).__name__}: {error}")},
            )
            return
        count("EventsPublished")
