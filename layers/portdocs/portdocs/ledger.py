"""The documents ledger (DynamoDB): one item per document, its state and its history.

Terminal states (associated, rejected, superseded, withdrawn) are never overwritten: every write is conditional, so a
late or duplicate delivery cannot undo a finished document.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from portdocs import aws
from portdocs.documents import TERMINAL_STATES, SourceObject, State, Target, Upload
from portdocs.errors import TransientError

BY_PORT_REQUEST_INDEX = "by-draft-port-request"
BY_PORTING_ORDER_INDEX = "by-porting-order"
# Keys only, by state and last change: the sweeper reads the few open documents, never the history.
BY_STATE_INDEX = "by-state"
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
_UNCONFIRMED = ("send_unconfirmed", "unconfirmed_sends")
# A document left received or uploaded this long is not in flight any more (the queues' visibility
# timeouts are minutes): `portdocs retry` may put it through again.
STALE_AFTER_SECONDS = 3600


@dataclass(frozen=True)
class LedgerEntry:
    document_id: str
    state: State
    upload: Upload | None = None
    telnyx_document_id: str | None = None
    reason: str | None = None
    source: SourceObject | None = None
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

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> LedgerEntry:
        source = item.get("source")
        return cls(
            document_id=item["document_id"],
            state=State(item["state"]),
            upload=upload_of(item),
            telnyx_document_id=item.get("telnyx_document_id"),
            reason=item.get("reason"),
            source=SourceObject(**source) if source else None,
            send_unconfirmed=bool(item.get("send_unconfirmed")),
            version_pinned=bool(item.get("version_pinned")),
            possible_duplicate=bool(item.get("possible_duplicate")),
            possibly_attached=bool(item.get("possibly_attached")),
            reuploads=int(item.get("reuploads", 0)),
            reuploads_at_retry=int(item.get("reuploads_at_retry", 0)),
            expired_uploads=frozenset(item.get("expired_uploads", ())),
        )


# An upload's message fields (Upload.as_fields) as the ledger names them: its `telnyx_document_id`
# is the association's, so the upload's id is kept apart.
_LEDGER_UPLOAD_NAMES = {
    "url": "location_url",
    "telnyx_document_id": "uploaded_document_id",
    "uploaded_at": "uploaded_at",
}


def upload_of(item: dict[str, Any]) -> Upload | None:
    """Where the ledger says the document's file is on Telnyx, if it was uploaded."""
    return Upload.from_fields({field: item.get(name) for field, name in _LEDGER_UPLOAD_NAMES.items()})


def upload_fields(upload: Upload) -> dict[str, Any]:
    """An upload as the ledger stores it."""
    return {_LEDGER_UPLOAD_NAMES[field]: value for field, value in upload.as_fields().items()}


class Ledger:
    def __init__(self, table: Any) -> None:
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
                add_attempt=True,
            )
        except _Finished:
            return self.get(document_id)
        return LedgerEntry.from_item(item)

    def mark_uploaded(self, document_id: str, upload: Upload, content_type: str) -> bool:
        return self._transition(document_id, State.UPLOADED, content_type=content_type, **upload_fields(upload))

    def forget_upload(self, document_id: str, upload: Upload) -> dict[str, Any] | None:
        """Telnyx deleted the document's unlinked upload: back to `received`, for a fresh upload
        (counted in `reuploads`, the upload's id kept in `expired_uploads`). Only while the ledger
        still names that upload and the document is open; returns the item as it now is, or None
        when a racing delivery already did this, or finished the document."""
        try:
            return self._update(
                document_id,
                {},
                extra_set="#state = :received",
                extra_values={":received": str(State.RECEIVED)},
                remove=(_LEDGER_UPLOAD_NAMES["telnyx_document_id"], _LEDGER_UPLOAD_NAMES["uploaded_at"]),
                add={"reuploads": 1, "expired_uploads": {upload.telnyx_document_id}},
                condition=(
                    f"({_NOT_TERMINAL[0]}) AND uploaded_document_id = :upload",
                    {**_NOT_TERMINAL[1], ":upload": upload.telnyx_document_id},
                ),
            )
        except _Finished:
            return None

    def mark_associated(self, document_id: str, telnyx_document_id: str, possible_duplicate: bool = False) -> bool:
        fields: dict[str, Any] = {"telnyx_document_id": telnyx_document_id}
        if possible_duplicate:
            fields["possible_duplicate"] = True
        return self._transition(
            document_id,
            State.ASSOCIATED,
            remove=(*_UNCONFIRMED, "reason", "possibly_attached"),
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
    ) -> bool:
        """Ends a document in a terminal state other than associated (rejected, superseded,
        withdrawn), with the reason a person reads; False if it had already ended.
        `possibly_attached`: an earlier association attempt's outcome was never learnt."""
        assert state.is_terminal and state is not State.ASSOCIATED
        fields = _document_fields(target, source)
        if possibly_attached:
            fields["possibly_attached"] = True
        return self._transition(document_id, state, reason=reason, **fields)

    def mark_failed(
        self,
        document_id: str,
        error: str,
        target: Target | None = None,
        source: SourceObject | None = None,
    ) -> bool:
        """Not terminal: the message goes back to its queue (and, in the end, its DLQ)."""
        return self._transition(document_id, State.FAILED, last_error=error, **_document_fields(target, source))

    def note_send(self, document_id: str, limit: int) -> bool:
        """Recorded before every association POST: if the outcome is never learnt (a crash, an
        ambiguous answer), the next attempt knows a copy may already be on Telnyx. False, and
        nothing recorded, once `limit` POSTs have gone without a known outcome (a conditional
        write, so concurrent deliveries cannot exceed it either)."""
        try:
            self._update(
                document_id,
                {"send_unconfirmed": True},
                add={"unconfirmed_sends": 1},
                condition=(
                    f"({_NOT_TERMINAL[0]}) AND (attribute_not_exists(unconfirmed_sends) OR unconfirmed_sends < :limit)",
                    {**_NOT_TERMINAL[1], ":limit": limit},
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
            self._update(document_id, {}, remove=_UNCONFIRMED)

    def reopen(self, document_id: str, from_states: tuple[State, ...]) -> bool:
        """Puts a document back to `received` for a deliberate retry, only from one of
        `from_states` or from `received`/`uploaded` left untouched for STALE_AFTER_SECONDS (a
        worker killed mid-step, its message expired): a second retry, or a retry of a document
        that has since been associated, changes nothing and returns False. A retried document
        keeps its version even if a newer one exists: the person asked for this one; and a
        person who retries after unknown association outcomes has checked Telnyx."""
        now = time.time()
        values = {f":from{i}": str(state) for i, state in enumerate(from_states)}
        try:
            self._client.update_item(
                TableName=self._table_name,
                Key={"document_id": document_id},
                UpdateExpression="SET #state = :received, updated_at = :now, retried_at = :now, "
                "version_pinned = :true, reuploads_at_retry = if_not_exists(reuploads, :zero) "
                "REMOVE #reason, #last_error, send_unconfirmed, unconfirmed_sends ADD retries :one",
                ConditionExpression=f"#state IN ({', '.join(values)}) "
                "OR (#state IN (:received, :uploaded) AND updated_at < :stale)",
                ExpressionAttributeNames={"#state": "state", "#reason": "reason", "#last_error": "last_error"},
                ExpressionAttributeValues={
                    ":received": str(State.RECEIVED),
                    ":uploaded": str(State.UPLOADED),
                    ":now": iso_time(now),
                    ":stale": iso_time(now - STALE_AFTER_SECONDS),
                    ":one": 1,
                    ":zero": 0,
                    ":true": True,
                    **values,
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise aws.translate(error, "writing the documents ledger") from None
        except BotoCoreError as error:
            raise aws.translate(error, "writing the documents ledger") from None
        return True

    def find(self, document_id: str) -> LedgerEntry | None:
        try:
            return self.get(document_id)
        except LookupError:
            return None

    def get(self, document_id: str) -> LedgerEntry:
        item = self.item(document_id)
        if item is None:
            raise LookupError(document_id)
        return LedgerEntry.from_item(item)

    def item(self, document_id: str) -> dict[str, Any] | None:
        """The whole item, as written (consistent read)."""
        try:
            found: dict[str, Any] | None = self._client.get_item(
                TableName=self._table_name, Key={"document_id": document_id}, ConsistentRead=True
            ).get("Item")
        except (ClientError, BotoCoreError) as error:
            raise aws.translate(error, "reading the documents ledger") from None
        return found

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
                "ExpressionAttributeValues": {":state": str(state), ":before": iso_time(before)},
            }
            try:
                while True:
                    page = self._client.query(**request)
                    ids.extend(item["document_id"] for item in page["Items"])
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
                {"swept_at": iso_time(time.time())},
                add={"sweeps": 1},
                condition=(
                    f"({_NOT_TERMINAL[0]}) AND updated_at = :seen AND updated_at < :before "
                    "AND attribute_not_exists(send_unconfirmed) "
                    "AND (attribute_not_exists(sweeps) OR sweeps < :limit)",
                    {**_NOT_TERMINAL[1], ":seen": seen_updated_at, ":before": iso_time(before), ":limit": limit},
                ),
            )
        except _Finished:
            return False
        return True

    def documents(
        self, draft_port_request_id: str | None = None, porting_order_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Every item, or those of one draft port request or porting order (through its index)."""
        indexed = [
            (index, name, value)
            for index, name, value in (
                (BY_PORT_REQUEST_INDEX, "draft_port_request_id", draft_port_request_id),
                (BY_PORTING_ORDER_INDEX, "porting_order_id", porting_order_id),
            )
            if value
        ]
        if indexed:
            index, name, value = indexed[0]
            read, request = (
                self._client.query,
                {
                    "TableName": self._table_name,
                    "IndexName": index,
                    "KeyConditionExpression": f"{name} = :id",
                    "ExpressionAttributeValues": {":id": value},
                },
            )
        else:
            read, request = self._client.scan, {"TableName": self._table_name}
        items: list[dict[str, Any]] = []
        while True:
            page = read(**request)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _transition(
        self,
        document_id: str,
        state: State,
        remove: tuple[str, ...] = (),
        condition: tuple[str, dict[str, Any]] = _NOT_TERMINAL,
        **fields: Any,
    ) -> bool:
        """False when a duplicate finished first: its terminal state stands."""
        try:
            self._update(
                document_id,
                fields,
                extra_set="#state = :state",
                extra_values={":state": str(state)},
                remove=remove,
                condition=condition,
            )
        except _Finished:
            return False
        return True

    def _update(
        self,
        document_id: str,
        fields: dict[str, Any],
        extra_set: str | None = None,
        extra_values: dict[str, Any] | None = None,
        add_attempt: bool = False,
        remove: tuple[str, ...] = (),
        add: dict[str, Any] | None = None,
        condition: tuple[str, dict[str, Any]] = _NOT_TERMINAL,
    ) -> dict[str, Any]:
        now = time.time()
        names = {"#state": "state"}
        condition_expression, condition_values = condition
        values: dict[str, Any] = {
            **condition_values,
            ":now": iso_time(now),
            ":expires": int(now + RETENTION_SECONDS),
            **(extra_values or {}),
        }
        assignments = [
            *([extra_set] if extra_set else []),
            "created_at = if_not_exists(created_at, :now)",
            "updated_at = :now",
            "expires_at = :expires",
        ]
        for index, (name, value) in enumerate(fields.items()):
            names[f"#f{index}"] = name
            values[f":f{index}"] = value
            assignments.append(f"#f{index} = :f{index}")
        expression = "SET " + ", ".join(assignments)
        if remove:
            names.update({f"#r{index}": name for index, name in enumerate(remove)})
            expression += " REMOVE " + ", ".join(f"#r{index}" for index in range(len(remove)))
        counters = {**({"attempts": 1} if add_attempt else {}), **(add or {})}
        if counters:
            names.update({f"#a{index}": name for index, name in enumerate(counters)})
            values.update({f":a{index}": amount for index, amount in enumerate(counters.values())})
            expression += " ADD " + ", ".join(f"#a{index} :a{index}" for index in range(len(counters)))
        try:
            return self._client.update_item(
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


class _Finished(Exception):
    """The document is already in a terminal state."""


def iso_time(epoch_seconds: float) -> str:
    """The ledger's timestamps (updated_at, …): ISO 8601 in UTC, to the second, so they sort."""
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="seconds")


def _document_fields(target: Target | None, source: SourceObject | None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if target:
        fields.update(target.as_message())
    if source:
        fields["source"] = source.as_message()
    return fields
