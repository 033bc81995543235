"""The documents ledger (DynamoDB): one item per document, its state and its history.

Terminal states (associated, rejected) are never overwritten: every write is conditional, so a
late or duplicate delivery cannot undo a finished document.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import BotoCoreError, ClientError

from portdocs import aws
from portdocs.documents import DraftTarget, SourceObject, State

BY_PORT_REQUEST_INDEX = "by-draft-port-request"
RETENTION_SECONDS = 180 * 24 * 3600
_NOT_TERMINAL = "attribute_not_exists(#state) OR NOT (#state IN (:associated, :rejected))"


@dataclass(frozen=True)
class LedgerEntry:
    document_id: str
    state: State
    location_url: str | None = None
    telnyx_document_id: str | None = None
    reason: str | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> LedgerEntry:
        return cls(
            document_id=item["document_id"],
            state=State(item["state"]),
            location_url=item.get("location_url"),
            telnyx_document_id=item.get("telnyx_document_id"),
            reason=item.get("reason"),
        )


class Ledger:
    def __init__(self, table: Any) -> None:
        self._table = table

    def open(
        self,
        document_id: str,
        target: DraftTarget | None = None,
        source: SourceObject | None = None,
        description: str | None = None,
    ) -> LedgerEntry:
        """Records an attempt on a document and returns where it stands.

        A document already in a terminal state is returned untouched: the caller has a duplicate.
        """
        fields = _document_fields(target, source)
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

    def mark_uploaded(self, document_id: str, location_url: str, content_type: str) -> None:
        self._transition(document_id, State.UPLOADED, location_url=location_url, content_type=content_type)

    def mark_associated(self, document_id: str, telnyx_document_id: str) -> None:
        self._transition(document_id, State.ASSOCIATED, telnyx_document_id=telnyx_document_id)

    def mark_rejected(
        self,
        document_id: str,
        reason: str,
        target: DraftTarget | None = None,
        source: SourceObject | None = None,
    ) -> None:
        self._transition(document_id, State.REJECTED, reason=reason, **_document_fields(target, source))

    def mark_failed(
        self,
        document_id: str,
        error: str,
        target: DraftTarget | None = None,
        source: SourceObject | None = None,
    ) -> None:
        """Not terminal: the message goes back to its queue (and, in the end, its DLQ)."""
        self._transition(document_id, State.FAILED, last_error=error, **_document_fields(target, source))

    def get(self, document_id: str) -> LedgerEntry:
        try:
            item = self._table.get_item(Key={"document_id": document_id}, ConsistentRead=True).get("Item")
        except (ClientError, BotoCoreError) as error:
            raise aws.translate(error, "reading the documents ledger") from None
        if item is None:
            raise LookupError(document_id)
        return LedgerEntry.from_item(item)

    def documents(self, draft_port_request_id: str | None = None) -> list[dict[str, Any]]:
        """Every item, or those of one draft port request (through its index)."""
        if draft_port_request_id:
            read, request = (
                self._table.query,
                {
                    "IndexName": BY_PORT_REQUEST_INDEX,
                    "KeyConditionExpression": Key("draft_port_request_id").eq(draft_port_request_id),
                },
            )
        else:
            read, request = self._table.scan, {}
        items: list[dict[str, Any]] = []
        while True:
            page = read(**request)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _transition(self, document_id: str, state: State, **fields: Any) -> None:
        with contextlib.suppress(_Finished):  # a duplicate finished first; its terminal state stands
            self._update(document_id, fields, extra_set="#state = :state", extra_values={":state": str(state)})

    def _update(
        self,
        document_id: str,
        fields: dict[str, Any],
        extra_set: str,
        extra_values: dict[str, Any],
        add_attempt: bool = False,
    ) -> dict[str, Any]:
        now = time.time()
        names = {"#state": "state"}
        values: dict[str, Any] = {
            ":associated": str(State.ASSOCIATED),
            ":rejected": str(State.REJECTED),
            ":now": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
            ":expires": int(now + RETENTION_SECONDS),
            **extra_values,
        }
        assignments = [
            extra_set,
            "created_at = if_not_exists(created_at, :now)",
            "updated_at = :now",
            "expires_at = :expires",
        ]
        for index, (name, value) in enumerate(fields.items()):
            names[f"#f{index}"] = name
            values[f":f{index}"] = value
            assignments.append(f"#f{index} = :f{index}")
        expression = "SET " + ", ".join(assignments)
        if add_attempt:
            expression += " ADD attempts :one"
            values[":one"] = 1
        try:
            return self._table.update_item(
                Key={"document_id": document_id},
                UpdateExpression=expression,
                ConditionExpression=_NOT_TERMINAL,
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


def _document_fields(target: DraftTarget | None, source: SourceObject | None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if target:
        fields["draft_port_request_id"] = target.draft_port_request_id
        fields["draft_sub_request_id"] = target.draft_sub_request_id
        fields["document_type"] = str(target.document_type)
    if source:
        fields["source"] = source.as_message()
    return fields
