from __future__ import annotations

import json

import pytest

from portdocs import shapes
from portdocs.documents import DocumentType, PortingOrderTarget, SourceObject
from portdocs.errors import PermanentError
from portdocs.messages import parse_association_message, parse_intake_message
from portdocs.shapes import (
    ASSOCIATION_REQUEST_SCHEMA,
    DOCUMENT_EVENT_SCHEMA,
    S3_NOTIFICATION_SCHEMA,
    UPLOAD_REQUEST_SCHEMA,
    validate,
)
from tests.support import EVENTS, ROOT


def body_of(event_file: str) -> str:
    return json.loads((EVENTS / event_file).read_text())["Records"][0]["body"]


def test_s3_notification_key_is_decoded_with_unquote_plus():
    (item,) = parse_intake_message(body_of("intake-s3-notification.json"))
    assert item.source.key.endswith("/loa/Letter of Authorization +1 été.pdf")
    assert item.source.version_id == "096fKKXTRTtl3on89fVO.nfljtsv6qko"
    assert item.source.etag == "d41d8cd98f00b204e9800998ecf8427e"
    assert item.size == 748 and item.target is None


def test_s3_test_event_carries_no_document():
    assert parse_intake_message(body_of("intake-s3-test-event.json")) == []


def test_only_object_created_records_are_documents():
    notification = json.loads(body_of("intake-s3-notification.json"))
    notification["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    assert parse_intake_message(json.dumps(notification)) == []


def test_sample_upload_request_is_valid_and_parsed():
    (item,) = parse_intake_message(body_of("intake-upload-request.json"))
    assert item.source == SourceObject(
        bucket="portdocs-intake-123456789012-a1b2c3d4", key="inbox/2026-11/acme-loa-signed.pdf"
    )
    assert item.target.document_type is DocumentType.LOA
    assert item.description == "Signed LOA, Acme Corp"


def test_sample_association_request_is_valid_and_round_trips():
    body = body_of("association-request.json")
    request = parse_association_message(body)
    assert request.upload.location_url.endswith("%2FOctober+invoice.pdf")  # passed on exactly as received
    assert request.to_message() == json.loads(body)


def test_association_round_trip_keeps_the_source():
    message = json.loads(body_of("association-request.json"))
    message["source"] = {
        "bucket": "intake",
        "key": "k k.pdf",
        "version_id": "v",
        "etag": "d41d8cd98f00b204e9800998ecf8427e",
    }
    assert parse_association_message(json.dumps(message)).to_message() == message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"document_type": "bill"}, "document_type must be one of"),
        ({"draft_port_request_id": "../admin"}, "draft_port_request_id must match pattern"),
        ({"url": "ftp://files.example.com/a.pdf"}, "url must match pattern"),
        ({"surprise": 1}, "must not contain"),
        ({"description": 7}, "description must be string"),
    ],
)
def test_association_schema_violations_are_permanent_with_the_field_named(change, expected):
    message = {**json.loads(body_of("association-request.json")), **change}
    with pytest.raises(PermanentError, match=expected):
        parse_association_message(json.dumps(message))


def test_association_description_defaults_to_empty():
    message = json.loads(body_of("association-request.json"))
    del message["description"]
    assert parse_association_message(json.dumps(message)).description == ""


@pytest.mark.parametrize("missing", ["bucket", "key", "document_type"])
def test_upload_request_requires_its_fields(missing):
    message = json.loads(body_of("intake-upload-request.json"))
    del message[missing]
    with pytest.raises(PermanentError, match=f"must contain .*{missing}"):
        parse_intake_message(json.dumps(message))


@pytest.mark.parametrize(
    "change",
    [
        {"draft_port_request_id": None},
        {"draft_sub_request_id": None},
        {"porting_order_id": "po-1"},
        {"draft_port_request_id": None, "draft_sub_request_id": None},
    ],
    ids=["no port request", "no sub-request", "both targets", "no target"],
)
def test_upload_request_names_exactly_one_target_and_says_so(change):
    message = json.loads(body_of("intake-upload-request.json"))
    for name, value in change.items():
        if value is None:
            del message[name]
        else:
            message[name] = value
    with pytest.raises(
        PermanentError, match=r"exactly one target: a draft sub-request .* or a porting order"
    ):
        parse_intake_message(json.dumps(message))


def test_upload_request_for_a_porting_order_names_its_target():
    message = json.loads(body_of("intake-upload-request.json"))
    del message["draft_port_request_id"], message["draft_sub_request_id"]
    message["porting_order_id"] = "a1b2c3d4-0000-4000-8000-000000000001"
    (item,) = parse_intake_message(json.dumps(message))
    assert item.target == PortingOrderTarget(
        "a1b2c3d4-0000-4000-8000-000000000001", DocumentType(message["document_type"])
    )


@pytest.mark.parametrize(
    "change",
    [
        {"url": "https://files-service-prod.s3.amazonaws.com/x"},  # a porting order's file has no Location
        {"telnyx_document_id": None},
        {"porting_order_id": None},
        {"draft_port_request_id": "x"},
        {"uploaded_at": "yesterday"},
        {"uploaded_at": "9999-12-31T23:59:59-01:00"},  # parses, but is past the end of the calendar in UTC
        {"telnyx_document_id": "../../v2/documents"},
    ],
)
def test_porting_order_association_requests_must_be_whole(change):
    message = {
        "porting_order_id": "po-1",
        "document_type": "csr",
        "telnyx_document_id": "doc-1",
        "uploaded_at": "2026-11-28T10:00:00Z",
    }
    assert parse_association_message(json.dumps(message)).upload.telnyx_document_id == "doc-1"
    for name, value in change.items():
        if value is None:
            del message[name]
        else:
            message[name] = value
    with pytest.raises(PermanentError):
        parse_association_message(json.dumps(message))


@pytest.mark.parametrize("body", ["", "not json", "[1, 2]", "null"])
def test_non_object_bodies_are_permanent_errors(body):
    with pytest.raises(PermanentError):
        parse_intake_message(body)


def test_published_schemas_are_the_ones_the_code_enforces():
    schemas = ROOT / "layers" / "portdocs" / "portdocs" / "schemas"
    assert sorted(p.name for p in schemas.glob("*.json")) == sorted(
        [
            UPLOAD_REQUEST_SCHEMA,
            ASSOCIATION_REQUEST_SCHEMA,
            S3_NOTIFICATION_SCHEMA,
            DOCUMENT_EVENT_SCHEMA,
            shapes.PORTING_NOTIFICATION_SCHEMA,
            shapes.PORTING_ORDER_EVENT_SCHEMA,
        ]
    )
    for name in (UPLOAD_REQUEST_SCHEMA, ASSOCIATION_REQUEST_SCHEMA):
        assert json.loads((schemas / name).read_text())["$schema"].startswith("http://json-schema.org/")
    validate(json.loads(body_of("intake-upload-request.json")), UPLOAD_REQUEST_SCHEMA)
    validate(json.loads(body_of("association-request.json")), ASSOCIATION_REQUEST_SCHEMA)


def test_both_message_schemas_define_ids_types_and_descriptions_alike():
    upload, association = shapes.schema(UPLOAD_REQUEST_SCHEMA), shapes.schema(ASSOCIATION_REQUEST_SCHEMA)
    assert upload["definitions"] == association["definitions"]
    for name in ("draft_port_request_id", "draft_sub_request_id", "document_type"):
        assert upload["properties"][name] == association["properties"][name]
    assert upload["properties"]["description"]["maxLength"] == shapes.description_max_length()
    assert set(shapes.document_types()) == {t.value for t in DocumentType}


@pytest.mark.parametrize("value", ["abc\n", "", "-leading-dash", "a" * 129, "a/b", "x y"])
def test_the_code_refuses_exactly_the_ids_the_schemas_refuse(value):
    assert not shapes.is_valid_id(value)
    message = {
        "draft_port_request_id": value,
        "draft_sub_request_id": "s",
        "document_type": "loa",
        "url": "https://h/x",
    }
    with pytest.raises(PermanentError):
        validate(message, ASSOCIATION_REQUEST_SCHEMA)


def test_a_long_description_is_shortened_to_the_schema_limit():
    limit = shapes.description_max_length()
    assert len(shapes.shorten_description("x" * (limit + 50))) == limit
    assert shapes.shorten_description("short") == "short"
