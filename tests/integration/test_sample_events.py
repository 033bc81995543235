"""The sample events in events/, one per input shape of every function and both flows: each is held
to the published schema of what it carries (portdocs.shapes, the one source of shapes) and to the
envelope AWS wraps it in, then fed through its function's own handler (functions/<name>/app.py)
under moto, against the Telnyx emulator over real HTTP. The samples name the intake bucket and
Telnyx objects of an imagined account; each test puts in this stack's bucket and what the emulator
holds, and nothing else."""

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

from portdocs.documents import DocumentType, State
from portdocs.shapes import (
    ASSOCIATION_REQUEST_SCHEMA,
    S3_NOTIFICATION_SCHEMA,
    UPLOAD_REQUEST_SCHEMA,
    validate,
)
from portdocs_sandbox.runtime import sqs_event
from portdocs_sandbox.stack import load_template
from portdocs_sandbox.telnyx_emulator import TelnyxEmulator
from tests.support import EVENTS, INVOICE, LOA, PNG, PORT_REQUEST, PORTING_ORDER, SUB_REQUEST, Pipeline

UPLOADER, ASSOCIATOR, SWEEPER = "UploaderFunction", "AssociatorFunction", "SweeperFunction"
# Every sample: the function it is sent to, and the published schema of its message (None: a shape
# portdocs does not define, S3's own test event and the scheduler's event, both checked below).
SAMPLES: dict[str, tuple[str, str | None]] = {
    "intake-s3-notification.json": (UPLOADER, S3_NOTIFICATION_SCHEMA),
    "intake-s3-notification-porting-order.json": (UPLOADER, S3_NOTIFICATION_SCHEMA),
    "intake-s3-test-event.json": (UPLOADER, None),
    "intake-upload-request.json": (UPLOADER, UPLOAD_REQUEST_SCHEMA),
    "intake-upload-request-porting-order.json": (UPLOADER, UPLOAD_REQUEST_SCHEMA),
    "association-request.json": (ASSOCIATOR, ASSOCIATION_REQUEST_SCHEMA),
    "association-request-porting-order.json": (ASSOCIATOR, ASSOCIATION_REQUEST_SCHEMA),
    "sweeper-schedule.json": (SWEEPER, None),
}
NOTHING_FAILED: dict[str, list[Any]] = {"batchItemFailures": []}
SQS_SAMPLES = [name for name, (function, _) in SAMPLES.items() if function != SWEEPER]
RESOURCES = load_template()["Resources"]


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
    (event,) = [e for e in RESOURCES[function]["Properties"]["Events"].values() if e["Type"] == "SQS"]
    queue: str = event["Properties"]["Queue"]["Fn::GetAtt"][0]
    return queue


# -- the samples themselves ------------------------------------------------------------------------


def test_every_sample_in_events_is_one_these_tests_know():
    assert sorted(p.name for p in EVENTS.glob("*.json")) == sorted(SAMPLES)


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


def test_the_sweeper_sample_is_what_its_schedule_sends_to_it():
    """SAM's ScheduleV2 is an EventBridge Scheduler schedule named after the function and event,
    in the default group; without an Input of its own it sends the scheduler's notification."""
    (name,) = [n for n, e in RESOURCES[SWEEPER]["Properties"]["Events"].items() if e["Type"] == "ScheduleV2"]
    assert "Input" not in RESOURCES[SWEEPER]["Properties"]["Events"][name]["Properties"]
    event = sample("sweeper-schedule.json")
    envelope = {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    assert set(event) == envelope
    assert (event["source"], event["detail-type"]) == ("aws.scheduler", "Scheduled Event")
    assert event["detail"] == "{}"  # a string: the scheduler's notification carries no detail of its own
    (schedule,) = event["resources"]
    scheduler = f"arn:aws:scheduler:{event['region']}:{event['account']}"
    assert schedule == f"{scheduler}:schedule/default/{SWEEPER}{name}"


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
