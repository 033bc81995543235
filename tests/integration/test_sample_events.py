"""The sample events in events/, one per input shape of every function and both flows: each is held
to the published schema of what it carries (portdocs.shapes, the one source of shapes) and to the
envelope AWS wraps it in, then fed through its function's own handler (functions/<name>/app.py)
under moto, against the Telnyx emulator over real HTTP. The samples name the intake bucket and
Telnyx objects of an imagined account; each test puts in this stack's bucket and what the emulator
holds, and nothing else (Telnyx's webhook is signed again with the emulator's key)."""

from __future__ import annotations

import copy
import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
import requests
from aws_lambda_powertools.utilities import parameters
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from portdocs import wiring
from portdocs.documents import DocumentType, State
from portdocs.orders import OrderRecord, Orders
from portdocs.porting_status import COMMENT_MAX, EventType, PortingEvent, moment, printable
from portdocs.shapes import (
    ASSOCIATION_REQUEST_SCHEMA,
    PORTING_NOTIFICATION_SCHEMA,
    S3_NOTIFICATION_SCHEMA,
    UPLOAD_REQUEST_SCHEMA,
    validate,
)
from portdocs_sandbox.runtime import sqs_event
from portdocs_sandbox.stack import load_template
from portdocs_sandbox.telnyx_emulator import TelnyxEmulator
from tests.support import EVENTS, INVOICE, LOA, PNG, PORT_REQUEST, PORTING_ORDER, SUB_REQUEST, Pipeline

UPLOADER, ASSOCIATOR, SWEEPER = "UploaderFunction", "AssociatorFunction", "SweeperFunction"
NOTIFICATIONS, TRACKER, POLLER = "NotificationsFunction", "TrackerFunction", "PollerFunction"
# Every sample: the function it is sent to, and the published schema of its message (None: a shape
# portdocs does not define, S3's own test event, the scheduler's events and Telnyx's webhook, each
# checked below).
SAMPLES: dict[str, tuple[str, str | None]] = {
    "intake-s3-notification.json": (UPLOADER, S3_NOTIFICATION_SCHEMA),
    "intake-s3-notification-porting-order.json": (UPLOADER, S3_NOTIFICATION_SCHEMA),
    "intake-s3-test-event.json": (UPLOADER, None),
    "intake-upload-request.json": (UPLOADER, UPLOAD_REQUEST_SCHEMA),
    "intake-upload-request-porting-order.json": (UPLOADER, UPLOAD_REQUEST_SCHEMA),
    "association-request.json": (ASSOCIATOR, ASSOCIATION_REQUEST_SCHEMA),
    "association-request-porting-order.json": (ASSOCIATOR, ASSOCIATION_REQUEST_SCHEMA),
    "sweeper-schedule.json": (SWEEPER, None),
    "notifications-webhook.json": (NOTIFICATIONS, None),
    "tracker-notification.json": (TRACKER, PORTING_NOTIFICATION_SCHEMA),
    "poller-schedule.json": (POLLER, None),
}
NOTHING_FAILED: dict[str, list[Any]] = {"batchItemFailures": []}
RESOURCES = load_template()["Resources"]


def template_events(function: str, event_type: str) -> dict[str, dict[str, Any]]:
    """The function's events of one type (SQS, ScheduleV2, HttpApi), by name, as the template has them."""
    events: dict[str, dict[str, Any]] = RESOURCES[function]["Properties"]["Events"]
    return {name: event for name, event in events.items() if event["Type"] == event_type}


def samples_of(event_type: str) -> list[str]:
    """The samples of the functions that an event of this type invokes."""
    return [name for name, (function, _) in SAMPLES.items() if template_events(function, event_type)]


SQS_SAMPLES = samples_of("SQS")
SCHEDULE_SAMPLES = samples_of("ScheduleV2")


def md5_of_body(body: str) -> str:
    """The MD5 SQS gives every message (md5OfBody): a checksum, not a security measure."""
    return hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()


def lambda_record_fields() -> set[str]:
    """What Lambda's SQS event source puts in each record (the sandbox's poller sends the same)."""
    message = {"MessageId": "m", "ReceiptHandle": "r", "Body": "{}", "MD5OfBody": md5_of_body("{}")}
    event = sqs_event([message], "https://sqs.us-east-1.amazonaws.com/123456789012/q", "us-east-1")
    return set(event["Records"][0])


def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


def body_of(event: dict[str, Any]) -> dict[str, Any]:
    (record,) = event["Records"]
    body: dict[str, Any] = json.loads(record["body"])
    return body


def flow_of(name: str) -> str:
    body = body_of(sample(name))
    if "Records" in body:  # an S3 notification: the key's folder names the flow
        key = body["Records"][0]["s3"]["object"]["key"]
        return "porting order" if key.startswith("porting-orders/") else "draft"
    return "porting order" if "porting_order_id" in body else "draft"


def template_queue_of(function: str) -> str:
    (event,) = template_events(function, "SQS").values()
    queue: str = event["Properties"]["Queue"]["Fn::GetAtt"][0]
    return queue


# -- the samples themselves ------------------------------------------------------------------------


def test_every_sample_in_events_is_one_these_tests_know():
    assert sorted(p.name for p in EVENTS.glob("*.json")) == sorted(SAMPLES)
    # Each is sent by exactly one kind of event source: a queue, a schedule or the HTTP API.
    kinds = [*SQS_SAMPLES, *SCHEDULE_SAMPLES, *samples_of("HttpApi")]
    assert sorted(kinds) == sorted(SAMPLES)


def test_every_function_has_samples_and_every_message_shape_one_per_flow():
    functions = {name for name, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}
    assert {function for function, _ in SAMPLES.values()} == functions
    for schema in (S3_NOTIFICATION_SCHEMA, UPLOAD_REQUEST_SCHEMA, ASSOCIATION_REQUEST_SCHEMA):
        flows = sorted(flow_of(name) for name, (_, of) in SAMPLES.items() if of == schema)
        assert flows == ["draft", "porting order"], schema


@pytest.mark.parametrize("name", [name for name, (_, schema) in SAMPLES.items() if schema])
def test_every_sample_message_matches_its_published_schema(name: str):
    _, schema = SAMPLES[name]
    assert schema is not None
    message = body_of(sample(name))
    validated = validate(copy.deepcopy(message), schema)
    assert {k: v for k, v in validated.items() if k in message} == message  # read, not rewritten


@pytest.mark.parametrize("name", SQS_SAMPLES)
def test_every_queue_sample_is_the_record_lambda_gets_from_its_functions_queue(name: str):
    function, _ = SAMPLES[name]
    (record,) = sample(name)["Records"]
    assert set(record) == lambda_record_fields()
    assert record["eventSource"] == "aws:sqs" and record["md5OfBody"] == md5_of_body(record["body"])
    attributes = record["attributes"]
    assert int(attributes["ApproximateFirstReceiveTimestamp"]) >= int(attributes["SentTimestamp"])
    queue_name = record["eventSourceARN"].rsplit(":", 1)[1]
    assert queue_name.split("-")[1] == template_queue_of(function)  # {stack}-{logical id}[-{suffix}]


def test_the_s3_test_event_is_s3s_own_and_names_no_document():
    message = body_of(sample("intake-s3-test-event.json"))
    assert message["Event"] == "s3:TestEvent" and message["Service"] == "Amazon S3"
    assert "Records" not in message


@pytest.mark.parametrize("name", SCHEDULE_SAMPLES)
def test_every_schedule_sample_is_what_its_functions_schedule_sends_to_it(name: str):
    """SAM's ScheduleV2 is an EventBridge Scheduler schedule named after the function and event,
    in the default group; without an Input of its own it sends the scheduler's notification."""
    function, _ = SAMPLES[name]
    ((event_name, schedule_event),) = template_events(function, "ScheduleV2").items()
    assert "Input" not in schedule_event["Properties"]
    event = sample(name)
    envelope = {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    assert set(event) == envelope
    assert (event["source"], event["detail-type"]) == ("aws.scheduler", "Scheduled Event")
    assert event["detail"] == "{}"  # a string: the scheduler's notification carries no detail of its own
    (schedule,) = event["resources"]
    scheduler = f"arn:aws:scheduler:{event['region']}:{event['account']}"
    assert schedule == f"{scheduler}:schedule/default/{function}{event_name}"


def telnyx_webhook(event: dict[str, Any]) -> dict[str, Any]:
    """The webhook the HTTP API request carries, as Telnyx sent it."""
    assert event["isBase64Encoded"] is False  # JSON: API Gateway passes it as text
    webhook: dict[str, Any] = json.loads(event["body"])
    return webhook


def test_the_webhook_sample_is_telnyxs_post_on_the_receivers_route():
    event = sample("notifications-webhook.json")
    ((_, route),) = template_events(NOTIFICATIONS, "HttpApi").items()
    method, path = route["Properties"]["Method"].upper(), route["Properties"]["Path"]
    context = event["requestContext"]
    assert (context["http"]["method"], event["rawPath"], context["http"]["path"]) == (method, path, path)
    assert event["routeKey"] == context["routeKey"] == f"{method} {path}"
    assert (event["version"], context["stage"], event["rawQueryString"]) == ("2.0", "$default", "")
    headers = event["headers"]
    assert all(name == name.lower() for name in headers)  # API Gateway lower-cases every name
    assert int(headers["content-length"]) == len(event["body"].encode())
    assert headers["host"] == context["domainName"].replace(context["domainPrefix"], context["apiId"], 1)
    assert headers["user-agent"] == context["http"]["userAgent"]
    assert headers["x-forwarded-for"] == context["http"]["sourceIp"]
    assert context["timeEpoch"] // 1000 == int(headers["telnyx-timestamp"])  # sent as it was signed
    webhook = telnyx_webhook(event)
    assert (webhook["data"]["event_type"], webhook["data"]["record_type"]) == (
        EventType.STATUS_CHANGED,
        "event",
    )
    assert webhook["data"]["payload"]["id"] == PORTING_ORDER
    assert webhook["meta"]["delivered_to"] == f"https://{headers['host']}{path}"


def local_http_event(pipeline: Pipeline, event: dict[str, Any]) -> dict[str, Any]:
    """What the local runtime's HTTP API (portdocs_sandbox.runtime) sends the receiver for the same
    request: the sample's method, path, headers and body."""
    (route,) = [r for r in pipeline.stack.http_routes if r.function == NOTIFICATIONS]
    headers = event["headers"]
    builder = EnvironBuilder(
        method=event["requestContext"]["http"]["method"],
        path=event["rawPath"],
        base_url=f"{headers['x-forwarded-proto']}://{headers['host']}",
        headers={k: v for k, v in headers.items() if k not in ("host", "content-type", "content-length")},
        content_type=headers["content-type"],
        data=event["body"].encode(),
    )
    local: dict[str, Any] = pipeline.runtime.http_event(route, Request(builder.get_environ()))
    return local


# What API Gateway sends that the local runtime leaves out; nothing the receiver reads.
def test_the_webhook_sample_and_the_local_http_api_send_the_same_fields(pipeline: Pipeline):
    event = sample("notifications-webhook.json")
    local = local_http_event(pipeline, event)
    assert set(local) == set(event)
    assert set(local["headers"]) == set(event["headers"])
    context, local_context = event["requestContext"], local["requestContext"]
    assert set(local_context) == set(context)
    assert set(local_context["http"]) == set(context["http"])
    for field in ("version", "routeKey", "rawPath", "rawQueryString", "body", "isBase64Encoded"):
        assert local[field] == event[field], field
    for field in ("routeKey", "stage"):
        assert local_context[field] == context[field], field
    assert {k: local_context["http"][k] for k in ("method", "path", "userAgent")} == {
        k: context["http"][k] for k in ("method", "path", "userAgent")
    }
    assert type(local_context["timeEpoch"]) is type(context["timeEpoch"]) is int


def test_the_tracker_sample_is_what_the_receiver_queues_for_its_webhook():
    message = body_of(sample("tracker-notification.json"))
    event = PortingEvent.from_message(message)
    assert event.as_message() == message  # as the receiver (and the poller) write it
    assert (event.event_type, event.received_via, event.porting_order_id) == (
        EventType.NEW_COMMENT,
        "webhook",
        PORTING_ORDER,
    )
    assert message["payload"]["comment"]["user_type"] == "admin"  # Telnyx's porting team


# -- each fed through its handler ---------------------------------------------------------------------


def invoke(pipeline: Pipeline, function: str, event: dict[str, Any]) -> Any:
    """The function's own handler (functions/<name>/app.py), under its environment from the template."""
    return pipeline.runtime.invoker.invoke(pipeline.stack.functions[function], event)


def on_this_stack(
    pipeline: Pipeline, function: str, event: dict[str, Any], body: dict[str, Any]
) -> dict[str, Any]:
    """The sample's record with `body` in it, from the function's queue on this stack."""
    event = copy.deepcopy(event)
    (record,) = event["Records"]
    queue_url = pipeline.runtime.source_for(function).queue_url
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    record["eventSourceARN"] = attributes["Attributes"]["QueueArn"]
    record["body"] = json.dumps(body)
    record["md5OfBody"] = md5_of_body(record["body"])
    return event


def the_one(items: list[Any]) -> Any:
    assert len(items) == 1, items
    return items[0]


def queued_association(pipeline: Pipeline) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(the_one(pipeline.receive("AssociationQueueUrl"))["Body"])
    validate(copy.deepcopy(message), ASSOCIATION_REQUEST_SCHEMA)
    return message


def v2_uploads(emulator: TelnyxEmulator) -> list[dict[str, Any]]:
    return [call for call in emulator.calls("documents") if call["method"] == "POST"]


def s3_notification_for_this_stack(
    pipeline: Pipeline, name: str, content: bytes
) -> tuple[dict[str, Any], str]:
    """The sample's notification, of a file now dropped at its key: this bucket, this version."""
    event = sample(name)
    notification = body_of(event)
    record = notification["Records"][0]
    key = unquote_plus(record["s3"]["object"]["key"])
    put = pipeline.drop(key, content)
    pipeline.receive("IntakeQueueUrl")  # moto's own notification of the drop: the sample stands in for it
    record["s3"]["bucket"].update(name=pipeline.bucket, arn=f"arn:aws:s3:::{pipeline.bucket}")
    record["s3"]["object"].update(size=len(content), eTag=put["ETag"].strip('"'), versionId=put["VersionId"])
    return on_this_stack(pipeline, UPLOADER, event, notification), key


def test_the_draft_s3_notification_sample_is_uploaded_and_its_association_queued(pipeline: Pipeline):
    event, key = s3_notification_for_this_stack(pipeline, "intake-s3-notification.json", LOA)

    assert invoke(pipeline, UPLOADER, event) == NOTHING_FAILED

    form_post = the_one(pipeline.emulator.calls("files"))
    assert (form_post["file_name"], form_post["file_size"]) == (
        "Letter of Authorization +1 été.pdf",
        len(LOA),
    )
    association = queued_association(pipeline)
    target = (association["draft_port_request_id"], association["draft_sub_request_id"])
    assert target == (PORT_REQUEST, SUB_REQUEST) and association["document_type"] == DocumentType.LOA
    assert pipeline.emulator.stored_bytes(association["url"]) == LOA
    assert association["source"]["key"] == key
    assert the_one(list(pipeline.ledger().values()))["state"] == State.UPLOADED
    assert not pipeline.emulator.calls("documents")  # the legacy files service only


def test_the_porting_order_s3_notification_sample_is_uploaded_to_the_documents_service(pipeline: Pipeline):
    event, key = s3_notification_for_this_stack(pipeline, "intake-s3-notification-porting-order.json", LOA)

    assert invoke(pipeline, UPLOADER, event) == NOTHING_FAILED

    the_one(v2_uploads(pipeline.emulator))
    stored = the_one(pipeline.emulator.v2_documents())
    assert stored["sha256"] == hashlib.sha256(LOA).hexdigest()
    assert stored["filename"] == "SignedLOAGlobexLtd2026-11.pdf"  # Telnyx removes the spaces
    association = queued_association(pipeline)
    assert (
        association["porting_order_id"] == PORTING_ORDER and association["document_type"] == DocumentType.LOA
    )
    assert association["telnyx_document_id"] == stored["id"] and association["source"]["key"] == key
    assert the_one(list(pipeline.ledger().values()))["state"] == State.UPLOADED
    assert not pipeline.emulator.calls("upload_requests") and not pipeline.emulator.calls("files")


def test_the_s3_test_event_sample_is_acknowledged_and_does_nothing(pipeline: Pipeline):
    event = sample("intake-s3-test-event.json")
    message = {**body_of(event), "Bucket": pipeline.bucket}

    assert invoke(pipeline, UPLOADER, on_this_stack(pipeline, UPLOADER, event, message)) == NOTHING_FAILED

    assert pipeline.emulator.calls() == [] and pipeline.ledger() == {}
    assert pipeline.receive("AssociationQueueUrl") == []


def upload_request_for_this_stack(
    pipeline: Pipeline, name: str, content: bytes
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The sample's upload request, of a file now in this stack's bucket at the key it names."""
    event = sample(name)
    request = {**body_of(event), "bucket": pipeline.bucket}
    pipeline.drop(request["key"], content)
    pipeline.receive("IntakeQueueUrl")  # the drop's own notification (outside the layout) is not the sample's
    return on_this_stack(pipeline, UPLOADER, event, request), request


def test_the_draft_upload_request_sample_is_uploaded_and_its_association_queued(pipeline: Pipeline):
    event, request = upload_request_for_this_stack(pipeline, "intake-upload-request.json", LOA)

    assert invoke(pipeline, UPLOADER, event) == NOTHING_FAILED

    form_post = the_one(pipeline.emulator.calls("files"))
    assert form_post["file_name"] == "acme-loa-signed.pdf"
    association = queued_association(pipeline)
    target = {k: association[k] for k in ("draft_port_request_id", "draft_sub_request_id", "document_type")}
    assert target == {k: request[k] for k in target}
    assert association["description"] == request["description"]
    assert pipeline.emulator.stored_bytes(association["url"]) == LOA
    assert association["source"]["bucket"] == pipeline.bucket
    assert association["source"]["key"] == request["key"]
    assert the_one(list(pipeline.ledger().values()))["state"] == State.UPLOADED


def test_the_porting_order_upload_request_sample_is_uploaded_and_its_association_queued(pipeline: Pipeline):
    name = "intake-upload-request-porting-order.json"
    event, request = upload_request_for_this_stack(pipeline, name, INVOICE)

    assert invoke(pipeline, UPLOADER, event) == NOTHING_FAILED

    the_one(v2_uploads(pipeline.emulator))
    stored = the_one(pipeline.emulator.v2_documents())
    assert stored["sha256"] == hashlib.sha256(INVOICE).hexdigest()
    association = queued_association(pipeline)
    assert association["porting_order_id"] == PORTING_ORDER
    assert association["document_type"] == DocumentType.INVOICE
    assert association["telnyx_document_id"] == stored["id"]
    assert association["description"] == request["description"]
    assert the_one(list(pipeline.ledger().values()))["state"] == State.UPLOADED
    assert not pipeline.emulator.calls("files")


def upload_to_the_files_service(emulator: TelnyxEmulator, file_name: str, content: bytes) -> str:
    """What an upstream system does before it sends an association request: returns the Location."""
    credentials = {
        "x-api-user": emulator.credentials["api_user"] or "",
        "x-api-token": emulator.credentials["api_token"] or "",
    }
    asked = {"content_type": "application/pdf"}
    url = f"{emulator.api_url}/files/upload_requests"
    form = requests.post(url, json=asked, headers=credentials, timeout=10).json()
    file_part = {form["file_form_field"]: (file_name, content)}
    posted = requests.post(form["url"], data=form["form_fields"], files=file_part, timeout=10)
    assert posted.status_code == 204, posted.text
    location: str = posted.headers["Location"]
    return location


def upload_to_the_documents_service(
    emulator: TelnyxEmulator, file_name: str, content: bytes
) -> dict[str, Any]:
    answer = requests.post(
        f"{emulator.api_url}/v2/documents",
        files={"file": (file_name, content)},
        headers={"Authorization": f"Bearer {emulator.credentials['api_key']}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()["data"]
    return document


def test_the_draft_association_sample_attaches_the_uploaded_file_to_its_sub_request(pipeline: Pipeline):
    event = sample("association-request.json")
    request = body_of(event)
    file_name = unquote_plus(request["url"].rsplit("%2F", 1)[1])  # "October invoice.pdf"
    location = upload_to_the_files_service(pipeline.emulator, file_name, INVOICE)
    # The sample's URL is what the files service answers: its key's last segment, encoded alike.
    assert location.endswith(request["url"][request["url"].rindex("%2F") :])
    request["url"] = location

    assert invoke(pipeline, ASSOCIATOR, on_this_stack(pipeline, ASSOCIATOR, event, request)) == NOTHING_FAILED

    document = the_one(pipeline.emulator.documents())
    assert document["draft_port_request_id"] == PORT_REQUEST
    assert document["draft_sub_request_id"] == SUB_REQUEST
    assert (document["document_type"], document["url"]) == (DocumentType.INVOICE, location)
    assert document["body"] == request["description"]
    entry = the_one(list(pipeline.ledger().values()))
    assert entry["state"] == State.ASSOCIATED and entry["telnyx_document_id"] == document["id"]


def test_the_porting_order_association_sample_links_the_document_to_the_order(pipeline: Pipeline):
    event = sample("association-request-porting-order.json")
    request = body_of(event)
    uploaded = upload_to_the_documents_service(pipeline.emulator, "Customer service record.png", PNG)
    request.update(telnyx_document_id=uploaded["id"], uploaded_at=uploaded["created_at"])

    assert invoke(pipeline, ASSOCIATOR, on_this_stack(pipeline, ASSOCIATOR, event, request)) == NOTHING_FAILED

    order = pipeline.emulator.porting_order(PORTING_ORDER)
    (linked,) = order["additional_documents"]  # a CSR is one of an order's additional documents
    assert (linked["document_id"], linked["document_type"]) == (uploaded["id"], DocumentType.CSR)
    assert order["documents"] == {"loa": None, "invoice": None}
    link = the_one(pipeline.emulator.links())
    assert (link["document_id"], link["porting_order_id"]) == (uploaded["id"], PORTING_ORDER)
    entry = the_one(list(pipeline.ledger().values()))
    assert entry["state"] == State.ASSOCIATED and entry["telnyx_document_id"] == uploaded["id"]


def as_if_untouched_for_two_hours(pipeline: Pipeline, document_id: str) -> None:
    table = boto3.resource("dynamodb").Table(pipeline.output("DocumentsTableName"))
    two_hours_ago = datetime.fromtimestamp(time.time() - 7200, UTC).isoformat(timespec="seconds")
    table.update_item(
        Key={"document_id": document_id},
        UpdateExpression="SET updated_at = :then",
        ExpressionAttributeValues={":then": two_hours_ago},
    )


def test_the_sweeper_sample_puts_a_stuck_document_through_again_and_returns_its_summary(pipeline: Pipeline):
    pipeline.drop(f"porting-orders/{PORTING_ORDER}/loa/loa.pdf", LOA)
    pipeline.runtime.poll_once(pipeline.runtime.source_for(UPLOADER))
    pipeline.receive("AssociationQueueUrl")  # the association request is lost
    (document_id,) = pipeline.ledger()
    as_if_untouched_for_two_hours(pipeline, document_id)

    summary = invoke(pipeline, SWEEPER, sample("sweeper-schedule.json"))
    pipeline.runtime.drain()

    assert summary == {"stuck": 1, "redriven": 1}
    entry = pipeline.ledger()[document_id]
    assert entry["state"] == State.ASSOCIATED and entry["sweeps"] == 1
    assert pipeline.emulator.porting_order(PORTING_ORDER)["documents"]["loa"] == entry["telnyx_document_id"]
    assert invoke(pipeline, SWEEPER, sample("sweeper-schedule.json")) == {"stuck": 0}


def set_webhook_key(pipeline: Pipeline, public_key: str) -> None:
    """The stack's webhook key secret holds `public_key` (test_following_orders does the same)."""
    boto3.client("secretsmanager").put_secret_value(
        SecretId=pipeline.output("WebhookKeySecretArn"), SecretString=json.dumps({"public_key": public_key})
    )
    parameters.clear_caches()
    wiring.clear_caches()


def signed_now(pipeline: Pipeline, event: dict[str, Any]) -> dict[str, Any]:
    """The sample, its exact body signed by the emulator's webhook key at this moment."""
    event = copy.deepcopy(event)
    timestamp = str(int(time.time()))
    signature = pipeline.emulator.sign(timestamp, event["body"].encode())
    event["headers"].update({"telnyx-timestamp": timestamp, "telnyx-signature-ed25519": signature})
    return event


def answer_of(response: dict[str, Any]) -> tuple[int, str]:
    reason: str = json.loads(response["body"])["reason"]
    return response["statusCode"], reason


def test_the_webhook_sample_signed_now_is_queued_for_the_tracker_and_as_it_is_refused(pipeline: Pipeline):
    event = sample("notifications-webhook.json")
    set_webhook_key(pipeline, pipeline.emulator.webhook_public_key)

    # Its own signature is no key's here, and its timestamp long past: a replay of it is refused.
    assert answer_of(invoke(pipeline, NOTIFICATIONS, event)) == (401, "timestamp outside the tolerance")
    assert pipeline.receive("NotificationsQueueUrl") == []

    assert answer_of(invoke(pipeline, NOTIFICATIONS, signed_now(pipeline, event))) == (202, "queued")

    queued = json.loads(the_one(pipeline.receive("NotificationsQueueUrl"))["Body"])
    expected = PortingEvent.from_telnyx(telnyx_webhook(event), received_via="webhook")
    assert queued == expected.as_message() and queued["received_via"] == "webhook"
    assert (queued["id"], queued["porting_order_id"]) == (telnyx_webhook(event)["data"]["id"], PORTING_ORDER)
    assert validate(copy.deepcopy(queued), PORTING_NOTIFICATION_SCHEMA) == queued


def orders_table(pipeline: Pipeline) -> Orders:
    return Orders(boto3.client("dynamodb"), pipeline.output("PortingOrdersTableName"))


def notices(pipeline: Pipeline) -> list[tuple[str, str]]:
    """The needs-action notices published on the stack's topic (moto keeps them)."""
    topic = sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].topics[pipeline.output("ActionTopicArn")]
    return [(str(subject), message) for _, message, subject, _, _ in topic.sent_notifications]


def test_the_tracker_sample_records_the_comment_and_tells_a_person_once(pipeline: Pipeline):
    event = sample("tracker-notification.json")
    message = body_of(event)
    comment = message["payload"]["comment"]
    delivered = on_this_stack(pipeline, TRACKER, event, message)
    orders_table(pipeline).follow(PORTING_ORDER)  # as the associator does once it attached a document

    assert invoke(pipeline, TRACKER, delivered) == NOTHING_FAILED

    order = orders_table(pipeline).get(PORTING_ORDER)
    assert isinstance(order, OrderRecord)
    assert (order.comment, order.comment_by, order.comment_at) == (
        printable(comment["body"], COMMENT_MAX),
        "admin",
        moment(comment["inserted_at"]),
    )
    subject, notice = the_one(notices(pipeline))
    assert PORTING_ORDER[:8] in subject and "has a new comment from Telnyx's staff" in notice
    assert comment["body"] in notice

    assert invoke(pipeline, TRACKER, delivered) == NOTHING_FAILED  # SQS delivers it again

    assert orders_table(pipeline).get(PORTING_ORDER) == order
    assert len(notices(pipeline)) == 1


def test_the_poller_sample_queues_telnyxs_events_and_each_followed_orders_snapshot(pipeline: Pipeline):
    orders_table(pipeline).follow(PORTING_ORDER)  # a document of it was attached
    made = [
        pipeline.emulator.set_order_status(PORTING_ORDER, "in-process"),
        pipeline.emulator.add_comment(PORTING_ORDER, "We have submitted the order to the losing carrier."),
    ]

    assert invoke(pipeline, POLLER, sample("poller-schedule.json")) == {"events": 2, "orders": 1}

    queued = [json.loads(m["Body"]) for m in pipeline.receive("NotificationsQueueUrl")]
    for message in queued:
        assert validate(copy.deepcopy(message), PORTING_NOTIFICATION_SCHEMA) == message
        assert message["received_via"] == "poll" and message["porting_order_id"] == PORTING_ORDER
    read = [m for m in queued if m["event_type"] != EventType.ORDER_SNAPSHOT]
    assert sorted(m["id"] for m in read) == sorted(e["id"] for e in made)
    snapshot = the_one([m for m in queued if m["event_type"] == EventType.ORDER_SNAPSHOT])
    assert snapshot["id"].startswith(f"snapshot:{PORTING_ORDER}:")
    assert snapshot["payload"]["order"]["status"]["value"] == "in-process"
    assert orders_table(pipeline).following(10) == [PORTING_ORDER]  # polled, still followed
