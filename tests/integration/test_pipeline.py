"""Both handlers under moto (resources from template.yaml) against the Telnyx emulator over real
HTTP: what Telnyx received, what the files service stored, what the ledger and tags say."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote_plus, unquote, urlsplit

import boto3
import pytest

from portdocs import wiring
from portdocs.config import SettingsError
from portdocs.flows.flow import UNCONFIRMED_SENDS
from portdocs.handler import sqs_batch_handler
from portdocs.ledger import ledger_time
from portdocs.redelivery import OUTAGE_SPAN_SECONDS
from portdocs_sandbox.runtime import LocalLambdaContext, sqs_event
from portdocs_sandbox.telnyx_emulator import Fault
from tests.support import (
    EVERY_DOCUMENT_TYPE,
    INVOICE,
    LOA,
    OTHER_SUB_REQUEST,
    PORT_REQUEST,
    SUB_REQUEST,
    Pipeline,
    deliver_the_association_three_times,
    only,
    set_record_concurrency,
)


def key(document_type: str, file_name: str, sub_request: str = SUB_REQUEST) -> str:
    return f"{PORT_REQUEST}/{sub_request}/{document_type}/{file_name}"


@EVERY_DOCUMENT_TYPE
def test_dropped_document_is_uploaded_and_associated(
    pipeline: Pipeline, document_type, file_name, body, content_type
):
    object_key = key(document_type, file_name)
    pipeline.drop(object_key, body)

    pipeline.runtime.drain()

    upload_request = only(pipeline.emulator.calls("upload_requests"))
    assert upload_request["json"] == {"content_type": content_type}
    assert upload_request["headers"]["x-api-user"] == "portdocs@example.com"
    assert upload_request["headers"]["x-api-token"] == "emulator-token"
    form_post = only(pipeline.emulator.calls("files"))
    assert "x-api-token" not in form_post["headers"] and "authorization" not in form_post["headers"]
    assert form_post["file_name"] == file_name and form_post["file_size"] == len(body)
    association = only(pipeline.emulator.calls("supporting_documents"))
    assert (
        association["path"] == f"/origination/porting/draft_port_requests/{PORT_REQUEST}/supporting_documents"
    )
    location = association["json"]["url"]
    assert association["json"] == {
        "document_type": document_type,
        "description": file_name,
        "url": location,
        "draft_sub_request_id": SUB_REQUEST,
    }
    assert location.endswith("%2F" + quote_plus(file_name, safe=""))
    assert pipeline.emulator.stored_bytes(location) == body

    document = only(pipeline.emulator.documents())
    entry = only(list(pipeline.ledger().values()))
    assert entry["state"] == "associated"
    assert entry["telnyx_document_id"] == document["id"]
    assert entry["location_url"] == location
    assert entry["content_type"] == content_type
    assert pipeline.tags(object_key)["portdocs:status"] == "associated"


def test_file_name_with_spaces_plus_and_unicode_reaches_telnyx_unchanged(pipeline: Pipeline):
    file_name = "Lettre d'autorisation +1 été.pdf"
    pipeline.drop(key("LOA", file_name), LOA)  # the type folder is case-insensitive

    pipeline.runtime.drain()

    form_post = only(pipeline.emulator.calls("files"))
    assert form_post["file_name"] == file_name
    assert form_post["key"].endswith("/" + file_name)
    url = only(pipeline.emulator.documents())["url"]
    assert url.endswith("%2F" + quote_plus(file_name, safe=""))
    assert pipeline.emulator.stored_bytes(url) == LOA


def test_description_metadata_becomes_the_description(pipeline: Pipeline):
    pipeline.drop(key("invoice", "inv.pdf"), INVOICE, Metadata={"description": "October invoice"})

    pipeline.runtime.drain()

    assert only(pipeline.emulator.documents())["body"] == "October invoice"


def test_duplicate_s3_event_associates_once(pipeline: Pipeline):
    object_key = key("loa", "loa.pdf")
    pipeline.drop(object_key, LOA)
    notification = only(pipeline.receive("IntakeQueueUrl"))["Body"]

    # The same S3 event delivered three times: twice in one batch, once after completion.
    response, _ = pipeline.invoke("uploader", [notification, notification])
    assert response == {"batchItemFailures": []}
    pipeline.runtime.drain()
    pipeline.invoke("uploader", [notification])
    pipeline.runtime.drain()

    assert len(pipeline.emulator.calls("upload_requests")) == 1
    assert len(pipeline.emulator.documents()) == 1


def test_duplicate_association_messages_associate_once(pipeline: Pipeline):
    pipeline.drop(key("invoice", "inv.pdf"), INVOICE)

    response = deliver_the_association_three_times(pipeline)

    assert response == {"batchItemFailures": []}
    assert len(pipeline.emulator.calls("supporting_documents")) == 1
    assert len(pipeline.emulator.documents()) == 1


def test_upstream_upload_request_message_is_uploaded(pipeline: Pipeline):
    pipeline.drop("inbox/scan-0042.pdf", LOA)  # not in the key layout: ignored... until asked for
    pipeline.runtime.drain()
    rejected = pipeline.ledger()
    assert [e["state"] for e in rejected.values()] == ["rejected"]

    pipeline.send(
        "IntakeQueueUrl",
        {
            "bucket": pipeline.bucket,
            "key": "inbox/scan-0042.pdf",
            "draft_port_request_id": PORT_REQUEST,
            "draft_sub_request_id": OTHER_SUB_REQUEST,
            "document_type": "loa",
            "description": "Signed LOA",
        },
    )
    pipeline.runtime.drain()

    document = only(pipeline.emulator.documents())
    assert document["draft_sub_request_id"] == OTHER_SUB_REQUEST
    assert document["body"] == "Signed LOA" and document["document_type"] == "loa"
    assert sorted(e["state"] for e in pipeline.ledger().values()) == ["associated", "rejected"]


def test_upstream_association_message_is_applied(pipeline: Pipeline):
    pipeline.drop(key("loa", "loa.pdf"), LOA)
    pipeline.runtime.poll_once(pipeline.runtime.source_for("UploaderFunction"))
    url = json.loads(only(pipeline.receive("AssociationQueueUrl"))["Body"])["url"]

    message = {
        "draft_port_request_id": PORT_REQUEST,
        "draft_sub_request_id": OTHER_SUB_REQUEST,
        "document_type": "other",
        "description": "copy for the second sub-request",
        "url": url,
    }
    pipeline.send("AssociationQueueUrl", message)
    pipeline.runtime.drain()

    document = only(pipeline.emulator.documents())
    assert (document["draft_sub_request_id"], document["document_type"], document["url"]) == (
        OTHER_SUB_REQUEST,
        "other",
        url,
    )
    entry = next(e for e in pipeline.ledger().values() if e["document_id"].startswith("association:"))
    assert entry["state"] == "associated" and entry["telnyx_document_id"] == document["id"]


def test_rate_limited_upload_request_is_retried_after_retry_after(pipeline: Pipeline):
    pipeline.emulator.inject(Fault(endpoint="upload_requests", status=429, retry_after="1", times=1))
    pipeline.drop(key("loa", "loa.pdf"), LOA)

    pipeline.runtime.drain()

    first, second = pipeline.emulator.calls("upload_requests")
    assert (first["status"], second["status"]) == (429, 201)
    assert second["at"] - first["at"] >= 1.0  # Retry-After honoured
    assert len(pipeline.emulator.documents()) == 1


def test_rate_limit_reset_header_is_honoured_when_retry_after_is_absent(pipeline: Pipeline):
    pipeline.emulator.inject(Fault(endpoint="supporting_documents", status=429, ratelimit_reset="1", times=1))
    pipeline.drop(key("loa", "loa.pdf"), LOA)

    pipeline.runtime.drain()

    first, second = pipeline.emulator.calls("supporting_documents")
    assert second["at"] - first["at"] >= 1.0
    assert len(pipeline.emulator.documents()) == 1


def delayed_copies(pipeline: Pipeline, queue_output: str) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=pipeline.output(queue_output), AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesDelayed"])


def number(value: int | float) -> dict[str, str]:
    return {"DataType": "Number", "StringValue": str(int(value))}


def test_server_errors_until_the_deadline_hand_the_record_back_with_a_growing_delay(pipeline: Pipeline):
    pipeline.emulator.inject(Fault(endpoint="upload_requests", status=500, times=None))
    pipeline.drop(key("loa", "loa.pdf"), LOA)
    notification = only(pipeline.receive("IntakeQueueUrl"))["Body"]

    response, _ = pipeline.invoke("uploader", [notification], timeout=17)

    assert response == {"batchItemFailures": []}  # no receive spent: an outage is ridden out over time
    assert len(pipeline.emulator.calls("upload_requests")) >= 2  # retried within the invocation first
    assert delayed_copies(pipeline, "IntakeQueueUrl") == 1
    entry = only(list(pipeline.ledger().values()))
    assert entry["state"] == "failed" and "transient" in entry["last_error"]  # visible while it waits
    assert pipeline.emulator.calls("files") == []


def test_an_association_outage_of_plain_503s_is_ridden_out_and_ends_attached(pipeline: Pipeline):
    # A 503 without Retry-After from a non-idempotent POST may have been recorded: an unknown outcome.
    pipeline.emulator.inject(Fault(endpoint="supporting_documents", status=503, times=None))
    pipeline.drop(key("loa", "loa.pdf"), LOA)
    pipeline.runtime.poll_once(pipeline.runtime.source_for("UploaderFunction"))
    association = only(pipeline.receive("AssociationQueueUrl"))["Body"]
    outage_started = time.time()

    # Each hand-back comes back later (1, 2, 4 ... minutes); here they come back at once, more of
    # them than the old limit of five, all within the outage.
    for backoffs in range(UNCONFIRMED_SENDS.count + 3):
        attributes = {
            "portdocs-backoffs": number(backoffs),
            "portdocs-failing-since": number(outage_started * 1000),
        }
        response, _ = pipeline.invoke("associator", [association], timeout=30, attributes=attributes)
        assert response == {"batchItemFailures": []}  # handed back, not counted against the message
    assert len(pipeline.emulator.calls("supporting_documents")) == UNCONFIRMED_SENDS.count + 3  # one per try
    assert delayed_copies(pipeline, "AssociationQueueUrl") == UNCONFIRMED_SENDS.count + 3
    entry = only(list(pipeline.ledger().values()))
    assert entry["state"] == "failed" and not entry["last_error"].startswith("needs attention")

    pipeline.emulator.clear_faults()  # Telnyx recovers
    response, _ = pipeline.invoke("associator", [association], timeout=30)

    assert response == {"batchItemFailures": []}
    entry = only(list(pipeline.ledger().values()))
    assert (
        entry["state"] == "associated" and entry["possible_duplicate"] is True
    )  # it might have been recorded
    assert len(pipeline.emulator.documents()) == 1


def test_unknown_outcomes_go_to_a_person_only_when_many_are_spread_over_the_span(pipeline: Pipeline):
    pipeline.emulator.inject(Fault(endpoint="supporting_documents", ambiguous=True, times=None))
    pipeline.drop(key("loa", "loa.pdf"), LOA)
    pipeline.runtime.poll_once(pipeline.runtime.source_for("UploaderFunction"))
    association = only(pipeline.receive("AssociationQueueUrl"))["Body"]
    (document_id,) = pipeline.ledger()
    table = boto3.resource("dynamodb").Table(pipeline.output("DocumentsTableName"))

    def unknown_outcomes_so_far(sends: int, minutes_ago: float) -> None:
        table.update_item(
            Key={"document_id": document_id},
            UpdateExpression="SET unconfirmed_sends = :n, first_unconfirmed_at = :t, send_unconfirmed = :y",
            ExpressionAttributeValues={
                ":n": sends,
                ":t": ledger_time(time.time() - minutes_ago * 60),
                ":y": True,
            },
        )

    unknown_outcomes_so_far(UNCONFIRMED_SENDS.count * 2, minutes_ago=UNCONFIRMED_SENDS.span_seconds / 60 - 5)
    pipeline.invoke("associator", [association], timeout=30)
    assert len(pipeline.emulator.calls("supporting_documents")) == 1  # many, but within the span: tried

    unknown_outcomes_so_far(UNCONFIRMED_SENDS.count - 1, minutes_ago=UNCONFIRMED_SENDS.span_seconds / 60 + 60)
    pipeline.invoke("associator", [association], timeout=30)
    assert len(pipeline.emulator.calls("supporting_documents")) == 2  # long ago, but few: tried

    unknown_outcomes_so_far(UNCONFIRMED_SENDS.count, minutes_ago=UNCONFIRMED_SENDS.span_seconds / 60 + 1)
    response, ids = pipeline.invoke("associator", [association], timeout=30)

    assert len(pipeline.emulator.calls("supporting_documents")) == 2  # nothing more sent
    assert response == {"batchItemFailures": [{"itemIdentifier": ids[0]}]}  # kept, in the end for the DLQ
    entry = only(list(pipeline.ledger().values()))
    assert entry["state"] == "failed" and entry["last_error"].startswith("needs attention")
    assert "over more than 90 minutes" in entry["last_error"]


def test_a_record_failing_for_longer_than_the_outage_span_spends_its_receives(pipeline: Pipeline):
    pipeline.emulator.inject(Fault(endpoint="upload_requests", status=503, times=None))
    pipeline.drop(key("loa", "loa.pdf"), LOA)
    notification = only(pipeline.receive("IntakeQueueUrl"))["Body"]
    failing_since = (time.time() - OUTAGE_SPAN_SECONDS - 1) * 1000

    response, ids = pipeline.invoke(
        "uploader",
        [notification],
        timeout=17,
        attributes={"portdocs-backoffs": number(12), "portdocs-failing-since": number(failing_since)},
    )

    assert response == {"batchItemFailures": [{"itemIdentifier": ids[0]}]}  # SQS counts it; then its DLQ
    assert delayed_copies(pipeline, "IntakeQueueUrl") == 0
    assert only(list(pipeline.ledger().values()))["state"] == "failed"


def test_repeated_failures_end_in_the_dead_letter_queue(pipeline: Pipeline):
    pipeline.emulator.inject(Fault(endpoint="upload_requests", status=503, times=None))
    pipeline.drop(key("loa", "loa.pdf"), LOA)
    runtime_source = pipeline.runtime.source_for("UploaderFunction")
    sqs = boto3.client("sqs")
    # The record has failed for longer than the outage span, so each receive counts; the queue's
    # maxReceiveCount is 5. Every receive is put through as Lambda would, attributes included.
    first = only(pipeline.receive("IntakeQueueUrl"))
    sqs.send_message(
        QueueUrl=runtime_source.queue_url,
        MessageBody=first["Body"],
        MessageAttributes={
            "portdocs-failing-since": {
                "DataType": "Number",
                "StringValue": str(int((time.time() - OUTAGE_SPAN_SECONDS - 1) * 1000)),
            }
        },
    )
    for _ in range(6):
        messages = sqs.receive_message(
            QueueUrl=runtime_source.queue_url,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            VisibilityTimeout=0,
        ).get("Messages", [])
        if not messages:
            break
        event = sqs_event([dict(m) for m in messages], runtime_source.queue_url, pipeline.stack.region)
        context = LocalLambdaContext(pipeline.stack.functions["UploaderFunction"], pipeline.stack.region, 17)
        response = pipeline.handlers["UploaderFunction"](event, context)
        assert len(response["batchItemFailures"]) == 1

    dead = pipeline.receive("IntakeDeadLetterQueueUrl")
    assert len(dead) == 1
    assert only(list(pipeline.ledger().values()))["state"] == "failed"


def test_unprocessable_association_is_rejected_with_the_reason(pipeline: Pipeline):
    pipeline.drop(key("loa", "loa.pdf", sub_request="ffffffff-0000-4000-8000-000000000000"), LOA)

    pipeline.runtime.drain()

    entry = only(list(pipeline.ledger().values()))
    assert entry["state"] == "rejected"
    assert "422" in entry["reason"] and "draft_sub_request_id" in entry["reason"]
    assert (
        pipeline.tags(key("loa", "loa.pdf", sub_request="ffffffff-0000-4000-8000-000000000000"))[
            "portdocs:status"
        ]
        == "rejected"
    )
    assert pipeline.receive("AssociationDeadLetterQueueUrl") == []


def test_unauthorised_is_kept_for_redrive_not_rejected(pipeline: Pipeline):
    pipeline.set_credentials(api_user="portdocs@example.com", api_token="wrong")
    pipeline.drop(key("loa", "loa.pdf"), LOA)
    notification = only(pipeline.receive("IntakeQueueUrl"))["Body"]

    response, ids = pipeline.invoke("uploader", [notification])

    assert response == {"batchItemFailures": [{"itemIdentifier": ids[0]}]}
    assert len(pipeline.emulator.calls("upload_requests")) == 1  # a 401 is not retried in place
    entry = only(list(pipeline.ledger().values()))
    assert entry["state"] == "failed" and entry["last_error"].startswith("configuration")

    pipeline.set_credentials(api_user="portdocs@example.com", api_token="emulator-token")
    response, _ = pipeline.invoke("uploader", [notification])  # the redriven message
    pipeline.runtime.drain()

    assert response == {"batchItemFailures": []}
    assert only(list(pipeline.ledger().values()))["state"] == "associated"


def test_v2_api_key_is_sent_as_bearer(pipeline: Pipeline):
    pipeline.emulator.credentials["api_key"] = "KEY0123"
    pipeline.set_credentials(api_key="KEY0123")
    pipeline.drop(key("loa", "loa.pdf"), LOA)

    pipeline.runtime.drain()

    call = only(pipeline.emulator.calls("supporting_documents"))
    assert call["headers"]["authorization"] == "Bearer KEY0123" and "x-api-token" not in call["headers"]
    assert len(pipeline.emulator.documents()) == 1


def test_expired_form_gets_a_fresh_upload_request(pipeline: Pipeline):
    pipeline.emulator.inject(Fault(endpoint="upload_requests", expire_forms=True, times=1))
    pipeline.drop(key("loa", "loa.pdf"), LOA)

    pipeline.runtime.drain()

    assert [c["status"] for c in pipeline.emulator.calls("files")] == [403, 204]
    assert len(pipeline.emulator.calls("upload_requests")) == 2
    assert len(pipeline.emulator.documents()) == 1


def test_s3_test_event_is_acknowledged_and_ignored(pipeline: Pipeline):
    body = json.dumps(
        {
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": "2026-11-27T00:00:00.000Z",
            "Bucket": pipeline.bucket,
            "RequestId": "X",
            "HostId": "Y",
        }
    )

    response, _ = pipeline.invoke("uploader", [body])

    assert response == {"batchItemFailures": []}
    assert pipeline.ledger() == {} and pipeline.emulator.calls() == []


@pytest.mark.parametrize(
    ("file_name", "body", "reason"),
    [
        ("notes.pdf", b"just some text, not a PDF at all", "could not be recognised"),
        ("empty.pdf", b"", "empty"),
        ("archive.pdf", b"PK\x03\x04" + bytes(300), "application/zip"),
    ],
)
def test_bad_file_is_rejected_with_reason_on_ledger_and_tags(pipeline: Pipeline, file_name, body, reason):
    object_key = key("loa", file_name)
    pipeline.drop(object_key, body, Tagging="team=porting")

    pipeline.runtime.drain()

    entry = only(list(pipeline.ledger().values()))
    assert entry["state"] == "rejected" and reason in entry["reason"]
    tags = pipeline.tags(object_key)
    assert tags["portdocs:status"] == "rejected" and tags["team"] == "porting"
    assert reason.split()[0] in tags["portdocs:reason"]
    assert pipeline.emulator.calls() == []


def test_oversize_file_is_rejected_before_any_upload(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MAX_DOCUMENT_BYTES", "1000")
    wiring.upload_service.cache_clear()  # settings are read once per execution environment
    pipeline.drop(key("invoice", "big.pdf"), INVOICE + bytes(2000))

    response, _ = pipeline.invoke("uploader", [m["Body"] for m in pipeline.receive("IntakeQueueUrl")])

    assert response == {"batchItemFailures": []}

    assert "over the limit of 1000 bytes" in only(list(pipeline.ledger().values()))["reason"]
    assert pipeline.emulator.calls() == []


def test_batch_mixing_good_and_bad_records_hands_back_only_the_transient_one(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
):
    set_record_concurrency(monkeypatch, 1)  # the faults below match calls in the records' order
    good, bad_layout, unlucky = (
        key("loa", "good.pdf"),
        f"{PORT_REQUEST}/loa/oops.pdf",
        key("invoice", "unlucky.pdf"),
    )
    pipeline.drop(good, LOA)
    pipeline.drop(bad_layout, LOA)
    pipeline.drop(unlucky, INVOICE, Metadata={"description": "unlucky"})
    notifications = [m["Body"] for m in pipeline.receive("IntakeQueueUrl")]
    # Records are handled in order and faults match in the order injected: the first upload
    # request (the good file's) passes untouched, every later one gets a 503.
    pipeline.emulator.inject(Fault(endpoint="upload_requests", status=None, times=1))
    pipeline.emulator.inject(Fault(endpoint="upload_requests", status=503, times=None))

    response, _ = pipeline.invoke(
        "uploader", [notifications[0], "{not json", notifications[1], notifications[2]], timeout=20
    )

    assert response == {"batchItemFailures": []}
    (copy,) = pipeline.receive_delayed("IntakeQueueUrl")
    assert copy["Body"] == notifications[2]  # the transient one, back for later
    by_key = {e.get("source", {}).get("key", "message"): e for e in pipeline.ledger().values()}
    assert {k: e["state"] for k, e in by_key.items()} == {
        good: "uploaded",
        bad_layout: "rejected",
        unlucky: "failed",
        "message": "rejected",
    }


def test_messages_that_are_not_documents_are_rejected_visibly(pipeline: Pipeline):
    response, _ = pipeline.invoke(
        "uploader",
        [
            "{not json",
            json.dumps(
                {
                    "bucket": "someone-elses-bucket",
                    "key": "a.pdf",
                    "draft_port_request_id": PORT_REQUEST,
                    "draft_sub_request_id": SUB_REQUEST,
                    "document_type": "loa",
                }
            ),
            json.dumps({"bucket": pipeline.bucket, "key": "a.pdf", "document_type": "loa"}),
        ],
    )

    assert response == {"batchItemFailures": []}
    reasons = sorted(e["reason"] for e in pipeline.ledger().values())
    assert any("not JSON" in r for r in reasons)
    assert any("is not the intake bucket" in r for r in reasons)
    assert any("upload-request.schema.json" in r and "draft_port_request_id" in r for r in reasons)


def test_association_url_outside_the_allow_list_is_rejected(pipeline: Pipeline):
    message = {
        "draft_port_request_id": PORT_REQUEST,
        "draft_sub_request_id": SUB_REQUEST,
        "document_type": "loa",
        "description": "",
        "url": "https://attacker.example.com/direct-uploads%2Fx%2Floa.pdf",
    }
    response, _ = pipeline.invoke("associator", [json.dumps(message)])

    assert response == {"batchItemFailures": []}
    assert "not in ALLOWED_UPLOAD_HOSTS" in only(list(pipeline.ledger().values()))["reason"]
    assert pipeline.emulator.calls() == []


def test_no_credential_signature_policy_or_location_url_reaches_the_logs(
    pipeline: Pipeline, portdocs_log: Callable[[], str]
):
    pipeline.emulator.inject(
        Fault(endpoint="upload_requests", expire_forms=True, times=1)
    )  # log a refusal too
    pipeline.drop(key("loa", "loa.pdf"), LOA)

    pipeline.runtime.drain()

    output = portdocs_log()
    assert "document associated" in output and "refused the form" in output
    secrets = [pipeline.credential("api_token")]
    for post in pipeline.emulator.calls("files"):
        secrets += [post["field_values"][name] for name in ("x-amz-signature", "policy", "x-amz-credential")]
    assert len(secrets) == 7
    # The Location URL is a bearer link to the uploaded file: the ledger keeps it, logs never.
    (document,) = pipeline.emulator.documents()
    secrets += [document["url"], unquote(urlsplit(document["url"]).path)]
    for secret in secrets:
        assert secret not in output


def test_concurrent_duplicate_deliveries_upload_once(pipeline: Pipeline):
    pipeline.emulator.inject(Fault(endpoint="upload_requests", latency=1.0, times=1))  # keep the first busy
    pipeline.drop(key("loa", "loa.pdf"), LOA)
    notification = only(pipeline.receive("IntakeQueueUrl"))["Body"]

    # Two execution environments: each Lambda environment has its own batch processor.
    handlers = [None, sqs_batch_handler(wiring.upload_service)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = pool.map(
            lambda handler: pipeline.invoke("uploader", [notification], handler=handler), handlers
        )
        responses = [response for response, _ in runs]

    # One delivery did the work; the other was handed back for later (no receive spent on it)
    # rather than upload again.
    assert [r["batchItemFailures"] for r in responses] == [[], []]
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=pipeline.output("IntakeQueueUrl"), AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    pipeline.invoke("uploader", [notification])  # SQS delivers the handed-back copy
    pipeline.runtime.drain()
    assert len(pipeline.emulator.calls("upload_requests")) == 1
    assert len(pipeline.emulator.documents()) == 1


def test_a_missing_setting_fails_the_invocation_naming_the_variable(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("INTAKE_BUCKET")
    wiring.upload_service.cache_clear()

    with pytest.raises(SettingsError, match="INTAKE_BUCKET"):
        pipeline.invoke("uploader", ["{}"])
