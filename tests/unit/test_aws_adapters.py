"""Ledger and intake adapters against moto, with tables and bucket made from template.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from portdocs.documents import DocumentType, DraftTarget, LocationUpload, SourceObject, State
from portdocs.errors import PermanentError
from portdocs.intake import IntakeStore
from portdocs.ledger import Ledger, UnconfirmedSendLimit
from portdocs_sandbox import ledger_admin
from portdocs_sandbox.stack import Stack, provision

TARGET = DraftTarget("prq-1", "sub-1", DocumentType.LOA)


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        yield provision(stack_name="adapters")


@pytest.fixture
def ledger(stack: Stack) -> Ledger:
    return Ledger(documents_table(stack))


def documents_table(stack: Stack) -> Any:
    return boto3.resource("dynamodb").Table(stack.outputs["DocumentsTableName"])


def test_open_creates_then_counts_attempts(ledger: Ledger, stack: Stack):
    first = ledger.open("doc-1", TARGET, SourceObject("b", "k", "v"), "LOA")
    ledger.open("doc-1", TARGET)
    assert first.state is State.RECEIVED
    table = boto3.resource("dynamodb").Table(stack.outputs["DocumentsTableName"])
    assert table.get_item(Key={"document_id": "doc-1"})["Item"]["attempts"] == 2


def test_terminal_states_are_never_overwritten(ledger: Ledger):
    ledger.open("doc-1", TARGET)
    ledger.mark_associated("doc-1", "telnyx-1")
    assert not ledger.mark_failed("doc-1", "late transient error")
    for state in (State.REJECTED, State.SUPERSEDED, State.WITHDRAWN):
        assert not ledger.close("doc-1", state, "late duplicate")
    entry = ledger.open("doc-1", TARGET)
    assert (entry.state, entry.telnyx_document_id, entry.reason) == (State.ASSOCIATED, "telnyx-1", None)


def test_superseded_and_withdrawn_are_terminal_too(ledger: Ledger):
    for document, state in (("doc-s", State.SUPERSEDED), ("doc-w", State.WITHDRAWN)):
        ledger.open(document, TARGET)
        assert ledger.close(document, state, "gone")
        assert not ledger.mark_failed(document, "late transient error")
        assert not ledger.close(document, State.REJECTED, "late rejection")
        assert ledger.open(document, TARGET).state is state


def test_an_attachment_that_happened_overrides_a_racing_duplicates_superseded(ledger: Ledger):
    ledger.open("doc-1", TARGET)
    ledger.close("doc-1", State.SUPERSEDED, "a newer version arrived")  # a duplicate delivery, meanwhile

    assert ledger.mark_associated("doc-1", "telnyx-1")  # the POST in flight had already succeeded

    entry = ledger.get("doc-1")
    assert (entry.state, entry.telnyx_document_id, entry.reason) == (State.ASSOCIATED, "telnyx-1", None)
    assert not ledger.mark_associated("doc-1", "telnyx-2")


def test_a_retry_reopens_a_finished_document_once(ledger: Ledger, stack: Stack):
    ledger.open("doc-1", TARGET)
    assert ledger.note_send("doc-1", UnconfirmedSendLimit(count=1, span_seconds=0, ceiling=9))
    ledger.close("doc-1", State.REJECTED, "no such sub-request")

    assert ledger_admin.reopen(documents_table(stack), "doc-1", (State.REJECTED, State.FAILED))
    assert not ledger_admin.reopen(
        documents_table(stack), "doc-1", (State.REJECTED, State.FAILED)
    )  # in flight
    entry = ledger.get("doc-1")
    assert (entry.state, entry.reason) == (State.RECEIVED, None)
    # The person checked Telnyx: the doubts start afresh, and the ended state's event is not due.
    item = documents_table(stack).get_item(Key={"document_id": "doc-1"})["Item"]
    assert not {"send_unconfirmed", "unconfirmed_sends", "first_unconfirmed_at", "event_pending"} & set(item)


def test_an_unconfirmed_send_is_remembered_until_the_document_is_associated(ledger: Ledger):
    ledger.open("doc-1", TARGET)
    assert ledger.note_send("doc-1", UnconfirmedSendLimit(count=2, span_seconds=3600, ceiling=9))
    assert ledger.open("doc-1", TARGET).send_unconfirmed
    ledger.mark_associated("doc-1", "telnyx-1", possible_duplicate=True)
    entry = ledger.get("doc-1")
    assert (entry.send_unconfirmed, entry.possible_duplicate) == (False, True)


def test_posts_without_a_known_outcome_stop_only_past_the_limit_and_the_span(ledger: Ledger):
    patient = UnconfirmedSendLimit(count=2, span_seconds=3600, ceiling=9)
    spent = UnconfirmedSendLimit(count=2, span_seconds=0, ceiling=9)
    ledger.open("doc-1", TARGET)
    for _ in range(5):  # many, but the first was just now: an outage is ridden out
        assert ledger.note_send("doc-1", patient)
    assert not ledger.note_send("doc-1", spent)  # many, and the first long enough ago
    ledger.clear_send("doc-1")  # an answer that proves nothing was recorded
    assert ledger.note_send("doc-1", spent) and ledger.note_send("doc-1", spent)
    assert not ledger.note_send("doc-1", spent)  # the count starts again


def test_posts_without_a_known_outcome_stop_at_the_ceiling_at_any_pace(ledger: Ledger):
    ledger.open("doc-1", TARGET)
    limit = UnconfirmedSendLimit(count=2, span_seconds=3600, ceiling=4)
    assert all(ledger.note_send("doc-1", limit) for _ in range(4))
    assert not ledger.note_send("doc-1", limit)  # within the span, but at the ceiling


def test_upload_checkpoint_survives_a_failure(ledger: Ledger):
    ledger.open("doc-1", TARGET)
    ledger.mark_uploaded("doc-1", LocationUpload("https://files/x"), "application/pdf", None)
    ledger.mark_failed("doc-1", "transient: queue unavailable")
    entry = ledger.open("doc-1", TARGET)
    assert (entry.state, entry.upload) == (State.FAILED, LocationUpload("https://files/x"))


def test_the_ledger_says_what_a_file_was_converted_from_and_forgets_it_for_an_unconverted_upload(
    ledger: Ledger,
):
    ledger.open("doc-1", TARGET)
    ledger.mark_uploaded("doc-1", LocationUpload("https://files/x"), "application/pdf", "image/tiff")
    entry = ledger.get("doc-1")
    assert (entry.content_type, entry.converted_from) == ("application/pdf", "image/tiff")

    ledger.mark_uploaded("doc-1", LocationUpload("https://files/y"), "image/png", None)
    entry = ledger.get("doc-1")
    assert (entry.content_type, entry.converted_from) == ("image/png", None)


def test_documents_are_queryable_by_port_request(ledger: Ledger, stack: Stack):
    ledger.open("doc-1", TARGET)
    ledger.open("doc-2", DraftTarget("prq-1", "sub-2", DocumentType.INVOICE))
    ledger.open("doc-3", DraftTarget("prq-2", "sub-1", DocumentType.LOA))
    ledger.close("message-1", State.REJECTED, "not JSON")
    rows = ledger_admin.ledger_rows(documents_table(stack), "prq-1")
    assert sorted(row["document_id"] for row in rows) == ["doc-1", "doc-2"]
    assert len(ledger_admin.ledger_rows(documents_table(stack))) == 4


def test_tags_are_merged_with_the_users_and_replaced_on_update(stack: Stack):
    s3 = boto3.client("s3")
    bucket = stack.outputs["IntakeBucketName"]
    version = s3.put_object(Bucket=bucket, Key="a.pdf", Body=b"x", Tagging="team=porting&ticket=T-1")[
        "VersionId"
    ]
    source = SourceObject(bucket, "a.pdf", version_id=version)
    intake = IntakeStore(boto3.client("s3"))

    intake.tag(
        source, {"portdocs:status": "rejected", "portdocs:reason": 'the file is "text/plain"; not allowed'}
    )
    intake.tag(source, {"portdocs:status": "failed"})

    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key="a.pdf")["TagSet"]}
    assert tags == {"team": "porting", "ticket": "T-1", "portdocs:status": "failed"}


def test_describe_open_and_download_pin_the_version_and_read_the_description(stack: Stack, tmp_path):
    s3 = boto3.client("s3")
    bucket = stack.outputs["IntakeBucketName"]
    old = s3.put_object(Bucket=bucket, Key="a.pdf", Body=b"old", Metadata={"description": "first"})[
        "VersionId"
    ]
    s3.put_object(Bucket=bucket, Key="a.pdf", Body=b"newer")
    intake = IntakeStore(boto3.client("s3"))

    info = intake.describe(SourceObject(bucket, "a.pdf", version_id=old))

    assert (info.size, info.description, info.source.version_id) == (3, "first", old)
    with intake.open(info.source) as body:
        assert body.read() == b"old"
    intake.download(info.source, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == b"old"


def test_a_missing_object_is_a_permanent_error(stack: Stack):
    intake = IntakeStore(boto3.client("s3"))
    with pytest.raises(PermanentError, match="does not exist"):
        intake.describe(SourceObject(stack.outputs["IntakeBucketName"], "nope.pdf"))


def test_a_retry_reopens_a_document_left_in_flight_only_once_it_is_stale(ledger: Ledger, stack: Stack):
    ledger.open("doc-1", TARGET)
    table = documents_table(stack)
    assert not ledger_admin.reopen(
        table, "doc-1", (State.REJECTED,)
    )  # received a moment ago: still in flight

    table.update_item(  # a worker was killed mid-step an hour and a half ago
        Key={"document_id": "doc-1"},
        UpdateExpression="SET updated_at = :then",
        ExpressionAttributeValues={":then": "2026-01-01T00:00:00+00:00"},
    )

    assert ledger_admin.reopen(table, "doc-1", (State.REJECTED,))
    assert not ledger_admin.reopen(table, "doc-1", (State.REJECTED,))
