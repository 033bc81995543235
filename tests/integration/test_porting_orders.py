"""The porting-order flow (Telnyx's current API: the documents service and porting orders) held to
the draft flow's acceptance tests, through both handlers under moto against the Telnyx emulator
over real HTTP: every type, duplicates, faults, rejections, and Telnyx's 30-minute window."""

from __future__ import annotations

import hashlib
import json
import time

import boto3
import pytest
import requests

from portdocs.association_service import MAX_REUPLOADS
from portdocs.config import DEFAULT_MAX_DOCUMENT_BYTES as MAX_DOCUMENT_BYTES
from portdocs.documents import REUPLOAD_AFTER_SECONDS, UNLINKED_DOCUMENT_LIFETIME_SECONDS
from portdocs.timestamps import utc_iso
from portdocs_sandbox import cli
from portdocs_sandbox.telnyx_emulator import EICAR, Fault
from tests.files import pdf_of_streams
from tests.support import (
    EVERY_DOCUMENT_TYPE,
    INVOICE,
    JPEG,
    LOA,
    PNG,
    PORTING_ORDER,
    Pipeline,
    deliver_the_association_three_times,
    only,
    s3_event,
)

API_KEY_HEADER = "authorization"


def key(document_type: str, file_name: str, porting_order: str = PORTING_ORDER) -> str:
    return f"porting-orders/{porting_order}/{document_type}/{file_name}"


def the_entry(pipeline: Pipeline) -> dict:
    return only(list(pipeline.ledger().values()))


def uploads(pipeline: Pipeline) -> list[dict]:
    """POST /v2/documents calls (GET /v2/documents/{id} reads one back)."""
    return [call for call in pipeline.emulator.calls("documents") if call["method"] == "POST"]


def links_posted(pipeline: Pipeline) -> list[dict]:
    return [call for call in pipeline.emulator.calls("additional_documents") if call["method"] == "POST"]


def linked(pipeline: Pipeline, document_type: str) -> list[str]:
    """The document ids the order holds as this type: its own LOA/invoice, or additional ones."""
    order = pipeline.emulator.porting_order(PORTING_ORDER)
    own = order["documents"].get(document_type)
    extra = [d["document_id"] for d in order["additional_documents"] if d["document_type"] == document_type]
    return ([own] if own else []) + extra


@EVERY_DOCUMENT_TYPE
def test_dropped_document_is_uploaded_and_attached_to_the_porting_order(
    pipeline: Pipeline, document_type, file_name, body, content_type
):
    object_key = key(document_type, file_name)
    pipeline.drop(object_key, body)

    pipeline.runtime.drain()

    upload = only(uploads(pipeline))
    assert upload["headers"][API_KEY_HEADER] == "Bearer " + pipeline.credential("api_key")
    assert "x-api-token" not in upload["headers"]
    stored = only(pipeline.emulator.v2_documents())
    assert stored["filename"] == file_name.replace(" ", "")  # Telnyx's rule, not ours
    assert stored["sha256"] == hashlib.sha256(body).hexdigest()
    assert stored["content_type"] == content_type
    assert linked(pipeline, document_type) == [stored["id"]]
    order_calls = pipeline.emulator.calls("porting_orders") + pipeline.emulator.calls("additional_documents")
    # An additional document is looked for in the order's list before it is linked.
    expected = {"PATCH"} if document_type in ("loa", "invoice") else {"GET", "POST"}
    assert {call["method"] for call in order_calls} == expected
    assert not pipeline.emulator.calls("upload_requests") and not pipeline.emulator.calls(
        "supporting_documents"
    )
    entry = the_entry(pipeline)
    assert entry["state"] == "associated"
    assert entry["telnyx_document_id"] == entry["uploaded_document_id"] == stored["id"]
    assert entry["porting_order_id"] == PORTING_ORDER and "draft_port_request_id" not in entry
    assert pipeline.tags(object_key)["portdocs:status"] == "associated"
    (event,) = pipeline.events()
    assert event["detail"]["target"] == {"porting_order_id": PORTING_ORDER, "document_type": document_type}
    assert event["detail"]["telnyx_document_id"] == stored["id"]


def test_duplicate_s3_events_upload_and_attach_once(pipeline: Pipeline):
    object_key = key("csr", "csr.png")
    put = pipeline.drop(object_key, PNG)
    pipeline.receive("IntakeQueueUrl")  # moto's own event lacks versionId: send S3's instead
    notification = s3_event(pipeline.bucket, object_key, put, len(PNG))

    response, _ = pipeline.invoke("uploader", [notification, notification])
    pipeline.runtime.drain()
    pipeline.invoke("uploader", [notification])
    pipeline.runtime.drain()

    assert response == {"batchItemFailures": []}
    assert len(uploads(pipeline)) == 1
    assert len(linked(pipeline, "csr")) == 1


def test_duplicate_association_messages_attach_once(pipeline: Pipeline):
    pipeline.drop(key("other", "id.jpg"), JPEG)

    response = deliver_the_association_three_times(pipeline)

    assert response == {"batchItemFailures": []}
    assert len(links_posted(pipeline)) == 1
    assert len(linked(pipeline, "other")) == 1


@pytest.mark.parametrize("drop", [False, True], ids=["504", "dropped connection"])
def test_a_link_whose_answer_was_lost_is_read_back_not_made_twice(pipeline: Pipeline, drop: bool):
    # The link takes effect, then the client hears a failure: the order is read before linking again.
    pipeline.emulator.inject(Fault("additional_documents", ambiguous=True, drop=drop, method="POST"))
    pipeline.drop(key("csr", "csr.png"), PNG)

    pipeline.runtime.drain()

    assert len(linked(pipeline, "csr")) == 1
    posts = [c for c in pipeline.emulator.calls("additional_documents") if c["method"] == "POST"]
    gets = [c for c in pipeline.emulator.calls("additional_documents") if c["method"] == "GET"]
    assert len(posts) == 1 and len(gets) == 2  # before the link, and before its repeat
    entry = the_entry(pipeline)
    assert entry["state"] == "associated" and not entry.get("possible_duplicate")
    assert "send_unconfirmed" not in entry


def as_if_the_worker_died_after_linking(pipeline: Pipeline) -> None:
    """The ledger back at `uploaded` and no idempotency record: what a worker killed after Telnyx
    linked the document, before anything was recorded, leaves behind."""
    table = boto3.resource("dynamodb").Table(pipeline.output("DocumentsTableName"))
    entry = the_entry(pipeline)
    table.update_item(
        Key={"document_id": entry["document_id"]},
        UpdateExpression="SET #state = :uploaded REMOVE telnyx_document_id",
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues={":uploaded": "uploaded"},
    )
    guards = boto3.resource("dynamodb").Table(pipeline.output("IdempotencyTableName"))
    for guard in guards.scan()["Items"]:
        guards.delete_item(Key={"id": guard["id"]})


def set_uploaded_at(pipeline: Pipeline, seconds_ago: float) -> None:
    table = boto3.resource("dynamodb").Table(pipeline.output("DocumentsTableName"))
    table.update_item(
        Key={"document_id": the_entry(pipeline)["document_id"]},
        UpdateExpression="SET uploaded_at = :then",
        ExpressionAttributeValues={":then": utc_iso(time.time() - seconds_ago)},
    )


@pytest.mark.parametrize(("document_type", "body"), [("csr", PNG), ("loa", LOA)], ids=["csr", "loa"])
def test_a_link_made_by_a_dead_worker_is_found_when_its_message_comes_back_late(
    pipeline: Pipeline, document_type, body
):
    pipeline.drop(key(document_type, "file"), body)
    pipeline.runtime.poll_once(pipeline.runtime.source_for("UploaderFunction"))
    association = only(pipeline.receive("AssociationQueueUrl"))["Body"]
    pipeline.invoke("associator", [association])
    as_if_the_worker_died_after_linking(pipeline)
    # Redelivered after Telnyx's window: the document, linked (its review still pending, as Telnyx
    # answers), was not deleted.
    set_uploaded_at(pipeline, REUPLOAD_AFTER_SECONDS + 60)
    pipeline.emulator.advance_clock(UNLINKED_DOCUMENT_LIFETIME_SECONDS + 60)

    pipeline.invoke("associator", [association])
    pipeline.runtime.drain()

    assert len(uploads(pipeline)) == 1
    assert len(linked(pipeline, document_type)) == 1
    assert the_entry(pipeline)["state"] == "associated" and not the_entry(pipeline).get("reuploads")


def test_a_fresh_upload_asked_for_by_a_worker_that_died_is_asked_for_again(pipeline: Pipeline):
    pipeline.drop(key("csr", "csr.png"), PNG)
    pipeline.runtime.poll_once(pipeline.runtime.source_for("UploaderFunction"))
    association = only(pipeline.receive("AssociationQueueUrl"))["Body"]
    first = the_entry(pipeline)["uploaded_document_id"]
    pipeline.emulator.advance_clock(UNLINKED_DOCUMENT_LIFETIME_SECONDS + 60)
    # The worker told the ledger the upload was gone, then died before asking for a fresh one.
    table = boto3.resource("dynamodb").Table(pipeline.output("DocumentsTableName"))
    table.update_item(
        Key={"document_id": the_entry(pipeline)["document_id"]},
        UpdateExpression="SET #state = :received, reuploads = :one, expired_uploads = :gone "
        "REMOVE uploaded_document_id, uploaded_at",
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues={":received": "received", ":one": 1, ":gone": {first}},
    )

    response, _ = pipeline.invoke("associator", [association])  # SQS delivers it again
    pipeline.runtime.drain()

    assert response == {"batchItemFailures": []}
    entry = the_entry(pipeline)  # one row: no rejection on the way
    assert entry["state"] == "associated" and entry["telnyx_document_id"] != first
    assert len(uploads(pipeline)) == 2 and len(linked(pipeline, "csr")) == 1


def test_a_late_association_of_an_upload_the_uploader_itself_replaced_is_recognised(pipeline: Pipeline):
    pipeline.drop(key("csr", "csr.png"), PNG)
    event = only(pipeline.receive("IntakeQueueUrl"))["Body"]
    pipeline.invoke("uploader", [event])
    association = only(pipeline.receive("AssociationQueueUrl"))["Body"]
    # The uploader died after queueing the association, before its idempotency record was
    # complete; its message comes back after Telnyx's window, behind a backlog.
    guards = boto3.resource("dynamodb").Table(pipeline.output("IdempotencyTableName"))
    for guard in guards.scan()["Items"]:
        guards.delete_item(Key={"id": guard["id"]})
    set_uploaded_at(pipeline, REUPLOAD_AFTER_SECONDS + 60)
    pipeline.emulator.advance_clock(UNLINKED_DOCUMENT_LIFETIME_SECONDS + 60)
    pipeline.invoke("uploader", [event])  # a fresh upload, by the uploader itself

    pipeline.invoke("associator", [association])  # the backlog reaches the old association
    pipeline.runtime.drain()

    entry = the_entry(pipeline)  # one row, no rejection on the way
    assert entry["state"] == "associated" and entry["reuploads"] == 1
    assert [e["detail-type"] for e in pipeline.events()] == ["Document Associated"]
    assert len(linked(pipeline, "csr")) == 1


def send_back_for_a_fresh_upload(pipeline: Pipeline, object_key: str, body: bytes) -> str:
    """Drops the file, uploads it, lets Telnyx delete the upload and the associator notice:
    returns the upload request it sent back to the intake queue, taken off the queue."""
    pipeline.drop(object_key, body)
    pipeline.runtime.poll_once(pipeline.runtime.source_for("UploaderFunction"))
    pipeline.emulator.advance_clock(UNLINKED_DOCUMENT_LIFETIME_SECONDS + 60)
    pipeline.runtime.poll_once(pipeline.runtime.source_for("AssociatorFunction"))
    request = only(pipeline.receive("IntakeQueueUrl"))["Body"]
    assert json.loads(request)["newer_version_wins"] is True
    return request


def test_a_newer_loa_dropped_while_the_older_waits_for_its_fresh_upload_stays_the_orders(pipeline: Pipeline):
    object_key = key("loa", "loa.pdf")
    older = send_back_for_a_fresh_upload(pipeline, object_key, LOA)
    pipeline.drop(object_key, LOA + b"\n% signed again")
    pipeline.runtime.drain()
    newest = only([e for e in pipeline.ledger().values() if e["state"] == "associated"])

    pipeline.send("IntakeQueueUrl", older)  # the older version's fresh upload comes last
    pipeline.runtime.drain()

    assert linked(pipeline, "loa") == [newest["telnyx_document_id"]]
    states = sorted(e["state"] for e in pipeline.ledger().values())
    assert states == ["associated", "superseded"]


def test_a_file_deleted_while_it_waits_for_its_fresh_upload_is_withdrawn(pipeline: Pipeline):
    object_key = key("csr", "csr.png")
    request = send_back_for_a_fresh_upload(pipeline, object_key, PNG)
    boto3.client("s3").delete_object(Bucket=pipeline.bucket, Key=object_key)

    pipeline.send("IntakeQueueUrl", request)
    pipeline.runtime.drain()

    entry = the_entry(pipeline)
    assert entry["state"] == "withdrawn"
    assert linked(pipeline, "csr") == [] and len(uploads(pipeline)) == 1


def test_a_worker_that_died_after_linking_leaves_no_second_link(pipeline: Pipeline):
    pipeline.drop(key("other", "id.jpg"), JPEG)
    pipeline.runtime.poll_once(pipeline.runtime.source_for("UploaderFunction"))
    association = only(pipeline.receive("AssociationQueueUrl"))["Body"]
    pipeline.invoke("associator", [association])
    as_if_the_worker_died_after_linking(pipeline)

    pipeline.invoke("associator", [association])

    assert len(linked(pipeline, "other")) == 1
    assert the_entry(pipeline)["state"] == "associated"


@pytest.mark.parametrize(
    "fault",
    [
        Fault("documents", status=429, retry_after="0"),
        Fault("documents", status=503, times=2),
        Fault("documents", drop=True),
        Fault("porting_orders", status=500),
        Fault("porting_orders", status=429, retry_after="0"),
        # A refusal Telnyx says may succeed on a retry is retried.
        Fault("porting_orders", status=422, retryable=True),
    ],
    ids=lambda fault: f"{fault.endpoint}-{fault.status or 'drop'}",
)
def test_transient_faults_are_retried_to_one_attachment(pipeline: Pipeline, fault: Fault):
    pipeline.emulator.inject(fault)
    pipeline.drop(key("loa", "loa.pdf"), LOA)

    pipeline.runtime.drain()

    entry = the_entry(pipeline)
    assert entry["state"] == "associated"
    assert linked(pipeline, "loa") == [entry["telnyx_document_id"]]


def test_a_refusal_telnyx_marks_not_retryable_is_final_whatever_its_status(pipeline: Pipeline):
    # 418 alone would be retried as an unknown answer; meta.retryable false says otherwise.
    pipeline.emulator.inject(Fault("porting_orders", status=418, retryable=False))
    pipeline.drop(key("loa", "loa.pdf"), LOA)

    pipeline.runtime.drain()

    entry = the_entry(pipeline)
    assert entry["state"] == "rejected" and "418" in entry["reason"]
    assert len(pipeline.emulator.calls("porting_orders")) == 1


@pytest.mark.parametrize(
    ("file_name", "body", "reason", "uploaded"),
    [
        ("eicar.pdf", pdf_of_streams(EICAR), "antivirus scan infected", True),
    ],
    ids=["infected"],
)
def test_what_the_documents_service_refuses_is_rejected_with_the_reason(
    pipeline: Pipeline, file_name, body, reason, uploaded
):
    object_key = key("loa", file_name)
    pipeline.drop(object_key, body)

    pipeline.runtime.drain()

    entry = the_entry(pipeline)
    assert entry["state"] == "rejected" and reason in entry["reason"]
    assert pipeline.tags(object_key)["portdocs:status"] == "rejected"
    assert len(uploads(pipeline)) == int(uploaded)
    assert not pipeline.emulator.calls("porting_orders")


def test_a_file_over_the_documents_service_limit_is_rejected_before_upload(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MAX_DOCUMENT_BYTES", str(64 * 1024 * 1024))  # the stack allows it; Telnyx would not
    from portdocs import wiring

    wiring.upload_service.cache_clear()
    pipeline.drop(key("invoice", "big.pdf"), LOA + bytes(20 * 1024 * 1024))

    pipeline.runtime.drain()

    entry = the_entry(pipeline)
    assert entry["state"] == "rejected" and "over the limit of 20971520" in entry["reason"]
    assert not uploads(pipeline)


def test_an_unknown_porting_order_is_rejected_with_telnyx_reason(pipeline: Pipeline):
    pipeline.drop(key("loa", "loa.pdf", porting_order="0f0f0f0f-0000-4000-8000-000000000000"), LOA)

    pipeline.runtime.drain()

    entry = the_entry(pipeline)
    assert entry["state"] == "rejected"
    assert "404" in entry["reason"]
    assert "porting order 0f0f0f0f-0000-4000-8000-000000000000 not found" in entry["reason"]


def test_a_legacy_only_secret_keeps_the_document_for_redrive_naming_the_missing_key(pipeline: Pipeline):
    credentials = pipeline.emulator.credentials
    pipeline.set_credentials(
        api_user=pipeline.credential("api_user"), api_token=pipeline.credential("api_token")
    )
    pipeline.drop(key("loa", "loa.pdf"), LOA)
    body = only(pipeline.receive("IntakeQueueUrl"))["Body"]

    response, ids = pipeline.invoke("uploader", [body])

    assert response == {"batchItemFailures": [{"itemIdentifier": ids[0]}]}
    entry = the_entry(pipeline)
    assert entry["state"] == "failed"
    assert entry["last_error"].startswith("configuration:") and "add api_key" in entry["last_error"]
    assert not uploads(pipeline)
    # Once the key is added, the redriven message completes.
    pipeline.set_credentials(**{k: v for k, v in credentials.items() if v})
    pipeline.invoke("uploader", [body])
    pipeline.runtime.drain()
    assert the_entry(pipeline)["state"] == "associated"


def test_a_document_telnyx_deleted_before_it_was_linked_is_uploaded_again_and_attached(pipeline: Pipeline):
    pipeline.drop(key("loa", "loa.pdf"), LOA)
    pipeline.runtime.poll_once(pipeline.runtime.source_for("UploaderFunction"))
    first = only(pipeline.emulator.v2_documents())["id"]
    stale_association = only(pipeline.receive("AssociationQueueUrl"))["Body"]
    pipeline.send("AssociationQueueUrl", stale_association)
    # The association waited past Telnyx's window (a backlog, a slow redrive): the upload is gone.
    pipeline.emulator.advance_clock(UNLINKED_DOCUMENT_LIFETIME_SECONDS + 60)

    pipeline.runtime.drain()
    # SQS delivers the first association again, late: it is recognised, not rejected or linked.
    response, _ = pipeline.invoke("associator", [stale_association])
    assert response == {"batchItemFailures": []}

    second = only(pipeline.emulator.v2_documents())["id"]
    assert second != first
    assert len(uploads(pipeline)) == 2
    assert linked(pipeline, "loa") == [second]
    entry = the_entry(pipeline)
    assert entry["state"] == "associated" and entry["telnyx_document_id"] == second
    assert entry["reuploads"] == 1
    assert len(pipeline.events()) == 1  # one terminal state, not a rejection on the way


def test_an_association_older_than_the_window_goes_back_for_a_fresh_upload_without_linking(
    pipeline: Pipeline,
):
    pipeline.drop(key("csr", "csr.png"), PNG)
    pipeline.runtime.poll_once(pipeline.runtime.source_for("UploaderFunction"))
    # As after a long stay in the dead-letter queue: the ledger says when the upload happened,
    # and Telnyx has deleted it.
    set_uploaded_at(pipeline, REUPLOAD_AFTER_SECONDS + 60)
    pipeline.emulator.advance_clock(UNLINKED_DOCUMENT_LIFETIME_SECONDS + 60)

    pipeline.runtime.drain()

    assert len(links_posted(pipeline)) == 1  # only the fresh upload was linked
    assert len(uploads(pipeline)) == 2
    entry = the_entry(pipeline)
    assert entry["state"] == "associated" and entry["reuploads"] == 1


def test_a_document_that_keeps_expiring_waits_for_a_person(pipeline: Pipeline):
    pipeline.drop(key("loa", "loa.pdf"), LOA)
    for _ in range(MAX_REUPLOADS + 1):
        pipeline.runtime.poll_once(pipeline.runtime.source_for("UploaderFunction"))
        pipeline.emulator.advance_clock(UNLINKED_DOCUMENT_LIFETIME_SECONDS + 60)
        pipeline.runtime.poll_once(pipeline.runtime.source_for("AssociatorFunction"))

    entry = the_entry(pipeline)
    assert entry["state"] == "failed" and entry["last_error"].startswith("needs attention:")
    assert f"after {MAX_REUPLOADS} fresh uploads" in entry["last_error"]
    assert len(uploads(pipeline)) == MAX_REUPLOADS + 1

    # Once the backlog is gone, a person's retry starts the count again and the document goes through.
    for queue in ("IntakeQueueUrl", "AssociationQueueUrl"):
        pipeline.receive(queue)  # the waiting message is in the dead-letter queue by now
    target = cli.Target(
        pipeline.stack.outputs, boto3.session.Session(), None, MAX_DOCUMENT_BYTES, ("image/png",)
    )
    assert "sent again" in cli.retry_document(target, entry["document_id"])
    pipeline.runtime.drain()
    entry = the_entry(pipeline)
    assert entry["state"] == "associated" and entry["reuploads"] == MAX_REUPLOADS + 1


def upload_directly(pipeline: Pipeline, body: bytes, name: str) -> str:
    """An upstream system's own upload to the documents service."""
    answer = requests.post(
        f"{pipeline.emulator.api_url}/v2/documents",
        files={"file": (name, body, "application/pdf")},
        headers={"Authorization": "Bearer " + pipeline.credential("api_key")},
        timeout=10,
    )
    answer.raise_for_status()
    return str(answer.json()["data"]["id"])


def test_upstream_association_message_is_attached_and_an_expired_one_rejected(pipeline: Pipeline):
    fresh = upload_directly(pipeline, LOA, "loa.pdf")
    message = {"porting_order_id": PORTING_ORDER, "document_type": "loa", "telnyx_document_id": fresh}
    pipeline.send("AssociationQueueUrl", message)
    pipeline.runtime.drain()
    assert linked(pipeline, "loa") == [fresh]

    stale = upload_directly(pipeline, INVOICE, "invoice.pdf")
    pipeline.emulator.advance_clock(UNLINKED_DOCUMENT_LIFETIME_SECONDS + 60)
    pipeline.send("AssociationQueueUrl", {**message, "document_type": "invoice", "telnyx_document_id": stale})
    pipeline.runtime.drain()

    rejected = [e for e in pipeline.ledger().values() if e["state"] == "rejected"]
    assert "Telnyx no longer has the uploaded document" in only(rejected)["reason"]
    assert "upload the file again" in only(rejected)["reason"]
    assert linked(pipeline, "invoice") == []


def test_a_newer_version_of_an_order_loa_replaces_the_older(pipeline: Pipeline):
    object_key = key("loa", "loa.pdf")
    pipeline.drop(object_key, LOA)
    pipeline.runtime.drain()
    first = the_entry(pipeline)["telnyx_document_id"]

    pipeline.drop(object_key, LOA + b"\n% signed again")
    pipeline.runtime.drain()

    newest = max(pipeline.ledger().values(), key=lambda e: e["created_at"] + e["document_id"])
    states = sorted(e["state"] for e in pipeline.ledger().values())
    assert states == ["associated", "associated"]
    (now_linked,) = linked(pipeline, "loa")
    assert now_linked != first
    assert now_linked in {e["telnyx_document_id"] for e in pipeline.ledger().values()}
    assert newest  # both versions reached Telnyx; the order holds the newer one


def test_both_versions_waiting_attach_only_the_newest(pipeline: Pipeline):
    object_key = key("invoice", "inv.pdf")
    pipeline.drop(object_key, INVOICE)
    pipeline.drop(object_key, INVOICE + b"\n% corrected")

    pipeline.runtime.drain()

    states = sorted(e["state"] for e in pipeline.ledger().values())
    assert states == ["associated", "superseded"]
    (now_linked,) = linked(pipeline, "invoice")
    associated = only([e for e in pipeline.ledger().values() if e["state"] == "associated"])
    assert associated["telnyx_document_id"] == now_linked
    assert json.loads(json.dumps(associated["source"]))["key"] == object_key
