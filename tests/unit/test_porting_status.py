"""The pure rules of following a porting order: Telnyx's signature, its notifications read as
facts, text made safe, and the notice a person reads."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from portdocs.documents import DocumentType, PortingOrderTarget, State
from portdocs.errors import PermanentError
from portdocs.ledger import LedgerEntry
from portdocs.notices import needs_action_notice
from portdocs.orders import OrderRecord, current_documents
from portdocs.porting_status import (
    Comment,
    Detail,
    DocumentReview,
    PortingEvent,
    Split,
    StatusChange,
    moment,
    printable,
)
from portdocs.webhook_signature import SignatureRefused, WebhookKey

ORDER = "7e6d5c4b-3a2f-4e1d-8c0b-9a8f7e6d5c4b"
NOW = 1_796_378_400.0
PRIVATE = Ed25519PrivateKey.generate()
KEY = WebhookKey.from_base64(
    base64.b64encode(PRIVATE.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
)


def signed(body: bytes, stamp: str) -> dict[str, str]:
    signature = base64.b64encode(PRIVATE.sign(stamp.encode() + b"|" + body)).decode()
    return {"telnyx-timestamp": stamp, "telnyx-signature-ed25519": signature}


def test_the_signature_covers_the_timestamp_and_the_exact_bytes():
    body = b'{"data": {}}'
    KEY.verify(signed(body, str(int(NOW))), body, NOW)
    with pytest.raises(SignatureRefused, match="does not match"):
        KEY.verify(signed(body, str(int(NOW))), body + b" ", NOW)
    moved = signed(body, str(int(NOW)))
    moved["telnyx-timestamp"] = str(int(NOW) + 1)  # the same signature under another time
    with pytest.raises(SignatureRefused, match="does not match"):
        KEY.verify(moved, body, NOW)


@pytest.mark.parametrize(("offset", "accepted"), [(-300, True), (-301, False), (300, True), (301, False)])
def test_the_window_is_five_minutes_either_side(offset: int, accepted: bool):
    body, stamp = b"{}", str(int(NOW) + offset)
    if accepted:
        KEY.verify(signed(body, stamp), body, NOW)
    else:
        with pytest.raises(SignatureRefused, match="tolerance"):
            KEY.verify(signed(body, stamp), body, NOW)


@pytest.mark.parametrize("text", ["", "not base64", base64.b64encode(bytes(31)).decode(), "A" * 44 + "=="])
def test_a_public_key_that_is_not_32_bytes_of_base64_is_refused(text: str):
    with pytest.raises(SignatureRefused, match="public key"):
        WebhookKey.from_base64(text)


def envelope(event_type: str, payload: object, **data: object) -> dict[str, object]:
    return {
        "data": {
            "event_type": event_type,
            "id": "e1",
            "occurred_at": "2026-12-04T10:00:00Z",
            "payload": payload,
            **data,
        }
    }


def test_a_status_change_is_ordered_by_the_orders_own_updated_at():
    event = PortingEvent.from_telnyx(
        envelope(
            "porting_order.status_changed",
            {
                "id": ORDER,
                "status": {"value": "exception", "details": [{"code": "FOC_EXPIRED", "description": "late"}]},
                "updated_at": "2026-12-04T11:00:00.5+01:00",
                "customer_reference": "ACME-42",
            },
        ),
        "webhook",
    )
    (fact,) = event.facts()
    assert fact == StatusChange(
        ORDER, "exception", (Detail("FOC_EXPIRED", "late"),), "2026-12-04T10:00:00.500000Z", "ACME-42"
    )


def test_events_api_items_and_webhooks_read_alike():
    payload = {
        "porting_order_id": ORDER,
        "comment": {"id": "c1", "body": "hi", "inserted_at": "2026-12-04T10:00:00Z", "user_type": "admin"},
    }
    item = {
        "id": "e1",
        "event_type": "porting_order.new_comment",
        "created_at": "2026-12-04T10:00:00Z",
        "porting_order_id": ORDER,
        "payload": payload,
    }
    by_poll = PortingEvent.from_telnyx(item, "poll")
    by_webhook = PortingEvent.from_telnyx(envelope("porting_order.new_comment", payload), "webhook")
    assert (
        by_poll.facts()
        == by_webhook.facts()
        == [Comment(ORDER, "c1", "hi", "admin", "2026-12-04T10:00:00.000000Z")]
    )
    assert PortingEvent.from_message(json.loads(json.dumps(by_poll.as_message()))) == by_poll


def test_a_split_names_both_orders_and_its_numbers():
    (fact,) = PortingEvent.from_telnyx(
        envelope(
            "porting_order.split",
            {
                "from": {"id": ORDER},
                "to": {"id": "part-1"},
                "porting_phone_numbers": [{"id": "n1", "phone_number": "+13125550100"}],
            },
        ),
        "webhook",
    ).facts()
    assert fact == Split(ORDER, "part-1", ("+13125550100",), "2026-12-04T10:00:00.000000Z")


@pytest.mark.parametrize(
    ("event_type", "payload", "said"),
    [
        (
            "porting_order.status_changed",
            {"id": ORDER, "status": {"value": "lost"}},
            "unknown porting order status",
        ),
        (
            "porting_order.status_changed",
            {"id": "../x", "status": {"value": "ported"}},
            "porting_order_id must match",
        ),
        ("porting_order.new_comment", {"porting_order_id": ORDER, "comment": {"body": 5}}, "no comment body"),
        ("porting_order.split", {"from": {"id": ORDER}, "to": {"id": ORDER}}, "same order"),
    ],
)
def test_unreadable_facts_say_what_is_wrong(event_type: str, payload: object, said: str):
    with pytest.raises(PermanentError, match=said):
        PortingEvent.from_telnyx(envelope(event_type, payload), "webhook").facts()


def test_an_event_type_portdocs_does_not_follow_states_nothing_and_a_null_payload_is_empty():
    event = PortingEvent.from_telnyx(envelope("porting_order.loa_updated", None), "poll")
    assert event.payload == {} and event.facts() == []


def test_times_sort_as_the_moments_do_whatever_zone_and_precision_telnyx_wrote():
    written = ["2026-12-04T10:00:00.1Z", "2026-12-04T11:00:00+01:00", "2026-12-04T10:00:00.000001Z"]
    assert sorted(map(moment, written)) == [
        "2026-12-04T10:00:00.000000Z",
        "2026-12-04T10:00:00.000001Z",
        "2026-12-04T10:00:00.100000Z",
    ]
    with pytest.raises(PermanentError, match="no time zone"):
        moment("2026-12-04T10:00:00")


def test_printable_drops_what_could_rewrite_a_screen_and_keeps_markup_as_text():
    assert printable("a\x1b[2Jb\u202ec\u200bd\x00e\n<b>f</b>", 100) == "a[2Jbcde\n<b>f</b>"
    assert printable("x" * 10, 5) == "xxxx…"


def entry(document_id: str, kind: DocumentType, created_at: str, review: str | None = None) -> LedgerEntry:
    return LedgerEntry(
        document_id=document_id,
        state=State.ASSOCIATED,
        target=PortingOrderTarget(ORDER, kind),
        telnyx_document_id=f"t-{document_id}",
        review_status=review,
        created_at=created_at,
    )


def test_a_corrected_loa_replaces_the_denied_one_and_additional_documents_all_count():
    denied = entry("loa-1", DocumentType.LOA, "2026-12-01T00:00:00+00:00", "denied")
    corrected = entry("loa-2", DocumentType.LOA, "2026-12-02T00:00:00+00:00")
    csrs = [entry(f"csr-{i}", DocumentType.CSR, "2026-12-01T00:00:00+00:00") for i in range(2)]
    assert {e.document_id for e in current_documents([corrected, denied, *csrs])} == {
        "loa-2",
        "csr-0",
        "csr-1",
    }


def test_the_notice_says_in_words_what_to_do():
    order = OrderRecord(
        ORDER,
        status="exception",
        details=(Detail("AUTH_PERSON_MISMATCH", "Signed by the wrong person"),),
        customer_reference="ACME-42",
        support_key="sr_1",
        comment="Please sign again",
        comment_by="admin",
        comment_at="2026-12-04T10:00:00Z",
    )
    denied = [entry("loa-1", DocumentType.LOA, "2026-12-01", "denied")]
    subject, message = needs_action_notice(order, "is in exception", denied, "intake-bucket")
    assert subject == f"portdocs: porting order {ORDER[:8]} (ACME-42) needs action"
    assert "AUTH_PERSON_MISMATCH: Signed by the wrong person" in message
    assert "drop an LOA signed by the person authorised" in message
    assert f"s3://intake-bucket/porting-orders/{ORDER}/loa/" in message
    assert "Please sign again" in message and "support key sr_1" in message


def test_a_subject_is_ascii_and_bounded_whatever_the_reference():
    order = OrderRecord(ORDER, customer_reference="Ünïcode\n" + "x" * 200)
    subject, _ = needs_action_notice(order, "x", [], "b")
    assert len(subject) <= 100 and subject.isascii() and "\n" not in subject


def test_a_review_is_one_of_three_statuses():
    event = PortingEvent.from_message(
        {
            "id": "snapshot:x",
            "event_type": "portdocs.order_snapshot",
            "occurred_at": "2026-12-04T10:00:00Z",
            "porting_order_id": ORDER,
            "payload": {"documents": [{"id": "d1", "status": "denied", "reason": "blurry"}]},
            "received_via": "poll",
        }
    )
    assert event.facts() == [DocumentReview(ORDER, "d1", "denied", "blurry", "2026-12-04T10:00:00.000000Z")]
    bad = {**event.as_message(), "payload": {"documents": [{"id": "d1", "status": "maybe"}]}}
    with pytest.raises(PermanentError, match="no known status"):
        PortingEvent.from_message(bad).facts()
