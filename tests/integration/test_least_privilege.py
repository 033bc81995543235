"""Each function's role grants what its code calls, and nothing its code never calls.

moto enforces no IAM, so a call the role does not grant would pass every other test and fail on
AWS. Here each function does its jobs (a document associated, one retried after a transient fault,
one rejected, records handed back, a stuck document swept), every AWS call it makes is recorded
with the IAM action and resource it needs, and both are held to template.yaml's grants."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.client
import pytest
from aws_lambda_powertools.utilities import parameters as parameters_cache

from portdocs import handler, wiring
from portdocs.documents import UNLINKED_DOCUMENT_LIFETIME_SECONDS
from portdocs.redelivery import FIRST_SENT_ATTRIBUTE, MAX_AGE_SECONDS
from portdocs_sandbox.runtime import LocalLambdaContext, sqs_event
from portdocs_sandbox.telnyx_emulator import Fault
from tests.support import (
    PORT_REQUEST,
    PORTING_ORDER,
    SAMPLES,
    SUB_REQUEST,
    Pipeline,
    s3_event,
    template_grants,
)

LOA = (SAMPLES / "Letter of Authorization.pdf").read_bytes()
FUNCTIONS = ("UploaderFunction", "AssociatorFunction", "SweeperFunction")
# Granted for Lambda itself, not for the code: the SQS event source mapping polls with the
# function's role; Lambda writes the log stream and the traces.
FOR_LAMBDA_ITSELF = {
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}
# Granted so that a missing object answers 404 rather than 403: a permission S3 consults, no call.
CONSULTED_BY_S3 = {"s3:ListBucket"}
# Powertools reads a record it collided with from the failed write's answer (DynamoDB returns it),
# and calls GetItem only when an answer lacks it (idempotency/base.py: `exc.old_data_record or
# self._get_idempotency_record()`): granted for that path, which DynamoDB does not take today.
FALLBACKS = {("dynamodb:GetItem", "IdempotencyTable")}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str, str, dict[str, Any]]]]:
    """(function name, service, operation, parameters) of every AWS call made inside a function,
    each function starting as a new execution environment would: with nothing cached by earlier tests."""
    handler._redelivery.cache_clear()
    wiring.clear_caches()
    parameters_cache.clear_caches()
    recorded: list[tuple[str, str, str, dict[str, Any]]] = []
    # botocore's private hook every client call passes through; botocore-stubs leaves it out.
    make_api_call = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]

    def record(client: Any, operation: str, parameters: dict[str, Any]) -> Any:
        function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")  # set only while a function runs
        if function:
            recorded.append((function, client.meta.service_model.signing_name, operation, dict(parameters)))
        return make_api_call(client, operation, parameters)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    yield recorded


def needs(pipeline: Pipeline, service: str, operation: str, parameters: dict[str, Any]) -> tuple[str, str]:
    """The IAM action and the resource (as template.yaml names it) a call needs."""
    logical = {physical: logical for logical, physical in pipeline.stack.physical_ids.items()}
    if service == "s3":
        versioned = "Version" if parameters.get("VersionId") else ""
        action = {
            "HeadObject": f"GetObject{versioned}",
            "GetObject": f"GetObject{versioned}",
            "GetObjectTagging": f"GetObject{versioned}Tagging",
            "PutObjectTagging": f"PutObject{versioned}Tagging",
        }[operation]
        return f"s3:{action}", "IntakeBucket/*" if parameters["Bucket"] == pipeline.bucket else parameters[
            "Bucket"
        ]
    if service == "sqs":
        if operation == "GetQueueUrl":
            queue = next(url for url in logical if url.endswith("/" + parameters["QueueName"]))
        else:
            queue = parameters["QueueUrl"]
        return f"sqs:{'SendMessage' if operation == 'SendMessageBatch' else operation}", logical[queue]
    if service == "dynamodb":
        table = logical[parameters["TableName"]]
        index = f"/index/{parameters['IndexName']}" if "IndexName" in parameters else ""
        return f"dynamodb:{operation}", table + index
    if service == "secretsmanager":
        secrets = {
            pipeline.output("CredentialsSecretArn"): "CredentialsSecret|TelnyxCredentialsSecretArn",
            pipeline.output("WebhookKeySecretArn"): "WebhookKeySecret|TelnyxWebhookKeySecretArn",
        }
        return f"secretsmanager:{operation}", secrets[parameters["SecretId"]]
    if service == "events":
        return f"events:{operation}", "event-bus/EventBusName"
    if service == "sns":
        assert parameters["TopicArn"] == pipeline.output("ActionTopicArn")
        return f"sns:{operation}", "ActionTopic"
    raise AssertionError(f"a call template.yaml was never asked about: {service} {operation}")


def key(file_name: str) -> str:
    return f"{PORT_REQUEST}/{SUB_REQUEST}/loa/{file_name}"


def as_function(monkeypatch: pytest.MonkeyPatch, pipeline: Pipeline, logical_id: str) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", pipeline.stack.functions[logical_id].name)


def test_every_call_is_granted_and_every_grant_is_called(
    pipeline: Pipeline, calls: list[tuple[str, str, str, dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
):
    # Associated, after a refusal that keeps it for another try (Powertools releases its record).
    pipeline.emulator.inject(Fault(endpoint="supporting_documents", status=401, times=1))
    pipeline.drop(key("associated.pdf"), LOA)
    pipeline.runtime.drain()
    # A porting order's upload Telnyx deleted before it was linked goes back for a fresh upload.
    pipeline.drop(f"porting-orders/{PORTING_ORDER}/loa/expired.pdf", LOA)
    pipeline.runtime.poll_once(pipeline.runtime.source_for("UploaderFunction"))
    pipeline.emulator.advance_clock(UNLINKED_DOCUMENT_LIFETIME_SECONDS + 60)
    pipeline.runtime.drain()
    # As a versioned bucket's S3 sends it (versionId), delivered twice.
    put = pipeline.drop(key("versioned.pdf"), LOA)
    pipeline.receive("IntakeQueueUrl")  # moto's own notification, which lacks the version id
    for _ in range(2):
        pipeline.send("IntakeQueueUrl", s3_event(pipeline.bucket, key("versioned.pdf"), put, len(LOA)))
        pipeline.runtime.drain()
    # Rejected: not a document.
    pipeline.drop(key("notes.pdf"), b"plain text, not a PDF")
    pipeline.runtime.drain()
    # Handed back to its own queue: no time left in the invocation.
    pipeline.drop(key("late.pdf"), LOA)
    (intake,) = pipeline.receive("IntakeQueueUrl")
    with monkeypatch.context() as inside:
        as_function(inside, pipeline, "UploaderFunction")
        pipeline.invoke("uploader", [intake["Body"]], timeout=12)
    pipeline.runtime.poll_once(pipeline.runtime.source_for("UploaderFunction"))
    (association,) = pipeline.receive("AssociationQueueUrl")
    with monkeypatch.context() as inside:
        as_function(inside, pipeline, "AssociatorFunction")
        pipeline.invoke("associator", [association["Body"]], timeout=12)
    # Handed back for longer than a day: on to its dead-letter queue, with its reason.
    for function, logical in (("uploader", "UploaderFunction"), ("associator", "AssociatorFunction")):
        with monkeypatch.context() as inside:
            as_function(inside, pipeline, logical)
            pipeline.invoke(function, ["{not json"], timeout=12, attributes=TOO_OLD)
    # Stuck (their association requests lost): one is put through the associator again, one
    # through the uploader (as if its worker had died before the upload), and one whose file was
    # replaced meanwhile is ended superseded.
    table = boto3.resource("dynamodb").Table(pipeline.output("DocumentsTableName"))
    stuck = {}
    for name in ("lost-association.pdf", "lost-upload.pdf", "replaced.pdf"):
        put = pipeline.drop(key(name), LOA)
        pipeline.receive("IntakeQueueUrl")
        pipeline.send("IntakeQueueUrl", s3_event(pipeline.bucket, key(name), put, len(LOA)))
        pipeline.runtime.poll_once(pipeline.runtime.source_for("UploaderFunction"))
        pipeline.receive("AssociationQueueUrl")
        items: list[dict[str, Any]] = table.scan()["Items"]
        (stuck[name],) = [i["document_id"] for i in items if i["document_id"].count(name)]
    pipeline.drop(key("replaced.pdf"), LOA + b"%% signed again")
    pipeline.receive("IntakeQueueUrl")
    for name, document_id in stuck.items():
        lost_upload = name == "lost-upload.pdf"
        table.update_item(
            Key={"document_id": document_id},
            UpdateExpression="SET updated_at = :old, #state = :state"
            + (" REMOVE location_url" if lost_upload else ""),
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":old": "2020-01-01T00:00:00+00:00",
                ":state": "received" if lost_upload else "uploaded",
            },
        )
    guards = boto3.resource("dynamodb").Table(pipeline.output("IdempotencyTableName"))
    for guard in guards.scan()["Items"]:  # the dead worker completed nothing
        guards.delete_item(Key={"id": guard["id"]})
    assert pipeline.runtime.invoke_scheduled("SweeperFunction") == {"stuck": 3, "redriven": 2, "ended": 1}
    pipeline.runtime.drain()
    assert [table.get_item(Key={"document_id": d})["Item"]["state"] for d in stuck.values()] == [
        "associated",
        "associated",
        "superseded",
    ]

    assert_exactly_granted(pipeline, calls, FUNCTIONS)


def test_following_orders_calls_what_is_granted_and_nothing_else(
    pipeline: Pipeline, calls: list[tuple[str, str, str, dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
):
    emulator = pipeline.emulator
    boto3.client("secretsmanager").put_secret_value(
        SecretId=pipeline.output("WebhookKeySecretArn"),
        SecretString=json.dumps({"public_key": emulator.webhook_public_key}),
    )
    url = pipeline.runtime.serve_http() + "/telnyx/porting"
    try:
        # Attached (the associator starts following the order), then reviewed and moved on by
        # Telnyx: a signed webhook through the receiver, read by the poller, applied by the tracker.
        pipeline.drop(f"porting-orders/{PORTING_ORDER}/loa/loa.pdf", LOA)
        pipeline.runtime.drain()
        (entry,) = pipeline.ledger().values()
        emulator.send_webhooks_to(url)
        emulator.set_order_status(PORTING_ORDER, "exception", [{"code": "OTHER", "description": "x"}])
        emulator.review_document(str(entry["telnyx_document_id"]), "denied", "unsigned")
        assert pipeline.runtime.invoke_scheduled("PollerFunction")["orders"] == 1
        # Handed back to their own queue: no time left in the invocation.
        received = pipeline.receive("NotificationsQueueUrl")
        source = pipeline.runtime.source_for("TrackerFunction")
        event = sqs_event(
            [{**m, "Attributes": {"ApproximateReceiveCount": "1"}} for m in received],
            source.queue_url,
            pipeline.stack.region,
        )
        tracker = pipeline.stack.functions["TrackerFunction"]
        with monkeypatch.context() as inside:
            as_function(inside, pipeline, "TrackerFunction")
            pipeline.handlers["TrackerFunction"](event, LocalLambdaContext(tracker, "us-east-1", timeout=12))
        pipeline.runtime.drain()
        # Handed back for longer than a day: on to its dead-letter queue, with its reason.
        too_old = sqs_event(
            [{**received[0], "MessageAttributes": TOO_OLD}], source.queue_url, pipeline.stack.region
        )
        with monkeypatch.context() as inside:
            as_function(inside, pipeline, "TrackerFunction")
            pipeline.handlers["TrackerFunction"](
                too_old, LocalLambdaContext(tracker, "us-east-1", timeout=12)
            )
    finally:
        emulator.send_webhooks_to(None)
        pipeline.runtime.close()
    assert [m["Body"] for m in pipeline.receive("NotificationsDeadLetterQueueUrl")] == [received[0]["Body"]]

    assert_exactly_granted(pipeline, calls, ("NotificationsFunction", "TrackerFunction", "PollerFunction"))


TOO_OLD = {
    FIRST_SENT_ATTRIBUTE: {
        "DataType": "Number",
        "StringValue": str(int((time.time() - MAX_AGE_SECONDS - 60) * 1000)),
    }
}


def assert_exactly_granted(
    pipeline: Pipeline, calls: list[tuple[str, str, str, dict[str, Any]]], functions: tuple[str, ...]
) -> None:
    names = {pipeline.stack.functions[logical].name: logical for logical in functions}
    used: dict[str, dict[str, set[str]]] = {logical: {} for logical in functions}
    for function, service, operation, parameters in calls:
        if function not in names:
            continue
        action, resource = needs(pipeline, service, operation, parameters)
        used[names[function]].setdefault(action, set()).add(resource)

    for logical in functions:
        granted = template_grants(logical, with_kms_key=False)
        not_granted = {
            (action, resource)
            for action, resources in used[logical].items()
            for resource in resources
            if resource not in granted.get(action, set())
        }
        assert not_granted == set(), logical
        never_called = {
            (action, resource)
            for action, resources in granted.items()
            for resource in resources
            if action not in FOR_LAMBDA_ITSELF | CONSULTED_BY_S3
            and (action, resource) not in FALLBACKS
            and resource not in used[logical].get(action, set())
        }
        assert never_called == set(), logical
