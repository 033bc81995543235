"""Records of one batch in flight together (moto, the emulator over HTTP): bounded by
RECORD_CONCURRENCY, each record's outcome, log lines and failures its own."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from portdocs.telnyx_credentials import SecretCredentials
from portdocs_sandbox.telnyx_emulator import Fault
from tests.support import PORT_REQUEST, SAMPLES, SUB_REQUEST, Pipeline, set_record_concurrency

LOA = (SAMPLES / "Letter of Authorization.pdf").read_bytes()


@pytest.fixture
def concurrency(monkeypatch: pytest.MonkeyPatch) -> int:
    set_record_concurrency(monkeypatch, 3)
    return 3


@pytest.fixture
def log_lines(portdocs_log: Callable[[], str]) -> Callable[[], list[dict[str, Any]]]:
    """The portdocs log lines written so far, as JSON objects."""
    return lambda: [json.loads(line) for line in portdocs_log().splitlines()]


def drop_files(pipeline: Pipeline, targets: list[tuple[str, str]]) -> list[str]:
    """Drops one LOA per (port request, sub-request); returns the intake messages S3 sent."""
    for index, (port_request, sub_request) in enumerate(targets):
        pipeline.drop(f"{port_request}/{sub_request}/loa/loa-{index}.pdf", LOA)
    return [m["Body"] for m in pipeline.receive("IntakeQueueUrl")]


def test_an_uploader_batch_is_in_flight_together_within_the_bound(pipeline: Pipeline, concurrency: int):
    bodies = drop_files(pipeline, [(PORT_REQUEST, SUB_REQUEST)] * 8)
    pipeline.emulator.inject(Fault(endpoint="files", latency=0.4, times=None))

    response, _ = pipeline.invoke("uploader", bodies)

    assert response == {"batchItemFailures": []}
    assert len(pipeline.receive("AssociationQueueUrl")) == 8
    # Sequential records would never overlap; more than the bound would be a broken promise to
    # the rate limit (docs/operations.md: MaximumConcurrency x RECORD_CONCURRENCY calls in flight).
    assert 1 < pipeline.emulator.peak_in_flight("files") <= concurrency


def test_one_slow_and_one_failing_record_hold_back_only_themselves(
    pipeline: Pipeline,
    concurrency: int,
    log_lines: Callable[[], list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
):
    slow, failing = str(uuid.uuid4()), str(uuid.uuid4())
    pipeline.emulator.seed(slow, SUB_REQUEST)
    pipeline.emulator.seed(failing, SUB_REQUEST)
    targets = [(PORT_REQUEST, SUB_REQUEST)] * 4 + [(slow, SUB_REQUEST)] + [(PORT_REQUEST, SUB_REQUEST)] * 4
    targets.insert(2, (failing, SUB_REQUEST))
    pipeline.invoke("uploader", drop_files(pipeline, targets))
    associations = [m["Body"] for m in pipeline.receive("AssociationQueueUrl")]
    pipeline.emulator.inject(
        Fault(endpoint="supporting_documents", latency=2.0, times=None, path_contains=slow)
    )
    pipeline.emulator.inject(
        Fault(endpoint="supporting_documents", status=401, times=None, path_contains=failing)
    )
    pipeline.emulator.inject(Fault(endpoint="supporting_documents", latency=0.3, times=None))

    capsys.readouterr()
    response, ids = pipeline.invoke("associator", associations, timeout=60)

    failing_message = next(i for i, body in zip(ids, associations, strict=True) if failing in body)
    assert response == {"batchItemFailures": [{"itemIdentifier": failing_message}]}
    states = {
        e["draft_port_request_id"]: e["state"]
        for e in pipeline.ledger().values()
        if e["state"] != "associated"
    }
    assert states == {failing: "failed"}
    associated = [e for e in pipeline.ledger().values() if e["state"] == "associated"]
    assert len(associated) == 9 and len(pipeline.emulator.documents()) == 9
    assert 1 < pipeline.emulator.peak_in_flight("supporting_documents") <= concurrency

    # Each record's lines carry its own document's id, never a neighbour's: the records ran side
    # by side on shared threads.
    telnyx_ids = {e["document_id"]: e["telnyx_document_id"] for e in associated}
    lines = log_lines()
    said_associated = {
        line["correlation_id"]: line["telnyx_document_id"]
        for line in lines
        if line["message"] == "document associated"
    }
    assert said_associated == telnyx_ids
    (kept,) = [line for line in lines if line["message"] == "document kept for retry"]
    assert kept["correlation_id"] == kept["document_id"] and failing in kept["document_id"]
    (not_done,) = [line for line in lines if line["message"] == "record not done; SQS will deliver it again"]
    assert not_done["correlation_id"] == kept["document_id"] and "ConfigurationError" in not_done["error"]

    # Counted from every thread, none lost (the invocation's EMF blob on stdout).
    (emf,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert emf["DocumentsAssociated"] == [1.0] * 9 and emf["DocumentsFailed"] == [1.0]


def test_a_refresh_asked_for_while_another_record_reads_the_secret_is_not_lost(pipeline: Pipeline):
    secret_arn = pipeline.output("CredentialsSecretArn")
    reading, release = threading.Event(), threading.Event()
    client = boto3.client("secretsmanager")

    def hold_the_first_read(**_: Any) -> None:  # with the old secret in hand
        if not reading.is_set():
            reading.set()
            release.wait(10)

    client.meta.events.register("after-call.secrets-manager.GetSecretValue", hold_the_first_read)
    credentials = SecretCredentials(secret_arn, lambda: client)
    slow_reader = threading.Thread(target=credentials)
    slow_reader.start()
    reading.wait(10)
    # Meanwhile another record got a 401 and the operator fixes the secret.
    credentials.refresh()
    pipeline.set_credentials(api_key="fixed-key")
    release.set()
    slow_reader.join(10)

    assert credentials().api_key == "fixed-key"  # not the copy cached by the slow reader


def test_the_same_document_twice_in_one_batch_is_worked_on_once_and_the_twin_handed_back(
    pipeline: Pipeline, concurrency: int, capsys: pytest.CaptureFixture[str]
):
    (notification,) = drop_files(pipeline, [(PORT_REQUEST, SUB_REQUEST)])
    pipeline.emulator.inject(Fault(endpoint="upload_requests", latency=1.0))  # the twins overlap
    capsys.readouterr()

    response, _ = pipeline.invoke("uploader", [notification, notification])

    assert response == {"batchItemFailures": []}  # no receive spent on the twin
    (emf,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert emf["ConcurrentDuplicates"] == [1.0] and emf["RecordsDeferred"] == [1.0]
    delayed = boto3.client("sqs").get_queue_attributes(
        QueueUrl=pipeline.output("IntakeQueueUrl"), AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]["ApproximateNumberOfMessagesDelayed"]
    assert delayed == "1"
    pipeline.invoke("uploader", [notification])  # the handed-back twin, later: a duplicate
    pipeline.runtime.drain()
    assert len(pipeline.emulator.calls("upload_requests")) == 1
    assert [e["state"] for e in pipeline.ledger().values()] == ["associated"]
