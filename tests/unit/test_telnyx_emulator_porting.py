"""The emulator following a porting order after its documents, over real HTTP: the order's whole
shape, its requirements, the porting events API, Telnyx's admin side and signed webhooks."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from portdocs_sandbox.telnyx_emulator import TelnyxEmulator
from tests.support import INVOICE, LOA

API_KEY = "v2-key-porting-0123"
ORDER = "3c1f9a2e-7b54-4d0e-8f6a-2d9e4b7c1a55"
OTHER = "8e2d4c6a-1f3b-4a5c-9d7e-0b1c2d3e4f5a"
NUMBERS = ["+13125550100", "+13125550101", "+13125550102"]
# Every field of team-telnyx/telnyx-python's PortingOrder (src/telnyx/types/porting_order.py).
SDK_ORDER_FIELDS = {
    "id",
    "activation_settings",
    "additional_steps",
    "created_at",
    "customer_group_reference",
    "customer_reference",
    "description",
    "documents",
    "end_user",
    "messaging",
    "misc",
    "old_service_provider_ocn",
    "parent_support_key",
    "phone_number_configuration",
    "phone_number_type",
    "phone_numbers",
    "porting_phone_numbers_count",
    "record_type",
    "requirements",
    "requirements_met",
    "status",
    "support_key",
    "updated_at",
    "user_feedback",
    "user_id",
    "webhook_url",
}
LOA_TYPE, INVOICE_TYPE = "a428786a-5dc2-41c0-b0fe-c32df4c1b5e2", "53970723-fbff-4f46-a975-f62be6c1a585"


@pytest.fixture
def telnyx(emulator: TelnyxEmulator) -> Iterator[TelnyxEmulator]:
    emulator.credentials["api_key"] = API_KEY
    emulator.seed_porting_order(ORDER, "ref-001", NUMBERS)
    emulator.seed_porting_order(OTHER)
    yield emulator


@dataclass
class Receiver:
    """A webhook endpoint: what it was sent, raw, and the status it answers."""

    url: str = ""
    status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            found.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(found.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    found.url = f"http://127.0.0.1:{server.server_port}/porting_webhooks"
    yield found
    server.shutdown()
    server.server_close()


def v2(emulator: TelnyxEmulator, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    return requests.request(method, f"{emulator.api_url}/v2{path}", headers=headers, timeout=10, **kwargs)


def admin(emulator: TelnyxEmulator, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(method, f"{emulator.api_url}/_emulator{path}", json=body, timeout=10)


def upload(emulator: TelnyxEmulator, content: bytes = LOA) -> str:
    answer = v2(emulator, "POST", "/documents", files={"file": ("doc.pdf", content, "application/pdf")})
    return str(answer.json()["data"]["id"])


def attach(emulator: TelnyxEmulator, order: str = ORDER, **documents: str) -> dict[str, Any]:
    answer = v2(emulator, "PATCH", f"/porting_orders/{order}", json={"documents": documents})
    assert answer.status_code == 200
    return dict(answer.json()["data"])


def requirement_statuses(emulator: TelnyxEmulator, order: str = ORDER) -> dict[str, str]:
    listed = v2(emulator, "GET", f"/porting_orders/{order}/requirements").json()["data"]
    return {r["requirement_type"]["name"]: r["requirement_status"] for r in listed}


def events(emulator: TelnyxEmulator, **params: Any) -> requests.Response:
    return v2(emulator, "GET", "/porting/events", params=params)


def verifies(public_key: str, headers: dict[str, str], body: bytes) -> bool:
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key))
    signed = f"{headers['telnyx-timestamp']}|".encode() + body
    try:
        key.verify(base64.b64decode(headers["telnyx-signature-ed25519"]), signed)
    except InvalidSignature:
        return False
    return True


# -- the order --------------------------------------------------------------------------------


def test_an_order_has_every_field_of_telnyx_s_model_from_get_and_patch(telnyx: TelnyxEmulator):
    plain = v2(telnyx, "GET", f"/porting_orders/{ORDER}").json()
    with_numbers = v2(telnyx, "GET", f"/porting_orders/{ORDER}", params={"include_phone_numbers": "true"})
    patched = attach(telnyx, loa=upload(telnyx))

    assert set(plain["data"]) == SDK_ORDER_FIELDS - {"phone_numbers"}
    assert set(patched) == SDK_ORDER_FIELDS - {"phone_numbers"}
    order = with_numbers.json()["data"]
    assert set(order) == SDK_ORDER_FIELDS
    assert [n["phone_number"] for n in order["phone_numbers"]] == NUMBERS
    assert order["porting_phone_numbers_count"] == 3
    assert (order["record_type"], order["status"], order["customer_reference"]) == (
        "porting_order",
        {"value": "draft", "details": []},
        "ref-001",
    )
    assert (order["support_key"], order["parent_support_key"]) == (None, None)  # none on a draft
    assert {"admin", "location"} <= set(order["end_user"])
    assert [r["requirement_type_id"] for r in order["requirements"]] == [LOA_TYPE, INVOICE_TYPE]
    assert plain["meta"]["phone_numbers_url"].endswith(ORDER)
    assert v2(telnyx, "GET", "/porting_orders/no-such-order").status_code == 404


def test_requirements_go_from_pending_to_review_to_approved_or_exception(telnyx: TelnyxEmulator):
    loa, invoice, better_invoice = upload(telnyx), upload(telnyx, INVOICE), upload(telnyx, INVOICE + b"\n")
    assert requirement_statuses(telnyx) == dict.fromkeys(
        ("Letter of Authorization", "Latest Invoice"), "requirement-info-pending"
    )

    assert attach(telnyx, loa=loa)["requirements_met"] is False
    assert requirement_statuses(telnyx) == {
        "Letter of Authorization": "requirement-info-under-review",
        "Latest Invoice": "requirement-info-pending",
    }
    # Both given, neither reviewed: not met, since Telnyx counts only approved requirements.
    assert attach(telnyx, invoice=invoice)["requirements_met"] is False
    telnyx.review_document(loa, "verified")
    denied = admin(telnyx, "POST", f"/documents/{invoice}/review", {"status": "denied", "reason": "too old"})

    assert denied.status_code == 200 and denied.json()["review_reason"] == "too old"
    assert requirement_statuses(telnyx) == {
        "Letter of Authorization": "approved",
        "Latest Invoice": "requirement-info-exception",
    }
    shown = v2(telnyx, "GET", f"/documents/{invoice}").json()["data"]
    assert shown["status"] == "denied" and "review_reason" not in shown
    order = v2(telnyx, "GET", f"/porting_orders/{ORDER}").json()["data"]
    assert order["requirements_met"] is False
    assert [r["field_value"] for r in order["requirements"]] == [loa, invoice]

    attach(telnyx, invoice=better_invoice)
    assert requirement_statuses(telnyx)["Latest Invoice"] == "requirement-info-under-review"
    telnyx.review_document(better_invoice, "verified")
    order = v2(telnyx, "GET", f"/porting_orders/{ORDER}").json()["data"]
    assert order["requirements_met"] is True
    assert {r["requirement_status"] for r in order["requirements"]} == {"approved"}


def test_requirements_are_listed_a_page_at_a_time_with_their_types(telnyx: TelnyxEmulator):
    answer = v2(
        telnyx, "GET", f"/porting_orders/{ORDER}/requirements", params={"page[size]": 1, "page[number]": 2}
    )

    (invoice,) = answer.json()["data"]
    assert answer.json()["meta"] == {"page_number": 2, "page_size": 1, "total_pages": 2, "total_results": 2}
    assert (invoice["field_type"], invoice["field_value"], invoice["record_type"]) == (
        "document",
        None,
        "porting_requirement",
    )
    assert invoice["requirement_type"]["id"] == INVOICE_TYPE
    assert set(invoice["requirement_type"]) == {
        "id",
        "name",
        "description",
        "example",
        "acceptance_criteria",
        "type",
    }
    refused = v2(telnyx, "GET", f"/porting_orders/{ORDER}/requirements", params={"page[size]": 0})
    assert refused.status_code == 422


# -- the events API ---------------------------------------------------------------------------------


def test_events_are_filtered_by_type_order_and_inclusive_created_at_bounds(telnyx: TelnyxEmulator):
    first = telnyx.set_order_status(ORDER, "in-process")
    middle = telnyx.add_comment(ORDER, "LOA received")
    telnyx.set_order_status(OTHER, "submitted")
    last = telnyx.set_order_status(ORDER, "submitted")

    def ids(**params: Any) -> list[str]:
        return [e["id"] for e in events(telnyx, **params).json()["data"]]

    assert ids(**{"filter[type]": "porting_order.new_comment"}) == [middle["id"]]
    assert ids(**{"filter[porting_order_id]": ORDER}) == [first["id"], middle["id"], last["id"]]
    between = {"filter[created_at][gte]": middle["created_at"], "filter[created_at][lte]": last["created_at"]}
    assert ids(**between, **{"filter[porting_order_id]": ORDER}) == [middle["id"], last["id"]]
    # The same instant written in another offset is the same bound.
    at = datetime.fromisoformat(first["created_at"]).astimezone(timezone(timedelta(hours=2)))
    assert ids(**{"filter[created_at][lte]": at.isoformat()}) == [first["id"]]
    after = (datetime.fromisoformat(first["created_at"]) + timedelta(microseconds=1)).isoformat()
    assert first["id"] not in ids(**{"filter[created_at][gte]": after})
    assert events(telnyx, **{"filter[type]": "porting_order.created"}).status_code == 422
    assert events(telnyx, **{"filter[created_at][gte]": "yesterday"}).status_code == 422


def test_events_are_paged_oldest_first(telnyx: TelnyxEmulator):
    made = [telnyx.add_comment(ORDER, f"comment {n}")["id"] for n in range(5)]

    pages = [events(telnyx, **{"page[size]": 2, "page[number]": n}).json() for n in (1, 2, 3)]

    assert [e["id"] for page in pages for e in page["data"]] == made
    assert pages[2]["meta"] == {"page_number": 3, "page_size": 2, "total_pages": 3, "total_results": 5}
    assert events(telnyx).json()["meta"]["page_size"] == 20
    assert events(telnyx, **{"page[size]": 251}).status_code == 422
    assert (
        v2(telnyx, "GET", f"/porting/events/{made[0]}").json()["data"]["payload"]["comment"]["body"]
        == "comment 0"
    )


# -- Telnyx's side: status, comments, splits ------------------------------------------------------


def test_a_status_change_is_an_event_and_the_order_reveals_its_support_keys(telnyx: TelnyxEmulator):
    before = v2(telnyx, "GET", f"/porting_orders/{ORDER}").json()["data"]["updated_at"]
    details = [{"code": "ACCOUNT_NUMBER_MISMATCH", "description": "Account number does not match"}]

    answer = admin(
        telnyx, "POST", f"/porting_orders/{ORDER}/status", {"value": "exception", "details": details}
    )
    again = telnyx.set_order_status(ORDER, "submitted")  # within the same millisecond, most likely

    event = answer.json()
    order = v2(telnyx, "GET", f"/porting_orders/{ORDER}").json()["data"]
    assert (event["event_type"], event["porting_order_id"], event["record_type"]) == (
        "porting_order.status_changed",
        ORDER,
        "porting_event",
    )
    assert (event["payload_status"], event["available_notification_methods"]) == (
        "created",
        ["email", "webhook"],
    )
    payload = event["payload"]
    assert payload["status"] == {"value": "exception", "details": details}
    assert (payload["id"], payload["customer_reference"], payload["webhook_url"]) == (ORDER, "ref-001", None)
    assert payload["support_key"].startswith("sr_") and payload["support_key"] == order["support_key"]
    assert order["parent_support_key"].startswith("pr_")
    assert payload["updated_at"] == event["created_at"]
    assert before < payload["updated_at"] < again["payload"]["updated_at"] == order["updated_at"]
    assert order["status"] == {"value": "submitted", "details": []}


def test_changes_within_one_millisecond_still_move_updated_at_and_events_on(
    telnyx: TelnyxEmulator, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(telnyx, "now", lambda: 1_800_000_000.0004)  # the clock stands still

    made = [telnyx.set_order_status(ORDER, value) for value in ("in-process", "submitted", "exception")]

    stamps = [event["payload"]["updated_at"] for event in made]
    assert stamps == sorted(set(stamps))
    assert [e["id"] for e in events(telnyx).json()["data"]] == [e["id"] for e in made]


def test_a_comment_is_an_event_with_its_author(telnyx: TelnyxEmulator):
    answer = admin(telnyx, "POST", f"/porting_orders/{ORDER}/comments", {"body": "Please resend the LOA"})
    by_user = telnyx.add_comment(ORDER, "Done", user_type="user")

    event = answer.json()
    assert event["event_type"] == "porting_order.new_comment"
    comment = event["payload"]["comment"]
    assert (comment["body"], comment["user_type"], comment["user_id"]) == (
        "Please resend the LOA",
        "admin",
        None,
    )
    assert comment["inserted_at"] == event["created_at"] and comment["id"]
    assert event["payload"]["porting_order_id"] == ORDER
    assert by_user["payload"]["comment"]["user_id"] is not None
    assert (
        admin(
            telnyx, "POST", f"/porting_orders/{ORDER}/comments", {"body": "x", "user_type": "bot"}
        ).status_code
        == 422
    )


def test_a_split_moves_numbers_to_a_new_order_of_the_same_group(telnyx: TelnyxEmulator):
    loa = upload(telnyx)
    attach(telnyx, loa=loa)
    telnyx.set_order_status(ORDER, "submitted")
    split_at = len(telnyx.porting_events())

    answer = admin(telnyx, "POST", f"/porting_orders/{ORDER}/split", {"phone_numbers": NUMBERS[1:]})

    new_id = answer.json()["id"]
    query = {"include_phone_numbers": "true"}
    parent = v2(telnyx, "GET", f"/porting_orders/{ORDER}", params=query).json()["data"]
    child = v2(telnyx, "GET", f"/porting_orders/{new_id}", params=query).json()["data"]
    assert [n["phone_number"] for n in parent["phone_numbers"]] == NUMBERS[:1]
    assert [n["phone_number"] for n in child["phone_numbers"]] == NUMBERS[1:]
    assert (parent["porting_phone_numbers_count"], child["porting_phone_numbers_count"]) == (1, 2)
    assert child["parent_support_key"] == parent["parent_support_key"] is not None
    assert child["support_key"] not in (None, parent["support_key"])
    assert (child["documents"]["loa"], child["status"]["value"], child["customer_reference"]) == (
        loa,
        "submitted",
        "ref-001",
    )
    splits = telnyx.porting_events()[split_at:]
    assert [e["event_type"] for e in splits] == ["porting_order.split"] * 2  # one per number, as Telnyx sends
    assert [e["payload"]["porting_phone_numbers"][0]["phone_number"] for e in splits] == NUMBERS[1:]
    assert {(e["payload"]["from"]["id"], e["payload"]["to"]["id"]) for e in splits} == {(ORDER, new_id)}
    assert (
        admin(telnyx, "POST", f"/porting_orders/{ORDER}/split", {"phone_numbers": NUMBERS[:1]}).status_code
        == 422
    )


def test_changing_the_loa_is_an_event_without_payload_or_webhook(telnyx: TelnyxEmulator, receiver: Receiver):
    telnyx.send_webhooks_to(receiver.url)
    loa = upload(telnyx)

    attach(telnyx, loa=loa)
    attach(telnyx, loa=loa)  # the same LOA again: no change
    attach(telnyx, invoice=upload(telnyx, INVOICE))

    (event,) = telnyx.porting_events()
    assert (event["event_type"], event["payload"], event["available_notification_methods"]) == (
        "porting_order.loa_updated",
        None,
        ["email"],
    )
    assert receiver.received == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/porting_orders/no-such-order/status", {"value": "submitted"}),
        ("/porting_orders/no-such-order/comments", {"body": "hello"}),
        ("/porting_orders/no-such-order/split", {"phone_numbers": ["+13125550100"]}),
        ("/documents/no-such-document/review", {"status": "verified"}),
    ],
)
def test_admin_calls_on_what_does_not_exist_are_404(telnyx: TelnyxEmulator, path: str, body: dict[str, Any]):
    assert admin(telnyx, "POST", path, body).status_code == 404


def test_a_status_telnyx_does_not_have_is_422_and_changes_nothing(telnyx: TelnyxEmulator):
    assert admin(telnyx, "POST", f"/porting_orders/{ORDER}/status", {"value": "approved"}).status_code == 422
    bad_details = {"value": "exception", "details": [{"code": "OTHER"}]}
    assert admin(telnyx, "POST", f"/porting_orders/{ORDER}/status", bad_details).status_code == 422
    assert telnyx.porting_events() == []
    with pytest.raises(ValueError, match="status must be one of"):
        telnyx.set_order_status(ORDER, "lost")


# -- webhooks -----------------------------------------------------------------------------------


def test_a_webhook_is_signed_over_timestamp_and_body_and_carries_the_event_s_id(
    telnyx: TelnyxEmulator, receiver: Receiver
):
    assert admin(telnyx, "PUT", "/webhooks", {"url": receiver.url}).status_code == 200
    telnyx.advance_clock(3 * 86400)  # the signature's timestamp stays on the real clock

    event = telnyx.set_order_status(ORDER, "in-process")

    ((headers, body),) = receiver.received
    assert headers["content-type"] == "application/json"
    assert abs(int(headers["telnyx-timestamp"]) - time.time()) < 5
    assert verifies(telnyx.webhook_public_key, headers, body)
    assert not verifies(telnyx.webhook_public_key, headers, body.replace(b"in-process", b"submitted"))
    assert headers["telnyx-signature-ed25519"] == telnyx.sign(headers["telnyx-timestamp"], body)
    sent = json.loads(body)
    listed = events(telnyx).json()["data"]
    assert sent["data"]["id"] == event["id"] == listed[0]["id"]
    assert sent["data"] == {
        "event_type": "porting_order.status_changed",
        "id": event["id"],
        "occurred_at": event["created_at"],
        "payload": event["payload"],
        "record_type": "event",
        "porting_order_id": ORDER,
    }
    assert sent["meta"] == {"attempt": 1, "delivered_to": receiver.url}


def test_held_webhooks_are_released_twice_each_and_out_of_order(telnyx: TelnyxEmulator, receiver: Receiver):
    telnyx.send_webhooks_to(receiver.url, hold=True)
    made = [telnyx.add_comment(ORDER, f"comment {n}")["id"] for n in range(4)]
    assert receiver.received == []

    answer = admin(telnyx, "POST", "/webhooks/release", {"shuffle": True, "duplicate": True, "seed": 7})

    assert answer.json()["statuses"] == [200] * 8
    order = [body["data"]["id"] for body in receiver.bodies()]
    assert sorted(order) == sorted(made * 2)
    assert order != [event_id for event_id in made for _ in range(2)] and order != made * 2
    assert all(verifies(telnyx.webhook_public_key, headers, body) for headers, body in receiver.received)
    assert telnyx.release_webhooks() == []  # nothing is held twice


def test_a_failed_delivery_is_recorded_and_not_retried(telnyx: TelnyxEmulator, receiver: Receiver):
    receiver.status = 500
    telnyx.send_webhooks_to(receiver.url)

    event = telnyx.add_comment(ORDER, "hello")
    telnyx.send_webhooks_to("http://127.0.0.1:9/nobody-listens")
    unreachable = telnyx.add_comment(ORDER, "anyone?")
    telnyx.send_webhooks_to(None)
    telnyx.add_comment(ORDER, "not sent")

    assert len(receiver.received) == 1
    deliveries = telnyx.webhook_deliveries()
    assert [(d["event_id"], d["status"]) for d in deliveries] == [
        (event["id"], 500),
        (unreachable["id"], None),
    ]
    assert admin(telnyx, "GET", "/webhooks").json()["deliveries"] == deliveries
