"""The local Lambda runtime behaves as Lambda's SQS poller does (moto, queues from template.yaml)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from portdocs_sandbox.runtime import LocalLambdaContext, LocalRuntime
from portdocs_sandbox.stack import Stack, provision


class RecordingInvoker:
    """Stands in for the handlers: records what it was given, fails the records it is told to."""

    def __init__(self, fail_bodies: set[str]) -> None:
        self.fail_bodies = fail_bodies
        self.events: list[dict[str, Any]] = []
        self.remaining: list[int] = []

    def invoke(self, function: Any, event: dict[str, Any]) -> dict[str, Any]:
        context = LocalLambdaContext(function, "us-east-1")
        self.remaining.append(context.get_remaining_time_in_millis())
        time.sleep(0.05)
        self.remaining.append(context.get_remaining_time_in_millis())
        self.events.append(event)
        failed = [r["messageId"] for r in event["Records"] if r["body"] in self.fail_bodies]
        return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}

    def close(self) -> None:
        pass


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        stack = provision(stack_name="runtime")
        boto3.client("sqs").purge_queue(QueueUrl=stack.outputs["IntakeQueueUrl"])  # S3's test event
        yield stack


def runtime_with(stack: Stack, invoker: RecordingInvoker) -> LocalRuntime:
    runtime = LocalRuntime(stack, retry_after_seconds=0)
    runtime.invoker = invoker  # a stand-in: LocalRuntime only calls invoke() and close()
    return runtime


def test_events_have_lambdas_sqs_shape(stack: Stack):
    invoker = RecordingInvoker(fail_bodies=set())
    runtime = runtime_with(stack, invoker)
    boto3.client("sqs").send_message(QueueUrl=stack.outputs["AssociationQueueUrl"], MessageBody='{"a": 1}')

    result = runtime.poll_once(runtime.source_for("AssociatorFunction"))

    assert (result.received, result.failed) == (1, 0)
    (record,) = invoker.events[0]["Records"]
    assert set(record) == {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert (
        record["body"] == '{"a": 1}'
        and record["eventSource"] == "aws:sqs"
        and record["awsRegion"] == "us-east-1"
    )
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:runtime-AssociationQueue"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert (
        0 < invoker.remaining[1] < invoker.remaining[0] <= 60_000
    )  # the associator's timeout, counting down


def test_batches_respect_the_declared_batch_size(stack: Stack):
    invoker = RecordingInvoker(fail_bodies=set())
    runtime = runtime_with(stack, invoker)
    sqs = boto3.client("sqs")
    for i in range(12):
        sqs.send_message(QueueUrl=stack.outputs["IntakeQueueUrl"], MessageBody=f"m{i}")

    runtime.drain()

    sizes = [len(e["Records"]) for e in invoker.events]
    assert sum(sizes) == 12 and max(sizes) <= 5  # the uploader's BatchSize in template.yaml


def test_only_failed_records_return_and_end_in_the_dlq_after_max_receives(stack: Stack):
    invoker = RecordingInvoker(fail_bodies={"bad"})
    runtime = runtime_with(stack, invoker)
    sqs = boto3.client("sqs")
    for body in ("good", "bad"):
        sqs.send_message(QueueUrl=stack.outputs["IntakeQueueUrl"], MessageBody=body)

    runtime.drain()

    deliveries = [r["body"] for e in invoker.events for r in e["Records"]]
    assert deliveries.count("good") == 1
    assert deliveries.count("bad") == 5  # maxReceiveCount in template.yaml
    receive_counts = [
        int(r["attributes"]["ApproximateReceiveCount"])
        for e in invoker.events
        for r in e["Records"]
        if r["body"] == "bad"
    ]
    assert receive_counts == [1, 2, 3, 4, 5]
    dead = sqs.receive_message(QueueUrl=stack.outputs["IntakeDeadLetterQueueUrl"])["Messages"]
    assert [m["Body"] for m in dead] == ["bad"]


def test_a_handler_that_raises_fails_the_whole_batch(stack: Stack):
    class Raising(RecordingInvoker):
        def invoke(self, function: Any, event: dict[str, Any]) -> dict[str, Any]:
            self.events.append(event)
            raise RuntimeError("boom")

    invoker = Raising(fail_bodies=set())
    runtime = LocalRuntime(stack)  # failed records wait for the visibility timeout, as on AWS
    runtime.invoker = invoker  # a stand-in, as in runtime_with
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=stack.outputs["AssociationQueueUrl"], MessageBody="x")

    result = runtime.poll_once(runtime.source_for("AssociatorFunction"))

    assert (result.received, result.failed) == (1, 1)
    attributes = sqs.get_queue_attributes(
        QueueUrl=stack.outputs["AssociationQueueUrl"], AttributeNames=["All"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"  # not deleted, hidden for 360 s
