"""`portdocs retry`: a document whose reason was fixed outside goes through again, once."""

from __future__ import annotations

import boto3
import pytest

from portdocs_sandbox import cli
from tests.support import PORT_REQUEST, SAMPLES, Pipeline, s3_event

LOA = (SAMPLES / "Letter of Authorization.pdf").read_bytes()
NEW_SUB_REQUEST = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b"


@pytest.fixture
def target(pipeline: Pipeline) -> cli.Target:
    return cli.Target(
        outputs=pipeline.stack.outputs,
        session=boto3.session.Session(),
        endpoint_url=None,
        max_document_bytes=20 * 1024 * 1024,
        allowed_content_types=("application/pdf",),
    )


def only_document(pipeline: Pipeline) -> dict:
    (entry,) = pipeline.ledger().values()
    return entry


def test_a_rejected_document_is_associated_once_after_its_cause_is_fixed(
    pipeline: Pipeline, target: cli.Target
):
    pipeline.drop(f"{PORT_REQUEST}/{NEW_SUB_REQUEST}/loa/loa.pdf", LOA)
    pipeline.runtime.drain()
    rejected = only_document(pipeline)
    assert rejected["state"] == "rejected" and "draft_sub_request_id" in rejected["reason"]

    pipeline.emulator.seed(PORT_REQUEST, NEW_SUB_REQUEST)  # the sub-request now exists on Telnyx
    first = cli.retry_document(target, rejected["document_id"])
    second = cli.retry_document(target, rejected["document_id"])  # run twice by mistake
    pipeline.runtime.drain()

    assert "sent again (association request)" in first and "not retried" in second
    (document,) = pipeline.emulator.documents()
    assert document["draft_sub_request_id"] == NEW_SUB_REQUEST
    assert len(pipeline.emulator.calls("upload_requests")) == 1  # the file on Telnyx was reused
    entry = only_document(pipeline)
    assert (entry["state"], entry["telnyx_document_id"], entry["retries"]) == (
        "associated",
        document["id"],
        1,
    )
    assert "not retried: it is associated" in cli.retry_document(target, entry["document_id"])


def test_a_superseded_version_retried_on_purpose_is_sent_as_that_version(
    pipeline: Pipeline, target: cli.Target
):
    key = f"{PORT_REQUEST}/{NEW_SUB_REQUEST}/loa/loa.pdf"
    pipeline.emulator.seed(PORT_REQUEST, NEW_SUB_REQUEST)
    first = pipeline.drop(key, LOA)
    pipeline.receive("IntakeQueueUrl")  # moto's event, without the versionId real S3 sends
    pipeline.drop(key, LOA + b"\n% signed again\n")
    pipeline.invoke("uploader", [s3_event(pipeline.bucket, key, first, len(LOA))])
    superseded = next(e for e in pipeline.ledger().values() if e["state"] == "superseded")
    pipeline.runtime.drain()  # the newer version goes through

    assert "sent again (upload request)" in cli.retry_document(target, superseded["document_id"])
    pipeline.runtime.drain()

    states = sorted(e["state"] for e in pipeline.ledger().values())
    assert states == ["associated", "associated"]
    stored = sorted(pipeline.emulator.stored_bytes(d["url"]) for d in pipeline.emulator.documents())
    assert stored == sorted([LOA, LOA + b"\n% signed again\n"])


def test_a_message_that_named_no_document_cannot_be_retried(pipeline: Pipeline, target: cli.Target):
    pipeline.invoke("associator", ["{not json"])
    entry = only_document(pipeline)

    assert "cannot be retried" in cli.retry_document(target, entry["document_id"])
    with pytest.raises(cli.CliError, match="no document"):
        cli.retry_document(target, "no-such-document")
