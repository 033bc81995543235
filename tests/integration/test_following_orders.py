"""Following a porting order after its documents are attached (issue #16), over real HTTP: the
emulator signs and posts Telnyx's notifications to the stack's HTTP API (the local runtime in front
of the receiver), the tracker drains the notifications queue, the poller reads the emulator's events
API. Each test asserts what the orders table, the ledger, the bus and the notice topic end up with."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests
from aws_lambda_powertools.utilities import parameters
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from portdocs import wiring
from portdocs.events import EventBus
from portdocs.order_events import stable_event_id
from portdocs.orders import OrderRecord, Orders
from portdocs.receiver import MAX_BODY_BYTES
from portdocs_sandbox import cli
from portdocs_sandbox.runtime import LocalLambdaContext, sqs_event
from portdocs_sandbox.telnyx_emulator import Fault
from tests.support import INVOICE, LOA, PORTING_ORDER, Pipeline

ORDER_EVENT_TYPES = {
    "Porting Order Status Changed",
    "Porting Order Needs Action",
    "Porting Order Split",
    "Document Verified",
    "Document Denied",
}


@dataclass
class Following:
    pipeline: Pipeline
    url: str

    @property
    def emulator(self) -> Any:
        return self.pipeline.emulator

    def post(
        self,
        body: bytes,
        timestamp: str | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
        method: str = "POST",
    ) -> requests.Response:
        stamp = timestamp if timestamp is not None else str(int(time.time()))
        sent = {
            "content-type": "application/json",
            "telnyx-timestamp": stamp,
            "telnyx-signature-ed25519": signature
            if signature is not None
            else self.emulator.sign(stamp, body),
            **(headers or {}),
        }
        return requests.request(method, self.url, data=body, headers=sent, timeout=30)

    def order(self, porting_order_id: str = PORTING_ORDER) -> OrderRecord | None:
        return Orders(boto3.client("dynamodb"), self.pipeline.output("PortingOrdersTableName")).get(
            porting_order_id
        )

    def follow(self, porting_order_id: str = PORTING_ORDER) -> None:
        """As the associator does once it attached a document to the order."""
        Orders(boto3.client("dynamodb"), self.pipeline.output("PortingOrdersTableName")).follow(
            porting_order_id
        )

    def order_events(self) -> list[dict[str, Any]]:
        return [e for e in self.pipeline.events() if e["detail-type"] in ORDER_EVENT_TYPES]

    def notices(self) -> list[tuple[str, str]]:
        topic = sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].topics[self.pipeline.output("ActionTopicArn")]
        return [(str(subject), message) for _, message, subject, _, _ in topic.sent_notifications]

    def queued(self) -> list[dict[str, Any]]:
        return [json.loads(m["Body"]) for m in self.pipeline.receive("NotificationsQueueUrl")]

    def track(self) -> None:
        self.pipeline.runtime.drain()

    def poll(self) -> dict[str, int]:
        function = self.pipeline.stack.functions["PollerFunction"]
        handler = self.pipeline.handlers["PollerFunction"]
        return handler({"source": "aws.scheduler"}, LocalLambdaContext(function, "us-east-1"))


@pytest.fixture
def following(pipeline: Pipeline) -> Iterator[Following]:
    url = pipeline.runtime.serve_http() + "/telnyx/porting"
    set_webhook_key(pipeline, pipeline.emulator.webhook_public_key)
    try:
        yield Following(pipeline, url)
    finally:
        pipeline.emulator.send_webhooks_to(None)
        pipeline.runtime.close()


def set_webhook_key(pipeline: Pipeline, public_key: str) -> None:
    boto3.client("secretsmanager").put_secret_value(
        SecretId=pipeline.output("WebhookKeySecretArn"), SecretString=json.dumps({"public_key": public_key})
    )
    parameters.clear_caches()
    wiring.clear_caches()


def notification(
    event_type: str = "porting_order.status_changed",
    event_id: str = "0b9ac1d0-1111-4a4a-9b9b-000000000001",
    payload: dict[str, Any] | None = None,
) -> bytes:
    """A webhook body as Telnyx sends it."""
    payload = payload or {
        "id": PORTING_ORDER,
        "customer_reference": "ACME-42",
        "status": {"value": "in-process", "details": []},
        "support_key": "sr_abc123",
        "updated_at": "2026-12-04T10:00:00.000000Z",
        "webhook_url": None,
    }
    data = {
        "event_type": event_type,
        "id": event_id,
        "occurred_at": "2026-12-04T10:00:00.000000Z",
        "payload": payload,
        "record_type": "event",
    }
    return json.dumps(
        {"data": data, "meta": {"attempt": 1, "delivered_to": "https://example.invalid"}}
    ).encode()


def status_body(
    value: str, updated_at: str, event_id: str, details: list[dict[str, str]] | None = None
) -> bytes:
    payload = {
        "id": PORTING_ORDER,
        "customer_reference": "ACME-42",
        "status": {"value": value, "details": details or []},
        "support_key": "sr_abc123",
        "updated_at": updated_at,
    }
    return notification(event_id=event_id, payload=payload)


def attach(pipeline: Pipeline, document_type: str, body: bytes) -> str:
    """Drops a document for the order and runs the pipeline; its Telnyx document id."""
    key = f"porting-orders/{PORTING_ORDER}/{document_type}/{document_type}.pdf"
    pipeline.drop(key, body)
    pipeline.runtime.drain()
    attached = sorted(
        (e for e in pipeline.ledger().values() if e["source"]["key"] == key and e["state"] == "associated"),
        key=lambda e: str(e["created_at"]),
    )
    return str(attached[-1]["telnyx_document_id"])


# -- the receiver: bounded, verified, queued -----------------------------------------------------


def test_a_signed_notification_is_queued_before_the_answer_and_applied_once(following: Following):
    body = notification()

    answer = following.post(body)

    assert answer.status_code == 202
    (queued,) = following.queued()
    assert queued["id"] == "0b9ac1d0-1111-4a4a-9b9b-000000000001" and queued["received_via"] == "webhook"
    assert queued["porting_order_id"] == PORTING_ORDER


REFUSED = [
    pytest.param({"telnyx-signature-ed25519": ""}, 401, id="empty-signature"),
    pytest.param({"telnyx-signature-ed25519": "not base64!"}, 401, id="malformed-signature"),
    pytest.param(
        {"telnyx-signature-ed25519": base64.b64encode(bytes(63)).decode()}, 401, id="short-signature"
    ),
    pytest.param(
        {"telnyx-signature-ed25519": base64.b64encode(bytes(64)).decode()}, 401, id="zero-signature"
    ),
    pytest.param({"telnyx-timestamp": "1e9"}, 401, id="exponent-timestamp"),
    pytest.param({"telnyx-timestamp": str(int(time.time())) + ".5"}, 401, id="fractional-timestamp"),
    pytest.param({"telnyx-timestamp": "-1"}, 401, id="negative-timestamp"),
    pytest.param({"content-type": "text/plain"}, 415, id="text-content-type"),
    pytest.param({"content-type": "application/x-www-form-urlencoded"}, 415, id="form-content-type"),
]


@pytest.mark.parametrize(("headers", "status"), REFUSED)
def test_a_request_with_bad_headers_is_refused_and_nothing_is_queued(
    following: Following, headers: dict[str, str], status: int
):
    assert following.post(notification(), headers=headers).status_code == status
    assert following.queued() == []


def test_missing_signature_headers_are_refused(following: Following):
    body = notification()
    answer = requests.post(following.url, data=body, headers={"content-type": "application/json"}, timeout=30)
    assert answer.status_code == 401
    assert following.queued() == []


def test_a_signature_by_another_key_is_refused(following: Following):
    body, stamp = notification(), str(int(time.time()))
    forged = base64.b64encode(Ed25519PrivateKey.generate().sign(f"{stamp}|".encode() + body)).decode()
    assert following.post(body, timestamp=stamp, signature=forged).status_code == 401
    assert following.queued() == []


def test_a_valid_signature_over_another_body_is_refused(following: Following):
    stamp = str(int(time.time()))
    signature = following.emulator.sign(stamp, notification(event_id="a-different-event"))
    assert following.post(notification(), timestamp=stamp, signature=signature).status_code == 401
    assert following.queued() == []


@pytest.mark.parametrize(("offset", "status"), [(-310, 401), (-290, 202), (290, 202), (310, 401)])
def test_timestamps_just_outside_five_minutes_are_refused(following: Following, offset: int, status: int):
    stamp = str(int(time.time()) + offset)
    assert following.post(notification(), timestamp=stamp).status_code == status


def test_a_captured_notification_replayed_after_the_window_is_refused(following: Following):
    body, stamp = notification(), str(int(time.time()) - 3600)
    assert (
        following.post(body, timestamp=stamp, signature=following.emulator.sign(stamp, body)).status_code
        == 401
    )


def test_a_huge_body_is_refused_before_it_is_verified(following: Following, portdocs_log: Any):
    body = b'{"data": "' + b"x" * MAX_BODY_BYTES + b'"}'
    assert following.post(body, signature="AAAA").status_code == 413
    assert following.queued() == []
    assert "xxxx" not in portdocs_log()


def test_other_methods_and_paths_reach_no_function(following: Following):
    assert following.post(notification(), method="GET").status_code == 404
    assert following.post(notification(), method="PUT").status_code == 404
    wrong_path = requests.post(following.url + "/x", data=notification(), timeout=30)
    assert wrong_path.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json at all", id="not-json"),
        pytest.param(b"[1, 2, 3]", id="json-array"),
        pytest.param(b'{"data": {"id": "x"}}', id="no-event-type"),
        pytest.param(b'{"data": {"event_type": "porting_order.status_changed", "payload": {}}}', id="no-id"),
        pytest.param(
            b'{"data": {"event_type": "Bad Type!", "id": "e1", "occurred_at": "2026-12-04T10:00:00Z"}}',
            id="bad-type",
        ),
        pytest.param(
            b'{"data": {"event_type": "a.b", "id": "e1", "occurred_at": "yesterday"}}', id="bad-time"
        ),
    ],
)
def test_signed_but_unreadable_notifications_are_refused_not_queued(following: Following, body: bytes):
    assert following.post(body).status_code == 422
    assert following.queued() == []


def test_a_refused_request_is_logged_by_size_and_reason_only(following: Following, portdocs_log: Any):
    body = notification(payload={"id": PORTING_ORDER, "secret-marker": "do-not-log-me"})
    following.post(body, headers={"telnyx-signature-ed25519": base64.b64encode(bytes(64)).decode()})
    log = portdocs_log()
    assert "do-not-log-me" not in log and PORTING_ORDER not in log
    refusal = next(json.loads(line) for line in log.splitlines() if "notification refused" in line)
    assert refusal["status"] == 401 and refusal["size"] == len(body) and refusal["reason"]


def test_with_no_public_key_configured_every_webhook_is_refused(following: Following):
    set_webhook_key(following.pipeline, "")
    assert following.post(notification()).status_code == 401
    set_webhook_key(following.pipeline, "not a key")
    assert following.post(notification()).status_code == 401
    assert following.queued() == []


def test_a_queue_that_refuses_the_message_answers_503_so_telnyx_sends_it_again(following: Following):
    boto3.client("sqs").delete_queue(QueueUrl=following.pipeline.output("NotificationsQueueUrl"))
    assert following.post(notification()).status_code == 503


# -- the tracker: duplicates, order, unknowns -----------------------------------------------------


def test_an_unknown_event_type_is_acknowledged_and_ignored(following: Following):
    assert (
        following.post(
            notification(event_type="porting_order.messaging_changed", payload={"x": 1})
        ).status_code
        == 202
    )
    following.track()
    assert following.order() is None and following.order_events() == []
    assert following.pipeline.receive("NotificationsDeadLetterQueueUrl") == []


def test_an_order_portdocs_never_saw_is_recorded(following: Following):
    other = "11111111-2222-4333-8444-555555555555"
    body = notification(
        payload={
            "id": other,
            "status": {"value": "submitted", "details": []},
            "updated_at": "2026-12-04T10:00:00Z",
        }
    )
    assert following.post(body).status_code == 202
    following.track()
    recorded = following.order(other)
    assert recorded is not None and recorded.status == "submitted"


def test_a_replayed_notification_is_applied_once(following: Following):
    following.follow()
    body = status_body(
        "exception",
        "2026-12-04T10:00:01Z",
        "e-replay",
        [{"code": "FOC_EXPIRED", "description": "FOC date passed"}],
    )
    for _ in range(3):
        assert following.post(body).status_code == 202
    following.track()
    kinds = [e["detail-type"] for e in following.order_events()]
    assert kinds.count("Porting Order Status Changed") == 1 and kinds.count("Porting Order Needs Action") == 1
    assert len(following.notices()) == 1


def test_an_older_status_never_overwrites_a_newer_one(following: Following):
    following.post(status_body("submitted", "2026-12-04T10:05:00Z", "e-new"))
    following.track()
    following.post(
        status_body("exception", "2026-12-04T10:01:00Z", "e-old", [{"code": "OTHER", "description": "x"}])
    )
    following.track()
    recorded = following.order()
    assert recorded is not None and recorded.status == "submitted" and recorded.details == ()
    assert following.notices() == []


def post_split(following: Following, parent: str, part: str, numbers: tuple[str, ...]) -> None:
    """Telnyx announces a split once per number moved."""
    for index, number in enumerate(numbers):
        body = notification(
            event_type="porting_order.split",
            event_id=f"split-{part}-{index}",
            payload={
                "from": {"id": parent},
                "to": {"id": part},
                "porting_phone_numbers": [{"id": f"n{index}", "phone_number": number}],
            },
        )
        assert following.post(body).status_code == 202
    following.track()


def test_a_split_naming_an_unknown_order_is_recorded_on_both_sides_and_tells_no_one(following: Following):
    parent, part = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"
    post_split(following, parent, part, ("+13125550100", "+13125550101"))
    recorded_part, recorded_parent = following.order(part), following.order(parent)
    assert recorded_part is not None and recorded_part.split_from == parent and not recorded_part.following
    assert recorded_part.split_numbers == ("+13125550100", "+13125550101")
    assert recorded_parent is not None and recorded_parent.split_into == (part,)
    assert [e["detail-type"] for e in following.order_events()] == ["Porting Order Split"]
    assert following.notices() == []  # not an order portdocs attached anything to


def test_the_part_split_from_a_followed_order_is_followed_and_announced_once(following: Following):
    following.follow()
    part = "bbbbbbbb-0000-4000-8000-000000000003"
    post_split(following, PORTING_ORDER, part, ("+13125550100", "+13125550101"))
    recorded_part = following.order(part)
    assert recorded_part is not None and recorded_part.following
    assert recorded_part.split_numbers == ("+13125550100", "+13125550101")
    kinds = [e["detail-type"] for e in following.order_events()]
    assert kinds == ["Porting Order Split", "Porting Order Needs Action"]
    ((subject, message),) = following.notices()
    assert part[:8] in subject and f"split from porting order {PORTING_ORDER}" in message


def test_a_comment_with_markup_and_control_characters_is_kept_safe(following: Following):
    following.follow()
    hostile = "Please resend\x1b[2J the LOA\u202e <script>alert(1)</script> [red]now[/red]\x00"
    body = notification(
        event_type="porting_order.new_comment",
        payload={
            "porting_order_id": PORTING_ORDER,
            "comment": {
                "id": "c1",
                "body": hostile,
                "inserted_at": "2026-12-04T10:00:00Z",
                "user_type": "admin",
            },
        },
    )
    assert following.post(body).status_code == 202
    following.track()
    recorded = following.order()
    assert recorded is not None and recorded.comment is not None
    assert (
        "\x1b" not in recorded.comment and "\u202e" not in recorded.comment and "\x00" not in recorded.comment
    )
    assert "<script>alert(1)</script> [red]now[/red]" in recorded.comment  # literal text, shown as written
    ((subject, message),) = following.notices()
    assert "needs action" in subject and "\x1b" not in message and "<script>" in message


def test_a_wrongly_shaped_message_on_the_queue_is_dropped_not_sent_to_the_dead_letter_queue(
    following: Following,
):
    following.pipeline.send("NotificationsQueueUrl", {"id": "x"})
    following.pipeline.send("NotificationsQueueUrl", "not json")
    following.track()
    assert following.pipeline.receive("NotificationsDeadLetterQueueUrl") == []
    assert following.queued() == []


# -- the whole story, webhooks on, off, doubled and shuffled ---------------------------------------


def drive_the_order(following: Following) -> tuple[str, str]:
    """draft -> in-process -> exception (denied LOA, staff comment) -> corrected LOA -> submitted ->
    foc-date-confirmed -> ported, as Telnyx (the emulator) and a person would. The LOA ids."""
    emulator, pipeline = following.emulator, following.pipeline
    first_loa = attach(pipeline, "loa", LOA)
    attach(pipeline, "invoice", INVOICE)
    emulator.set_order_status(PORTING_ORDER, "in-process")
    emulator.review_document(first_loa, "denied", "signature missing")
    emulator.set_order_status(
        PORTING_ORDER,
        "exception",
        [{"code": "AUTH_PERSON_MISMATCH", "description": "The LOA is not signed by the account holder"}],
    )
    emulator.add_comment(PORTING_ORDER, "Please upload an LOA signed by Jane Roe, the account holder.")
    following.track()
    following.poll()
    following.track()
    corrected = attach(pipeline, "loa", LOA + b"\n% corrected")
    emulator.review_document(corrected, "verified")
    following.track()
    following.poll()  # the next scheduled poll reads the review
    following.track()
    emulator.set_order_status(PORTING_ORDER, "submitted")
    emulator.set_order_status(PORTING_ORDER, "foc-date-confirmed")
    emulator.set_order_status(PORTING_ORDER, "ported")
    return first_loa, corrected


def assert_the_story(following: Following, first_loa: str, corrected: str) -> None:
    recorded = following.order()
    assert recorded is not None and recorded.status == "ported" and recorded.customer_reference == "ACME-42"
    assert recorded.comment == "Please upload an LOA signed by Jane Roe, the account holder."
    reviews = {e["telnyx_document_id"]: e.get("review_status") for e in following.pipeline.ledger().values()}
    assert reviews[first_loa] == "denied" and reviews[corrected] == "verified"
    changes = [
        e["detail"]["status"]
        for e in following.order_events()
        if e["detail-type"] == "Porting Order Status Changed"
    ]
    assert changes[-1] == "ported" and "exception" in changes
    kinds = [e["detail-type"] for e in following.order_events()]
    assert kinds.count("Document Denied") == 1 and kinds.count("Document Verified") >= 1
    notices = following.notices()
    assert any("AUTH_PERSON_MISMATCH" in message and "ACME-42" in message for _, message in notices)
    assert any(f"porting-orders/{PORTING_ORDER}/loa/" in message for _, message in notices)
    assert following.pipeline.receive("NotificationsDeadLetterQueueUrl") == []
    # What `portdocs orders` shows: ported, nothing waiting, the corrected LOA verified.
    target = cli.Target(following.pipeline.stack.outputs, boto3.session.Session(), None, 0, ())
    (view,) = [v for v in cli.order_views(target) if v.order.porting_order_id == PORTING_ORDER]
    assert view.order.status == "ported" and not view.needs_action
    assert {d.telnyx_document_id: d.review_status for d in view.documents}[corrected] == "verified"
    assert first_loa not in {d.telnyx_document_id for d in view.documents}  # replaced


def test_the_order_story_with_webhooks(following: Following):
    following.emulator.send_webhooks_to(following.url)
    first, corrected = drive_the_order(following)
    following.track()
    following.poll()
    following.track()
    assert_the_story(following, first, corrected)


def test_the_order_story_by_polling_alone(following: Following):
    following.emulator.send_webhooks_to(None)
    first, corrected = drive_the_order(following)
    following.poll()
    following.track()
    following.poll()
    following.track()
    assert_the_story(following, first, corrected)


def test_the_order_story_with_every_notification_twice_and_shuffled(following: Following):
    following.emulator.send_webhooks_to(following.url, hold=True)
    first, corrected = drive_the_order(following)
    statuses = following.emulator.release_webhooks(shuffle=True, duplicate=True, seed=16)
    assert statuses and set(statuses) == {202}
    following.track()
    following.poll()
    following.track()
    assert_the_story(following, first, corrected)
    kinds = [e["detail-type"] for e in following.order_events()]
    assert kinds.count("Document Denied") == 1


def test_a_poll_page_that_repeats_webhook_events_changes_nothing(following: Following):
    following.emulator.send_webhooks_to(following.url)
    following.emulator.set_order_status(PORTING_ORDER, "in-process")
    following.track()
    before = following.order_events()
    following.poll()
    following.track()
    following.poll()
    following.track()
    assert [e["detail-type"] for e in following.order_events()] == [e["detail-type"] for e in before]


# -- what the adversarial review found ------------------------------------------------------------


def test_an_order_telnyx_no_longer_shows_is_dropped_and_the_others_are_still_polled(following: Following):
    gone = "cccccccc-0000-4000-8000-000000000004"
    following.follow(gone)  # never polled: first in line
    following.follow()
    assert following.poll()["orders"] == 1
    following.track()
    recorded_gone, recorded = following.order(gone), following.order()
    assert recorded_gone is not None and not recorded_gone.following
    assert recorded is not None and recorded.following and recorded.status == "draft"


def test_a_document_telnyx_no_longer_shows_leaves_its_order_followed(following: Following):
    telnyx_document_id = attach(following.pipeline, "loa", LOA)
    following.emulator.inject(
        Fault(endpoint="documents", status=404, method="GET", path_contains=telnyx_document_id)
    )
    assert following.poll()["orders"] == 1
    following.track()
    recorded = following.order()
    assert recorded is not None and recorded.following and recorded.status == "draft"


def test_events_that_cannot_be_read_still_let_every_order_be_polled(following: Following):
    following.follow()
    following.emulator.inject(Fault(endpoint="porting_events", status=500, times=None))
    with pytest.raises(Exception, match="porting/events"):
        following.poll()
    following.track()
    recorded = following.order()
    assert recorded is not None and recorded.status == "draft"  # the order's snapshot went through


def test_a_key_that_cannot_be_read_now_is_answered_503_so_telnyx_sends_again(following: Following):
    boto3.client("secretsmanager").delete_secret(
        SecretId=following.pipeline.output("WebhookKeySecretArn"), ForceDeleteWithoutRecovery=True
    )
    parameters.clear_caches()
    wiring.clear_caches()
    assert following.post(notification()).status_code == 503
    assert following.queued() == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"data": ' * 5000 + b"1" + b"}" * 5000, id="nested-5000-deep"),
        pytest.param(
            notification(
                payload={
                    "id": PORTING_ORDER,
                    "status": {"value": "ported"},
                    "updated_at": "2026-12-04T10:00:00Z",
                }
            ).replace(b"2026-12-04T10:00:00.000000Z", b"9999-12-31T23:59:59-01:00"),
            id="time-past-the-calendar",
        ),
    ],
)
def test_signed_bodies_that_would_crash_a_parser_are_refused(following: Following, body: bytes):
    assert following.post(body).status_code == 422
    assert following.queued() == []


def test_a_fact_dated_far_ahead_is_refused_so_it_cannot_shut_out_real_ones(following: Following):
    following.post(status_body("ported", "2099-01-01T00:00:00Z", "e-future"))
    following.track()
    following.post(status_body("submitted", "2026-12-04T10:00:00Z", "e-now"))
    following.track()
    recorded = following.order()
    assert recorded is not None and recorded.status == "submitted"


def test_a_split_of_hundreds_of_numbers_in_one_notification_is_recorded(following: Following):
    part = "dddddddd-0000-4000-8000-000000000005"
    numbers = [{"id": f"n{i}", "phone_number": f"+1312555{i:04d}"} for i in range(300)]
    body = notification(
        event_type="porting_order.split",
        event_id="split-300",
        payload={"from": {"id": PORTING_ORDER}, "to": {"id": part}, "porting_phone_numbers": numbers},
    )
    assert following.post(body).status_code == 202
    following.track()
    recorded = following.order(part)
    assert recorded is not None and len(recorded.split_numbers) == 300
    assert following.pipeline.receive("NotificationsDeadLetterQueueUrl") == []


class WorkerKilled(BaseException):
    """What the function sees of an execution environment that dies: nothing after this line."""


def test_a_tracker_killed_after_the_write_announces_on_the_next_delivery_with_the_same_ids(
    following: Following, monkeypatch: pytest.MonkeyPatch
):
    following.follow()
    following.post(
        status_body(
            "exception", "2026-12-04T10:00:01Z", "e-killed", [{"code": "FOC_EXPIRED", "description": "x"}]
        )
    )
    (message,) = following.pipeline.receive("NotificationsQueueUrl")
    source = following.pipeline.runtime.source_for("TrackerFunction")
    tracker = following.pipeline.stack.functions["TrackerFunction"]

    def deliver() -> None:
        event = sqs_event(
            [{**message, "Attributes": {"ApproximateReceiveCount": "1"}}],
            source.queue_url,
            following.pipeline.stack.region,
        )
        following.pipeline.handlers["TrackerFunction"](event, LocalLambdaContext(tracker, "us-east-1"))

    def killed(*_: object) -> bool:
        raise WorkerKilled

    with monkeypatch.context() as dying:
        dying.setattr(EventBus, "put", killed)
        with pytest.raises(WorkerKilled):
            deliver()  # the status is written; the worker dies before announcing it
    recorded = following.order()
    assert recorded is not None and recorded.status == "exception"
    assert following.order_events() == [] and following.notices() == []

    deliver()  # SQS delivers the notification again
    deliver()  # and again: by now it is marked seen

    kinds = sorted(e["detail-type"] for e in following.order_events())
    assert kinds == ["Porting Order Needs Action", "Porting Order Status Changed"]
    (changed,) = [e for e in following.order_events() if e["detail-type"] == "Porting Order Status Changed"]
    assert changed["detail"]["status"] == "exception" and "previous_status" not in changed["detail"]
    assert len(following.notices()) == 1
    # An announcement made again carries the id it was first made with.
    assert changed["detail"]["event_id"] == stable_event_id(
        "Porting Order Status Changed", PORTING_ORDER, "e-killed", "exception"
    )


def test_a_review_recorded_by_a_killed_tracker_is_announced_when_the_poll_comes_again(
    following: Following, monkeypatch: pytest.MonkeyPatch
):
    telnyx_document_id = attach(following.pipeline, "loa", LOA)
    following.emulator.review_document(telnyx_document_id, "denied", "signature missing")
    following.poll()
    (message,) = [  # the order's snapshot, which carries the review
        m
        for m in following.pipeline.receive("NotificationsQueueUrl")
        if "portdocs.order_snapshot" in m["Body"]
    ]
    source = following.pipeline.runtime.source_for("TrackerFunction")
    tracker = following.pipeline.stack.functions["TrackerFunction"]
    event = sqs_event(
        [{**message, "Attributes": {"ApproximateReceiveCount": "1"}}],
        source.queue_url,
        following.pipeline.stack.region,
    )

    put = EventBus.put

    def killed_at_the_denial(bus: EventBus, detail_type: str, detail: Any) -> bool:
        if detail_type == "Document Denied":
            raise WorkerKilled
        return put(bus, detail_type, detail)

    with monkeypatch.context() as dying:
        dying.setattr(EventBus, "put", killed_at_the_denial)
        with pytest.raises(WorkerKilled):
            following.pipeline.handlers["TrackerFunction"](event, LocalLambdaContext(tracker, "us-east-1"))
    reviews = {e["telnyx_document_id"]: e.get("review_status") for e in following.pipeline.ledger().values()}
    assert reviews[telnyx_document_id] == "denied"  # recorded; the worker died announcing it
    assert "Document Denied" not in [e["detail-type"] for e in following.order_events()]

    following.pipeline.handlers["TrackerFunction"](event, LocalLambdaContext(tracker, "us-east-1"))

    kinds = [e["detail-type"] for e in following.order_events()]
    assert kinds.count("Document Denied") == 1 and kinds.count("Porting Order Needs Action") == 1
    assert len(following.notices()) == 1
