"""The lifecycle's edges through both handlers (moto, the emulator over HTTP): time budgets and
shared rate limits, a file replaced or deleted while its association waits, an allow-list that
changed under an uploaded file, and log lines that always name their own record."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import boto3
import pytest

from portdocs import wiring
from portdocs.redelivery import FIRST_SENT_ATTRIBUTE
from portdocs_sandbox.telnyx_emulator import Fault
from tests.support import PORT_REQUEST, SAMPLES, SUB_REQUEST, Pipeline, set_record_concurrency

LOA = (SAMPLES / "Letter of Authorization.pdf").read_bytes()


def key(file_name: str, document_type: str = "loa") -> str:
    return f"{PORT_REQUEST}/{SUB_REQUEST}/{document_type}/{file_name}"


def queued_association(pipeline: Pipeline, object_key: str) -> str:
    """Drops a file and runs the uploader only: the association request it queued."""
    pipeline.drop(object_key, LOA)
    pipeline.runtime.poll_once(pipeline.runtime.source_for("UploaderFunction"))
    (message,) = pipeline.receive("AssociationQueueUrl")
    return message["Body"]


def test_a_long_rate_limit_hands_every_record_back_delayed_without_spending_a_receive(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
):
    set_record_concurrency(monkeypatch, 2)
    pipeline.emulator.inject(Fault(endpoint="upload_requests", status=429, retry_after="120", times=None))
    for name in "abcdef":
        pipeline.drop(key(f"{name}.pdf"), LOA)
    bodies = [m["Body"] for m in pipeline.receive("IntakeQueueUrl")]

    response, _ = pipeline.invoke("uploader", bodies, timeout=60)

    assert response == {"batchItemFailures": []}  # nothing counted against the messages
    # Only records already in flight when the 429 came knocked; the rest waited for the gate.
    assert 1 <= len(pipeline.emulator.calls("upload_requests")) <= 2
    sqs = boto3.client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=pipeline.output("IntakeQueueUrl"), AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "6"  # back on the queue, after the wait
    # Waiting is not a fault: the documents stay as they were, in flight.
    assert {e["state"] for e in pipeline.ledger().values()} == {"received"}


def test_records_a_batch_has_no_time_left_for_are_handed_back_untouched(pipeline: Pipeline):
    pipeline.drop(key("a.pdf"), LOA)
    (message,) = pipeline.receive("IntakeQueueUrl")

    response, _ = pipeline.invoke("uploader", [message["Body"]], timeout=12)  # under 6 s reserve + 10 s

    assert response == {"batchItemFailures": []}
    assert pipeline.ledger() == {} and pipeline.emulator.calls() == []
    (copy,) = boto3.client("sqs").receive_message(
        QueueUrl=pipeline.output("IntakeQueueUrl"), MessageAttributeNames=["All"]
    )["Messages"]
    assert copy["Body"] == message["Body"]
    # The copy keeps the age of the message it stands for: SQS's SentTimestamp of the first copy.
    first_sent = int(copy["MessageAttributes"][FIRST_SENT_ATTRIBUTE]["StringValue"]) / 1000
    assert 0 <= time.time() - first_sent < 60


def test_a_file_replaced_while_its_association_waited_is_superseded_not_attached(pipeline: Pipeline):
    association = queued_association(pipeline, key("loa.pdf"))
    pipeline.drop(key("loa.pdf"), LOA + b"\n% corrected\n")  # the person uploads a corrected LOA

    pipeline.invoke("associator", [association])
    pipeline.runtime.drain()

    states = sorted(e["state"] for e in pipeline.ledger().values())
    assert states == ["associated", "superseded"]
    (document,) = pipeline.emulator.documents()
    assert pipeline.emulator.stored_bytes(document["url"]) == LOA + b"\n% corrected\n"


def test_a_file_deleted_while_its_association_waited_is_withdrawn(pipeline: Pipeline):
    association = queued_association(pipeline, key("loa.pdf"))
    boto3.client("s3").delete_object(Bucket=pipeline.bucket, Key=key("loa.pdf"))

    response, _ = pipeline.invoke("associator", [association])

    assert response == {"batchItemFailures": []}
    (entry,) = pipeline.ledger().values()
    assert entry["state"] == "withdrawn" and "deleted" in entry["reason"]
    assert pipeline.emulator.documents() == []


def test_an_allow_list_narrowed_after_the_upload_keeps_the_document_for_redrive(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
):
    association = queued_association(pipeline, key("loa.pdf"))
    monkeypatch.setenv("ALLOWED_UPLOAD_HOSTS", "files-service-prod.s3.amazonaws.com")
    wiring.association_service.cache_clear()

    response, ids = pipeline.invoke("associator", [association])

    assert response == {"batchItemFailures": [{"itemIdentifier": ids[0]}]}
    (entry,) = pipeline.ledger().values()
    assert entry["state"] == "failed" and entry["last_error"].startswith("configuration")


def test_an_unknown_outcome_is_retried_and_the_association_marked_as_a_possible_duplicate(pipeline: Pipeline):
    association = queued_association(pipeline, key("loa.pdf"))
    pipeline.emulator.inject(Fault(endpoint="supporting_documents", status=504))

    response, _ = pipeline.invoke("associator", [association])

    assert response == {"batchItemFailures": []}  # handed back for later, not posted again now
    assert len(pipeline.emulator.calls("supporting_documents")) == 1
    pipeline.runtime.drain()  # the copy comes back
    (entry,) = pipeline.ledger().values()
    assert entry["state"] == "associated" and entry["possible_duplicate"] is True
    assert pipeline.tags(key("loa.pdf"))["portdocs:check"] == "possible duplicate"
    assert len(pipeline.emulator.calls("supporting_documents")) == 2


def test_a_crash_after_the_post_was_sent_marks_the_redelivered_association(pipeline: Pipeline):
    association = queued_association(pipeline, key("loa.pdf"))
    # The first attempt's worker died after recording its intent, before learning the outcome.
    document_id = next(iter(pipeline.ledger()))
    boto3.resource("dynamodb").Table(pipeline.output("DocumentsTableName")).update_item(
        Key={"document_id": document_id},
        UpdateExpression="SET send_unconfirmed = :t",
        ExpressionAttributeValues={":t": True},
    )

    pipeline.invoke("associator", [association])

    assert pipeline.ledger()[document_id]["possible_duplicate"] is True


def test_a_provably_unsent_failure_is_retried_silently(pipeline: Pipeline):
    association = queued_association(pipeline, key("loa.pdf"))
    pipeline.emulator.inject(Fault(endpoint="supporting_documents", status=503, retry_after="0"))

    pipeline.invoke("associator", [association])

    (entry,) = pipeline.ledger().values()
    assert entry["state"] == "associated" and "possible_duplicate" not in entry
    assert "send_unconfirmed" not in entry and "portdocs:check" not in pipeline.tags(key("loa.pdf"))


def test_every_log_line_names_its_own_record(pipeline: Pipeline, portdocs_log: Callable[[], str]):
    pipeline.drop(key("good.pdf"), LOA)
    (good,) = pipeline.receive("IntakeQueueUrl")

    _, ids = pipeline.invoke("uploader", [good["Body"], "{not json"])

    lines = [json.loads(line) for line in portdocs_log().splitlines()]
    rejected = next(line for line in lines if line["message"] == "document rejected")
    assert rejected["correlation_id"] == f"sqs-message:{ids[1]}"  # not the previous record's document
    uploaded = next(line for line in lines if line["message"] == "document uploaded")
    assert uploaded["correlation_id"].startswith(f"s3://{pipeline.bucket}/{key('good.pdf')}#")


def test_an_association_recorded_before_a_504_is_marked_and_not_lost(pipeline: Pipeline):
    association = queued_association(pipeline, key("loa.pdf"))
    pipeline.emulator.inject(Fault(endpoint="supporting_documents", ambiguous=True))  # recorded, then 504

    pipeline.invoke("associator", [association])
    pipeline.runtime.drain()  # the copy handed back after the unknown outcome

    (entry,) = pipeline.ledger().values()
    assert entry["state"] == "associated" and entry["possible_duplicate"] is True
    assert len(pipeline.emulator.documents()) == 2  # the doubt was real; the mark says so


def test_a_refusal_after_an_unknown_outcome_says_the_document_may_be_attached(pipeline: Pipeline):
    association = queued_association(pipeline, key("loa.pdf"))
    pipeline.emulator.inject(Fault(endpoint="supporting_documents", ambiguous=True))
    pipeline.emulator.inject(Fault(endpoint="supporting_documents", status=422))

    pipeline.invoke("associator", [association])
    pipeline.runtime.drain()  # the copy handed back after the unknown outcome

    (entry,) = pipeline.ledger().values()
    assert entry["state"] == "rejected" and "may be attached on Telnyx" in entry["reason"]
    assert entry["possibly_attached"] is True
    assert pipeline.tags(key("loa.pdf"))["portdocs:check"] == "possibly attached"


def test_a_file_replaced_after_an_unknown_outcome_is_superseded_but_flagged(pipeline: Pipeline):
    association = queued_association(pipeline, key("loa.pdf"))
    pipeline.emulator.inject(Fault(endpoint="supporting_documents", ambiguous=True))
    pipeline.emulator.inject(Fault(endpoint="supporting_documents", status=401))  # then a configuration fault
    pipeline.invoke("associator", [association])
    pipeline.drop(key("loa.pdf"), LOA + b"\n% corrected\n")

    pipeline.invoke("associator", [association])  # the redelivery

    old = next(e for e in pipeline.ledger().values() if e["state"] == "superseded")
    assert old["possibly_attached"] is True and "may be attached on Telnyx" in old["reason"]


def test_an_upload_request_for_a_key_ending_in_a_slash_is_not_taken_for_a_folder(pipeline: Pipeline):
    pipeline.drop("inbox/odd-name/", LOA)
    pipeline.receive("IntakeQueueUrl")
    request = {
        "bucket": pipeline.bucket,
        "key": "inbox/odd-name/",
        "draft_port_request_id": PORT_REQUEST,
        "draft_sub_request_id": SUB_REQUEST,
        "document_type": "loa",
    }

    pipeline.invoke("uploader", [json.dumps(request)])

    (entry,) = pipeline.ledger().values()
    assert entry["state"] == "uploaded"


def test_a_message_with_text_that_is_not_unicode_is_rejected_at_once(pipeline: Pipeline):
    body = '{"draft_port_request_id": "p", "draft_sub_request_id": "s", "document_type": "loa", "url": "https://h/\\ud800"}'

    response, ids = pipeline.invoke("associator", [body])

    assert response == {"batchItemFailures": []}
    (entry,) = pipeline.ledger().values()
    assert entry["document_id"] == f"sqs-message:{ids[0]}" and "not valid Unicode" in entry["reason"]


def test_a_late_event_for_a_replaced_object_known_by_etag_leaves_the_new_objects_tag_alone(
    pipeline: Pipeline,
):
    pipeline.drop(key("loa.pdf"), LOA)
    (old_event,) = pipeline.receive("IntakeQueueUrl")  # moto's event: the old object by ETag only
    pipeline.drop(key("loa.pdf"), LOA + b"\n% corrected\n")
    pipeline.runtime.drain()  # the new version is associated

    pipeline.invoke("uploader", [old_event["Body"]])

    assert sorted(e["state"] for e in pipeline.ledger().values()) == ["associated", "superseded"]
    assert pipeline.tags(key("loa.pdf"))["portdocs:status"] == "associated"


def test_a_file_deleted_between_the_look_and_the_read_is_withdrawn_not_rejected(pipeline: Pipeline):
    pipeline.drop(key("loa.pdf"), LOA)
    (notification,) = pipeline.receive("IntakeQueueUrl")
    s3 = boto3.client("s3")

    def delete_it_first(**_: object) -> None:  # the person deletes the file just then
        for version in s3.list_object_versions(Bucket=pipeline.bucket, Prefix=key("loa.pdf"))["Versions"]:
            s3.delete_object(Bucket=pipeline.bucket, Key=key("loa.pdf"), VersionId=version["VersionId"])

    # The uploader's own client, as the function builds it; the hook runs just before its first read.
    wiring.upload_service()._intake._s3.meta.events.register_first(
        "before-call.s3.GetObject", delete_it_first
    )

    response, _ = pipeline.invoke("uploader", [notification["Body"]])

    assert response == {"batchItemFailures": []}
    (entry,) = pipeline.ledger().values()
    assert entry["state"] == "withdrawn"
    assert pipeline.emulator.calls() == []


def test_a_server_that_echoes_the_files_url_gets_it_into_no_log_line_reason_tag_or_event(
    pipeline: Pipeline, portdocs_log: Callable[[], str], caplog: pytest.LogCaptureFixture
):
    caplog.set_level("DEBUG")  # every library's records too, as Lambda's root logger at DEBUG
    # First a transient 500, then a refusal, each quoting the body it was sent (the URL among it).
    pipeline.emulator.inject(Fault(endpoint="supporting_documents", status=503, retry_after="0", echo=True))
    pipeline.emulator.inject(Fault(endpoint="supporting_documents", status=422, echo=True))
    pipeline.drop(key("Jane Doe LOA.pdf"), LOA)
    pipeline.runtime.drain()

    (entry,) = pipeline.ledger().values()
    assert entry["state"] == "rejected" and "you sent" in entry["reason"]
    (association,) = {call["json"]["url"] for call in pipeline.emulator.calls("supporting_documents")}
    secret = association.split("/")[-2]  # direct-uploads/<this>/<file>: what makes the link unguessable
    assert len(secret) >= 16
    seen = {
        "log lines": portdocs_log()
        + "\n".join(
            r.getMessage()
            for r in caplog.records
            if not r.name.startswith(("moto", "werkzeug"))  # AWS's, Telnyx's
        ),
        "reason": entry["reason"],
        "tags": json.dumps(pipeline.tags(key("Jane Doe LOA.pdf"))),
        "events": json.dumps(pipeline.events()),
    }
    assert "you sent" in seen["log lines"]
    assert {where: secret in text for where, text in seen.items()} == dict.fromkeys(seen, False)
