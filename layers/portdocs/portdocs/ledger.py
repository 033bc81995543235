"""The documents ledger (DynamoDB): one item per document, its state and its history.

Terminal states (associated, rejected, superseded, withdrawn) are never overwritten: every write
is conditional, so a late or duplicate delivery cannot undo a finished document.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from portdocs import aws
from portdocs.documents import (
    TERMINAL_STATES,
    SourceObject,
    State,
    Target,
    Upload,
    names_a_target,
    target_of,
    upload_of,
)
from portdocs.errors import PermanentError, TransientError
from portdocs.timestamps import LEDGER_ZONE, utc_iso

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

# Every document of a porting order (portdocs status --porting-order, the tracker, the poller).
BY_PORTING_ORDER_INDEX = "by-porting-order"
# Keys only, by state and last change: the sweeper reads the few open documents, never the history.
BY_STATE_INDEX = "by-state"
# Sparse: only items whose terminal change's event is still in the outbox.
BY_PENDING_EVENT_INDEX = "by-pending-event"
OPEN_STATES = (State.RECEIVED, State.UPLOADED, State.FAILED)
# Outlives every way a message can come back (queue + dead-letter retention, 18 days) many times.
RETENTION_SECONDS = 180 * 24 * 3600
_TERMINAL_VALUES = {f":terminal{i}": str(state) for i, state in enumerate(sorted(TERMINAL_STATES))}
_NOT_TERMINAL: tuple[str, dict[str, Any]] = (
    f"attribute_not_exists(#state) OR NOT (#state IN ({', '.join(_TERMINAL_VALUES)}))",
    _TERMINAL_VALUES,
)
# An attachment that happened is the truth on Telnyx: it overrides a superseded, withdrawn or
# rejected written by a racing duplicate delivery, never another attachment.
_NOT_ASSOCIATED: tuple[str, dict[str, Any]] = (
    "attribute_not_exists(#state) OR #state <> :associated",
    {":associated": str(State.ASSOCIATED)},
)
EVENT_PENDING = "pending"
# Everything that records association POSTs without a known outcome (cleared together).
UNCONFIRMED_SEND_FIELDS = ("send_unconfirmed", "unconfirmed_sends", "first_unconfirmed_at")


@dataclass(frozen=True)
class LedgerEntry:
    """A ledger item as the code reads it: every attribute anyone reads, typed."""

    document_id: str
    state: State
    target: Target | None = None
    source: SourceObject | None = None
    description: str | None = None
    upload: Upload | None = None
    telnyx_document_id: str | None = None
    reason: str | None = None
    # The type of the file Telnyx was sent, and of the file as received when portdocs converted it
    # (portdocs.formats).
    content_type: str | None = None
    converted_from: str | None = None
    # The sha256 of the file as received (before any conversion): `portdocs bulk` knows by it that a
    # manifest's row was sent before.
    received_sha256: str | None = None
    # The last transient or configuration fault, while the document is `failed`.
    last_error: str | None = None
    # A POST to Telnyx's (non-idempotent) association endpoint was started and its outcome is
    # not known: a later success may be a second copy.
    send_unconfirmed: bool = False
    version_pinned: bool = False
    possible_duplicate: bool = False
    possibly_attached: bool = False
    # Times this document went back for a fresh upload (Telnyx deleted the unlinked one); never
    # reset, since each fresh upload is new work for the idempotency store.
    reuploads: int = 0
    # `reuploads` when a person last retried the document: the limit counts from there.
    reuploads_at_retry: int = 0
    # The documents-service ids of its uploads Telnyx deleted: an association naming one is stale.
    expired_uploads: frozenset[str] = frozenset()
    # Times the sweeper put it through again.
    sweeps: int = 0
    # Telnyx's review of an attached porting-order document (pending, verified, denied), its
    # reason where Telnyx gives one, and the moment it was read (portdocs.porting_status.moment).
    review_status: str | None = None
    review_reason: str | None = None
    reviewed_at: str | None = None
    # The notification that recorded the review (portdocs.tracker: announced again if it comes again).
    review_event: str | None = None
    # The outbox of its last terminal change (portdocs.events): the event's id and moment, written
    # with the change itself, and `event_pending` until the event is on the bus.
    event_id: str | None = None
    event_at: str | None = None
    event_pending: bool = False
    created_at: str = ""
    # The last change, as the ledger writes times (ledger_time): such strings sort as the moments do.
    updated_at: str = ""

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> LedgerEntry:
        source = item.get("source")
        return cls(
            document_id=item["document_id"],
            state=State(item["state"]),
            target=_target_of(item),
            source=SourceObject(**source) if source else None,
            description=item.get("description"),
            upload=upload_of({field: item.get(name) for field, name in _LEDGER_UPLOAD_NAMES.items()}),
            telnyx_document_id=item.get("telnyx_document_id"),
            reason=item.get("reason"),
            content_type=item.get("content_type"),
            converted_from=item.get("converted_from"),
            received_sha256=item.get("received_sha256"),
            last_error=item.get("last_error"),
            send_unconfirmed=bool(item.get("send_unconfirmed")),
            version_pinned=bool(item.get("version_pinned")),
            possible_duplicate=bool(item.get("possible_duplicate")),
            possibly_attached=bool(item.get("possibly_attached")),
            reuploads=int(item.get("reuploads", 0)),
            reuploads_at_retry=int(item.get("reuploads_at_retry", 0)),
            expired_uploads=frozenset(item.get("expired_uploads", ())),
            sweeps=int(item.get("sweeps", 0)),
            review_status=item.get("review_status"),
            review_reason=item.get("review_reason"),
            reviewed_at=item.get("reviewed_at"),
            review_event=item.get("review_event"),
            event_id=item.get("event_id"),
            event_at=item.get("event_at"),
            event_pending=bool(item.get("event_pending")),
            created_at=str(item.get("created_at", "")),
            updated_at=str(item.get("updated_at", "")),
        )


def _target_of(item: dict[str, Any]) -> Target | None:
    """The item's target; None for a row that names none, or none portdocs can read (only a
    hand-edited item): the entry is still read, and what needs the target says it has none (the
    sweeper leaves it for a person, saying so)."""
    if not names_a_target(item):
        return None
    try:
        return target_of(item)
    except (PermanentError, KeyError):
        return None


# An upload's message fields (Upload.as_fields) as the ledger names them: its `telnyx_document_id`
# is the association's, so the upload's id is kept apart.
_LEDGER_UPLOAD_NAMES = {
    "url": "location_url",
    "telnyx_document_id": "uploaded_document_id",
    "uploaded_at": "uploaded_at",
}


def upload_fields(upload: Upload) -> dict[str, Any]:
    """An upload as the ledger stores it."""
    return {_LEDGER_UPLOAD_NAMES[field]: value for field, value in upload.as_fields().items()}


@dataclass(frozen=True)
class UnconfirmedSendLimit:
    """When association POSTs without a known outcome must stop for a person: at least `count` of
    them with the first more than `span_seconds` ago, or `ceiling` of them whenever."""

    count: int
    span_seconds: float
    ceiling: int


def event_time(epoch_seconds: float) -> str:
    """An event's moment, as its detail says it (occurred_at) and the outbox sorts it."""
    return utc_iso(epoch_seconds, timespec="milliseconds")


def ledger_time(epoch_seconds: float) -> str:
    """The ledger's timestamps (updated_at, ...), which sort as strings."""
    return utc_iso(epoch_seconds, zone=LEDGER_ZONE)


class Ledger:
    def __init__(self, table: Table) -> None:
        # A boto3 resource is not thread-safe and a client is; records of a batch run side by side,
        # so every call goes through the table's own client, which keeps the resource's conversion
        # of Python values. Expressions are plain strings: its builder of condition objects keeps
        # per-call state that threads would share (boto3 issue 1332).
        self._client = table.meta.client
        self._table_name = table.name

    def open(
        self,
        document_id: str,
        target: Target | None = None,
        source: SourceObject | None = None,
        description: str | None = None,
        upload: Upload | None = None,
        version_pinned: bool = False,
    ) -> LedgerEntry:
        """Records an attempt on a document and returns where it stands. `version_pinned` is set,
        never cleared: once a version was asked for on purpose, it stays what is meant.

        A document already in a terminal state is returned untouched: the caller has a duplicate.
        """
        fields = _document_fields(target, source)
        if version_pinned:
            fields["version_pinned"] = True
        if upload is not None:
            fields.update(upload_fields(upload))
        if description is not None:
            fields["description"] = description
        try:
            item = self._update(
                document_id,
                fields,
                extra_set="#state = if_not_exists(#state, :received)",
                extra_values={":received": str(State.RECEIVED)},
                add={"attempts": 1},
            )
        except _Finished:
            return self.get(document_id)
        return LedgerEntry.from_item(item)

    def mark_uploaded(
        self,
        document_id: str,
        upload: Upload,
        content_type: str,
        converted_from: str | None,
        received_sha256: str | None = None,
    ) -> bool:
        conversion: dict[str, Any] = {"converted_from": converted_from} if converted_from else {}
        if received_sha256:
            conversion["received_sha256"] = received_sha256
        uploaded = self._transition(
            document_id,
            State.UPLOADED,
            remove=() if converted_from else ("converted_from",),
            content_type=content_type,
            **conversion,
            **upload_fields(upload),
        )
        return uploaded is not None

    def forget_upload(self, document_id: str, telnyx_document_id: str) -> LedgerEntry | None:
        """Telnyx deleted the document's unlinked upload: back to `received`, for a fresh upload
        (counted in `reuploads`, the upload's id kept in `expired_uploads`). Only while the ledger
        still names that upload and the document is open; returns the item as it now is, or None
        when a racing delivery already did this, or finished the document."""
        try:
            item = self._update(
                document_id,
                {},
                extra_set="#state = :received",
                extra_values={":received": str(State.RECEIVED)},
                remove=(_LEDGER_UPLOAD_NAMES["telnyx_document_id"], _LEDGER_UPLOAD_NAMES["uploaded_at"]),
                add={"reuploads": 1, "expired_uploads": {telnyx_document_id}},
                condition=(
                    f"({_NOT_TERMINAL[0]}) AND uploaded_document_id = :upload",
                    {**_NOT_TERMINAL[1], ":upload": telnyx_document_id},
                ),
            )
        except _Finished:
            return None
        return LedgerEntry.from_item(item)

    def mark_associated(
        self, document_id: str, telnyx_document_id: str, possible_duplicate: bool = False
    ) -> LedgerEntry | None:
        """The ended entry, its event in the outbox; None if it was associated already."""
        fields: dict[str, Any] = {"telnyx_document_id": telnyx_document_id}
        if possible_duplicate:
            fields["possible_duplicate"] = True
        return self._end(
            document_id,
            State.ASSOCIATED,
            remove=(*UNCONFIRMED_SEND_FIELDS, "reason", "possibly_attached"),
            condition=_NOT_ASSOCIATED,
            **fields,
        )

    def close(
        self,
        document_id: str,
        state: State,
        reason: str,
        target: Target | None = None,
        source: SourceObject | None = None,
        possibly_attached: bool = False,
    ) -> LedgerEntry | None:
        """Ends a document in a terminal state other than associated (rejected, superseded,
        withdrawn), with the reason a person reads; the ended entry, its event in the outbox, or
        None if it had already ended. `possibly_attached`: an earlier association attempt's
        outcome was never learnt."""
        assert state.is_terminal and state is not State.ASSOCIATED
        fields = _document_fields(target, source)
        if possibly_attached:
            fields["possibly_attached"] = True
        return self._end(document_id, state, reason=reason, **fields)

    def event_published(self, document_id: str, event_id: str) -> None:
        """Empties the outbox if it still holds this event. Not a change of the document, so
        updated_at stays as it was."""
        try:
            self._client.update_item(
                TableName=self._table_name,
                Key={"document_id": document_id},
                UpdateExpression="REMOVE event_pending",
                ConditionExpression="event_id = :event",
                ExpressionAttributeValues={":event": event_id},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise aws.translate(error, "writing the documents ledger") from None
        except BotoCoreError as error:
            raise aws.translate(error, "writing the documents ledger") from None

    def unpublished(self, before: str) -> Iterator[LedgerEntry]:
        """Terminal changes whose event is still in the outbox, written before `before`
        (an event's occurred_at): a worker died between the write and the publish."""
        request: dict[str, Any] = {
            "TableName": self._table_name,
            "IndexName": BY_PENDING_EVENT_INDEX,
            "KeyConditionExpression": "event_pending = :pending AND event_at < :before",
            "ExpressionAttributeValues": {":pending": EVENT_PENDING, ":before": before},
        }
        while True:
            try:
                page = self._client.query(**request)
            except (ClientError, BotoCoreError) as error:
                raise aws.translate(error, "querying the documents ledger") from None
            yield from (LedgerEntry.from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def mark_failed(
        self,
        document_id: str,
        error: str,
        target: Target | None = None,
        source: SourceObject | None = None,
    ) -> bool:
        """Not terminal: the message goes back to its queue (and, in the end, its DLQ)."""
        failed = self._transition(
            document_id, State.FAILED, last_error=error, **_document_fields(target, source)
        )
        return failed is not None

    def note_send(self, document_id: str, limit: UnconfirmedSendLimit) -> bool:
        """Recorded before every association POST: if the outcome is never learnt (a crash, an
        ambiguous answer), the next attempt knows a copy may already be on Telnyx. False, and
        nothing recorded, once `limit` is reached: an outage is ridden out, a Telnyx that records
        and then fails every time is not fed for ever (a conditional write, so concurrent
        deliveries cannot pass it either)."""
        now = time.time()
        try:
            self._update(
                document_id,
                {"send_unconfirmed": True},
                extra_set="first_unconfirmed_at = if_not_exists(first_unconfirmed_at, :first)",
                extra_values={":first": ledger_time(now)},
                add={"unconfirmed_sends": 1},
                condition=(
                    f"({_NOT_TERMINAL[0]}) AND (attribute_not_exists(unconfirmed_sends) "
                    "OR (unconfirmed_sends < :ceiling "
                    "AND (unconfirmed_sends < :limit OR first_unconfirmed_at > :span_start)))",
                    {
                        **_NOT_TERMINAL[1],
                        ":limit": limit.count,
                        ":ceiling": limit.ceiling,
                        ":span_start": ledger_time(now - limit.span_seconds),
                    },
                ),
            )
        except _Finished:
            if self.get(document_id).state.is_terminal:
                # A racing delivery finished it: its redelivery will see that and stop.
                raise TransientError("another delivery finished this document meanwhile") from None
            return False
        return True

    def clear_send(self, document_id: str) -> None:
        """The POST provably did not reach Telnyx (or Telnyx refused it): nothing to doubt."""
        with contextlib.suppress(_Finished):
            self._update(document_id, {}, remove=UNCONFIRMED_SEND_FIELDS)

    def find(self, document_id: str) -> LedgerEntry | None:
        item = self._item(document_id)
        return None if item is None else LedgerEntry.from_item(item)

    def get(self, document_id: str) -> LedgerEntry:
        entry = self.find(document_id)
        if entry is None:
            raise LookupError(document_id)
        return entry

    def _item(self, document_id: str) -> dict[str, Any] | None:
        """The whole item, as written (consistent read)."""
        try:
            found: dict[str, Any] | None = self._client.get_item(
                TableName=self._table_name, Key={"document_id": document_id}, ConsistentRead=True
            ).get("Item")
        except (ClientError, BotoCoreError) as error:
            raise aws.translate(error, "reading the documents ledger") from None
        return found

    def record_review(self, document_id: str, status: str, reason: str | None, at: str, by: str) -> bool:
        """Telnyx's review of an attached document, if it was read later than the one the ledger
        has; False for an older or repeated read, which changes nothing. `by`: the notification."""
        fields = {"review_status": status, "reviewed_at": at, "review_event": by}
        try:
            self._update(
                document_id,
                {**fields, **({"review_reason": reason} if reason else {})},
                remove=() if reason else ("review_reason",),
                condition=(
                    "attribute_exists(#state) AND (attribute_not_exists(reviewed_at) OR reviewed_at < :at)",
                    {":at": at},
                ),
            )
        except _Finished:
            return False
        return True

    def documents_of_porting_order(self, porting_order_id: str) -> list[LedgerEntry]:
        request: dict[str, Any] = {
            "TableName": self._table_name,
            "IndexName": BY_PORTING_ORDER_INDEX,
            "KeyConditionExpression": "porting_order_id = :order",
            "ExpressionAttributeValues": {":order": porting_order_id},
        }
        entries: list[LedgerEntry] = []
        try:
            while True:
                page = self._client.query(**request)
                entries.extend(LedgerEntry.from_item(item) for item in page["Items"])
                if "LastEvaluatedKey" not in page:
                    return entries
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as error:
            raise aws.translate(error, "querying the documents ledger") from None

    def open_since(self, before: float) -> list[str]:
        """Ids of the documents in an open state whose last change is older than `before` (epoch
        seconds), through the by-state index: the cost follows the open documents, not history."""
        ids: list[str] = []
        for state in OPEN_STATES:
            request: dict[str, Any] = {
                "TableName": self._table_name,
                "IndexName": BY_STATE_INDEX,
                "KeyConditionExpression": "#state = :state AND updated_at < :before",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": {":state": str(state), ":before": ledger_time(before)},
            }
            try:
                while True:
                    page = self._client.query(**request)
                    ids.extend(str(item["document_id"]) for item in page["Items"])
                    if "LastEvaluatedKey" not in page:
                        break
                    request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            except (ClientError, BotoCoreError) as error:
                raise aws.translate(error, "querying the documents ledger") from None
        return ids

    def note_sweep(self, document_id: str, seen_updated_at: str, before: float, limit: int) -> bool:
        """Claims one re-drive of a stuck document for the sweeper, in one conditional write: only
        if nothing changed it since it was read (`seen_updated_at`), it is still older than
        `before`, no association of it is in flight (`send_unconfirmed`), and it was swept fewer
        than `limit` times. The write restarts its clock: the next sweep gives the re-drive time."""
        try:
            self._update(
                document_id,
                {"swept_at": ledger_time(time.time())},
                add={"sweeps": 1},
                condition=(
                    f"({_NOT_TERMINAL[0]}) AND updated_at = :seen AND updated_at < :before "
                    "AND attribute_not_exists(send_unconfirmed) "
                    "AND (attribute_not_exists(sweeps) OR sweeps < :limit)",
                    {
                        **_NOT_TERMINAL[1],
                        ":seen": seen_updated_at,
                        ":before": ledger_time(before),
                        ":limit": limit,
                    },
                ),
            )
        except _Finished:
            return False
        return True

    def _transition(
        self,
        document_id: str,
        state: State,
        remove: tuple[str, ...] = (),
        condition: tuple[str, dict[str, Any]] = _NOT_TERMINAL,
        **fields: Any,
    ) -> LedgerEntry | None:
        """The entry as the change left it; None when a duplicate finished first: its terminal
        state stands."""
        try:
            item = self._update(
                document_id,
                fields,
                extra_set="#state = :state",
                extra_values={":state": str(state)},
                remove=remove,
                condition=condition,
            )
        except _Finished:
            return None
        return LedgerEntry.from_item(item)

    def _end(
        self,
        document_id: str,
        state: State,
        remove: tuple[str, ...] = (),
        condition: tuple[str, dict[str, Any]] = _NOT_TERMINAL,
        **fields: Any,
    ) -> LedgerEntry | None:
        """A terminal change and its event's outbox in one conditional write: a worker that dies
        right after it leaves the event for a duplicate delivery or the sweeper to publish."""
        outbox = {
            "event_id": uuid.uuid4().hex,
            "event_at": event_time(time.time()),
            "event_pending": EVENT_PENDING,
        }
        return self._transition(document_id, state, remove, condition, **fields, **outbox)

    def _update(
        self,
        document_id: str,
        fields: dict[str, Any],
        extra_set: str | None = None,
        extra_values: dict[str, Any] | None = None,
        remove: tuple[str, ...] = (),
        add: dict[str, Any] | None = None,
        condition: tuple[str, dict[str, Any]] = _NOT_TERMINAL,
    ) -> dict[str, Any]:
        """One conditional write that also keeps created_at, updated_at and expires_at; the item as
        it now is. Raises _Finished when `condition` fails (by default: the document had ended)."""
        now = time.time()
        condition_expression, condition_values = condition
        values: dict[str, Any] = {
            **condition_values,
            ":now": ledger_time(now),
            ":expires": int(now + RETENTION_SECONDS),
            **(extra_values or {}),
        }
        assignments = [
            *([extra_set] if extra_set else []),
            "created_at = if_not_exists(created_at, :now)",
            "updated_at = :now",
            "expires_at = :expires",
        ]
        expression, names = _update_expression(assignments, fields, remove, add or {}, values)
        try:
            item: dict[str, Any] = self._client.update_item(
                TableName=self._table_name,
                Key={"document_id": document_id},
                UpdateExpression=expression,
                ConditionExpression=condition_expression,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise _Finished from None
            raise aws.translate(error, "writing the documents ledger") from None
        except BotoCoreError as error:
            raise aws.translate(error, "writing the documents ledger") from None
        return item


def _update_expression(
    assignments: list[str],
    fields: dict[str, Any],
    remove: tuple[str, ...],
    counters: dict[str, Any],
    values: dict[str, Any],
) -> tuple[str, dict[str, str]]:
    """The SET ... REMOVE ... ADD ... expression and its attribute names; `values` gains the
    fields' and counters' values. Every name goes through a placeholder: some are reserved words."""
    names = {"#state": "state"}
    for index, (name, value) in enumerate(fields.items()):
        names[f"#f{index}"] = name
        values[f":f{index}"] = value
        assignments = [*assignments, f"#f{index} = :f{index}"]
    expression = "SET " + ", ".join(assignments)
    if remove:
        names.update({f"#r{index}": name for index, name in enumerate(remove)})
        expression += " REMOVE " + ", ".join(f"#r{index}" for index in range(len(remove)))
    if counters:
        names.update({f"#a{index}": name for index, name in enumerate(counters)})
        values.update({f":a{index}": amount for index, amount in enumerate(counters.values())})
        expression += " ADD " + ", ".join(f"#a{index} :a{index}" for index in range(len(counters)))
    return expression, names


class _Finished(Exception):
    """The document is already in a terminal state."""


def _document_fields(target: Target | None, source: SourceObject | None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if target:
        fields.update(target.as_message())
    if source:
        fields["source"] = source.as_message()
    return fields
