"""The sweeper (moto, the emulator over HTTP): documents stuck open are counted and put through
again once where that is safe, never into a second association, and found through the ledger's
by-state index, not a scan of its history."""

from __future__ import annotations

import collections
import json
import time
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.client
import pytest

from portdocs.documents import DocumentType, DraftTarget, SourceObject
from portdocs.documents import document_id as document_id_of
from portdocs.ledger import Ledger
from portdocs.sweeper import MAX_SWEEPS
from portdocs_sandbox.telnyx_emulator import Fault
from tests.support import PORT_REQUEST, SAMPLES, SUB_REQUEST, Pipeline, s3_event

LOA = (SAMPLES / "Letter of Authorization.pdf").read_bytes()
KEY = f"{PORT_REQUEST}/{SUB_REQUEST}/loa/loa.pdf"
TWO_HOURS_AGO = datetime.fromtimestamp(time.time() - 7200, UTC).isoformat(timespec="seconds")


def table(pipeline: Pipeline) -> Any:
    return boto3.resource("dynamodb").Table(pipeline.output("DocumentsTableName"))


def age(pipeline: Pipeline, document_id: str, **fields: Any) -> None:
    """As if nothing had happened to the document for two hours (its message lost, say)."""
    fields["updated_at"] = TWO_HOURS_AGO
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    values = {f":f{i}": value for i, value in enumerate(fields.values())}
    table(pipeline).update_item(
        Key={"document_id": document_id},
        UpdateExpression="SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def uploaded_but_association_lost(pipeline: Pipeline) -> str:
    pipeline.drop(KEY, LOA)
    pipeline.runtime.poll_once(pipeline.runtime.source_for("UploaderFunction"))
    pipeline.receive("AssociationQueueUrl")  # the association request never arrives
    (document_id,) = pipeline.ledger()
    age(pipeline, document_id)
    return document_id


def sweep(pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    capsys.readouterr()
    summary = pipeline.runtime.invoke_scheduled("SweeperFunction")
    (emf,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    return summary, emf


def test_a_stuck_document_is_put_through_again_once_and_associated_once(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
):
    document_id = uploaded_but_association_lost(pipeline)

    summary, emf = sweep(pipeline, capsys)
    pipeline.runtime.drain()

    assert summary == {"stuck": 1, "redriven": 1}
    assert emf["StuckDocuments"] == [1.0] and emf["DocumentsSwept"] == [1.0]
    entry = pipeline.ledger()[document_id]
    assert entry["state"] == "associated" and entry["sweeps"] == 1
    assert len(pipeline.emulator.documents()) == 1
    assert sweep(pipeline, capsys)[0] == {"stuck": 0}  # nothing left open


def test_a_document_whose_association_may_have_been_sent_is_left_for_a_person(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
):
    document_id = uploaded_but_association_lost(pipeline)
    age(pipeline, document_id, send_unconfirmed=True)

    summary, emf = sweep(pipeline, capsys)
    pipeline.runtime.drain()

    assert summary == {"stuck": 1, "left": 1} and emf["DocumentsLeftStuck"] == [1.0]
    assert pipeline.ledger()[document_id]["state"] == "uploaded" and pipeline.emulator.documents() == []


def test_a_document_swept_too_often_is_left_for_a_person(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
):
    document_id = uploaded_but_association_lost(pipeline)
    age(pipeline, document_id, sweeps=MAX_SWEEPS)

    summary, _ = sweep(pipeline, capsys)

    assert summary == {"stuck": 1, "left": 1} and pipeline.receive("AssociationQueueUrl") == []


def test_a_stuck_document_whose_file_was_replaced_is_superseded_not_sent(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
):
    document_id = uploaded_but_association_lost(pipeline)
    boto3.client("s3").put_object(Bucket=pipeline.bucket, Key=KEY, Body=LOA + b"\n% corrected\n")
    pipeline.receive("IntakeQueueUrl")  # the newer version's own notification goes its own way

    summary, _ = sweep(pipeline, capsys)

    assert summary == {"stuck": 1, "ended": 1}
    assert pipeline.ledger()[document_id]["state"] == "superseded"
    assert [e["detail-type"] for e in pipeline.events()] == ["Document Superseded"]
    assert pipeline.receive("AssociationQueueUrl") == []


def test_the_sweeper_queries_open_documents_and_never_scans_the_history(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    uploaded_but_association_lost(pipeline)
    calls: collections.Counter[str] = collections.Counter()
    # botocore's private hook every client call passes through; botocore-stubs leaves it out.
    original = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]

    def counting(client: Any, operation: str, parameters: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name == "dynamodb":
            calls[f"{operation}:{parameters.get('IndexName', '')}"] += 1
        return original(client, operation, parameters)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    sweep(pipeline, capsys)

    assert not [call for call in calls if call.startswith("Scan")]
    assert calls["Query:by-state"] == 3  # received, uploaded, failed


def received_but_upload_lost(pipeline: Pipeline) -> str:
    """A worker died right after recording the document: its intake message is gone too."""
    put = pipeline.drop(KEY, LOA)
    pipeline.receive("IntakeQueueUrl")
    source = SourceObject(pipeline.bucket, KEY, version_id=put.get("VersionId"), etag=put["ETag"].strip('"'))
    target = DraftTarget(PORT_REQUEST, SUB_REQUEST, DocumentType.LOA)
    ledger = Ledger(table(pipeline))
    document_id = document_id_of(source, target)
    ledger.open(document_id, target, source, "loa.pdf")
    age(pipeline, document_id)
    return document_id


def test_a_swept_upload_is_not_pinned_so_a_newer_version_still_wins(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
):
    old = received_but_upload_lost(pipeline)
    assert sweep(pipeline, capsys)[0] == {"stuck": 1, "redriven": 1}
    corrected = LOA + b"\n% corrected\n"
    put = pipeline.drop(KEY, corrected)  # the person drops a corrected file meanwhile
    (redrive,) = [m["Body"] for m in pipeline.receive("IntakeQueueUrl") if '"Records"' not in m["Body"]]
    pipeline.send("IntakeQueueUrl", redrive)
    pipeline.send("IntakeQueueUrl", s3_event(pipeline.bucket, KEY, put, len(corrected)))  # as S3 sends it

    pipeline.runtime.drain()
    age(pipeline, old)
    sweep(pipeline, capsys)

    states = {e["document_id"]: e["state"] for e in pipeline.ledger().values()}
    assert states.pop(old) == "superseded" and list(states.values()) == ["associated"]
    (document,) = pipeline.emulator.documents()
    assert pipeline.emulator.stored_bytes(document["url"]) == corrected


def test_failed_documents_are_counted_but_left_to_their_queues(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
):
    pipeline.emulator.inject(Fault(endpoint="upload_requests", status=401, times=None))
    pipeline.drop(KEY, LOA)
    pipeline.runtime.poll_once(pipeline.runtime.source_for("UploaderFunction"))
    (document_id,) = pipeline.ledger()
    age(pipeline, document_id)

    summary, emf = sweep(pipeline, capsys)

    assert summary == {"stuck": 1, "left": 1} and emf["StuckDocuments"] == [1.0]
    assert "sweeps" not in pipeline.ledger()[document_id]


def test_a_sweep_claims_a_document_only_if_it_is_still_stuck_and_nothing_is_in_flight(pipeline: Pipeline):
    document_id = uploaded_but_association_lost(pipeline)
    ledger = Ledger(table(pipeline))
    seen = pipeline.ledger()[document_id]["updated_at"]
    before = time.time() - 3600

    assert not ledger.note_sweep(
        document_id, "2000-01-01T00:00:00+00:00", before, MAX_SWEEPS
    )  # changed since
    assert not ledger.note_sweep(document_id, seen, time.time() - 3 * 3600, MAX_SWEEPS)  # not that old
    age(pipeline, document_id, send_unconfirmed=True)  # an association went out meanwhile
    assert not ledger.note_sweep(document_id, TWO_HOURS_AGO, before, MAX_SWEEPS)
    age(pipeline, document_id, send_unconfirmed=False)
    table(pipeline).update_item(Key={"document_id": document_id}, UpdateExpression="REMOVE send_unconfirmed")
    assert ledger.note_sweep(document_id, TWO_HOURS_AGO, before, MAX_SWEEPS)
    assert not ledger.note_sweep(document_id, TWO_HOURS_AGO, before, MAX_SWEEPS)  # it moved on: claimed once
