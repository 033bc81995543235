"""Document events on EventBridge (moto, the emulator over HTTP): one per terminal change of a
document's state, in the published shape, with no Location URL and no secret; a failure to
publish never fails the document."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from portdocs import shapes, wiring
from portdocs.delivery import MAX_RECEIVES
from portdocs.documents import State
from portdocs.events import DocumentEvents
from portdocs.ledger import event_time
from portdocs.sweeper import OUTBOX_GRACE_SECONDS
from portdocs_sandbox import ledger_admin
from portdocs_sandbox.telnyx_emulator import Fault
from tests.support import PORT_REQUEST, SAMPLES, SUB_REQUEST, Pipeline, only

LOA = (SAMPLES / "Letter of Authorization.pdf").read_bytes()
KEY = f"{PORT_REQUEST}/{SUB_REQUEST}/loa/loa.pdf"


def assert_published_shape(event: dict[str, Any], pipeline: Pipeline) -> None:
    assert event["source"] == "portdocs"
    shapes.validate(event["detail"], shapes.DOCUMENT_EVENT_SCHEMA)
    text = json.dumps(event)
    for location in {e["location_url"] for e in pipeline.ledger().values() if "location_url" in e}:
        assert location not in text
    assert pipeline.emulator.files_host not in text  # no Location URL, not even its host
    for secret in filter(None, pipeline.emulator.credentials.values()):
        assert secret not in text


def test_an_association_publishes_one_event_and_its_duplicates_none(pipeline: Pipeline):
    pipeline.drop(KEY, LOA)
    (notification,) = [m["Body"] for m in pipeline.receive("IntakeQueueUrl")]
    pipeline.invoke("uploader", [notification])
    (association,) = [m["Body"] for m in pipeline.receive("AssociationQueueUrl")]

    pipeline.invoke("associator", [association])
    pipeline.invoke("associator", [association])  # S3 and SQS deliver at least once
    pipeline.invoke("uploader", [notification])
    pipeline.runtime.drain()

    (event,) = pipeline.events()
    assert event["detail-type"] == "Document Associated"
    assert_published_shape(event, pipeline)
    (entry,) = pipeline.ledger().values()
    detail = event["detail"]
    assert detail["document_id"] == entry["document_id"] and detail["state"] == "associated"
    assert detail["telnyx_document_id"] == entry["telnyx_document_id"]
    assert detail["target"] == {
        "draft_port_request_id": PORT_REQUEST,
        "draft_sub_request_id": SUB_REQUEST,
        "document_type": "loa",
    }
    assert detail["source"]["key"] == KEY and "possible_duplicate" not in detail


def test_a_rejection_publishes_one_event_with_its_reason(pipeline: Pipeline):
    pipeline.drop(f"{PORT_REQUEST}/{SUB_REQUEST}/loa/not-a.pdf", b"plain text, not a PDF")
    (notification,) = [m["Body"] for m in pipeline.receive("IntakeQueueUrl")]

    pipeline.invoke("uploader", [notification])
    pipeline.invoke("uploader", [notification])

    (event,) = pipeline.events()
    assert event["detail-type"] == "Document Rejected"
    assert_published_shape(event, pipeline)
    assert "could not be recognised" in event["detail"]["reason"]


def test_a_failure_is_published_only_on_its_last_delivery(pipeline: Pipeline):
    pipeline.emulator.inject(Fault(endpoint="upload_requests", status=401, times=None))
    pipeline.drop(KEY, LOA)
    (notification,) = [m["Body"] for m in pipeline.receive("IntakeQueueUrl")]

    pipeline.invoke("uploader", [notification], receives=MAX_RECEIVES - 1)
    assert pipeline.events() == []
    pipeline.invoke("uploader", [notification], receives=MAX_RECEIVES)  # next stop: the DLQ

    (event,) = pipeline.events()
    assert event["detail-type"] == "Document Failed" and event["detail"]["reason"].startswith("configuration")
    assert_published_shape(event, pipeline)


def test_a_possible_duplicate_says_so_in_its_event(pipeline: Pipeline):
    pipeline.drop(KEY, LOA)
    pipeline.runtime.poll_once(pipeline.runtime.source_for("UploaderFunction"))
    (association,) = [m["Body"] for m in pipeline.receive("AssociationQueueUrl")]
    pipeline.emulator.inject(Fault(endpoint="supporting_documents", ambiguous=True))  # recorded, then 504

    pipeline.invoke("associator", [association])
    pipeline.runtime.drain()  # the copy handed back after the unknown outcome

    (event,) = pipeline.events()
    assert event["detail-type"] == "Document Associated" and event["detail"]["possible_duplicate"] is True


def the_bus_refuses(monkeypatch: pytest.MonkeyPatch, refuses: bool = True) -> None:
    if refuses:
        monkeypatch.setenv("EVENT_BUS_NAME", "no-such-bus")
    else:
        monkeypatch.delenv("EVENT_BUS_NAME")  # the bus is back
    wiring.clear_caches()


def uploaded(pipeline: Pipeline) -> str:
    """The association request of the document, uploaded."""
    pipeline.drop(KEY, LOA)
    pipeline.runtime.poll_once(pipeline.runtime.source_for("UploaderFunction"))
    (association,) = [m["Body"] for m in pipeline.receive("AssociationQueueUrl")]
    return association


def test_a_bus_that_refuses_the_event_does_not_fail_the_document(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    the_bus_refuses(monkeypatch)
    association = uploaded(pipeline)
    capsys.readouterr()

    response, _ = pipeline.invoke("associator", [association])

    assert response == {"batchItemFailures": []}
    assert [e["state"] for e in pipeline.ledger().values()] == ["associated"]
    assert len(pipeline.emulator.documents()) == 1  # done once, not repeated
    (emf,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert emf["EventsNotPublished"] == [1.0]
    assert pipeline.events() == []


def associated_with_its_event_left_in_the_outbox(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> str:
    """Associates the document while the bus refuses every event; returns the association."""
    the_bus_refuses(monkeypatch)
    association = uploaded(pipeline)
    pipeline.invoke("associator", [association])
    (entry,) = pipeline.ledger().values()
    assert entry["state"] == "associated" and entry["event_pending"] == "pending"
    assert pipeline.events() == []
    the_bus_refuses(monkeypatch, refuses=False)
    return association


def test_an_event_the_bus_refused_is_published_by_the_next_delivery_with_its_own_id(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
):
    association = associated_with_its_event_left_in_the_outbox(pipeline, monkeypatch)

    pipeline.invoke("associator", [association])  # SQS delivers again, or the message is redriven
    pipeline.invoke("associator", [association])

    (event,) = pipeline.events()  # once: the outbox was emptied by the first
    (entry,) = pipeline.ledger().values()
    assert event["detail"]["event_id"] == entry["event_id"] and "event_pending" not in entry
    assert event["detail"]["occurred_at"] == entry["event_at"]  # when it happened, not when published
    assert_published_shape(event, pipeline)
    assert len(pipeline.emulator.documents()) == 1


class WorkerKilled(BaseException):
    """What the function sees of an execution environment that dies: nothing after this line."""


def test_a_worker_killed_right_after_the_ledger_write_leaves_its_event_for_the_sweeper(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
):
    association = uploaded(pipeline)

    def killed(*_: object) -> bool:
        raise WorkerKilled

    with monkeypatch.context() as dying:
        dying.setattr(DocumentEvents, "publish", killed)
        with pytest.raises(WorkerKilled):
            pipeline.invoke("associator", [association])
    (entry,) = pipeline.ledger().values()
    assert entry["state"] == "associated" and entry["event_pending"] == "pending"

    pipeline.runtime.invoke_scheduled("SweeperFunction")
    assert pipeline.events() == []  # too fresh: the worker that wrote it may still publish it
    backdate_event(pipeline, entry["document_id"], seconds=OUTBOX_GRACE_SECONDS + 1)
    summary = pipeline.runtime.invoke_scheduled("SweeperFunction")
    pipeline.runtime.invoke_scheduled("SweeperFunction")

    assert summary["events_republished"] == 1
    (event,) = pipeline.events()
    assert event["detail-type"] == "Document Associated"
    assert event["detail"]["event_id"] == entry["event_id"]
    assert "event_pending" not in only(list(pipeline.ledger().values()))


def backdate_event(pipeline: Pipeline, document_id: str, seconds: float) -> None:
    boto3.resource("dynamodb").Table(pipeline.output("DocumentsTableName")).update_item(
        Key={"document_id": document_id},
        UpdateExpression="SET event_at = :then",
        ExpressionAttributeValues={":then": event_time(time.time() - seconds)},
    )


def test_every_terminal_change_gets_an_event_id_of_its_own(pipeline: Pipeline):
    pipeline.drop(f"{PORT_REQUEST}/{SUB_REQUEST}/loa/not-a.pdf", b"plain text, not a PDF")
    pipeline.drop(KEY, LOA)

    pipeline.runtime.drain()

    events = pipeline.events()
    ids = {e["detail"]["event_id"] for e in events}
    assert len(events) == 2 and len(ids) == 2
    assert ids == {e["event_id"] for e in pipeline.ledger().values()}


def test_a_document_retried_before_its_event_was_published_leaves_nothing_for_the_sweeper(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
):
    the_bus_refuses(monkeypatch)
    pipeline.drop(f"{PORT_REQUEST}/{SUB_REQUEST}/loa/not-a.pdf", b"plain text, not a PDF")
    (notification,) = [m["Body"] for m in pipeline.receive("IntakeQueueUrl")]
    pipeline.invoke("uploader", [notification])
    (entry,) = pipeline.ledger().values()
    assert entry["state"] == "rejected" and entry["event_pending"] == "pending"
    the_bus_refuses(monkeypatch, refuses=False)
    table = boto3.resource("dynamodb").Table(pipeline.output("DocumentsTableName"))

    assert ledger_admin.reopen(table, entry["document_id"], (State.REJECTED,))  # portdocs retry
    backdate_event(pipeline, entry["document_id"], seconds=OUTBOX_GRACE_SECONDS + 1)
    summary = pipeline.runtime.invoke_scheduled("SweeperFunction")

    assert "events_republished" not in summary and "errors" not in summary
    assert pipeline.events() == []  # no event for a document that is open again
    assert "event_pending" not in only(list(pipeline.ledger().values()))
