"""The porting orders table (DynamoDB): one item per porting order portdocs follows, with what
Telnyx last said about it, and the bookkeeping of following (event ids seen, the poll cursor).

Every fact is written by one conditional update that holds only if the fact is newer than the one
the item has (each kind of fact has its own time attribute): a duplicate, late or out-of-order
notification changes nothing, whichever channel (webhook or poll) brought it first.

Each write also records which notification made it (`status_event`, `comment_event`,
`split_event`) and, for a status, the one it replaced. A delivery of that same notification that
finds its fact already written was preceded by a worker that died before it could announce the
change: the write is answered as if it had just been made, so the change is announced again (at
least once; the events' ids stay the same).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from portdocs import aws
from portdocs.documents import DocumentType, PortingOrderTarget, State
from portdocs.ledger import LedgerEntry
from portdocs.porting_status import (
    FINAL_STATUSES,
    STAFF_USER_TYPE,
    Comment,
    Detail,
    OrderStatus,
    Requirements,
    ReviewStatus,
    Split,
    StatusChange,
)
from portdocs.timestamps import utc_iso

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RECORD_TYPE = "porting_order"
# A sparse index of the orders still worth polling, least recently polled first.
FOLLOWING_INDEX = "by-following"
FOLLOWING = "yes"
CURSOR_KEY = "#cursor/porting-events"
NEVER_POLLED = "1970-01-01T00:00:00.000Z"
# Event ids are kept long past any redelivery (Telnyx retries for hours, the queue keeps 4 days,
# its dead-letter queue 14): a duplicate later than this is still harmless, as every write is
# ordered by time; the id only saves the work.
SEEN_FOR_SECONDS = 30 * 24 * 3600
_FINAL = {f":final{i}": str(status) for i, status in enumerate(sorted(FINAL_STATUSES))}
_NOT_FINAL = f"attribute_not_exists(status_value) OR NOT (status_value IN ({', '.join(_FINAL)}))"


@dataclass(frozen=True)
class OrderRecord:
    """A porting order as portdocs knows it; absent facts are None (never heard of)."""

    porting_order_id: str
    status: str | None = None
    details: tuple[Detail, ...] = ()
    status_at: str | None = None
    customer_reference: str | None = None
    support_key: str | None = None
    requirements_met: bool | None = None
    unmet_requirements: tuple[str, ...] = ()
    comment: str | None = None
    comment_by: str | None = None
    comment_at: str | None = None
    split_from: str | None = None
    split_numbers: tuple[str, ...] = ()
    split_into: tuple[str, ...] = ()
    # portdocs attached a document to it (or to the order it was split from), and it has not ended.
    following: bool = False
    # The notification that wrote its status, its comment, and that first split it off.
    status_event: str | None = None
    comment_event: str | None = None
    split_event: str | None = None
    first_seen_at: str = ""
    updated_at: str = ""

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> OrderRecord:
        return cls(
            porting_order_id=str(item["porting_order_id"]),
            status=item.get("status_value"),
            details=tuple(
                Detail(str(d["code"]), str(d["description"])) for d in item.get("status_details", ())
            ),
            status_at=item.get("status_at"),
            customer_reference=item.get("customer_reference"),
            support_key=item.get("support_key"),
            requirements_met=item.get("requirements_met"),
            unmet_requirements=tuple(item.get("unmet_requirements", ())),
            comment=item.get("comment_body"),
            comment_by=item.get("comment_user_type"),
            comment_at=item.get("comment_at"),
            split_from=item.get("split_from"),
            split_numbers=tuple(sorted(item.get("split_numbers", ()))),
            split_into=tuple(sorted(item.get("split_into", ()))),
            following=item.get("following") == FOLLOWING,
            status_event=item.get("status_event"),
            comment_event=item.get("comment_event"),
            split_event=item.get("split_event"),
            first_seen_at=str(item.get("first_seen_at", "")),
            updated_at=str(item.get("updated_at", "")),
        )


class Orders:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        # The client, not a resource: records run side by side on threads (see portdocs.ledger).
        self._client = client
        self._table = table_name

    # -- following -------------------------------------------------------------------------------

    def follow(self, porting_order_id: str) -> None:
        """Starts following an order (a document of it was attached), unless it has ended."""
        self._write(porting_order_id, {"following": FOLLOWING}, condition=(_NOT_FINAL, dict(_FINAL)))

    def following(self, limit: int) -> list[str]:
        """Orders still worth polling, the least recently polled first."""
        try:
            page = self._client.query(
                TableName=self._table,
                IndexName=FOLLOWING_INDEX,
                KeyConditionExpression="following = :yes",
                ExpressionAttributeValues={":yes": {"S": FOLLOWING}},
                Limit=limit,
            )
        except (ClientError, BotoCoreError) as error:
            raise aws.translate(error, "querying the porting orders table") from None
        return [item["porting_order_id"]["S"] for item in page["Items"]]

    def unfollow(self, porting_order_id: str) -> None:
        self._write(
            porting_order_id, {}, remove=("following",), condition=("attribute_exists(porting_order_id)", {})
        )

    def polled(self, porting_order_id: str, at: str) -> None:
        self._write(porting_order_id, {"polled_at": at}, condition=("attribute_exists(porting_order_id)", {}))

    # -- facts -------------------------------------------------------------------------------------

    def apply_status(self, change: StatusChange, by: str) -> OrderRecord | None:
        """The order as it was before, if `change` is newer than its status (or was written by this
        very notification `by`, whose announcement may not have been made); None if not."""
        fields: dict[str, Any] = {
            "status_value": str(change.value),
            "status_details": [d.as_dict() for d in change.details],
            "status_at": change.at,
            "status_event": by,
        }
        fields.update(
            {
                name: value
                for name, value in (
                    ("customer_reference", change.customer_reference),
                    ("support_key", change.support_key),
                )
                if value
            }
        )
        # An ended order is no longer polled; only an attachment (follow) starts the polling, so an
        # order of the account portdocs never attached to is recorded, never polled.
        final = change.value in FINAL_STATUSES
        before = self._newer(
            change.porting_order_id,
            "status_at",
            change.at,
            fields,
            remove=("following",) if final else (),
            replaced=(
                "status_previous = if_not_exists(status_value, :none)",
                "details_previous = if_not_exists(status_details, :no_details)",
            ),
        )
        if before is None:
            return self._made_by(change.porting_order_id, "status_event", by, _as_before_its_status)
        return before

    def apply_comment(self, comment: Comment, by: str) -> OrderRecord | None:
        before = self._newer(
            comment.porting_order_id,
            "comment_at",
            comment.at,
            {
                "comment_body": comment.body,
                "comment_user_type": comment.user_type,
                "comment_id": comment.comment_id,
                "comment_at": comment.at,
                "comment_event": by,
            },
        )
        if before is None:
            return self._made_by(comment.porting_order_id, "comment_event", by, OrderRecord.from_item)
        return before

    def apply_requirements(self, requirements: Requirements) -> OrderRecord | None:
        return self._newer(
            requirements.porting_order_id,
            "requirements_at",
            requirements.at,
            {
                "requirements_met": requirements.met,
                "unmet_requirements": list(requirements.unmet),
                "requirements_at": requirements.at,
            },
        )

    def apply_split(self, split: Split, follow_part: bool, by: str) -> tuple[bool, bool]:
        """Records both sides of a split: (the part is new, a number is new). Telnyx announces a
        split once per number moved, so a part gathers its numbers over several notifications.
        An order portdocs never saw is recorded all the same; the part of a followed order is
        followed too (`follow_part`)."""
        numbers = set(split.phone_numbers)
        # No condition per number (DynamoDB caps an expression at 4 KB, a split may move hundreds):
        # the numbers are added, and the item as it was tells which were new.
        before = self._write(
            split.to_order,
            {"split_from": split.from_order, **({"following": FOLLOWING} if follow_part else {})},
            add={"split_numbers": numbers} if numbers else None,
            condition=("attribute_not_exists(split_from) OR split_from = :from", {":from": split.from_order}),
            replaced=("split_event = if_not_exists(split_event, :by)",),
            replaced_values={":by": by},
        )
        self._write(
            split.from_order,
            {},
            add={"split_into": {split.to_order}},
            condition=(
                "attribute_not_exists(split_into) OR NOT contains(split_into, :part)",
                {":part": split.to_order},
            ),
        )
        if before is None:  # a part already split from another order: Telnyx's word stands
            return False, False
        # A new part, or one this very notification made (its announcement may not have been made).
        new_part = before.split_from is None or before.split_event == by
        return new_part, bool(numbers - set(before.split_numbers))

    def get(self, porting_order_id: str) -> OrderRecord | None:
        item = self._item(porting_order_id)
        return OrderRecord.from_item(_plain(item)) if item and "record_type" in item else None

    # -- bookkeeping -------------------------------------------------------------------------------

    def seen(self, event_id: str) -> bool:
        return self._item(f"event#{event_id}") is not None

    def mark_seen(self, event_id: str) -> None:
        """Written after the event's facts: a worker that dies before this leaves the event to be
        done again, and its facts, written already, change nothing the second time."""
        expires = int(time.time() + SEEN_FOR_SECONDS)
        try:
            self._client.put_item(
                TableName=self._table,
                Item={"porting_order_id": {"S": f"event#{event_id}"}, "expires_at": {"N": str(expires)}},
            )
        except (ClientError, BotoCoreError) as error:
            raise aws.translate(error, "writing the porting orders table") from None

    def cursor(self) -> str | None:
        item = self._item(CURSOR_KEY)
        return item["created_at_gte"]["S"] if item else None

    def move_cursor(self, created_at_gte: str) -> None:
        """Never backwards: two overlapping polls leave the later of their cursors."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"porting_order_id": {"S": CURSOR_KEY}},
                UpdateExpression="SET created_at_gte = :at",
                ConditionExpression="attribute_not_exists(created_at_gte) OR created_at_gte < :at",
                ExpressionAttributeValues={":at": {"S": created_at_gte}},
            )
        except ClientError as error:
            if _condition_failed(error):
                return
            raise aws.translate(error, "writing the porting orders table") from None
        except BotoCoreError as error:
            raise aws.translate(error, "writing the porting orders table") from None

    # -- reads and writes ----------------------------------------------------------------------------

    def _item(self, key: str) -> dict[str, Any] | None:
        """One item as DynamoDB types it (consistent read): an order, an event seen, the cursor."""
        try:
            item: dict[str, Any] | None = self._client.get_item(
                TableName=self._table, Key={"porting_order_id": {"S": key}}, ConsistentRead=True
            ).get("Item")
        except (ClientError, BotoCoreError) as error:
            raise aws.translate(error, "reading the porting orders table") from None
        return item

    def _newer(
        self,
        porting_order_id: str,
        time_attribute: str,
        at: str,
        fields: dict[str, Any],
        remove: tuple[str, ...] = (),
        replaced: tuple[str, ...] = (),
    ) -> OrderRecord | None:
        return self._write(
            porting_order_id,
            fields,
            remove=remove,
            condition=(f"attribute_not_exists({time_attribute}) OR {time_attribute} < :at", {":at": at}),
            replaced=replaced,
            replaced_values={":none": "", ":no_details": []} if replaced else None,
        )

    def _made_by(
        self,
        porting_order_id: str,
        event_attribute: str,
        by: str,
        before: Callable[[dict[str, Any]], OrderRecord],
    ) -> OrderRecord | None:
        """After a write that did not hold: the order as it was before, if notification `by` made
        the change already (a delivery that died before announcing it); None if another did."""
        item = self._item(porting_order_id)
        plain = _plain(item) if item else {}
        return before(plain) if plain.get(event_attribute) == by else None

    def _write(
        self,
        porting_order_id: str,
        fields: dict[str, Any],
        condition: tuple[str, dict[str, Any]],
        remove: tuple[str, ...] = (),
        add: dict[str, set[str]] | None = None,
        replaced: tuple[str, ...] = (),
        replaced_values: dict[str, Any] | None = None,
    ) -> OrderRecord | None:
        """One conditional write that keeps record_type, first_seen_at and updated_at; the order as
        it was before (an empty record if it is new), or None when `condition` does not hold.
        `replaced`: assignments that keep what the write replaces (read before the write)."""
        values = {
            ":rt": RECORD_TYPE,
            ":now": utc_iso(time.time(), timespec="milliseconds"),
            **condition[1],
            **(replaced_values or {}),
        }
        expression, names = _update_expression(fields, remove, add or {}, values, replaced)
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"porting_order_id": {"S": porting_order_id}},
            "UpdateExpression": expression,
            "ConditionExpression": condition[0],
            "ExpressionAttributeValues": _typed(values),
            "ReturnValues": "ALL_OLD",
        }
        if names:  # DynamoDB refuses an empty map
            request["ExpressionAttributeNames"] = names
        try:
            old = self._client.update_item(**request).get("Attributes")
        except ClientError as error:
            if _condition_failed(error):
                return None
            raise aws.translate(error, "writing the porting orders table") from None
        except BotoCoreError as error:
            raise aws.translate(error, "writing the porting orders table") from None
        return OrderRecord.from_item({"porting_order_id": porting_order_id, **_plain(old or {})})


def _update_expression(
    fields: dict[str, Any],
    remove: tuple[str, ...],
    add: dict[str, set[str]],
    values: dict[str, Any],
    replaced: tuple[str, ...] = (),
) -> tuple[str, dict[str, str]]:
    """SET (the bookkeeping and `fields`) REMOVE ... ADD ..., and its attribute names; `values`
    gains the fields' and the sets' values. Names go through placeholders: some are reserved."""
    names: dict[str, str] = {}
    assignments = [
        "record_type = :rt",
        "first_seen_at = if_not_exists(first_seen_at, :now)",
        "updated_at = :now",
        *replaced,
    ]
    for index, (name, value) in enumerate(fields.items()):
        names[f"#f{index}"], values[f":f{index}"] = name, value
        assignments.append(f"#f{index} = :f{index}")
    if fields.get("following"):
        # The index's sort key: an order never polled sorts first.
        assignments.append("polled_at = if_not_exists(polled_at, :never)")
        values[":never"] = NEVER_POLLED
    expression = "SET " + ", ".join(assignments)
    if remove:
        expression += " REMOVE " + ", ".join(remove)
    for index, (name, members) in enumerate(add.items()):
        names[f"#a{index}"], values[f":a{index}"] = name, members
    if add:
        expression += " ADD " + ", ".join(f"#a{index} :a{index}" for index in range(len(add)))
    return expression, names


def _as_before_its_status(item: dict[str, Any]) -> OrderRecord:
    """The order as it was before the status its item holds (status_previous, details_previous)."""
    record = OrderRecord.from_item(item)
    details = tuple(Detail(str(d["code"]), str(d["description"])) for d in item.get("details_previous", ()))
    return replace(record, status=item.get("status_previous") or None, details=details)


def _condition_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _typed(values: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    return {name: serializer.serialize(value) for name, value in values.items()}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {name: deserializer.deserialize(value) for name, value in item.items()}


def current_documents(entries: list[LedgerEntry]) -> list[LedgerEntry]:
    """The documents an order holds now: of its LOA and its invoice only the latest attached (a
    corrected one replaces the one before); every attached additional document."""
    attached = sorted(
        (e for e in entries if e.state == State.ASSOCIATED and isinstance(e.target, PortingOrderTarget)),
        key=lambda e: e.created_at,
    )
    latest: dict[object, LedgerEntry] = {}
    for entry in attached:
        assert isinstance(entry.target, PortingOrderTarget)
        one_of_a_kind = entry.target.is_order_document
        latest[entry.target.document_type if one_of_a_kind else entry.document_id] = entry
    return list(latest.values())


def document_type_of(entry: LedgerEntry) -> DocumentType | None:
    return entry.target.document_type if isinstance(entry.target, PortingOrderTarget) else None


def needs_action(order: OrderRecord, documents: list[LedgerEntry]) -> bool:
    """Whether a person has to do something about `order` (docs/orders.md, "Needs action"): it is
    not ported or cancelled, and it is in exception, or Telnyx denied one of its current documents
    (of `documents`, its ledger entries), or Telnyx's staff commented after its last status change."""
    if order.status in FINAL_STATUSES:
        return False
    denied = any(entry.review_status == ReviewStatus.DENIED for entry in current_documents(documents))
    return order.status == OrderStatus.EXCEPTION or denied or _staff_commented_since_status(order)


def _staff_commented_since_status(order: OrderRecord) -> bool:
    # Both times are Telnyx's, written by portdocs.porting_status.moment: as strings they sort as moments.
    if order.comment_by != STAFF_USER_TYPE or order.comment_at is None:
        return False
    return order.status_at is None or order.comment_at > order.status_at
