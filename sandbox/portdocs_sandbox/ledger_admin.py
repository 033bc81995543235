"""The CLI's reads and writes of the documents ledger and the porting orders table, which no Lambda
makes and the layer does not ship: listings (one target's index, or a full-table scan) and a
person's retry (reopen)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from portdocs import aws
from portdocs.documents import State
from portdocs.ledger import BY_PORTING_ORDER_INDEX, UNCONFIRMED_SEND_FIELDS, LedgerEntry, ledger_time
from portdocs.orders import RECORD_TYPE, OrderRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

BY_PORT_REQUEST_INDEX = "by-draft-port-request"
# A document left received or uploaded this long is not in flight any more (the queues' visibility
# timeouts are minutes): `portdocs retry` may put it through again.
STALE_AFTER_SECONDS = 3600


def ledger_rows(
    table: Table, draft_port_request_id: str | None = None, porting_order_id: str | None = None
) -> list[dict[str, Any]]:
    """Every item as plain JSON values, oldest first, or those of one draft port request or
    porting order (through its index): what `portdocs status --json` prints, attribute for
    attribute."""
    request: dict[str, Any] = {"TableName": table.name}
    read: Callable[..., Any] = table.meta.client.scan
    for index, name, value in (
        (BY_PORT_REQUEST_INDEX, "draft_port_request_id", draft_port_request_id),
        (BY_PORTING_ORDER_INDEX, "porting_order_id", porting_order_id),
    ):
        if value:
            read = table.meta.client.query
            request.update(IndexName=index, KeyConditionExpression=f"{name} = :id")
            request["ExpressionAttributeValues"] = {":id": value}
            break
    return sorted(_every_item(read, request), key=lambda item: item.get("created_at", ""))


def entries(
    table: Table, draft_port_request_id: str | None = None, porting_order_id: str | None = None
) -> list[LedgerEntry]:
    """The same documents, as the code reads them."""
    return [LedgerEntry.from_item(row) for row in ledger_rows(table, draft_port_request_id, porting_order_id)]


def entry(table: Table, document_id: str) -> LedgerEntry | None:
    """One document as the ledger holds it (consistent read). Errors are botocore's own, for the
    CLI to name the endpoint it could not reach."""
    item = table.get_item(Key={"document_id": document_id}, ConsistentRead=True).get("Item")
    return None if item is None else LedgerEntry.from_item(dict(item))


def porting_order_rows(table: Table) -> list[dict[str, Any]]:
    """Every porting order of the orders table (not its event ids seen, not the poll cursor), as
    plain JSON values, the first seen first."""
    request: dict[str, Any] = {
        "TableName": table.name,
        "FilterExpression": "record_type = :order",
        "ExpressionAttributeValues": {":order": RECORD_TYPE},
    }
    rows = _every_item(table.meta.client.scan, request)
    return sorted(rows, key=lambda row: (row.get("first_seen_at", ""), row["porting_order_id"]))


def porting_orders(table: Table) -> list[OrderRecord]:
    """The same orders, as the code reads them."""
    return [OrderRecord.from_item(row) for row in porting_order_rows(table)]


def _every_item(read: Callable[..., Any], request: dict[str, Any]) -> list[dict[str, Any]]:
    """Every item of a scan or query, page after page, as plain values."""
    items: list[dict[str, Any]] = []
    while True:
        page = read(**request)
        items.extend(_plain(item) for item in page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """JSON values: numbers as int, string sets (expired_uploads, split_numbers) as sorted lists."""
    plain: dict[str, Any] = json.loads(json.dumps(item, default=_plain_value))
    return plain


def _plain_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


# What a retry forgets besides the reason: the doubts about earlier association POSTs (the person
# has checked Telnyx) and an event still in the outbox (the document is open again; its next
# terminal change has an event of its own).
RETRY_FORGETS = (*UNCONFIRMED_SEND_FIELDS, "event_pending")


def reopen(table: Table, document_id: str, from_states: tuple[State, ...]) -> bool:
    """Puts a document back to `received` for a deliberate retry, only from one of
    `from_states` or from `received`/`uploaded` left untouched for STALE_AFTER_SECONDS (a
    worker killed mid-step, its message expired): a second retry, or a retry of a document
    that has since been associated, changes nothing and returns False. A retried document
    keeps its version even if a newer one exists: the person asked for this one; and a
    person who retries after unknown association outcomes has checked Telnyx."""
    now = time.time()
    values = {f":from{i}": str(state) for i, state in enumerate(from_states)}
    try:
        table.meta.client.update_item(
            TableName=table.name,
            Key={"document_id": document_id},
            UpdateExpression="SET #state = :received, updated_at = :now, retried_at = :now, "
            "version_pinned = :true, reuploads_at_retry = if_not_exists(reuploads, :zero) "
            f"REMOVE #reason, #last_error, {', '.join(RETRY_FORGETS)} ADD retries :one",
            ConditionExpression=f"#state IN ({', '.join(values)}) "
            "OR (#state IN (:received, :uploaded) AND updated_at < :stale)",
            ExpressionAttributeNames={"#state": "state", "#reason": "reason", "#last_error": "last_error"},
            ExpressionAttributeValues={
                ":received": str(State.RECEIVED),
                ":uploaded": str(State.UPLOADED),
                ":now": ledger_time(now),
                ":stale": ledger_time(now - STALE_AFTER_SECONDS),
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
