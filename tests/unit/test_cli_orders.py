"""`portdocs orders`: one row per porting order the stack follows, read from the tables made from
template.yaml (moto, in-process), written by the same adapters the tracker uses."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws
from rich.console import Console

from portdocs.documents import DocumentType, PortingOrderTarget, SourceObject, State
from portdocs.ledger import Ledger, LedgerEntry
from portdocs.order_events import NEEDS_ACTION, SPLIT, STATUS_CHANGED, detail_of
from portdocs.orders import OrderRecord, Orders, needs_action
from portdocs.porting_status import Comment, Detail, PortingEvent, Requirements, Split, StatusChange, moment
from portdocs.timestamps import utc_iso
from portdocs_sandbox import cli
from portdocs_sandbox.stack import Stack, provision

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

EXCEPTION_ORDER = "11111111-1111-4111-8111-111111111111"
DENIED_ORDER = "22222222-2222-4222-8222-222222222222"
CORRECTED_ORDER = "33333333-3333-4333-8333-333333333333"
COMMENTED_ORDER = "44444444-4444-4444-8444-444444444444"
ANSWERED_ORDER = "55555555-5555-4555-8555-555555555555"
PORTED_ORDER = "66666666-6666-4666-8666-666666666666"
SPLIT_PART = "77777777-7777-4777-8777-777777777777"
FOLLOWED = (EXCEPTION_ORDER, DENIED_ORDER, CORRECTED_ORDER, COMMENTED_ORDER, ANSWERED_ORDER, PORTED_ORDER)
START = 1_760_000_000


def at(minutes: int) -> str:
    """A moment of Telnyx's, `minutes` after START, as portdocs keeps it."""
    return moment(utc_iso(START + minutes * 60))


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        yield provision(stack_name="portdocs-test")


@pytest.fixture
def target(stack: Stack) -> cli.Target:
    return cli.Target(stack.outputs, boto3.session.Session(), None, 20 * 1024 * 1024, ("application/pdf",))


@pytest.fixture
def orders(stack: Stack) -> Orders:
    return Orders(boto3.client("dynamodb"), stack.outputs["PortingOrdersTableName"])


@pytest.fixture
def documents(stack: Stack) -> Table:
    """The documents ledger's table."""
    return boto3.resource("dynamodb").Table(stack.outputs["DocumentsTableName"])


def notify(orders: Orders, event_type: str, payload: dict[str, Any], minutes: int) -> None:
    """A webhook body read as the tracker reads it (portdocs.porting_status), its facts stored."""
    body = {
        "data": {
            "id": f"evt-{event_type}-{minutes}",
            "event_type": event_type,
            "occurred_at": at(minutes),
            "payload": payload,
        }
    }
    for fact in PortingEvent.from_telnyx(body, received_via="webhook").facts():
        if isinstance(fact, StatusChange):
            assert orders.apply_status(fact, by=f"evt-{minutes}") is not None
        else:
            assert isinstance(fact, Comment) and orders.apply_comment(fact, by=f"evt-{minutes}") is not None


def status(orders: Orders, order: str, value: str, minutes: int, **extra: Any) -> None:
    payload = {"id": order, "status": {"value": value, "details": extra.pop("details", [])}}
    notify(orders, "porting_order.status_changed", payload | {"updated_at": at(minutes)} | extra, minutes)


def comment(orders: Orders, order: str, body: str, user_type: str, minutes: int) -> None:
    payload = {
        "porting_order_id": order,
        "comment": {"id": f"c-{minutes}", "body": body, "user_type": user_type, "inserted_at": at(minutes)},
    }
    notify(orders, "porting_order.new_comment", payload, minutes)


def attach(
    documents: Table, order: str, kind: DocumentType, number: int, review: str | None = None, why: str = ""
) -> None:
    """A document of `order` attached by portdocs (the `number`th: later ones are newer), and
    Telnyx's review of it if one was read."""
    ledger, document_id = Ledger(documents), f"{order[:8]}-{kind}-{number}"
    target = PortingOrderTarget(order, kind)
    ledger.open(document_id, target, SourceObject("intake", target.intake_key(f"{kind}-{number}.pdf")))
    ledger.mark_associated(document_id, f"telnyx-{document_id}")
    documents.update_item(  # dropped `number` minutes in: the order of the documents of one order
        Key={"document_id": document_id},
        UpdateExpression="SET created_at = :created",
        ExpressionAttributeValues={":created": utc_iso(START + number * 60, zone="+00:00")},
    )
    if review:
        assert ledger.record_review(document_id, review, why or None, at(number), by=f"poll-{number}")


@pytest.fixture
def followed(orders: Orders, documents: Table) -> None:
    """One order of each kind `--needs-action` tells apart, and the table's bookkeeping items."""
    status(
        orders,
        EXCEPTION_ORDER,
        "exception",
        5,
        details=[{"code": "ENTITY_NAME_MISMATCH", "description": "The name does not match"}],
        customer_reference="ACME-1",
        support_key="sr_1",
    )
    attach(documents, EXCEPTION_ORDER, DocumentType.LOA, 1, "verified")
    attach(documents, EXCEPTION_ORDER, DocumentType.INVOICE, 2)
    orders.apply_requirements(
        Requirements(EXCEPTION_ORDER, False, ("Letter of Authorization (pending)",), at(6))
    )
    comment(orders, EXCEPTION_ORDER, "Please send an LOA signed by the account holder.\nThanks", "admin", 7)

    status(orders, DENIED_ORDER, "in-process", 5)
    attach(documents, DENIED_ORDER, DocumentType.LOA, 1, "denied", "unsigned")

    status(orders, CORRECTED_ORDER, "in-process", 5)
    attach(documents, CORRECTED_ORDER, DocumentType.LOA, 1, "denied", "unsigned")
    attach(documents, CORRECTED_ORDER, DocumentType.LOA, 2)  # the corrected LOA, not reviewed yet

    status(orders, COMMENTED_ORDER, "submitted", 5)
    comment(orders, COMMENTED_ORDER, "Which address is the service address?", "admin", 6)

    comment(orders, ANSWERED_ORDER, "Please correct the PIN.", "admin", 4)
    status(orders, ANSWERED_ORDER, "submitted", 5)  # the order moved on after the staff's comment

    status(orders, PORTED_ORDER, "ported", 9)
    attach(documents, PORTED_ORDER, DocumentType.LOA, 1, "denied", "unsigned")
    comment(orders, PORTED_ORDER, "Ported.", "admin", 10)

    orders.mark_seen("evt-already-seen")
    orders.move_cursor(at(0))


def rendered(views: list[cli.OrderView]) -> str:
    console = Console(record=True, width=250)
    console.print(cli.orders_table(views))
    return console.export_text()


def rows(text: str) -> dict[str, str]:
    """Each row of the table (a row spans several lines), by its first cell."""
    found: dict[str, str] = {}
    first = ""
    for line in text.splitlines():
        if line.startswith("│"):
            first = line.split("│")[1].strip() or first
            found[first] = found.get(first, "") + line + "\n"
    return found


def run(target: cli.Target, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(cli, "resolve_target", lambda _: target)
    return cli.main(["orders", *args])


@pytest.mark.usefixtures("followed")
def test_orders_shows_one_row_per_order_with_status_documents_requirements_and_comment(target: cli.Target):
    table = rows(rendered(cli.order_views(target)))

    # The event id seen and the poll cursor are not orders.
    assert set(table) - {"order"} == {f"{order[:8]}…" for order in FOLLOWED}
    row = table[f"{EXCEPTION_ORDER[:8]}…"]
    assert "ACME-1" in row and "exception (ENTITY_NAME_MISMATCH) needs action" in row
    assert "loa verified" in row and "invoice pending" in row
    assert "Letter of Authorization (pending)" in row
    assert "admin: Please send an LOA signed by the account holder." in row and "Thanks" not in row
    assert "loa denied (unsigned)" in table[f"{DENIED_ORDER[:8]}…"]


@pytest.mark.usefixtures("followed")
def test_a_corrected_document_replaces_the_denied_one_in_its_orders_row(target: cli.Target):
    row = rows(rendered(cli.order_views(target)))[f"{CORRECTED_ORDER[:8]}…"]

    assert "loa pending" in row and "denied" not in row and "needs action" not in row


@pytest.mark.usefixtures("followed")
def test_needs_action_keeps_exceptions_denied_documents_and_unanswered_staff_comments(
    target: cli.Target, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    assert run(target, monkeypatch, "--needs-action", "--json") == 0

    listed = {order["porting_order_id"] for order in json.loads(capsys.readouterr().out)}
    # Not the corrected LOA's order, the order that moved on after its comment, nor the ported one.
    assert listed == {EXCEPTION_ORDER, DENIED_ORDER, COMMENTED_ORDER}


@pytest.mark.usefixtures("followed")
def test_orders_json_has_every_field_of_each_order_and_its_documents_reviews(
    target: cli.Target, orders: Orders, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    orders.apply_split(
        Split(EXCEPTION_ORDER, SPLIT_PART, ("+13125550199", "+13125550100"), at(8)),
        follow_part=True,
        by="evt-split",
    )

    assert run(target, monkeypatch, "--json") == 0

    listed = {order["porting_order_id"]: order for order in json.loads(capsys.readouterr().out)}
    order = listed[EXCEPTION_ORDER]
    assert order["status"] == "exception" and order["status_at"] == at(5)
    assert order["details"] == [{"code": "ENTITY_NAME_MISMATCH", "description": "The name does not match"}]
    assert order["customer_reference"] == "ACME-1" and order["support_key"] == "sr_1"
    assert order["requirements_met"] is False
    assert order["unmet_requirements"] == ["Letter of Authorization (pending)"]
    assert order["comment"].endswith("\nThanks") and order["comment_by"] == "admin"
    assert order["comment_at"] == at(7) and order["split_into"] == [SPLIT_PART]
    assert order["needs_action"] is True and order["first_seen_at"] and order["updated_at"]
    assert {d["document_type"]: d["review_status"] for d in order["documents"]} == {
        "loa": "verified",
        "invoice": None,  # not read from Telnyx yet
    }
    assert order["documents"][0]["file"] == "loa-1.pdf"
    assert listed[SPLIT_PART]["split_from"] == EXCEPTION_ORDER
    assert listed[SPLIT_PART]["split_numbers"] == ["+13125550100", "+13125550199"]


def test_markup_and_control_characters_from_telnyx_are_shown_literally(
    orders: Orders, documents: Table, target: cli.Target
):
    status(orders, EXCEPTION_ORDER, "exception", 5, customer_reference="[bold]ACME[/bold]")
    attach(documents, EXCEPTION_ORDER, DocumentType.LOA, 1, "denied", "[link=http://x]sign here[/link]")
    comment(orders, EXCEPTION_ORDER, "[red]x[/red] \x1b[2Jcleared?", "admin", 6)

    text = rendered(cli.order_views(target))

    assert "[red]x[/red] [2Jcleared?" in text and "\x1b" not in text
    assert "[bold]ACME[/bold]" in text and "[link=http://x]sign here[/link]" in text


def test_orders_says_so_when_no_order_needs_action(
    orders: Orders, target: cli.Target, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    status(orders, PORTED_ORDER, "ported", 5)

    assert run(target, monkeypatch, "--needs-action") == 0
    assert "no porting order needs action" in capsys.readouterr().out


def test_orders_of_a_stack_without_an_orders_table_names_what_is_missing(
    target: cli.Target, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    outputs = {k: v for k, v in target.outputs.items() if k != "PortingOrdersTableName"}
    older = cli.Target(outputs, target.session, None, 0, ())

    assert run(older, monkeypatch) == 2
    assert "PortingOrdersTableName" in capsys.readouterr().err


def document(kind: DocumentType, review: str | None, minute: int) -> LedgerEntry:
    return LedgerEntry(
        f"{kind}-{minute}",
        State.ASSOCIATED,
        target=PortingOrderTarget(EXCEPTION_ORDER, kind),
        telnyx_document_id=f"t-{kind}-{minute}",
        review_status=review,
        created_at=utc_iso(START + minute * 60, zone="+00:00"),
    )


def commented(status: str | None, status_at: str | None, by: str, comment_at: str) -> OrderRecord:
    return OrderRecord(
        EXCEPTION_ORDER, status=status, status_at=status_at, comment="?", comment_by=by, comment_at=comment_at
    )


@pytest.mark.parametrize(
    ("order", "entries", "expected"),
    [
        (OrderRecord(EXCEPTION_ORDER, status="exception", status_at=at(1)), [], True),
        (OrderRecord(EXCEPTION_ORDER, status="in-process"), [document(DocumentType.LOA, "denied", 1)], True),
        (
            OrderRecord(EXCEPTION_ORDER, status="in-process"),
            [document(DocumentType.LOA, "denied", 1), document(DocumentType.LOA, None, 2)],
            False,
        ),
        (
            OrderRecord(EXCEPTION_ORDER, status="in-process"),
            [document(DocumentType.INVOICE, "denied", 1), document(DocumentType.LOA, "verified", 2)],
            True,
        ),
        (commented("submitted", status_at=at(1), by="admin", comment_at=at(2)), [], True),
        (commented("submitted", status_at=at(3), by="admin", comment_at=at(2)), [], False),
        (commented("submitted", status_at=at(1), by="user", comment_at=at(2)), [], False),
        (commented(None, status_at=None, by="admin", comment_at=at(2)), [], True),  # status not heard yet
        (
            OrderRecord(EXCEPTION_ORDER, status="cancel-pending", details=(Detail("FOC_EXPIRED", ""),)),
            [],
            False,
        ),
        (commented("ported", status_at=at(1), by="admin", comment_at=at(2)), [], False),
        (OrderRecord(EXCEPTION_ORDER, status="cancelled"), [document(DocumentType.LOA, "denied", 1)], False),
    ],
)
def test_needs_action_is_decided_by_status_current_documents_and_the_latest_staff_comment(
    order: OrderRecord, entries: list[LedgerEntry], expected: bool
):
    assert needs_action(order, entries) is expected


def test_an_orders_age_is_the_time_since_its_status_last_changed_not_its_last_poll():
    now = time.time()
    order = OrderRecord(
        EXCEPTION_ORDER,
        status="exception",
        status_at=moment(utc_iso(now - 3 * 3600 - 60)),
        updated_at=utc_iso(now - 5, timespec="milliseconds"),  # polled 5 s ago
    )

    (row,) = (line for line in rendered([cli.OrderView(order, (), True)]).splitlines() if "11111111" in line)

    assert row.split("│")[-2].strip() == "3h"


def test_portdocs_events_lists_porting_order_events_beside_document_events(target: cli.Target):
    order = OrderRecord(EXCEPTION_ORDER, status="exception", details=(Detail("FOC_EXPIRED", "expired"),))
    logged = [
        {
            "detail-type": "Document Associated",
            "detail": {
                "document_id": "d-1",
                "occurred_at": utc_iso(START - 60, timespec="milliseconds"),
                "target": {"porting_order_id": EXCEPTION_ORDER, "document_type": "loa"},
                "source": {"bucket": "intake", "key": f"porting-orders/{EXCEPTION_ORDER}/loa/[b]a[/b].pdf"},
                "telnyx_document_id": "t-1",
            },
        },
        {
            "detail-type": STATUS_CHANGED,
            "detail": detail_of(order, {"previous_status": "submitted"}, "a" * 32, START),
        },
        {
            "detail-type": NEEDS_ACTION,
            "detail": detail_of(order, {"why": "is in exception"}, "b" * 32, START + 1),
        },
        {
            "detail-type": SPLIT,
            "detail": detail_of(
                OrderRecord(SPLIT_PART), {"split_from": EXCEPTION_ORDER}, "c" * 32, START + 2
            ),
        },
        {"detail-type": "Document Associated", "detail": {"document_id": "other", "occurred_at": at(9)}},
    ]
    logs = boto3.client("logs")
    group = target.outputs["DocumentEventsLogGroupName"]
    logs.create_log_stream(logGroupName=group, logStreamName="rule")
    logs.put_log_events(
        logGroupName=group,
        logStreamName="rule",
        logEvents=[
            {"timestamp": int(time.time() * 1000) + i, "message": json.dumps(e)} for i, e in enumerate(logged)
        ],
    )

    events = cli.document_events(target, porting_order=EXCEPTION_ORDER)
    console = Console(record=True, width=250)
    console.print(cli.events_table(events))
    text = console.export_text()

    assert [e["detail-type"] for e in events] == ["Document Associated", STATUS_CHANGED, NEEDS_ACTION]
    assert f"porting-orders/{EXCEPTION_ORDER}/loa/[b]a[/b].pdf" in text
    assert "is in exception" in text and EXCEPTION_ORDER in text
    console.print(cli.events_table([logged[3]]))
    assert f"split from {EXCEPTION_ORDER}" in console.export_text()
